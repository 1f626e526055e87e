package scheduler

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/executor/fake"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlite"
	"github.com/atlasgo/atlas/sdk"
)

// harness is a scheduler over a real SQLite store, blob store and job service, with the fake
// executor: each job's command says how it behaves.
type harness struct {
	t     *testing.T
	svc   *jobs.Service
	store store.Store
	blobs *local.Store
	logs  *logs.Dir
	exec  *fake.Executor
	cfg   Config
	sched *Scheduler
}

func newHarness(t *testing.T, workers int, gpus ...string) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "atlas.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	blobs, err := local.New(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	lg, err := logs.New(filepath.Join(dir, "logs"))
	require.NoError(t, err)
	svc := jobs.New(jobs.Config{Store: st, Blobs: blobs, Logs: lg, Secret: []byte("secret-secret-secret-secret-1234"),
		SpoolRoot: filepath.Join(dir, "spool"), Capacity: jobs.Capacity{GPUs: len(gpus)}, StopGrace: 20 * time.Millisecond})
	h := &harness{t: t, svc: svc, store: st, blobs: blobs, logs: lg, exec: fake.New()}
	h.cfg = Config{Jobs: svc, Store: st, Blobs: blobs, Logs: lg, Executor: h.exec, Workers: workers, GPUs: gpus,
		WorkRoot: filepath.Join(dir, "work"), SchedulerURL: "http+unix://sock", Home: dir}
	h.start()
	return h
}

// start starts a scheduler, as a server start does.
func (h *harness) start() {
	h.t.Helper()
	h.sched = New(h.cfg)
	require.NoError(h.t, h.sched.Start(h.t.Context()))
	h.t.Cleanup(h.sched.Stop)
}

// bundle stores the bundle of a folder whose main.py is script, and returns its digest and
// bytes.
func (h *harness) bundle(script string) (string, []byte) {
	h.t.Helper()
	src := h.t.TempDir()
	require.NoError(h.t, os.WriteFile(filepath.Join(src, "main.py"), []byte(script), 0o644))
	var buf bytes.Buffer
	_, err := bundle.Create(src, &buf, bundle.Options{})
	require.NoError(h.t, err)
	data := bytes.Clone(buf.Bytes())
	digest, _, err := h.blobs.Put(h.t.Context(), &buf, "")
	require.NoError(h.t, err)
	return digest, data
}

func (h *harness) submit(spec *sdk.JobSpec) *atlas.Job {
	h.t.Helper()
	res, err := h.svc.Submit(h.t.Context(), &jobs.Caller{Local: true, User: "alice"}, spec)
	require.NoError(h.t, err)
	return res.Job
}

// until waits for a job to reach a state, following the service's events.
func (h *harness) until(id string, want atlas.State) *atlas.Job {
	h.t.Helper()
	changes, done := h.svc.Events().Subscribe()
	defer done()
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	defer cancel()
	for {
		j, err := h.store.JobGet(ctx, id)
		require.NoError(h.t, err)
		if j.State == want {
			return j
		}
		select {
		case <-changes:
		case <-time.After(100 * time.Millisecond): // the events may drop changes for slow readers
		case <-ctx.Done():
			h.t.Fatalf("job %s is %s, never %s (reason %q)", id, j.State, want, j.Reason)
		}
	}
}

// why says why a job waits, as the queue's page asks (Waiting, over the head of the queue)
// and as the job's page asks (WaitingFor, the job alone): both are returned, to be compared.
func (h *harness) why(id string) (queuePage, jobPage string) {
	h.t.Helper()
	ctx := h.t.Context()
	head, err := h.store.JobQueueHead(ctx, 500)
	require.NoError(h.t, err)
	queuePage = h.sched.Waiting(head)[id]
	j, err := h.store.JobGet(ctx, id)
	require.NoError(h.t, err)
	jobPage, err = h.sched.WaitingFor(ctx, j)
	require.NoError(h.t, err)
	return queuePage, jobPage
}

