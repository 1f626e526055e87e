package jobs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	localblob "github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlite"
	"github.com/atlasgo/atlas/sdk"
)

// env is a service over a real SQLite store and blob store, as the server wires it.
type env struct {
	svc    *Service
	store  store.Store
	blobs  *localblob.Store
	logs   *logs.Dir
	dir    string
	events *recorder
}

// recorder keeps every change the service announces.
type recorder struct {
	mu      sync.Mutex
	changes []Change
}

func (r *recorder) add(c Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

func (r *recorder) all() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.changes...)
}

func newEnv(t *testing.T, edit func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "atlas.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	blobs, err := localblob.New(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	lg, err := logs.New(filepath.Join(dir, "logs"))
	require.NoError(t, err)
	cfg := Config{Store: st, Blobs: blobs, Logs: lg, Secret: []byte("0123456789abcdef0123456789abcdef"),
		SpoolRoot: filepath.Join(dir, "spool"), Capacity: Capacity{GPUs: 1, MemoryGB: 16}}
	if edit != nil {
		edit(&cfg)
	}
	e := &env{svc: New(cfg), store: st, blobs: blobs, logs: lg, dir: dir, events: &recorder{}}
	e.svc.Events().Listen(e.events.add)
	return e
}

// bundle uploads a bundle of files and returns its digest.
func (e *env) bundle(t *testing.T, files map[string]string) string {
	t.Helper()
	src := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte(content), 0o644))
	}
	var buf bytes.Buffer
	_, err := bundle.Create(src, &buf, bundle.Options{})
	require.NoError(t, err)
	d, _, err := e.blobs.Put(t.Context(), &buf, "")
	require.NoError(t, err)
	return d
}

var local = &Caller{Local: true, User: "alice", RunAs: "1000:1000"}

func TestSubmitMergesTheJobConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	gpus := 1
	res, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"main.py"}, User: "alice", NumGPUs: &gpus,
		BundleDigest: e.bundle(t, map[string]string{"main.py": "print(1)"}),
		JobConfig:    "project_name: vision\nnum_gpus: 0\nram: 2\nparams:\n  lr: 0.1\nworker:\n  environment:\n    A: b\n"})
	require.NoError(t, err)
	j := res.Job
	require.False(t, res.Existing)
	require.Equal(t, atlas.StateQueued, j.State)
	require.Equal(t, "vision", j.Project, "job.config.yaml's project_name")
	require.Equal(t, 1, j.NumGPUs, "the submission's num_gpus wins over job.config.yaml's")
	require.Equal(t, 2.0, j.RAMGB)
	require.Equal(t, map[string]any{"lr": 0.1}, j.Params)
	require.Equal(t, map[string]string{"A": "b"}, j.Worker.Environment)
	require.Equal(t, "1000:1000", j.RunAs, "the kernel's word for who submitted, not the client's")
	require.Empty(t, res.Token, "a scheduled job's token goes to the job, not to the submitter")
	stored, err := e.store.JobGet(t.Context(), j.ID)
	require.NoError(t, err)
	require.Equal(t, j.ID, stored.ID)
	require.Contains(t, e.events.all(), Change{JobID: j.ID, Name: j.Name, Project: "vision", State: atlas.StateQueued})
}

func TestSubmitRefusesWhatCouldNeverRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true; c.AllowedVolumeRoots = []string{"/data"} })
	d := e.bundle(t, map[string]string{"main.py": ""})
	user := &Caller{User: "bob"}
	three := 3
	for name, tc := range map[string]struct {
		spec *sdk.JobSpec
		kind error
		msg  string
	}{
		"more GPUs than exist": {&sdk.JobSpec{Command: []string{"m"}, NumGPUs: &three}, atlas.ErrInvalid, "asks for 3 GPUs but this server has 1"},
		"more memory":          {&sdk.JobSpec{Command: []string{"m"}, JobConfig: "ram: 64\n"}, atlas.ErrInvalid, "ram: 64 GB"},
		"no command":           {&sdk.JobSpec{}, atlas.ErrInvalid, "no command"},
		"bad id":               {&sdk.JobSpec{ID: "../x", Command: []string{"m"}}, atlas.ErrInvalid, "invalid job id"},
		"bad mode":             {&sdk.JobSpec{Mode: "other", Command: []string{"m"}}, atlas.ErrInvalid, "invalid mode"},
		"bundle not uploaded": {&sdk.JobSpec{Command: []string{"m"}, BundleDigest: "sha256:" + string(bytes.Repeat([]byte("0"), 64))},
			atlas.ErrInvalid, "was not uploaded"},
		"volume outside the allowed roots": {&sdk.JobSpec{Command: []string{"m"}, BundleDigest: d,
			Worker: &sdk.Worker{Volumes: map[string]sdk.Volume{"/etc": {Bind: "/x", Mode: "ro"}}}}, atlas.ErrDenied, "/etc is not under"},
		"bad job.config.yaml": {&sdk.JobSpec{Command: []string{"m"}, JobConfig: "num_gpus: many\n"}, atlas.ErrInvalid, "num_gpus"},
	} {
		_, err := e.svc.Submit(t.Context(), user, tc.spec)
		require.ErrorIs(t, err, tc.kind, name)
		require.ErrorContains(t, err, tc.msg, name)
	}
	jobs, total, err := e.store.JobList(t.Context(), &store.JobListParams{})
	require.NoError(t, err)
	require.Zero(t, total, "nothing refused was stored: %v", jobs)

	_, err = e.svc.Submit(t.Context(), &Caller{User: "admin", Admin: true}, &sdk.JobSpec{Command: []string{"m"}, BundleDigest: d,
		Worker: &sdk.Worker{Volumes: map[string]sdk.Volume{"/etc": {Bind: "/x", Mode: "ro"}}}})
	require.NoError(t, err, "an admin may mount any host path")
}

func TestSubmitRefusesABundleThatWouldNotUnpack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	data, err := os.ReadFile(filepath.Join("..", "bundle", "testdata", "hostile", "dotdot.tar.gz"))
	require.NoError(t, err)
	d, _, err := e.blobs.Put(t.Context(), bytes.NewReader(data), "")
	require.NoError(t, err)
	_, err = e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"m"}, BundleDigest: d})
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.ErrorContains(t, err, "cannot be used")
}

func TestARetriedSubmissionIsTheSameJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	spec := &sdk.JobSpec{ID: "retry-1", Command: []string{"main.py"}}
	first, err := e.svc.Submit(t.Context(), local, spec)
	require.NoError(t, err)
	again, err := e.svc.Submit(t.Context(), local, spec)
	require.NoError(t, err)
	require.True(t, again.Existing)
	require.Equal(t, first.Job.Seq, again.Job.Seq)
	_, err = e.svc.Submit(t.Context(), local, &sdk.JobSpec{ID: "retry-1", Command: []string{"other.py"}})
	require.ErrorIs(t, err, atlas.ErrConflict, "another submission with the same id is not the same job")
}

