package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newLongHome is newHome in a folder so deep that the server's socket, run/sock/api.sock in it,
// has a longer path than a unix socket's address holds (107 bytes): a data folder on a network
// share, in a project or in a CI workspace.
func newLongHome(t *testing.T) string {
	t.Helper()
	base := filepath.Dir(newHome(t))
	dir := base
	for len(dir) < 220 {
		dir = filepath.Join(dir, "a-data-folder-deeper-than-a-unix-socket-address-holds")
	}
	home := filepath.Join(dir, "foundations-home")
	require.NoError(t, os.MkdirAll(home, 0o755))
	return home
}

// A FOUNDATIONS_HOME of 200+ characters, with each executor that runs jobs on this machine:
// the server starts with its socket in run/sock; a job's output streams and its tracking
// arrives; logs are fetched; a running job reports through the socket, is re-attached after a
// restart and reports through the new server's socket; stopping removes the socket.
func TestLongHome(t *testing.T) {
	requirePython(t)
	t.Parallel()
	for _, executor := range []string{"process", "docker"} {
		t.Run(executor, func(t *testing.T) {
			if executor == "docker" {
				needDocker(t)
			}
			t.Parallel()
			longHomeWalkthrough(t, executor)
		})
	}
}

func longHomeWalkthrough(t *testing.T, executor string) {
	home := newLongHome(t)
	sock := filepath.Join(home, "run", "sock", "api.sock")
	require.Greater(t, len(home), 200)
	require.Greater(t, len(sock), 107, "the socket's path is longer than a socket address holds")
	start := func(args ...string) *Server {
		if executor == "docker" {
			return startDockerServer(t, home, args...)
		}
		return startServer(t, home, append([]string{"--executor", "process"}, args...)...)
	}
	s := start()
	require.Contains(t, s.Stdout.String(), "executor: "+executor+" (")
	fi, err := os.Stat(sock)
	require.NoError(t, err, "the socket is in the data folder")
	require.Equal(t, os.ModeSocket, fi.Mode().Type())

	// Submit: the output streams, and the job's tracking reaches the server through the socket.
	work := t.TempDir()
	require.Equal(t, 0, cli(t, home, work, "init", "my_project").Code)
	proj := filepath.Join(work, "my_project")
	out, code := cliCombined(t, home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, code, out)
	id := jobID(t, out)
	requireInOrder(t, out, "Foundations INFO: Job running, streaming logs.", "epoch 1/5: loss 0.7000",
		"epoch 5/5: loss 0.1681", "Foundations INFO: Job '"+id+"' has completed.")
	j := s.job(t, id)
	require.Equal(t, "completed", j.State)
	require.EqualValues(t, 5, j.Params["epochs"])
	require.EqualValues(t, 0.9, j.Metric("accuracy"))
	require.Len(t, j.Artifacts, 1)

	res := cli(t, home, proj, "get", "logs", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "epoch 5/5: loss 0.1681")

	// Restart with a job running: the new server re-attaches to it, and what the job reports
	// after the restart arrives through the new socket.
	// foundations.flush says whether the server acknowledged (values it could not deliver would
	// still reach the server from the job's spool when it ends).
	reattach := newProject(t, "reattach", map[string]string{"main.py": "import foundations\n" +
		"foundations.log_metric('before_restart', 1.0)\n" +
		"print('delivered before the restart:', foundations.flush(60), flush=True)\n" + gateScript +
		"foundations.log_metric('after_restart', 2.0)\n" +
		"print('delivered after the restart:', foundations.flush(60), flush=True)\n"})
	id2 := s.submitNoStream(t, reattach, "main.py", "gate")
	requireInOrder(t, s.waitLog(t, id2, "job is waiting for its gate"), "delivered before the restart: True")
	s.Stop()
	require.NoFileExists(t, sock, "a stopped server's socket is gone")
	s = start("--port", strconv.Itoa(s.Port))
	require.NoError(t, s.Stderr.WaitFor("re-attached to running job", time.Minute))
	require.Equal(t, "running", s.job(t, id2).State)
	s.openWorkGate(t, id2, "gate")
	j2 := s.waitDone(t, id2)
	logs := s.logs(t, id2)
	require.Equal(t, "completed", j2.State, "reason: %s\nlogs:\n%s", j2.Reason, logs)
	requireInOrder(t, logs, "delivered before the restart: True", "job is waiting for its gate", "job passed its gate",
		"delivered after the restart: True")
	require.EqualValues(t, 1.0, j2.Metric("before_restart"))
	require.EqualValues(t, 2.0, j2.Metric("after_restart"))
}