// waits says whether both ways of asking say that a job waits for reason (a substring).
func (h *harness) waits(id, reason string) bool {
	q, j := h.why(id)
	return q != "" && j != "" && strings.Contains(q, reason) && strings.Contains(j, reason)
}

func (h *harness) started() string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 20*time.Second)
	defer cancel()
	id := h.exec.Started(ctx)
	require.NotEmpty(h.t, id, "no job started")
	return id
}

func TestRunsAJobToItsEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	digest, _ := h.bundle("print('hi')")
	j := h.submit(&sdk.JobSpec{Command: []string{"output=epoch 1", "block"}, BundleDigest: digest, Params: map[string]any{"lr": 0.1}})
	require.Equal(t, j.ID, h.started())
	spec := h.exec.Spec(j.ID)
	require.FileExists(t, filepath.Join(spec.WorkDir, "main.py"), "the bundle is unpacked into the working directory")
	params, err := os.ReadFile(filepath.Join(spec.WorkDir, ParamsFile))
	require.NoError(t, err)
	require.Contains(t, string(params), `"lr": 0.1`)
	env := strings.Join(spec.Env, "\n")
	require.Contains(t, env, "FOUNDATIONS_JOB_ID="+j.ID)
	require.Contains(t, env, "FOUNDATIONS_TOKEN="+h.svc.JobToken(j.ID))
	require.Contains(t, env, "FOUNDATIONS_SCHEDULER_URL=http+unix://sock")

	h.exec.Exit(j.ID, 0)
	done := h.until(j.ID, atlas.StateCompleted)
	require.Equal(t, 0, *done.ExitCode)
	require.NotEmpty(t, done.ArchiveDigest, "the working directory is archived")
	require.Equal(t, "fake", done.Executor)
	h.sched.Stop() // waits for the watcher to finish its work
	require.NoDirExists(t, spec.WorkDir, "and removed")
	require.True(t, h.exec.Released(j.ID), "the executor's leftovers are released once the end is recorded")
	require.Contains(t, h.logs.Tail(j.ID, 100), "epoch 1")
}

func TestFailuresCarryTheirReason(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2)
	exits := h.submit(&sdk.JobSpec{Command: []string{"output=RuntimeError: the loss diverged", "exit_code=3"}})
	cannot := h.submit(&sdk.JobSpec{Command: []string{"start_error=image atlas/none not found"}})
	j := h.until(exits.ID, atlas.StateFailed)
	require.Equal(t, "exited with code 3: RuntimeError: the loss diverged", j.Reason)
	j = h.until(cannot.ID, atlas.StateFailed)
	require.Equal(t, "image atlas/none not found", j.Reason)
	require.Contains(t, h.logs.Tail(cannot.ID, 1000), "Foundations ERROR: image atlas/none not found")
}

func TestStopSignalsTheJobAndKillsAfterTheGracePeriod(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2)
	polite := h.submit(&sdk.JobSpec{Command: []string{"block"}})
	stubborn := h.submit(&sdk.JobSpec{Command: []string{"block", "ignore_sigterm"}})
	h.until(polite.ID, atlas.StateRunning)
	h.until(stubborn.ID, atlas.StateRunning)
	for _, id := range []string{polite.ID, stubborn.ID} {
		_, err := h.svc.StopJob(t.Context(), &jobs.Caller{Local: true}, id)
		require.NoError(t, err)
	}
	j := h.until(polite.ID, atlas.StateStopped)
	require.Equal(t, 143, *j.ExitCode)
	require.Contains(t, j.Reason, "exited after SIGTERM in")
	j = h.until(stubborn.ID, atlas.StateStopped)
	require.Equal(t, 137, *j.ExitCode, "killed once the grace period was over")
	require.Equal(t, "killed after 0 s grace (it did not exit on SIGTERM)", j.Reason)
	require.GreaterOrEqual(t, h.exec.Stops(stubborn.ID), 1)
}