func TestTrackIsStoredOncePerWriterAndSeq(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true })
	owner := &Caller{User: "alice"}
	res, err := e.svc.Submit(t.Context(), owner, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	id := res.Job.ID
	batch := func(seq int64) *sdk.TrackBatch {
		var b sdk.TrackBatch
		require.NoError(t, decodeJSON(`{"writer":"w","seq":`+itoa(seq)+`,"metrics":{"loss":{"values":[0.5]}},"params":{"lr":0.1}}`, &b))
		return &b
	}
	applied, err := e.svc.Track(t.Context(), owner, id, batch(1))
	require.NoError(t, err)
	require.True(t, applied)
	applied, err = e.svc.Track(t.Context(), owner, id, batch(1))
	require.NoError(t, err)
	require.False(t, applied, "a resent batch is not stored again")
	pts, err := e.store.MetricSeries(t.Context(), id, "loss")
	require.NoError(t, err)
	require.Len(t, pts, 1)

	_, err = e.svc.Track(t.Context(), &Caller{User: "mallory"}, id, batch(2))
	require.ErrorIs(t, err, atlas.ErrDenied, "another user may not write to the job")
	other, err := e.svc.Submit(t.Context(), owner, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	tok, ok := e.svc.TokenJob(e.svc.JobToken(other.Job.ID))
	require.True(t, ok)
	require.Equal(t, other.Job.ID, tok)
	_, err = e.svc.Track(t.Context(), &Caller{User: "alice", JobID: other.Job.ID, Job: other.Job}, id, batch(3))
	require.ErrorIs(t, err, atlas.ErrDenied, "a job's token writes only to its own job")
	_, ok = e.svc.TokenJob("job." + id + ".forged")
	require.False(t, ok)
}

func TestHandRunScriptLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	res, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Mode: "execution", Command: []string{"main.py"}})
	require.NoError(t, err)
	require.Equal(t, atlas.StateRunning, res.Job.State)
	require.NotEmpty(t, res.Token, "a script run by hand gets its job's token")
	id := res.Job.ID

	state, stop, err := e.svc.Heartbeat(t.Context(), local, id)
	require.NoError(t, err)
	require.Equal(t, atlas.StateRunning, state)
	require.False(t, stop)
	j, err := e.svc.StopJob(t.Context(), local, id)
	require.NoError(t, err)
	require.Equal(t, atlas.StateStopped, j.State)
	_, stop, err = e.svc.Heartbeat(t.Context(), local, id)
	require.NoError(t, err)
	require.True(t, stop, "the script learns at its next heartbeat that it was stopped")

	// Its own end comes after: the state stays, the archive is kept.
	archive := e.bundle(t, map[string]string{"out.txt": "x"})
	j, err = e.svc.Finish(t.Context(), local, id, &sdk.FinishRequest{State: "completed", ArchiveDigest: archive})
	require.NoError(t, err)
	require.Equal(t, atlas.StateStopped, j.State)
	require.Equal(t, archive, j.ArchiveDigest)

	sched, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	_, err = e.svc.Finish(t.Context(), local, sched.Job.ID, &sdk.FinishRequest{State: "completed"})
	require.ErrorIs(t, err, atlas.ErrConflict, "only scripts run by hand report their own end")
}

func TestSilentScriptsAreFailed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.HeartbeatTimeout = time.Minute })
	res, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Mode: "execution", Command: []string{"main.py"}})
	require.NoError(t, err)
	alive, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Mode: "execution", Command: []string{"main.py"}})
	require.NoError(t, err)
	e.svc.started = time.Now().Add(-time.Hour) // the server has been up long enough to judge
	require.NoError(t, e.store.JobHeartbeat(t.Context(), res.Job.ID, time.Now().Add(-2*time.Minute)))
	require.NoError(t, e.store.JobHeartbeat(t.Context(), alive.Job.ID, time.Now()))
	e.svc.failSilentScripts(t.Context())
	j, err := e.store.JobGet(t.Context(), res.Job.ID)
	require.NoError(t, err)
	require.Equal(t, atlas.StateFailed, j.State)
	require.Contains(t, j.Reason, "no heartbeat")
	require.Contains(t, e.logs.Tail(j.ID, 1000), "no heartbeat", "the reason is in the job's log too")
	j, err = e.store.JobGet(t.Context(), alive.Job.ID)
	require.NoError(t, err)
	require.Equal(t, atlas.StateRunning, j.State)
}

func TestScheduledJobLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	res, err := e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	id := res.Job.ID
	j, err := e.svc.Claim(ctx, id, "fake", []string{"0"})
	require.NoError(t, err)
	require.Equal(t, atlas.StateStarting, j.State)
	_, err = e.svc.Claim(ctx, id, "fake", nil)
	require.ErrorIs(t, err, atlas.ErrConflict, "a job is claimed once")
	j, err = e.svc.Started(ctx, id, `{"worker":"fake"}`)
	require.NoError(t, err)
	require.Equal(t, atlas.StateRunning, j.State)

	// Values the job's SDK could not deliver wait in its spool until its end is recorded.
	w := filepath.Join(e.svc.SpoolDir(id), "w1")
	require.NoError(t, os.MkdirAll(w, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(w, "00000000000000000001.json"),
		[]byte(`{"writer":"w1","seq":1,"metrics":{"acc":{"values":[0.9]}}}`), 0o644))
	require.NoError(t, e.logs.Append(id, "epoch 1\nValueError: bad input\n"))
	j, err = e.svc.Ended(ctx, id, Outcome{ExitCode: 2})
	require.NoError(t, err)
	require.Equal(t, atlas.StateFailed, j.State)
	require.Equal(t, "exited with code 2: ValueError: bad input", j.Reason)
	require.Equal(t, 2, *j.ExitCode)
	pts, err := e.store.MetricSeries(ctx, id, "acc")
	require.NoError(t, err)
	require.Len(t, pts, 1, "the spool was stored before the end was recorded")
	_, err = os.Stat(e.svc.SpoolDir(id))
	require.True(t, os.IsNotExist(err), "and removed")

	// Lost jobs fail with the reason and no exit code.
	res, err = e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	_, err = e.svc.Claim(ctx, res.Job.ID, "fake", nil)
	require.NoError(t, err)
	j, err = e.svc.Ended(ctx, res.Job.ID, Outcome{ExitCode: -1, Lost: true, Reason: "the container was removed"})
	require.NoError(t, err)
	require.Equal(t, atlas.StateFailed, j.State)
	require.Equal(t, "the container was removed", j.Reason)
	require.Nil(t, j.ExitCode)

	// A job that could not start fails with the reason.
	res, err = e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	_, err = e.svc.Claim(ctx, res.Job.ID, "fake", nil)
	require.NoError(t, err)
	j, err = e.svc.FailStart(ctx, res.Job.ID, "image not found")
	require.NoError(t, err)
	require.Equal(t, atlas.StateFailed, j.State)
	require.Equal(t, "image not found", j.Reason)
	require.Nil(t, j.ExitCode)
}

func TestWhatTheEngineKeptOfARemoteJobsOutputIsStoredOnlyWhenTheJobNeverReported(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	crashed, reported := e.started(t), e.started(t)
	_, err := e.svc.ReportExit(ctx, &Caller{JobID: reported, User: "alice"}, reported, 1, "")
	require.NoError(t, err)
	for _, id := range []string{crashed, reported} {
		_, err := e.svc.Ended(ctx, id, Outcome{ExitCode: 1, Output: "python3: can't open file 'main.py'\n"})
		require.NoError(t, err)
	}
	require.Contains(t, e.logs.Tail(crashed, 1000), "can't open file", "a job that crashed before it shipped anything keeps its message")
	require.NotContains(t, e.logs.Tail(reported, 1000), "can't open file", "a job that shipped its output is not told twice")
	j, err := e.store.JobGet(ctx, crashed)
	require.NoError(t, err)
	require.Equal(t, "exited with code 1: python3: can't open file 'main.py'", j.Reason)
}

// started submits, claims and starts a job, as the scheduler would.
func (e *env) started(t *testing.T) string {
	t.Helper()
	res, err := e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	_, err = e.svc.Claim(t.Context(), res.Job.ID, "fake", nil)
	require.NoError(t, err)
	_, err = e.svc.Started(t.Context(), res.Job.ID, `{}`)
	require.NoError(t, err)
	return res.Job.ID
}

