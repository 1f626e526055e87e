// Package scheduler runs the queue: it decides which queued jobs start (Decide, a pure
// function), prepares their working directories, hands them to the executor, watches them to
// the end, archives what they leave behind, and records every state change in the store.
//
//	queued ──claim──▶ starting ──executor started──▶ running ──exit 0──▶ completed
//	  │                  │                              ├──exit ≠ 0──▶ failed
//	  └──stop──▶ stopped ◀──────────stop────────────────┘
//
// Delivery is at-most-once per claim: a claim is one store call that checks the job is still
// queued. On start, the scheduler re-attaches to jobs that were running before a restart and
// puts claimed-but-not-started jobs back in the queue; jobs it cannot find again are failed
// with the reason. The scheduler never runs a job's code itself.
package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store"
)

// ParamsFile is written into a job's working directory when it was submitted with params.
const ParamsFile = "foundations_job_parameters.json"

// Config wires the scheduler to the rest of the server.
type Config struct {
	Store    store.Store
	Blobs    *blob.Store
	Logs     *logs.Dir
	Executor executor.Executor
	Workers  int
	GPUs     []string
	// WorkRoot holds one working directory per running job.
	WorkRoot string
	// SDKDir holds the Python SDK injected into jobs.
	SDKDir string
	// JobEnv returns the FOUNDATIONS_* variables of a job (API address, token, ...).
	JobEnv    func(j *atlas.Job) []string
	StopGrace time.Duration
	// Fairness is how long a job that does not fit may wait before it reserves resources.
	Fairness time.Duration
	// HeartbeatTimeout fails execution-mode jobs whose script stopped reporting.
	HeartbeatTimeout time.Duration
	MaxBundleBytes   int64
	MaxBundleFiles   int
	// MemoryGB is the machine's memory; a job asking for more is refused at submit (0: unknown).
	MemoryGB float64
	// SpoolRoot holds one spool directory per job, where the SDK leaves values it could not
	// deliver; DrainSpool stores them when the job ends.
	SpoolRoot  string
	DrainSpool func(ctx context.Context, jobID, dir string) error
	// Changed is called after every state change a job goes through.
	Changed func(j *atlas.Job)
	Logger  *slog.Logger
}

// Scheduler owns the queue and the running jobs.
type Scheduler struct {
	cfg     Config
	wake    chan struct{}
	started time.Time

	mu      sync.Mutex
	running map[string]*run
	waiting map[string]string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type run struct {
	gpus   []string
	handle executor.Handle // nil until the executor started the job
}

// New returns a scheduler; Start starts it.
func New(cfg Config) *Scheduler {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Changed == nil {
		cfg.Changed = func(*atlas.Job) {}
	}
	if cfg.Fairness == 0 {
		cfg.Fairness = 30 * time.Minute
	}
	if cfg.MaxBundleBytes == 0 {
		cfg.MaxBundleBytes = bundle.DefaultLimits.MaxBytes
	}
	return &Scheduler{cfg: cfg, wake: make(chan struct{}, 1), running: map[string]*run{}, waiting: map[string]string{}}
}

// Start recovers jobs left by an earlier server process and starts the dispatch loop.
func (s *Scheduler) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.started = time.Now()
	if err := os.MkdirAll(s.cfg.WorkRoot, 0o755); err != nil {
		return err
	}
	if err := s.recover(ctx); err != nil {
		return fmt.Errorf("recover jobs: %w", err)
	}
	s.wg.Go(s.loop)
	s.Wake()
	return nil
}

// Stop ends the dispatch loop and stops watching jobs. Running jobs keep running; the next
// Start re-attaches to them. Stop is idempotent.
func (s *Scheduler) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Wake asks the loop to look at the queue now.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// TotalGPUs is the size of the GPU pool.
func (s *Scheduler) TotalGPUs() int { return len(s.cfg.GPUs) }

// Workers is the number of worker slots.
func (s *Scheduler) Workers() int { return s.cfg.Workers }

// ExecutorName is the kind of executor jobs run with.
func (s *Scheduler) ExecutorName() string { return s.cfg.Executor.Name() }