// Jobs of one bundle that leave their folder as they found it leave the same archive: stored
// once, and marked as used again by the second, so that collection of unused blobs spares it.
func TestJobsThatChangeNothingShareTheirArchive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	digest, want := h.bundle("pass")
	run := func() *atlas.Job {
		j := h.submit(&sdk.JobSpec{Command: []string{"run_for=0s"}, BundleDigest: digest})
		return h.until(j.ID, atlas.StateCompleted)
	}
	first := run()
	require.NotEmpty(t, first.ArchiveDigest)
	p, err := h.blobs.Path(first.ArchiveDigest)
	require.NoError(t, err)
	long := time.Now().Add(-48 * time.Hour)
	require.NoError(t, os.Chtimes(p, long, long))
	stored, err := os.Stat(p)
	require.NoError(t, err)
	second := run()
	require.Equal(t, first.ArchiveDigest, second.ArchiveDigest)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.True(t, os.SameFile(stored, fi), "the first job's archive was not stored again")
	require.WithinDuration(t, time.Now(), fi.ModTime(), time.Hour, "marked as used when the second job ended")
	rc, rebuilt, err := jobs.OpenArchive(t.Context(), h.blobs, second)
	require.NoError(t, err)
	defer rc.Close()
	require.True(t, rebuilt)
	whole, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Equal(t, want, whole, "the archive is the bundle: nothing changed")
}

func TestAStopWhileQueuedNeverStartsTheJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	first := h.submit(&sdk.JobSpec{Command: []string{"block"}})
	second := h.submit(&sdk.JobSpec{Command: []string{"block"}})
	require.Equal(t, first.ID, h.started())
	require.Eventually(t, func() bool { return h.waits(second.ID, "waiting for a free worker (1 of 1 busy)") }, 20*time.Second, 10*time.Millisecond,
		"the second job waits for the one slot, with a reason")
	_, err := h.svc.StopJob(t.Context(), &jobs.Caller{Local: true}, second.ID)
	require.NoError(t, err)
	h.exec.Exit(first.ID, 0)
	h.until(first.ID, atlas.StateCompleted)
	third := h.submit(&sdk.JobSpec{Command: []string{}, Entrypoint: []string{"run_for=0s"}})
	h.until(third.ID, atlas.StateCompleted)
	require.Nil(t, h.exec.Spec(second.ID), "a job stopped while queued never starts")
}

func TestGPUsAreHandedOutOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3, "0", "1")
	two := 2
	a := h.submit(&sdk.JobSpec{Command: []string{"block"}, NumGPUs: &two})
	b := h.submit(&sdk.JobSpec{Command: []string{"block"}, NumGPUs: &two})
	h.until(a.ID, atlas.StateRunning)
	require.Eventually(t, func() bool { return h.waits(b.ID, "waiting for 2 GPUs (0 of 2 free)") }, 20*time.Second, 10*time.Millisecond)
	j, err := h.store.JobGet(t.Context(), a.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"0", "1"}, j.GPUIDs)
	require.Contains(t, strings.Join(h.exec.Spec(a.ID).Env, "\n"), "CUDA_VISIBLE_DEVICES=0,1")
	h.exec.Exit(a.ID, 0)
	j = h.until(b.ID, atlas.StateRunning)
	require.Equal(t, []string{"0", "1"}, j.GPUIDs, "the GPUs are free again once the first job ended")
}