func TestStopIsStoppingUntilTheJobHasEnded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.StopGrace = 10 * time.Second })
	ctx := t.Context()
	id := e.started(t)
	j, err := e.svc.StopJob(ctx, local, id)
	require.NoError(t, err)
	require.Equal(t, atlas.StateStopping, j.State, "nothing has stopped yet")
	require.NotNil(t, j.StoppingAt)
	require.Contains(t, e.events.all(), Change{JobID: id, Name: j.Name, Project: "default", State: atlas.StateStopping},
		"the scheduler hears of the stop")
	again, err := e.svc.StopJob(ctx, local, id)
	require.NoError(t, err, "asking again while it stops is fine")
	require.Equal(t, atlas.StateStopping, again.State)
	err = e.svc.DeleteJob(ctx, local, id)
	require.ErrorIs(t, err, atlas.ErrConflict)
	require.ErrorContains(t, err, "is stopping: it can be deleted once it has stopped", "never \"stop it first\" once a stop was asked")
	_, stop, err := e.svc.Heartbeat(ctx, local, id)
	require.NoError(t, err)
	require.True(t, stop)

	j, err = e.svc.Ended(ctx, id, Outcome{ExitCode: 143, Reason: "killed by signal SIGTERM"})
	require.NoError(t, err)
	require.Equal(t, atlas.StateStopped, j.State, "a stop asked for wins over how the job then exits")
	require.Regexp(t, `^exited after SIGTERM in [0-9.]+ s$`, j.Reason)
	_, err = e.svc.StopJob(ctx, local, id)
	require.ErrorIs(t, err, atlas.ErrConflict, "a finished job cannot be stopped")
	require.NoError(t, e.svc.DeleteJob(ctx, local, id))

	killed := e.started(t)
	_, err = e.svc.StopJob(ctx, local, killed)
	require.NoError(t, err)
	j, err = e.svc.Ended(ctx, killed, Outcome{ExitCode: 137, Killed: true})
	require.NoError(t, err)
	require.Equal(t, "killed after 10 s grace (it did not exit on SIGTERM)", j.Reason)

	// A stop while the executor is still starting the job: the job stays stopping when it has
	// started, and what finds it again after a restart is recorded.
	res, err := e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	_, err = e.svc.Claim(ctx, res.Job.ID, "fake", nil)
	require.NoError(t, err)
	_, err = e.svc.StopJob(ctx, local, res.Job.ID)
	require.NoError(t, err)
	j, err = e.svc.Started(ctx, res.Job.ID, `{"worker":"fake 1"}`)
	require.NoError(t, err)
	require.Equal(t, atlas.StateStopping, j.State)
	require.Equal(t, `{"worker":"fake 1"}`, j.RunInfo)
}

func TestDeleteCollectsBlobsNothingElseUses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true })
	ctx := t.Context()
	alice := &Caller{User: "alice"}
	shared := e.bundle(t, map[string]string{"main.py": "shared"})
	var ids, names []string
	for range 2 {
		res, err := e.svc.Submit(ctx, alice, &sdk.JobSpec{Command: []string{"m"}, BundleDigest: shared})
		require.NoError(t, err)
		ids, names = append(ids, res.Job.ID), append(names, res.Job.Name)
	}
	err := e.svc.DeleteJob(ctx, alice, ids[0])
	require.ErrorIs(t, err, atlas.ErrConflict, "a queued job is not deleted")
	for _, id := range ids {
		_, err := e.svc.StopJob(ctx, alice, id)
		require.NoError(t, err)
	}
	require.ErrorIs(t, e.svc.DeleteJob(ctx, &Caller{User: "bob"}, ids[0]), atlas.ErrDenied)
	require.NoError(t, e.svc.DeleteJob(ctx, alice, ids[0]))
	has, _, err := e.blobs.Has(t.Context(), shared)
	require.NoError(t, err)
	require.True(t, has, "the other job still uses the bundle")
	require.NoError(t, e.svc.DeleteJob(ctx, &Caller{User: "root", Admin: true}, ids[1]))
	has, _, err = e.blobs.Has(t.Context(), shared)
	require.NoError(t, err)
	require.False(t, has, "nothing uses the bundle any more")
	_, err = e.store.JobGet(ctx, ids[1])
	require.ErrorIs(t, err, atlas.ErrNotFound)
	require.Contains(t, e.events.all(), Change{JobID: ids[1], Name: names[1], Project: "default", State: atlas.StateStopped, Deleted: true})
}

