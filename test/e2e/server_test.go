package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// `atlas-server start` writes the default scheduler.config.yaml pointing at itself when there
// is none, and leaves an existing one alone.
func TestServerWritesDefaultSubmissionConfig(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	path := filepath.Join(s.Home, "config", "submission", "scheduler.config.yaml")
	data, err := os.ReadFile(path)
	require.NoError(t, err, "atlas-server start should write %s", path)
	require.Regexp(t, `(?m)^scheduler_url: `+regexp.QuoteMeta(s.URL)+`$`, string(data))

	home := newHome(t)
	custom := "# mine\nscheduler_url: http://127.0.0.1:1\n"
	writeFiles(t, home, map[string]string{"config/submission/scheduler.config.yaml": custom})
	startServer(t, home)
	data, err = os.ReadFile(filepath.Join(home, "config", "submission", "scheduler.config.yaml"))
	require.NoError(t, err)
	require.Equal(t, custom, string(data), "an existing scheduler.config.yaml is not overwritten")
}

// `atlas-server stop` stops the server started on the same FOUNDATIONS_HOME.
func TestServerStopCommand(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	res := runIn(t, s.Home, t.TempDir(), nil, serverBin(), "stop")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Atlas server stopped.")
	code, err := s.WaitExit(30 * time.Second)
	require.NoError(t, err, "the server should have exited")
	require.Equal(t, 0, code, "stderr:\n%s", s.Stderr)

	res = runIn(t, s.Home, t.TempDir(), nil, serverBin(), "stop")
	requireOneLineError(t, res, "not running")
}

// A second server on the same FOUNDATIONS_HOME refuses to start, and the first one goes on.
func TestServerStartTwiceFails(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	res := runIn(t, s.Home, t.TempDir(), nil, serverBin(), "start", "--port", "0")
	requireOneLineError(t, res, "already running", s.Home)
	require.NotContains(t, res.Stdout, "listening on")
	var health struct {
		Status string `json:"status"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/health", nil, &health))
	require.Equal(t, "ok", health.Status)
}

// restart stops a server and starts a new one on the same home and port (the submission config
// and the running jobs know the address).
func restart(t *testing.T, s *Server, args ...string) *Server {
	t.Helper()
	s.Stop()
	require.True(t, s.Exited())
	return startServer(t, s.Home, append([]string{"--port", strconv.Itoa(s.Port)}, args...)...)
}

// readFIFO opens a named pipe for reading and returns a channel that gets what was written to
// it, once its writer closes it.
func readFIFO(t *testing.T, path string) <-chan string {
	t.Helper()
	require.NoError(t, syscall.Mkfifo(path, 0o644))
	ch := make(chan string, 1)
	go func() {
		f, err := os.Open(path) // blocks until a writer opens it
		if err != nil {
			ch <- "error: " + err.Error()
			return
		}
		defer f.Close()
		data, _ := io.ReadAll(f)
		ch <- string(data)
	}()
	t.Cleanup(func() {
		// Unblock the reader if no writer ever came.
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	return ch
}

// restartMain waits at a first gate, then (while the server is down) logs a metric and tells
// the test through a named pipe, waits at a second gate, logs another metric and ends.
const restartMain = `import os, sys, time
import foundations

GATE1, FIFO, GATE2 = %q, %q, %q

def wait(gate):
    deadline = time.monotonic() + 120
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.02)

print("before the restart", flush=True)
wait(GATE1)
print("while the server is down", flush=True)
foundations.log_metric("phase", 1)
with open(FIFO, "w") as f:
    f.write("progressed\n")
wait(GATE2)
foundations.log_metric("phase", 2)
for i in range(3):
    print("after the restart", i, flush=True)
`

// A running process job keeps running while the server is down; the restarted server
// re-attaches to it, and it ends completed with all its output and metrics.
func TestServerRestartReattachesRunningJob(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	tmp := t.TempDir()
	gate1, fifo, gate2 := filepath.Join(tmp, "gate1"), filepath.Join(tmp, "progress"), filepath.Join(tmp, "gate2")
	proj := newProject(t, "restart", map[string]string{"main.py": fmt.Sprintf(restartMain, gate1, fifo, gate2)})
	id := s.submitNoStream(t, proj, "main.py")
	s.waitLog(t, id, "before the restart")

	s.Stop()
	// The job goes on without a server.
	progressed := readFIFO(t, fifo)
	openGate(t, gate1)
	select {
	case got := <-progressed:
		require.Equal(t, "progressed\n", got)
	case <-time.After(2 * time.Minute):
		t.Fatal("the job did not go on while the server was down")
	}

	s = restart(t, s)
	require.Equal(t, "running", s.job(t, id).State, "the restarted server still knows the job runs")
	openGate(t, gate2)
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State, "reason: %s\nlogs:\n%s", j.Reason, s.logs(t, id))
	requireInOrder(t, s.logs(t, id), "No user requirements found.", "before the restart", "while the server is down",
		"after the restart 0", "after the restart 1", "after the restart 2")
	require.NotEmpty(t, j.ArchiveDigest, "the re-attached job is archived when it ends")
	var phase struct {
		Points []struct {
			Value float64 `json:"value"`
		} `json:"points"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+id+"/metrics/phase", nil, &phase))
	require.Len(t, phase.Points, 2, "the metric logged while the server was down is kept, once")
	require.Equal(t, 1.0, phase.Points[0].Value)
	require.Equal(t, 2.0, phase.Points[1].Value)
}

