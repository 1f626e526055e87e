// The contract every executor delivers to the server, checked end to end: jobs run through a
// real server stack (store, blobs, logs, the job service, the API on loopback and the
// scheduler) with the executor under test, and the checks look only at what the server
// received: the job's state, exit code and reason, its log, its tracked values, its archive.
// Local executors (process, docker) and remote ones (Kubernetes, Slurm, whose in-job side does
// everything over the API) must give the same answers.

package executortest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/api"
	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/scheduler"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlite"
	"github.com/atlasgo/atlas/internal/unixsock"
	"github.com/atlasgo/atlas/python"
	"github.com/atlasgo/atlas/sdk"
)

// ContractHarness creates the executor the contract is checked with.
type ContractHarness struct {
	// New returns the executor for a server whose API is at s.URL.
	New func(t *testing.T, s *Stack) executor.Executor
	// Grace is the stop grace period; short, to keep the suite fast (default 2 s).
	Grace time.Duration
	// CachesEnvironments says the executor keeps requirements environments between jobs.
	CachesEnvironments bool
}

// Stack is a server, in this process, that jobs run by the executor under test report to.
type Stack struct {
	// URL is the API on loopback: how jobs reach the server.
	URL string
	// SDKDir holds the Python SDK, as the server extracts it; Home is the server's data folder.
	SDKDir, Home string
	// SocketDir holds api.sock, where the API is served too, for jobs that reach the server
	// through its unix socket (Docker containers mount its folder).
	SocketDir string

	store store.Store
	blobs blob.Store
	logs  *logs.Dir
	svc   *jobs.Service
}

