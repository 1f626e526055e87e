package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// buildWheel writes a minimal pure-Python wheel holding one module and returns its file name.
func buildWheel(t *testing.T, dir, name, version, module, source string) string {
	t.Helper()
	dist := strings.ReplaceAll(name, "-", "_")
	info := fmt.Sprintf("%s-%s.dist-info", dist, version)
	files := []struct{ path, content string }{
		{module + ".py", source},
		{info + "/METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: atlas-e2e\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f.path)
		require.NoError(t, err)
		_, err = w.Write([]byte(f.content))
		require.NoError(t, err)
		sum := sha256.Sum256([]byte(f.content))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.path, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.content))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", info)
	w, err := zw.Create(info + "/RECORD")
	require.NoError(t, err)
	_, err = w.Write([]byte(record.String()))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	file := fmt.Sprintf("%s-%s-py3-none-any.whl", dist, version)
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), buf.Bytes(), 0o644))
	return file
}

// requireVenv skips (or on CI fails) when python3 cannot make virtualenvs.
func requireVenv(t *testing.T) {
	t.Helper()
	requirePython(t)
	if err := exec.Command(python3, "-c", "import venv, ensurepip").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 cannot create virtualenvs (venv/ensurepip missing); requirements.txt tests need them")
		}
		t.Skip("python3 cannot create virtualenvs (venv/ensurepip missing)")
	}
}

// requirements.txt in the job folder is installed before the script runs (here a wheel shipped
// in the folder), and the second job with the same requirements reuses the environment.
func TestRequirementsInstalledAndCached(t *testing.T) {
	requireVenv(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "reqs", map[string]string{
		"main.py": "import atlas_e2e_helper, foundations\nprint(atlas_e2e_helper.greet())\nfoundations.log_metric('installed', 1)\n",
	})
	wheel := buildWheel(t, proj, "atlas-e2e-helper", "1.0", "atlas_e2e_helper",
		"def greet():\n    return 'hello from the local wheel'\n")
	writeFiles(t, proj, map[string]string{"requirements.txt": "--no-index\n./" + wheel + "\n"})

	// Without the requirements the module does not exist: the install is what makes it work.
	res := python(t, newHome(t), proj, nil, "-c", "import atlas_e2e_helper")
	require.NotEqual(t, 0, res.Code, "atlas_e2e_helper must not be importable outside the job's environment")

	first := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, first.Code, first.String())
	require.Contains(t, first.Stdout, "Installing user requirements from requirements.txt")
	require.NotContains(t, first.Stdout, "No user requirements found.")
	require.Contains(t, first.Stdout, "hello from the local wheel")
	require.Contains(t, first.Stderr, "has completed")

	second := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, second.Code, second.String())
	require.Contains(t, second.Stdout, "Using cached environment")
	require.NotContains(t, second.Stdout, "Installing user requirements")
	require.NotContains(t, second.Stdout, "Successfully installed")
	require.Contains(t, second.Stdout, "hello from the local wheel")
	require.Contains(t, second.Stderr, "has completed")
	// The log the server keeps says the same as what was streamed.
	require.Contains(t, s.logs(t, jobID(t, second.Stderr)), "Using cached environment")
	// The SDK is injected into the job's environment too.
	require.EqualValues(t, 1, s.job(t, jobID(t, second.Stderr)).Metric("installed"))
}

// A requirements.txt that cannot be installed fails the job with a clear reason, and is not
// cached: once fixed, the next job installs and runs.
func TestRequirementsInstallFailure(t *testing.T) {
	requireVenv(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "badreqs", map[string]string{
		"requirements.txt": "--no-index\n./atlas_e2e_missing-1.0-py3-none-any.whl\n",
		"main.py":          "print('must not run')\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.NotEqual(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.Contains(t, res.Stderr, "Job '"+id+"' has failed")
	require.Contains(t, res.Stderr, "requirements.txt")
	require.NotContains(t, res.Stdout, "must not run")
	require.Equal(t, "failed", s.job(t, id).State)

	buildWheel(t, proj, "atlas-e2e-missing", "1.0", "atlas_e2e_missing", "VALUE = 42\n")
	writeFiles(t, proj, map[string]string{"main.py": "import atlas_e2e_missing\nprint('value', atlas_e2e_missing.VALUE)\n"})
	res = cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "value 42")
	require.NotContains(t, res.Stdout, "Using cached environment", "a failed install is not cached")
}