func TestClearQueueClearsOnlyYourOwnJobsWithAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true })
	ctx := t.Context()
	for _, u := range []string{"alice", "alice", "bob"} {
		_, err := e.svc.Submit(ctx, &Caller{User: u}, &sdk.JobSpec{Command: []string{"m"}})
		require.NoError(t, err)
	}
	cleared, err := e.svc.ClearQueue(ctx, &Caller{User: "alice"}, "")
	require.NoError(t, err)
	require.Len(t, cleared.Removed, 2)
	cleared, err = e.svc.ClearQueue(ctx, &Caller{User: "root", Admin: true}, "other-project")
	require.NoError(t, err)
	require.Empty(t, cleared.Removed, "only the project named")
	cleared, err = e.svc.ClearQueue(ctx, &Caller{User: "root", Admin: true}, "")
	require.NoError(t, err)
	require.Len(t, cleared.Removed, 1)
	require.Equal(t, "bob", cleared.Removed[0].User)
}

func TestReadsAreScopedForJobTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true })
	ctx := t.Context()
	bobs, err := e.svc.Submit(ctx, &Caller{User: "bob"}, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	alices, err := e.svc.Submit(ctx, &Caller{User: "alice"}, &sdk.JobSpec{Command: []string{"m"}})
	require.NoError(t, err)
	aliceJob := &Caller{User: "alice", JobID: alices.Job.ID, Job: alices.Job}
	_, err = e.svc.Job(ctx, aliceJob, bobs.Job.ID)
	require.ErrorIs(t, err, atlas.ErrNotFound, "a job's token does not see other users' jobs")
	_, err = e.svc.Job(ctx, &Caller{User: "alice"}, bobs.Job.ID)
	require.NoError(t, err, "users see every job")
	p := &store.JobListParams{}
	e.svc.Scope(aliceJob, p)
	jobs, _, err := e.store.JobList(ctx, p)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Equal(t, "alice", jobs[0].User)
}

func decodeJSON(s string, v any) error {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	return dec.Decode(v)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestJobTokensEndAfterTheDrainPeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	id := e.started(t)
	c, ok, err := e.svc.JobCaller(ctx, e.svc.JobToken(id))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, id, c.JobID)
	_, ok, err = e.svc.JobCaller(ctx, "atl_user-token")
	require.NoError(t, err)
	require.False(t, ok, "not a job token")

	_, err = e.store.JobSetState(ctx, &store.JobSetStateParams{ID: id, To: atlas.StateCompleted, At: time.Now().Add(-TokenDrain / 2)})
	require.NoError(t, err)
	_, _, err = e.svc.JobCaller(ctx, e.svc.JobToken(id))
	require.NoError(t, err, "within the drain period the job may still deliver what it left")

	old := e.started(t)
	_, err = e.store.JobSetState(ctx, &store.JobSetStateParams{ID: old, To: atlas.StateCompleted, At: time.Now().Add(-2 * TokenDrain)})
	require.NoError(t, err)
	_, _, err = e.svc.JobCaller(ctx, e.svc.JobToken(old))
	require.ErrorIs(t, err, atlas.ErrAuth)
	require.ErrorContains(t, err, "no longer works: the job finished at")

	// A script run by hand may leave values for the next script to send: its token lasts.
	hand, err := e.svc.Submit(ctx, local, &sdk.JobSpec{Mode: "execution", Command: []string{"main.py"}})
	require.NoError(t, err)
	_, err = e.store.JobSetState(ctx, &store.JobSetStateParams{ID: hand.Job.ID, To: atlas.StateFailed, At: time.Now().Add(-2 * TokenDrain)})
	require.NoError(t, err)
	_, _, err = e.svc.JobCaller(ctx, hand.Token)
	require.NoError(t, err)
}