// Validate refuses, at submit time, jobs that could never start here.
func (s *Scheduler) Validate(j *atlas.Job) error {
	if j.NumGPUs > len(s.cfg.GPUs) {
		return atlas.Invalidf("job asks for %d GPU%s but this server has %d (start atlas-server with -g, or --gpus with a list of ids)",
			j.NumGPUs, plural(j.NumGPUs), len(s.cfg.GPUs))
	}
	if s.cfg.MemoryGB > 0 && j.RAMGB > s.cfg.MemoryGB {
		return atlas.Invalidf("job asks for ram: %g GB but this machine has %.1f GB", j.RAMGB, s.cfg.MemoryGB)
	}
	return nil
}

// MemoryGB reads the machine's memory from /proc/meminfo (0 when it cannot tell).
func MemoryGB() float64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb float64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb); err == nil {
				return kb / (1 << 20)
			}
		}
	}
	return 0
}

// Waiting returns why each queued job is waiting, as of the last round.
func (s *Scheduler) Waiting() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.waiting))
	for k, v := range s.waiting {
		out[k] = v
	}
	return out
}

func (s *Scheduler) loop() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastRescue := time.Time{}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-tick.C:
		}
		if err := s.round(); err != nil && s.ctx.Err() == nil {
			s.cfg.Logger.Error("scheduling round failed", "err", err)
		}
		if time.Since(lastRescue) > 10*time.Second {
			lastRescue = time.Now()
			s.rescueSilentScripts()
		}
	}
}

