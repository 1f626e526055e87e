package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// `foundations init my_project` creates the seed's layout; a second init of the same name
// fails and leaves the project as it was.
func TestInitCreatesTemplateProject(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	work := t.TempDir()

	res := cli(t, home, work, "init", "my_project")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "my_project")

	proj := filepath.Join(work, "my_project")
	for _, f := range []string{"README.txt", "job.config.yaml", "main.py"} {
		fi, err := os.Stat(filepath.Join(proj, f))
		require.NoError(t, err, "init should create %s", f)
		require.True(t, fi.Mode().IsRegular())
		require.NotZero(t, fi.Size(), "%s is empty", f)
	}
	fi, err := os.Stat(filepath.Join(proj, "data"))
	require.NoError(t, err, "init should create data/")
	require.True(t, fi.IsDir())

	cfg, err := os.ReadFile(filepath.Join(proj, "job.config.yaml"))
	require.NoError(t, err)
	// A commented template that lists every supported key.
	for _, key := range []string{"project_name", "log_level", "num_gpus", "ram", "params", "worker", "image",
		"entrypoint", "command", "volumes", "bind", "mode", "environment"} {
		require.Contains(t, string(cfg), key+":", "job.config.yaml template lacks %s", key)
	}
	commented := 0
	for _, l := range strings.Split(string(cfg), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			commented++
		}
	}
	require.Greater(t, commented, 10, "job.config.yaml should be a commented template:\n%s", cfg)

	mainPy, err := os.ReadFile(filepath.Join(proj, "main.py"))
	require.NoError(t, err)
	for _, call := range []string{"import foundations", "log_param", "log_metric", "save_artifact"} {
		require.Contains(t, string(mainPy), call, "the sample main.py should use %s", call)
	}

	// init of an existing directory fails and changes nothing.
	require.NoError(t, os.WriteFile(filepath.Join(proj, "main.py"), []byte("print('mine')\n"), 0o644))
	res = cli(t, home, work, "init", "my_project")
	requireOneLineError(t, res, "my_project", "already exists")
	got, err := os.ReadFile(filepath.Join(proj, "main.py"))
	require.NoError(t, err)
	require.Equal(t, "print('mine')\n", string(got), "a failed init must not overwrite the project")
}
