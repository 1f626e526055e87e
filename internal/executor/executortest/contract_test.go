package executortest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/atlasgo/atlas/internal/executor"
)

// The in-job side of remote executors delivers the contract, run as local processes that
// share nothing with the server but its API.
func TestLocalRunnerContract(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not on PATH (CI=true, so this is a failure)")
		}
		t.Skip("python3 is not on PATH")
	}
	Contract(t, ContractHarness{CachesEnvironments: true, New: func(t *testing.T, s *Stack) executor.Executor {
		return &LocalRunner{URL: s.URL, Python: py, Dir: filepath.Join(t.TempDir(), "nodes"), EnvDir: filepath.Join(s.Home, "envs")}
	}})
}