// Contract runs the contract's checks.
func Contract(t *testing.T, h ContractHarness) {
	if h.Grace == 0 {
		h.Grace = 2 * time.Second
	}
	t.Run("RunsAndReports", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, h)
		id := s.submit(t, map[string]string{"main.py": `
import json, os, sys
import foundations
params = json.load(open("foundations_job_parameters.json"))
print("hello from", os.environ["FOUNDATIONS_JOB_ID"], "lr =", params["lr"], "args", sys.argv[1:], flush=True)
print("to stderr", file=sys.stderr, flush=True)
foundations.log_metric("acc", 0.75)
foundations.log_param("layers", 3)
open("out.txt", "w").write("written by the job")
os.remove("scratch.txt")
`, "scratch.txt": "deleted by the job"}, []string{"--epochs", "3", "two words"}, map[string]any{"lr": 0.5})
		j := s.wait(t, id)
		require.Equal(t, atlas.StateCompleted, j.State, "reason %q; log:\n%s", j.Reason, s.log(id))
		require.Equal(t, 0, *j.ExitCode)
		log := s.log(id)
		require.Contains(t, log, "hello from "+id+" lr = 0.5 args ['--epochs', '3', 'two words']")
		require.Contains(t, log, "to stderr")
		pts, err := s.store.MetricSeries(t.Context(), id, "acc")
		require.NoError(t, err)
		require.Len(t, pts, 1, "the job's tracked values reached the server")
		params, err := s.store.Params(t.Context(), []string{id})
		require.NoError(t, err)
		require.EqualValues(t, 3, params[id]["layers"])
		files := s.archive(t, j)
		require.Equal(t, "written by the job", files["out.txt"], "the archive holds what the job wrote")
		require.Contains(t, files, "main.py")
		require.NotContains(t, files, "scratch.txt", "a file the job deleted is not in the archive")
	})

	t.Run("FailureReason", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, h)
		id := s.submit(t, map[string]string{"main.py": `
import sys
print("epoch 1", flush=True)
print("RuntimeError: the loss diverged", file=sys.stderr, flush=True)
sys.exit(3)
`}, nil, nil)
		j := s.wait(t, id)
		require.Equal(t, atlas.StateFailed, j.State)
		require.Equal(t, 3, *j.ExitCode)
		require.Equal(t, "exited with code 3: RuntimeError: the loss diverged", j.Reason)
	})

	t.Run("StopWithGrace", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, h)
		polite := s.submit(t, map[string]string{"main.py": `
import signal, sys, time
def term(*_):
    print("got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
while True:
    time.sleep(0.05)
`}, nil, nil)
		stubborn := s.submit(t, map[string]string{"main.py": `
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.05)
`}, nil, nil)
		for _, id := range []string{polite, stubborn} {
			s.waitLog(t, id, "ready")
			_, err := s.svc.StopJob(t.Context(), &jobs.Caller{Local: true}, id)
			require.NoError(t, err)
		}
		j := s.wait(t, polite)
		require.Equal(t, atlas.StateStopped, j.State)
		require.Contains(t, j.Reason, "exited after SIGTERM")
		require.Contains(t, s.log(polite), "got SIGTERM", "SIGTERM reached the job's command")
		j = s.wait(t, stubborn)
		require.Equal(t, atlas.StateStopped, j.State)
		require.Contains(t, j.Reason, "killed after", "a job that ignores SIGTERM is killed when the grace is over")
	})

	t.Run("SystemMetrics", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, h)
		// A child process holds the memory: the job's whole process tree is measured. The job
		// ends once the server has a sample of it.
		id := s.submit(t, map[string]string{"main.py": `
import os, subprocess, sys, time, urllib.parse
from foundations._client import Client
child = subprocess.Popen([sys.executable, "-c", "import sys; hog = b'x' * (64 << 20); sys.stdin.read()"],
                         stdin=subprocess.PIPE)
client = Client(os.environ["FOUNDATIONS_SCHEDULER_URL"], os.environ["FOUNDATIONS_TOKEN"])
path = "/api/v1/jobs/{}/metrics/{}".format(os.environ["FOUNDATIONS_JOB_ID"], urllib.parse.quote("system/rss_mb", safe=""))
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        points = client.json("GET", path)["points"]
    except Exception:
        points = []
    if points and points[-1]["value"] >= 64:
        break
    time.sleep(0.1)
print("sampled:", points, flush=True)
child.stdin.close()
child.wait()
`}, nil, nil)
		j := s.wait(t, id)
		require.Equal(t, atlas.StateCompleted, j.State, "reason %q; log:\n%s", j.Reason, s.log(id))
		series := func(key string) []float64 {
			pts, err := s.store.MetricSeries(t.Context(), id, key)
			require.NoError(t, err)
			require.NotEmpty(t, pts, "%s was sampled; log:\n%s", key, s.log(id))
			var out []float64
			for _, p := range pts {
				v, ok := atlas.Number(p.Value)
				require.True(t, ok, "%s: %v is a number", key, p.Value)
				out = append(out, v)
			}
			return out
		}
		rss := series("system/rss_mb")
		require.GreaterOrEqual(t, rss[len(rss)-1], 64.0, "the child's 64 MiB count; log:\n%s", s.log(id))
		peak := series("system/peak_rss_mb")
		require.Equal(t, slices.Max(rss), peak[len(peak)-1], "the peak is the highest sample")
		for _, v := range series("system/cpu_percent") {
			require.GreaterOrEqual(t, v, 0.0)
		}
	})

	t.Run("Requirements", func(t *testing.T) {
		t.Parallel()
		s := newStack(t, h)
		name, whl := Wheel("atlas-contract-tiny", "1.0", "atlas_contract_tiny", "VALUE = 'from the wheel'\n")
		files := map[string]string{
			"main.py":          "import atlas_contract_tiny\nprint('tiny says', atlas_contract_tiny.VALUE, flush=True)\n",
			"requirements.txt": "./" + name + "\n",
			name:               string(whl),
		}
		first := s.submit(t, files, nil, nil)
		j := s.wait(t, first)
		require.Equal(t, atlas.StateCompleted, j.State, "reason %q; log:\n%s", j.Reason, s.log(first))
		require.Contains(t, s.log(first), "tiny says from the wheel")
		require.Contains(t, s.log(first), "Installing user requirements")
		second := s.submit(t, files, nil, nil)
		j = s.wait(t, second)
		require.Equal(t, atlas.StateCompleted, j.State)
		if h.CachesEnvironments {
			require.Contains(t, s.log(second), "Using cached environment for requirements.txt")
		}
	})
}