// A queued job stays queued across a restart, then runs.
func TestServerRestartKeepsQueuedJob(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	held := s.submitNoStream(t, newProject(t, "held", map[string]string{"main.py": gateScript}), "main.py", gate)
	s.waitRunning(t, held)
	waiting := s.submitNoStream(t, newProject(t, "waiting", map[string]string{"main.py": "print('the queued job ran')\n"}), "main.py")
	require.Equal(t, "queued", s.job(t, waiting).State)

	// Stopped with `atlas-server stop` this time.
	res := runIn(t, s.Home, t.TempDir(), nil, serverBin(), "stop")
	require.Equal(t, 0, res.Code, res.String())
	_, err := s.WaitExit(30 * time.Second)
	require.NoError(t, err)
	s = restart(t, s)
	require.Equal(t, "queued", s.job(t, waiting).State, "a queued job stays queued across a restart")
	queued, running := s.queue(t)
	require.Equal(t, []string{waiting}, queued)
	require.Equal(t, []string{held}, running)

	openGate(t, gate)
	require.Equal(t, "completed", s.waitDone(t, held).State)
	require.Equal(t, "completed", s.waitDone(t, waiting).State)
	require.Contains(t, s.logs(t, waiting), "the queued job ran")
}

// --workers 2 runs two jobs at the same time.
func TestServerTwoWorkers(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t), "--workers", "2")
	gate := gatePath(t)
	proj := newProject(t, "parallel", map[string]string{"main.py": gateScript})
	a := s.submitNoStream(t, proj, "main.py", gate)
	b := s.submitNoStream(t, proj, "main.py", gate)
	c := s.submitNoStream(t, proj, "main.py", gate)
	// Both jobs wait at the same gate, so both run at once.
	s.waitLog(t, a, "job is waiting for its gate")
	s.waitLog(t, b, "job is waiting for its gate")
	queued, running := s.queue(t)
	require.ElementsMatch(t, []string{a, b}, running)
	require.Equal(t, []string{c}, queued, "a third job waits for a free worker")
	openGate(t, gate)
	for _, id := range []string{a, b, c} {
		require.Equal(t, "completed", s.waitDone(t, id).State)
	}
}