func TestRestartReattachesAndRequeues(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2)
	running := h.submit(&sdk.JobSpec{Command: []string{"block"}})
	stopping := h.submit(&sdk.JobSpec{Command: []string{"block"}})
	h.until(running.ID, atlas.StateRunning)
	h.until(stopping.ID, atlas.StateRunning)
	h.sched.Stop() // the server stops; the jobs keep running
	// A stop asked for while the server was down reaches the job once it is back.
	_, err := h.svc.StopJob(t.Context(), &jobs.Caller{Local: true}, stopping.ID)
	require.NoError(t, err)
	require.Zero(t, h.exec.Stops(stopping.ID))

	// A job claimed but never started, and one run by an executor this server does not use.
	claimed := h.submit(&sdk.JobSpec{Command: []string{"block"}})
	_, err = h.svc.Claim(t.Context(), claimed.ID, "fake", nil)
	require.NoError(t, err)
	foreign := h.submit(&sdk.JobSpec{Command: []string{"block"}})
	_, err = h.svc.Claim(t.Context(), foreign.ID, "docker", nil)
	require.NoError(t, err)
	_, err = h.svc.Started(t.Context(), foreign.ID, `{"container_id":"x"}`)
	require.NoError(t, err)

	h.start()
	j := h.until(stopping.ID, atlas.StateStopped)
	require.Contains(t, j.Reason, "exited after SIGTERM", "signalled by the restarted server, not lost")
	j = h.until(foreign.ID, atlas.StateFailed)
	require.Contains(t, j.Reason, "the docker executor, which this server does not use")
	h.until(claimed.ID, atlas.StateRunning) // queued again, then started
	h.exec.Exit(running.ID, 0)
	j = h.until(running.ID, atlas.StateCompleted)
	require.Equal(t, 0, *j.ExitCode, "the re-attached job's end is recorded")
}

func TestAJobItsEngineHasNotPlacedStaysStartingWithTheEnginesReason(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 3)
	const why = "Kubernetes: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
	waitsForNode := func() *atlas.Job {
		j := h.submit(&sdk.JobSpec{Command: []string{"pending=" + why, "block"}})
		require.Equal(t, j.ID, h.started())
		require.Eventually(t, func() bool { q, p := h.why(j.ID); return q == why && p == why }, 20*time.Second, 10*time.Millisecond,
			"the engine's reason is the job's why-pending")
		j, err := h.store.JobGet(t.Context(), j.ID)
		require.NoError(t, err)
		require.Equal(t, atlas.StateStarting, j.State, "handed over, but not running")
		require.NotEmpty(t, j.RunInfo, "recorded, so that a restarted server finds it again")
		return j
	}
	placed, restarted, cleared := waitsForNode(), waitsForNode(), waitsForNode()

	h.exec.Place(placed.ID)
	h.until(placed.ID, atlas.StateRunning)
	q, p := h.why(placed.ID)
	require.Empty(t, q)
	require.Empty(t, p)

	h.sched.Stop()
	h.start()
	require.Eventually(t, func() bool { q, p := h.why(restarted.ID); return q == why && p == why }, 20*time.Second, 10*time.Millisecond)
	j, err := h.store.JobGet(t.Context(), restarted.ID)
	require.NoError(t, err)
	require.Equal(t, atlas.StateStarting, j.State, "a restart does not take an unplaced job for a running one")
	h.exec.Place(restarted.ID)
	h.until(restarted.ID, atlas.StateRunning)

	res, err := h.svc.ClearQueue(t.Context(), &jobs.Caller{Local: true}, "")
	require.NoError(t, err)
	require.Len(t, res.Stopped, 1, "clear-queue stops what the engine has not placed, not what runs")
	require.Equal(t, cleared.ID, res.Stopped[0].ID)
	h.until(cleared.ID, atlas.StateStopped)
	for _, id := range []string{placed.ID, restarted.ID} {
		h.exec.Exit(id, 0)
		h.until(id, atlas.StateCompleted)
	}

	// A job that ran and ended before the scheduler heard that it runs still ran.
	quick := waitsForNode()
	h.exec.Place(quick.ID)
	h.exec.Exit(quick.ID, 0)
	j = h.until(quick.ID, atlas.StateCompleted)
	require.NotNil(t, j.StartedAt, "its start is recorded before its end")
}