func newStack(t *testing.T, h ContractHarness) *Stack {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755)) // jobs that run as other accounts reach their files
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "atlas.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	blobs, err := local.New(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	lg, err := logs.New(filepath.Join(dir, "logs"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sdk"), 0o755))
	sdkDir, err := python.Extract(filepath.Join(dir, "sdk"))
	require.NoError(t, err)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	svc := jobs.New(jobs.Config{Store: st, Blobs: blobs, Logs: lg, Secret: secret, StopGrace: h.Grace,
		SpoolRoot: filepath.Join(dir, "spool")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sockDir := filepath.Join(dir, "sock")
	require.NoError(t, os.MkdirAll(sockDir, 0o755))
	uln, err := unixsock.Listen(filepath.Join(sockDir, "api.sock"))
	require.NoError(t, err)
	require.NoError(t, os.Chmod(filepath.Join(sockDir, "api.sock"), 0o666))
	s := &Stack{URL: "http://" + ln.Addr().String(), SDKDir: sdkDir, Home: dir, SocketDir: sockDir, store: st, blobs: blobs,
		logs: lg, svc: svc}
	e := h.New(t, s)
	sched := scheduler.New(scheduler.Config{Jobs: svc, Store: st, Blobs: blobs, Logs: lg, Executor: e, Workers: 4,
		WorkRoot: filepath.Join(dir, "work"), SDKDir: sdkDir, SchedulerURL: s.URL, Home: dir})
	require.NoError(t, sched.Start(t.Context()))
	srv := &http.Server{Handler: api.New(api.Config{Jobs: svc, Store: st, Blobs: blobs, Logs: lg, Queue: sched,
		MaxBundleBytes: 1 << 30})}
	go func() { _ = srv.Serve(ln) }()
	go func() { _ = srv.Serve(uln) }()
	t.Cleanup(func() {
		// Stop what still runs, so no job outlives the test.
		running, _ := st.JobsInState(context.Background(), atlas.StateStarting, atlas.StateRunning)
		for _, j := range running {
			_, _ = svc.StopJob(context.Background(), &jobs.Caller{Local: true}, j.ID)
		}
		for _, j := range running {
			s.waitUntil(j.ID, 2*time.Minute)
		}
		sched.Stop()
		srv.Close()
	})
	return s
}

// submit queues a job of the files, with the command `python main.py args...`.
func (s *Stack) submit(t *testing.T, files map[string]string, args []string, params map[string]any) string {
	t.Helper()
	src := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte(strings.TrimLeft(content, "\n")), 0o644))
	}
	var buf bytes.Buffer
	_, err := bundle.Create(src, &buf, bundle.Options{})
	require.NoError(t, err)
	digest, _, err := s.blobs.Put(t.Context(), &buf, "")
	require.NoError(t, err)
	res, err := s.svc.Submit(t.Context(), &jobs.Caller{Local: true},
		&sdk.JobSpec{Command: append([]string{"main.py"}, args...), Params: params, BundleDigest: digest})
	require.NoError(t, err)
	return res.Job.ID
}

// wait waits for a job to end (a bound for broken builds only, not a synchronisation device).
func (s *Stack) wait(t *testing.T, id string) *atlas.Job {
	t.Helper()
	j := s.waitUntil(id, 3*time.Minute)
	require.NotNil(t, j)
	require.True(t, j.State.Finished(), "job %s is still %s; log:\n%s", id, j.State, s.log(id))
	return j
}

func (s *Stack) waitUntil(id string, limit time.Duration) *atlas.Job {
	changes, done := s.svc.Events().Subscribe()
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	recheck := time.NewTicker(time.Second) // the events may drop changes for slow readers
	defer recheck.Stop()
	for {
		j, err := s.store.JobGet(ctx, id)
		if err != nil || j.State.Finished() {
			return j
		}
		select {
		case <-changes:
		case <-recheck.C:
		case <-ctx.Done():
			return j
		}
	}
}

// log is the job's log as the server has it.
func (s *Stack) log(id string) string {
	data, _ := os.ReadFile(s.logs.Path(id))
	return string(data)
}

// waitLog follows the job's log until it holds text.
func (s *Stack) waitLog(t *testing.T, id, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	found := &untilText{text: text, seen: make(chan struct{}), cancel: cancel}
	_ = s.logs.Stream(ctx, id, 0, true, nil, found, nil)
	select {
	case <-found.seen:
	default:
		t.Fatalf("job %s never printed %q; log:\n%s", id, text, s.log(id))
	}
}

// untilText collects output and ends the follow once text shows up.
type untilText struct {
	mu     sync.Mutex
	buf    strings.Builder
	text   string
	seen   chan struct{}
	once   sync.Once
	cancel context.CancelFunc
}

func (u *untilText) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.buf.Write(p)
	if strings.Contains(u.buf.String(), u.text) {
		u.once.Do(func() { close(u.seen); u.cancel() })
	}
	return len(p), nil
}

// archive returns the files of the job's archive, by name.
func (s *Stack) archive(t *testing.T, j *atlas.Job) map[string]string {
	t.Helper()
	require.NotEmpty(t, j.ArchiveDigest, "the job has an archive")
	f, _, err := jobs.OpenArchive(t.Context(), s.blobs, j)
	require.NoError(t, err)
	defer f.Close()
	dir := t.TempDir()
	require.NoError(t, bundle.Extract(f, dir, bundle.DefaultLimits))
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	}))
	return out
}

// Wheel returns the file name and content of a minimal pure-Python wheel holding one module:
// a requirements.txt can install it with no package index.
func Wheel(name, version, module, source string) (string, []byte) {
	dist := strings.ReplaceAll(name, "-", "_")
	info := fmt.Sprintf("%s-%s.dist-info", dist, version)
	files := []struct{ path, content string }{
		{module + ".py", source},
		{info + "/METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: atlas-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, _ := zw.Create(f.path)
		_, _ = w.Write([]byte(f.content))
		sum := sha256.Sum256([]byte(f.content))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.path, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.content))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", info)
	w, _ := zw.Create(info + "/RECORD")
	_, _ = w.Write([]byte(record.String()))
	_ = zw.Close()
	return fmt.Sprintf("%s-%s-py3-none-any.whl", dist, version), buf.Bytes()
}