// round runs one scheduling decision and starts what it says.
func (s *Scheduler) round() error {
	queued, err := s.cfg.Store.JobQueue(s.ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	free := Free{Slots: s.cfg.Workers - len(s.running), TotalSlot: s.cfg.Workers, TotalGPUs: len(s.cfg.GPUs)}
	used := map[string]bool{}
	for _, r := range s.running {
		for _, g := range r.gpus {
			used[g] = true
		}
	}
	s.mu.Unlock()
	for _, g := range s.cfg.GPUs {
		if !used[g] {
			free.GPUs = append(free.GPUs, g)
		}
	}
	cands := make([]Candidate, len(queued))
	for i, q := range queued {
		cands[i] = Candidate{ID: q.ID, NumGPUs: q.NumGPUs, QueuedAt: q.CreatedAt}
	}
	plan := Decide(cands, free, time.Now(), s.cfg.Fairness)
	s.mu.Lock()
	s.waiting = plan.Waiting
	s.mu.Unlock()
	for _, st := range plan.Start {
		j, err := s.cfg.Store.JobSetState(s.ctx, &store.JobSetStateParams{ID: st.JobID, From: []atlas.State{atlas.StateQueued},
			To: atlas.StateStarting, Executor: s.cfg.Executor.Name(), GPUIDs: st.GPUIDs})
		if errors.Is(err, atlas.ErrConflict) || errors.Is(err, atlas.ErrNotFound) {
			continue // stopped or cleared since we listed it
		}
		if err != nil {
			return err
		}
		s.cfg.Changed(j)
		s.mu.Lock()
		s.running[j.ID] = &run{gpus: st.GPUIDs}
		s.mu.Unlock()
		s.wg.Go(func() { s.start(j) })
	}
	return nil
}

// release frees a job's slot and GPUs and looks at the queue again.
func (s *Scheduler) release(id string) {
	s.mu.Lock()
	delete(s.running, id)
	s.mu.Unlock()
	s.Wake()
}

func (s *Scheduler) workDir(id string) string { return filepath.Join(s.cfg.WorkRoot, id) }

func (s *Scheduler) spoolDir(id string) string {
	if s.cfg.SpoolRoot == "" {
		return ""
	}
	return filepath.Join(s.cfg.SpoolRoot, id)
}

// start prepares and launches a claimed job, then watches it.
func (s *Scheduler) start(j *atlas.Job) {
	workDir := s.workDir(j.ID)
	if err := s.prepare(j, workDir); err != nil {
		s.fail(j, atlas.StateStarting, "preparing the job failed: "+oneLine(err))
		return
	}
	env := append(s.cfg.JobEnv(j), "FOUNDATIONS_GPU_IDS="+strings.Join(j.GPUIDs, ","))
	if len(s.cfg.GPUs) > 0 {
		ids := strings.Join(j.GPUIDs, ",")
		env = append(env, "CUDA_VISIBLE_DEVICES="+ids, "NVIDIA_VISIBLE_DEVICES="+ids)
	}
	for _, k := range slices.Sorted(maps.Keys(j.Worker.Environment)) {
		env = append(env, k+"="+j.Worker.Environment[k])
	}
	h, err := s.cfg.Executor.Start(s.ctx, &executor.Spec{Job: j, WorkDir: workDir, Env: env,
		LogPath: s.cfg.Logs.Path(j.ID), SDKDir: s.cfg.SDKDir, SpoolDir: s.spoolDir(j.ID)})
	if err != nil {
		s.fail(j, atlas.StateStarting, oneLine(err))
		return
	}
	// The job is running now: record it even if the server is shutting down, so that the next
	// start re-attaches to it instead of queueing it again.
	ctx := context.WithoutCancel(s.ctx)
	j2, err := s.cfg.Store.JobSetState(ctx, &store.JobSetStateParams{ID: j.ID, From: []atlas.State{atlas.StateStarting},
		To: atlas.StateRunning, RunInfo: h.RunInfo()})
	if err != nil {
		s.cfg.Logger.Error("record job running", "job", j.ID, "err", err)
		_ = h.Stop(s.cfg.StopGrace)
	} else {
		j = j2
		s.cfg.Changed(j)
	}
	s.mu.Lock()
	if r := s.running[j.ID]; r != nil {
		r.handle = h
	}
	s.mu.Unlock()
	if cur, err := s.cfg.Store.JobGet(ctx, j.ID); err == nil && cur.StopRequested {
		_ = h.Stop(s.cfg.StopGrace)
	}
	s.watch(j, h)
}

// prepare unpacks the bundle into a fresh working directory and writes the params file.
func (s *Scheduler) prepare(j *atlas.Job, workDir string) error {
	if err := os.RemoveAll(workDir); err != nil {
		return err
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	if d := s.spoolDir(j.ID); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if j.BundleDigest != "" {
		f, err := s.cfg.Blobs.Open(j.BundleDigest)
		if err != nil {
			return fmt.Errorf("bundle %s: %w", j.BundleDigest, err)
		}
		lim := bundle.Limits{MaxBytes: s.cfg.MaxBundleBytes, MaxEntries: s.cfg.MaxBundleFiles}
		if lim.MaxEntries <= 0 {
			lim.MaxEntries = bundle.DefaultLimits.MaxEntries
		}
		err = bundle.Extract(f, workDir, lim)
		f.Close()
		if err != nil {
			return err
		}
	}
	if j.Params != nil {
		data, err := json.MarshalIndent(j.Params, "", "    ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(workDir, ParamsFile), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// watch waits for a running job to end and records how it ended. If the server shuts down
// first, it returns without recording anything: the job goes on, and is recovered later.
func (s *Scheduler) watch(j *atlas.Job, h executor.Handle) {
	res, err := h.Wait(s.ctx)
	if err != nil {
		return // server shutting down
	}
	if s.finish(j, res) {
		if err := h.Release(); err != nil {
			s.cfg.Logger.Warn("release job resources", "job", j.ID, "err", err)
		}
	}
}

// finish archives the working directory and records the final state. It reports whether the
// state was recorded.
func (s *Scheduler) finish(j *atlas.Job, res executor.Result) bool {
	defer s.release(j.ID)
	workDir := s.workDir(j.ID)
	if d := s.spoolDir(j.ID); d != "" && s.cfg.DrainSpool != nil {
		// Stored values are applied once by (writer, seq): removing the spool only after the
		// drain is safe against a crash at any point.
		if err := s.cfg.DrainSpool(s.ctx, j.ID, d); err != nil {
			s.cfg.Logger.Error("store the values the job left in its spool", "job", j.ID, "err", err)
		} else {
			os.RemoveAll(d)
		}
	}
	archive, archErr := s.archive(workDir)
	cur, err := s.cfg.Store.JobGet(s.ctx, j.ID)
	if err != nil {
		s.cfg.Logger.Error("finish job", "job", j.ID, "err", err)
		return false
	}
	to, reason := atlas.StateCompleted, ""
	switch {
	case cur.StopRequested:
		to, reason = atlas.StateStopped, "stopped on request"
	case res.Lost:
		to, reason = atlas.StateFailed, res.Reason
	case res.ExitCode != 0:
		to, reason = atlas.StateFailed, fmt.Sprintf("exited with code %d", res.ExitCode)
		if res.Reason != "" {
			reason = res.Reason
		} else if last := lastLine(s.cfg.Logs.Tail(j.ID, 8<<10)); last != "" {
			reason += ": " + last // usually the exception, e.g. "RuntimeError: the loss diverged"
		}
	}
	if archErr != nil {
		s.cfg.Logger.Error("archive job", "job", j.ID, "err", archErr)
		_ = s.cfg.Logs.Append(j.ID, "Foundations ERROR: archiving the working directory failed: "+oneLine(archErr)+"\n")
	}
	var code *int
	if !res.Lost {
		code = &res.ExitCode
	}
	j2, err := s.cfg.Store.JobSetState(s.ctx, &store.JobSetStateParams{ID: j.ID, To: to, Reason: reason, ExitCode: code,
		ArchiveDigest: archive})
	if err != nil {
		s.cfg.Logger.Error("record job end", "job", j.ID, "err", err)
		return false
	}
	s.cfg.Changed(j2)
	os.RemoveAll(workDir)
	return true
}

// archive stores the working directory as a blob.
func (s *Scheduler) archive(workDir string) (string, error) {
	if _, err := os.Stat(workDir); os.IsNotExist(err) {
		return "", nil // nothing left to archive
	} else if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(s.cfg.WorkRoot, ".archive-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := bundle.Create(workDir, tmp, bundle.Options{}); err != nil {
		return "", err
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return "", err
	}
	d, _, err := s.cfg.Blobs.Put(tmp, "")
	return d, err
}

// fail records that a job could not run, with the reason in its log too.
func (s *Scheduler) fail(j *atlas.Job, from atlas.State, reason string) {
	defer s.release(j.ID)
	_ = s.cfg.Logs.Append(j.ID, "Foundations ERROR: "+reason+"\n")
	j2, err := s.cfg.Store.JobSetState(s.ctx, &store.JobSetStateParams{ID: j.ID, From: []atlas.State{from}, To: atlas.StateFailed, Reason: reason})
	if err != nil {
		s.cfg.Logger.Error("record job failure", "job", j.ID, "err", err)
		return
	}
	s.cfg.Changed(j2)
	os.RemoveAll(s.workDir(j.ID))
}

// StopJob stops a job: a queued one leaves the queue, a running one is signalled, and an
// execution-mode one (whose process the server does not own) is marked stopped.
func (s *Scheduler) StopJob(ctx context.Context, id string) (*atlas.Job, error) {
	j, err := s.cfg.Store.JobGet(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case j.State == atlas.StateQueued:
		j, err = s.cfg.Store.JobSetState(ctx, &store.JobSetStateParams{ID: id, From: []atlas.State{atlas.StateQueued},
			To: atlas.StateStopped, Reason: "stopped while queued"})
		if err == nil {
			s.cfg.Changed(j)
		}
		return j, err
	case j.State.Finished():
		return nil, atlas.Conflictf("job %s is %s and cannot be stopped", id, j.State)
	case j.Mode == atlas.ModeExecution:
		j, err = s.cfg.Store.JobSetState(ctx, &store.JobSetStateParams{ID: id, To: atlas.StateStopped,
			Reason: "stopped on request (the script was started outside the scheduler; it is asked to stop at its next heartbeat)"})
		if err == nil {
			s.cfg.Changed(j)
		}
		return j, err
	}
	j, err = s.cfg.Store.JobRequestStop(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	r := s.running[id]
	s.mu.Unlock()
	if r != nil && r.handle != nil {
		if err := r.handle.Stop(s.cfg.StopGrace); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// recover re-attaches to jobs that were starting or running when the server last stopped.
func (s *Scheduler) recover(ctx context.Context) error {
	jobs, err := s.cfg.Store.JobsInState(ctx, atlas.StateStarting, atlas.StateRunning)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.Mode == atlas.ModeExecution {
			continue // the script reports its own end; rescueSilentScripts watches it
		}
		if j.State == atlas.StateStarting && j.RunInfo == "" {
			j2, err := s.cfg.Store.JobSetState(ctx, &store.JobSetStateParams{ID: j.ID, From: []atlas.State{atlas.StateStarting}, To: atlas.StateQueued})
			if err == nil {
				s.cfg.Logger.Info("job was starting when the server stopped; queued again", "job", j.ID)
				s.cfg.Changed(j2)
			}
			continue
		}
		if j.Executor != s.cfg.Executor.Name() {
			s.markLost(ctx, j, fmt.Sprintf("the job ran with the %s executor, which this server does not use", j.Executor))
			continue
		}
		h, err := s.cfg.Executor.Recover(ctx, j, s.cfg.Logs.Path(j.ID))
		if err != nil {
			s.markLost(ctx, j, "lost while the server was down: "+oneLine(err))
			continue
		}
		if j.State == atlas.StateStarting {
			if j2, err := s.cfg.Store.JobSetState(ctx, &store.JobSetStateParams{ID: j.ID, To: atlas.StateRunning}); err == nil {
				j = j2
			}
		}
		s.cfg.Logger.Info("re-attached to running job", "job", j.ID, "executor", j.Executor)
		s.mu.Lock()
		s.running[j.ID] = &run{gpus: j.GPUIDs, handle: h}
		s.mu.Unlock()
		s.wg.Go(func() { s.watch(j, h) })
	}
	if c, ok := s.cfg.Executor.(executor.Cleaner); ok {
		s.mu.Lock()
		known := map[string]bool{}
		for id := range s.running {
			known[id] = true
		}
		s.mu.Unlock()
		removed, err := c.RemoveOrphans(ctx, func(id string) bool { return known[id] })
		for _, r := range removed {
			s.cfg.Logger.Info("removed a container left by a job this server no longer runs", "container", r)
		}
		if err != nil {
			s.cfg.Logger.Warn("remove orphaned containers", "err", err)
		}
	}
	return nil
}

// markLost fails a job whose process or container cannot be found; what it left (working
// directory, spool) is still archived and stored.
func (s *Scheduler) markLost(ctx context.Context, j *atlas.Job, reason string) {
	s.cfg.Logger.Warn("marking job failed", "job", j.ID, "reason", reason)
	_ = s.cfg.Logs.Append(j.ID, "Foundations ERROR: "+reason+"\n")
	if j.Mode == atlas.ModeExecution {
		if j2, err := s.cfg.Store.JobSetState(ctx, &store.JobSetStateParams{ID: j.ID, To: atlas.StateFailed, Reason: reason}); err == nil {
			s.cfg.Changed(j2)
		}
		return
	}
	s.finish(j, executor.Result{ExitCode: -1, Lost: true, Reason: reason})
}

// rescueSilentScripts fails execution-mode jobs whose script stopped sending heartbeats (it
// was killed, or the machine went down), so they do not stay "running" forever.
func (s *Scheduler) rescueSilentScripts() {
	if s.cfg.HeartbeatTimeout <= 0 {
		return
	}
	jobs, err := s.cfg.Store.JobsInState(s.ctx, atlas.StateRunning)
	if err != nil {
		return
	}
	now := time.Now()
	for _, j := range jobs {
		if j.Mode != atlas.ModeExecution {
			continue
		}
		last := s.started
		if j.HeartbeatAt != nil && j.HeartbeatAt.After(last) {
			last = *j.HeartbeatAt
		}
		if now.Sub(last) > s.cfg.HeartbeatTimeout {
			s.markLost(s.ctx, j, fmt.Sprintf("no heartbeat from the script for %s (it probably died)", s.cfg.HeartbeatTimeout))
		}
	}
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// lastLine is the last meaningful line of a log tail: no colours, no progress-bar rewrites,
// at most 300 characters.
func lastLine(tail string) string {
	lines := strings.FieldsFunc(ansiEscape.ReplaceAllString(tail, ""), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.Trim(l, "=") == "" {
			continue
		}
		if r := []rune(l); len(r) > 300 {
			l = string(r[:297]) + "..."
		}
		return l
	}
	return ""
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
