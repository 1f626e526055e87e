package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

const crashMain = `
import os, sys, time, foundations
gate = sys.argv[1]
for i in range(200):
    foundations.log_metric("m", i)
foundations.flush()
print("first half delivered", flush=True)
while not os.path.exists(gate):
    time.sleep(0.01)
# The server was killed: these are delivered when it is back, once.
for i in range(200, 400):
    foundations.log_metric("m", i)
print("second half logged", flush=True)
`

// kill -9 the server while 2 jobs run and 20 wait: after the restart no queued job is lost,
// every metric point is stored exactly once, and every job ends completed.
func TestCrashKill9WithRunningAndQueuedJobs(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t), "--workers", "2")
	gate := gatePath(t)
	proj := newProject(t, "crash", map[string]string{"main.py": crashMain, "quick.py": "print('queued job ran')\n"})
	running := []string{s.submitNoStream(t, proj, "main.py", gate), s.submitNoStream(t, proj, "main.py", gate)}
	for _, id := range running {
		s.waitLog(t, id, "first half delivered")
	}
	var queued []string
	for i := 0; i < 20; i++ {
		queued = append(queued, s.submitNoStream(t, proj, "quick.py"))
	}
	q, r := s.queue(t)
	require.Len(t, q, 20)
	require.ElementsMatch(t, running, r)

	s.Kill(t)
	openGate(t, gate)
	s = startServer(t, s.Home, "--port", fmt.Sprint(s.Port), "--workers", "2")

	for _, id := range append(running, queued...) {
		j := s.waitDone(t, id)
		require.Equal(t, "completed", j.State, "job %s: %s", id, j.Reason)
	}
	for _, id := range running {
		var m struct {
			Total  int `json:"total"`
			Points []struct {
				Step  int     `json:"step"`
				Value float64 `json:"value"`
			} `json:"points"`
		}
		require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+id+"/metrics/m?max_points=1000", nil, &m))
		require.Equal(t, 400, m.Total, "every point exactly once")
		for i, p := range m.Points {
			require.Equal(t, float64(i), p.Value, "in order")
		}
		require.Contains(t, s.logs(t, id), "second half logged")
	}
	for _, id := range queued {
		require.Contains(t, s.logs(t, id), "queued job ran")
	}
}

// A full disk fails submissions with one line, corrupts nothing, and reads keep working.
func TestDiskFull(t *testing.T) {
	requirePython(t)
	t.Parallel()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("mounting a small file system needs root (CI=true)")
		}
		t.Skip("mounting a small file system needs root")
	}
	home := filepath.Join(t.TempDir(), "small-home")
	require.NoError(t, os.MkdirAll(home, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", home).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount tmpfs here: %v: %s", err, out)
	}
	s := startServer(t, home)
	t.Cleanup(func() {
		s.Stop()
		killJobProcesses(home)
		exec.Command("umount", "-l", home).Run()
	})
	proj := newProject(t, "disk", map[string]string{"main.py": "import foundations\nfoundations.log_metric('x', 1)\nprint('job ran')\n"})
	first := s.submitNoStream(t, proj, "main.py")
	require.Equal(t, "completed", s.waitDone(t, first).State)

	// Fill the disk.
	filler := filepath.Join(home, "filler")
	f, err := os.Create(filler)
	require.NoError(t, err)
	block := make([]byte, 1<<20)
	for {
		if _, err := f.Write(block); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "filling the disk: %v", err)
			break
		}
	}
	f.Close()

	other := newProject(t, "disk2", map[string]string{"main.py": "print('never')\n", "data.bin": strings.Repeat("z", 200000)})
	res := cli(t, s.Home, other, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 1, res.Code, res.String())
	requireOneLineError(t, res, "disk is full")
	res = cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 1, res.Code, res.String())
	requireOneLineError(t, res, "disk is full")

	// Reads keep working and what was stored is intact.
	j := s.job(t, first)
	require.Equal(t, "completed", j.State)
	require.Equal(t, 1.0, j.Metric("x"))
	require.Contains(t, s.logs(t, first), "job ran")
	require.Len(t, s.jobs(t, "disk"), 1)

	// With space again, the server takes submissions as before.
	require.NoError(t, os.Remove(filler))
	again := s.submitNoStream(t, proj, "main.py")
	require.Equal(t, "completed", s.waitDone(t, again).State)
}

// A process executor's shim runs job after job. kill -9 the server while a job runs in a shim
// that ran one before: the shim records that job's end, and the restarted server finds it.
func TestCrashKill9InAShimThatRanAJobBefore(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t), "--workers", "1", "--executor", "process")
	gate := gatePath(t)
	proj := newProject(t, "reuse", map[string]string{
		"first.py": "import os\nprint('shim', os.getppid())\n",
		"main.py": `import os, sys, time
print("shim", os.getppid(), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
print("after the crash", flush=True)
raise SystemExit(3)
`})
	first := s.submitNoStream(t, proj, "first.py")
	require.Equal(t, "completed", s.waitDone(t, first).State)
	second := s.submitNoStream(t, proj, "main.py", gate)
	shimLine := func(log string) string {
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "shim ") {
				return l
			}
		}
		return ""
	}
	line := shimLine(s.waitLog(t, second, "shim "))
	require.Equal(t, shimLine(s.logs(t, first)), line, "the second job ran in the first one's shim")

	s.Kill(t)
	openGate(t, gate)
	s = startServer(t, s.Home, "--port", fmt.Sprint(s.Port), "--workers", "1", "--executor", "process")
	j := s.waitDone(t, second)
	require.Equal(t, "failed", j.State, j.Reason)
	require.NotNil(t, j.ExitCode)
	require.Equal(t, 3, *j.ExitCode, "the exit status its shim recorded")
	require.Contains(t, s.logs(t, second), "after the crash")
}