func TestARetryFromAnotherAccountIsNotTheSameJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	spec := &sdk.JobSpec{ID: "mine", Mode: "execution", Command: []string{"main.py"}}
	_, err := e.svc.Submit(t.Context(), &Caller{Local: true, RunAs: "1000:1000"}, spec)
	require.NoError(t, err)
	res, err := e.svc.Submit(t.Context(), &Caller{Local: true, RunAs: "1001:1001"}, spec)
	require.ErrorIs(t, err, atlas.ErrConflict, "another local account does not get the job, nor its token")
	require.Nil(t, res)
}

func TestAuthenticatedUsersJobsRunAsTheirAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Auth = true })
	for user, want := range map[string]string{"nobody": "65534:65534", "root": "65534:65534", "no-such-account-here": "65534:65534"} {
		res, err := e.svc.Submit(t.Context(), &Caller{User: user}, &sdk.JobSpec{Command: []string{"m"}})
		require.NoError(t, err)
		require.Equal(t, want, res.Job.RunAs, "%s: never root, nobody without an account", user)
	}
}

func TestTrackingLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Limits = Limits{KeysPerJob: 3, KeysPerBatch: 4} })
	ctx := t.Context()
	id := e.started(t)
	batch := func(seq int, body string) *sdk.TrackBatch {
		var b sdk.TrackBatch
		require.NoError(t, decodeJSON(`{"writer":"w","seq":`+strconv.Itoa(seq)+`,`+body+`}`, &b))
		return &b
	}
	_, err := e.svc.Track(ctx, local, id, batch(1, `"metrics":{"a":{"values":[1]},"b":{"values":[1]},"c":{"values":[1]},"d":{"values":[1]},"e":{"values":[1]}}`))
	var le *LimitError
	require.ErrorAs(t, err, &le)
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.ErrorContains(t, err, "a batch of 5 keys: over the limit of 4 keys a batch (max_keys_per_batch in server.config.yaml)")

	_, err = e.svc.Track(ctx, local, id, batch(2, `"metrics":{"a":{"values":[1]},"b":{"values":[1]},"c":{"values":[1]}},"params":{"p":1}`))
	require.NoError(t, err)
	_, err = e.svc.Track(ctx, local, id, batch(3, `"metrics":{"d":{"values":[1]}}`))
	require.ErrorContains(t, err, "job "+id+" would have 4 distinct metrics: over the limit of 3 metrics a job (max_keys_per_job")
	applied, err := e.svc.Track(ctx, local, id, batch(4, `"metrics":{"a":{"values":[2]},"c":{"values":[2]}}`))
	require.NoError(t, err, "the keys the job has take more points")
	require.True(t, applied)

	// A new service (a restarted server) knows the job's keys from the store.
	again := New(e.svc.cfg)
	_, err = again.Track(ctx, local, id, batch(5, `"metrics":{"e":{"values":[1]}}`))
	require.ErrorAs(t, err, &le)
	require.ErrorIs(t, again.SetTag(ctx, local, id, "t", strings.Repeat("x", 10001)), atlas.ErrInvalid, "tag values are capped")
	_, err = e.svc.Track(ctx, local, id, batch(6, `"params":{"big":"`+strings.Repeat("x", 70000)+`"}`))
	require.ErrorContains(t, err, "param \"big\": value is 70002 bytes of JSON; the limit is 65536")
}

func TestARefusedBundleIsNotUnpackedAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	data, err := os.ReadFile(filepath.Join("..", "bundle", "testdata", "hostile", "dotdot.tar.gz"))
	require.NoError(t, err)
	d, _, err := e.blobs.Put(t.Context(), bytes.NewReader(data), "")
	require.NoError(t, err)
	_, err = e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"m"}, BundleDigest: d})
	require.ErrorContains(t, err, "cannot be used")
	// Were the bundle unpacked again, this harmless content would pass: the refusal is kept.
	path, err := e.blobs.Path(d)
	require.NoError(t, err)
	var good bytes.Buffer
	_, err = bundle.Create(t.TempDir(), &good, bundle.Options{})
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o644))
	require.NoError(t, os.WriteFile(path, good.Bytes(), 0o644))
	_, err = e.svc.Submit(t.Context(), local, &sdk.JobSpec{Command: []string{"m"}, BundleDigest: d})
	require.ErrorContains(t, err, "cannot be used")
}

func TestBlobsNothingRefersToAreCollected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	used := e.bundle(t, map[string]string{"main.py": "used"})
	_, err := e.svc.Submit(ctx, local, &sdk.JobSpec{Command: []string{"m"}, BundleDigest: used})
	require.NoError(t, err)
	orphan := e.bundle(t, map[string]string{"main.py": "uploaded, never submitted"})
	fresh := e.bundle(t, map[string]string{"main.py": "just uploaded"})
	old := time.Now().Add(-2 * BlobGrace)
	for _, d := range []string{used, orphan} {
		p, err := e.blobs.Path(d)
		require.NoError(t, err)
		require.NoError(t, os.Chtimes(p, old, old))
	}
	n, err := e.svc.collectBlobs(ctx, BlobGrace)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	for d, want := range map[string]bool{used: true, orphan: false, fresh: true} {
		has, _, err := e.blobs.Has(t.Context(), d)
		require.NoError(t, err)
		require.Equal(t, want, has, d)
	}
}

func TestResolveIDTakesAUniquePrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := t.Context()
	const whole = "0d68d3e7-0e5c-43fc-9716-1499c7a87d81"
	for _, id := range []string{"4f2a9c01-aaaa", "4f2a9c01-bbbb", "4f2b0000-cccc", "run1", "run10", whole + ".retry"} {
		require.NoError(t, e.store.JobInsert(ctx, &atlas.Job{ID: id, Project: "p", State: atlas.StateQueued, CreatedAt: time.Now()}))
	}
	resolve := func(c *Caller, id string) (string, error) { return e.svc.ResolveID(ctx, c, id) }

	got, err := resolve(local, "4f2b")
	require.NoError(t, err)
	require.Equal(t, "4f2b0000-cccc", got, "a unique prefix names its job")
	got, err = resolve(local, "run1")
	require.NoError(t, err)
	require.Equal(t, "run1", got, "a whole id names its job even when it starts another's")
	got, err = resolve(local, whole)
	require.NoError(t, err)
	require.Equal(t, whole, got, "an id in the server's own form is whole: not looked up as a prefix")
	got, err = resolve(local, "4f2a9c01-bbbb")
	require.NoError(t, err)
	require.Equal(t, "4f2a9c01-bbbb", got)

	_, err = resolve(local, "4f2a9c01")
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.EqualError(t, err, "job id 4f2a9c01 is ambiguous: 2 jobs' ids start with it (4f2a9c01-aaaa, 4f2a9c01-bbbb); give more of the id")
	_, err = resolve(local, "4f2")
	require.NoError(t, err, "under 4 characters: taken as a whole id, which names no job")
	got, _ = resolve(local, "4f2")
	require.Equal(t, "4f2", got)
	got, err = resolve(local, "nope-nothing")
	require.NoError(t, err)
	require.Equal(t, "nope-nothing", got, "no match: the lookup that follows says it is not found")
	got, err = resolve(&Caller{JobID: "run1", User: "alice"}, "4f2b")
	require.NoError(t, err)
	require.Equal(t, "4f2b", got, "a job's own token names jobs by whole ids")
}