// --gpus 0,1 hands GPU ids from the pool to jobs that ask for them, through
// CUDA_VISIBLE_DEVICES; a job waiting for a GPU does not hold up jobs that need none; a job
// asking for more than the pool holds is refused at submit.
func TestServerGPUPool(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t), "--gpus", "0,1", "--workers", "4")
	var health struct {
		GPUs    int `json:"gpus"`
		Workers int `json:"workers"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/health", nil, &health))
	require.Equal(t, 2, health.GPUs)
	require.Equal(t, 4, health.Workers)

	gate := gatePath(t)
	proj := newProject(t, "gpus", map[string]string{
		"job.config.yaml": "num_gpus: 1\n",
		"main.py":         "import os\nprint('CUDA=[' + os.environ.get('CUDA_VISIBLE_DEVICES', 'unset') + ']', flush=True)\n" + gateScript,
	})
	cudaRE := regexp.MustCompile(`CUDA=\[([^\]]*)\]`)
	cuda := func(id string) string {
		out := s.waitLog(t, id, "job is waiting for its gate")
		m := cudaRE.FindStringSubmatch(out)
		require.NotNil(t, m, out)
		return m[1]
	}
	a := s.submitNoStream(t, proj, "main.py", gate)
	b := s.submitNoStream(t, proj, "main.py", gate)
	seen := map[string]string{}
	for _, id := range []string{a, b} {
		seen[id] = cuda(id)
		require.Contains(t, []string{"0", "1"}, seen[id], "a 1-GPU job sees one id from the pool")
		require.Equal(t, []string{seen[id]}, s.job(t, id).GPUIDs)
	}
	require.NotEqual(t, seen[a], seen[b], "two jobs running at once get different GPUs")

	// Both GPUs are taken: a third 1-GPU job waits, and a job that needs none runs past it.
	c := s.submitNoStream(t, proj, "main.py", gate)
	res := cli(t, s.Home, proj, "submit", "--stream-job-logs", "False", "--num-gpus", "0", "scheduler", ".", "main.py", gate)
	require.Equal(t, 0, res.Code, res.String())
	d := jobID(t, res.Stderr)
	require.Equal(t, "", cuda(d), "a job that asks for no GPU sees none")
	j := s.job(t, c)
	require.Equal(t, "queued", j.State)
	require.Contains(t, j.WaitingReason, "GPU")

	res = cli(t, s.Home, proj, "submit", "--num-gpus", "3", "scheduler", ".", "main.py", gate)
	requireOneLineError(t, res, "3 GPUs", "has 2")
	require.Len(t, s.jobs(t, ""), 4, "the refused job is not created")

	openGate(t, gate)
	for _, id := range []string{a, b, c, d} {
		require.Equal(t, "completed", s.waitDone(t, id).State)
	}
	require.Len(t, s.job(t, c).GPUIDs, 1, "the waiting job got a GPU once one was free")
}

// Execution mode: `python main.py` in a project folder, with a server running, records a job
// with what the script tracked and the archive of the folder; a failing script records a
// failed job; with no server the script still runs and warns once.
func TestExecutionMode(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	work := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, work, "init", "my_project").Code)
	proj := filepath.Join(work, "my_project")

	res := python(t, s.Home, proj, nil, "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "epoch 5/5: loss 0.1681")
	m := regexp.MustCompile(`Tracking this run as job '([^']+)'`).FindStringSubmatch(res.Stderr)
	require.NotNil(t, m, res.String())
	id := m[1]

	jobs := s.jobs(t, "my_project")
	require.Len(t, jobs, 1)
	j := s.job(t, id)
	require.Equal(t, "execution", j.Mode)
	require.Equal(t, "completed", j.State)
	require.Equal(t, "my_project", j.Project)
	require.EqualValues(t, 3, j.Params["depth"])
	require.EqualValues(t, 0.9, j.Metric("accuracy"))
	require.Len(t, j.Artifacts, 1)
	require.Equal(t, "Project_README", j.Artifacts[0].Key)
	require.NotEmpty(t, j.ArchiveDigest, "the folder is archived at exit")
	dest := t.TempDir()
	got := cli(t, s.Home, dest, "get", "job", "scheduler", id)
	require.Equal(t, 0, got.Code, got.String())
	require.FileExists(t, filepath.Join(dest, id, "main.py"))

	// A script that fails records a failed job.
	writeFiles(t, proj, map[string]string{"broken.py": "import foundations\nfoundations.log_metric('x', 1)\nraise RuntimeError('boom')\n"})
	res = python(t, s.Home, proj, nil, "broken.py")
	require.NotEqual(t, 0, res.Code)
	m = regexp.MustCompile(`Tracking this run as job '([^']+)'`).FindStringSubmatch(res.Stderr)
	require.NotNil(t, m, res.String())
	failed := s.job(t, m[1])
	require.Equal(t, "failed", failed.State)
	require.Contains(t, failed.Reason, "boom")

	// Importing foundations makes the script a job from the start, with its output as its log,
	// whether or not it tracks anything; with FOUNDATIONS_COMMAND_LINE set it records none.
	writeFiles(t, proj, map[string]string{"quiet.py": "import foundations\nprint('quiet')\n"})
	res = python(t, s.Home, proj, nil, "quiet.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, "quiet\n", res.Stdout)
	m = regexp.MustCompile(`Tracking this run as job '([^']+)'`).FindStringSubmatch(res.Stderr)
	require.NotNil(t, m, res.String())
	require.Equal(t, "completed", s.job(t, m[1]).State)
	require.Equal(t, "quiet\n", s.logs(t, m[1]))
	for _, v := range []string{"True", "true", "1"} {
		res = python(t, s.Home, proj, []string{"FOUNDATIONS_COMMAND_LINE=" + v}, "main.py")
		require.Equal(t, 0, res.Code, res.String())
		require.Contains(t, res.Stdout, "epoch 5/5: loss 0.1681")
	}
	require.Len(t, s.jobs(t, ""), 3, "the three runs without FOUNDATIONS_COMMAND_LINE are jobs")

	// No server reachable: the script runs all the same, with one warning.
	down := newHome(t)
	writeFiles(t, down, map[string]string{"config/submission/scheduler.config.yaml": fmt.Sprintf("scheduler_url: http://127.0.0.1:%d\n", freePort(t))})
	res = python(t, down, proj, nil, "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "epoch 5/5: loss 0.1681")
	require.Equal(t, 1, strings.Count(res.Stderr, "WARNING"), "warn once:\n%s", res)
}

// The server's stdout line documents where it listens, and it serves the API there.
func TestServerListeningLine(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/health", nil)
	require.NoError(t, err)
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotZero(t, s.Port, "--port 0 picks a free port and prints it")
}

// A server that was killed (no clean shutdown) starts again on the same home, and re-attaches
// to the job that kept running.
func TestServerRestartAfterCrash(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	proj := newProject(t, "crash", map[string]string{"main.py": gateScript})
	id := s.submitNoStream(t, proj, "main.py", gate)
	s.waitLog(t, id, "job is waiting for its gate")
	s.Kill(t)

	s = startServer(t, s.Home, "--port", strconv.Itoa(s.Port))
	require.Equal(t, "running", s.job(t, id).State)
	openGate(t, gate)
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State, "reason: %s", j.Reason)
	require.Contains(t, s.logs(t, id), "job passed its gate")
}

