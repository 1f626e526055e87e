package executortest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// python3 is the interpreter the local runner's in-job side runs in.
func python3(t *testing.T) string {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not on PATH (CI=true, so this is a failure)")
		}
		t.Skip("python3 is not on PATH")
	}
	return py
}

// The in-job side of remote executors delivers the contract, run as local processes that
// share nothing with the server but its API.
func TestLocalRunnerContract(t *testing.T) {
	py := python3(t)
	Contract(t, ContractHarness{CachesEnvironments: true, New: func(t *testing.T, s *Stack) executor.Executor {
		return &LocalRunner{URL: s.URL, Python: py, Dir: filepath.Join(t.TempDir(), "nodes"), EnvDir: filepath.Join(s.Home, "envs")}
	}})
}

// The in-job side fetches a copy of the SDK into the node's temporary folder and removes it
// when it is done, so that a node that runs many jobs does not keep a copy of each.
func TestBootstrapRemovesItsSDKCopy(t *testing.T) {
	py := python3(t)
	var runner *LocalRunner
	s := newStack(t, ContractHarness{New: func(t *testing.T, s *Stack) executor.Executor {
		runner = &LocalRunner{URL: s.URL, Python: py, Dir: filepath.Join(t.TempDir(), "nodes")}
		return runner
	}})
	id := s.submit(t, map[string]string{"main.py": `
import foundations, os, tempfile
print("sdk from", os.path.dirname(os.path.dirname(foundations.__file__)), "tmp", tempfile.gettempdir(), flush=True)
`}, nil, nil)
	j := s.wait(t, id)
	require.Equal(t, atlas.StateCompleted, j.State, "reason %q; log:\n%s", j.Reason, s.log(id))
	tmp := filepath.Join(runner.Dir, id, "tmp")
	require.Regexp(t, "sdk from "+tmp+"/atlas-sdk-[^ ]+ tmp "+tmp+"\n", s.log(id), "the job imported the SDK copy")
	<-runner.Exited(id)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, left, "the in-job side removed its copy of the SDK")
}