// The scheduler config the server wrote for itself follows it when it restarts on another
// port; otherwise every command talks to the old address.
func TestServerRestartOnOtherPortUpdatesItsConfig(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	s.Stop()
	s = startServer(t, s.Home, "--port", strconv.Itoa(freePort(t)))
	res := cli(t, s.Home, t.TempDir(), "clear-queue", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	res = cli(t, s.Home, t.TempDir(), "info", "--env")
	require.Contains(t, res.Stdout, s.URL)
}

// A bad setting is refused in one line that names where it came from: the config file and its
// line, the environment variable, or the flag; the last one given wins, as it is the one used.
func TestServerSettingsNameTheirSource(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	writeFiles(t, home, map[string]string{"config/server.config.yaml": "host: 127.0.0.1\nworkers: 0\n"})
	res := runIn(t, home, t.TempDir(), nil, serverBin(), "start", "--port", "0")
	requireOneLineError(t, res, "server.config.yaml:2: workers: want 1 or more, got 0")
	res = runIn(t, home, t.TempDir(), []string{"NUM_WORKERS=2"}, serverBin(), "start", "--port", "0", "--workers", "0")
	requireOneLineError(t, res, "--workers: want 1 or more, got 0")
	res = runIn(t, home, t.TempDir(), []string{"NUM_WORKERS=two"}, serverBin(), "start", "--port", "0")
	requireOneLineError(t, res, `NUM_WORKERS: want a number of workers, got "two"`)
	res = runIn(t, home, t.TempDir(), []string{"ATLAS_EXECUTOR=kubernetez"}, serverBin(), "start", "--port", "0", "--workers", "1")
	requireOneLineError(t, res, `ATLAS_EXECUTOR: want one of auto, process, docker, kubernetes, slurm, got "kubernetez"`)
	res = runIn(t, home, t.TempDir(), nil, serverBin(), "start", "--port", "0", "--workers", "1", "--tls-cert", "c.pem")
	requireOneLineError(t, res, "--tls-cert: want tls_cert and tls_key together")
}
