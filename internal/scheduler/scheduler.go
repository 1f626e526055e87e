// Package scheduler runs the queue: it decides which queued jobs start (Decide, a pure
// function, in plan.go), prepares their working directories and hands them to the executor
// (job.go), watches them to the end and archives what they leave behind, and re-attaches to
// jobs that were running when the server last stopped (recover.go).
//
//	queued ──claim──▶ starting ──executor started──▶ running ──exit 0──▶ completed
//	  │                  │                              ├──exit ≠ 0──▶ failed
//	  └──stop──▶ stopped ◀──────────stop────────────────┘
//
// Every state change goes through the job service (internal/jobs); the scheduler learns of
// new jobs and of stop requests from the service's events. Delivery is at-most-once per
// claim: a claim is one store call that checks the job is still queued. The scheduler never
// runs a job's code itself.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store"
)

// Config wires the scheduler to the rest of the server.
type Config struct {
	Jobs *jobs.Service
	// Store is read for the queue and for the jobs to recover; writes go through Jobs.
	Store    store.Store
	Blobs    blob.Store
	Logs     *logs.Dir
	Executor executor.Executor
	Workers  int
	GPUs     []string
	// WorkRoot holds one working directory per running job.
	WorkRoot string
	// SDKDir holds the Python SDK injected into jobs.
	SDKDir string
	// SchedulerURL is how jobs on this machine reach the API; Home is the server's
	// FOUNDATIONS_HOME. Both are given to every job.
	SchedulerURL string
	Home         string
	// Fairness is how long a job that does not fit may wait before it reserves resources.
	Fairness time.Duration
	Logger   *slog.Logger
}

// indexedEntries bounds the bundles' indexes the scheduler keeps: entries of all of them
// (a few hundred bytes each).
const indexedEntries = 100_000

// Scheduler owns the queue and the running jobs.
type Scheduler struct {
	cfg  Config
	wake chan struct{}

	mu      sync.Mutex
	running map[string]*slot

	// indexes keeps the indexes of bundles that jobs ended with lately, which each job's
	// archive is made against.
	indexes *bundle.IndexCache

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	unlisten func()
}

// slot is a worker slot taken by a job: its GPUs, and its handle once the executor started it.
type slot struct {
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
	if cfg.Fairness == 0 {
		cfg.Fairness = 30 * time.Minute
	}
	return &Scheduler{cfg: cfg, wake: make(chan struct{}, 1), running: map[string]*slot{},
		indexes: bundle.NewIndexCache(indexedEntries)}
}

// Start recovers jobs left by an earlier server process and starts the dispatch loop.
func (s *Scheduler) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	// Jobs may pass through to their own working directories (handed to their accounts), not
	// look into each other's.
	if err := os.MkdirAll(s.cfg.WorkRoot, 0o711); err != nil {
		return err
	}
	s.unlisten = s.cfg.Jobs.Events().Listen(s.changed)
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
	if s.unlisten != nil {
		s.unlisten()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// changed hears every job change: a new queued job wakes the loop, a job asked to stop is
// signalled. It runs in the publisher's goroutine and returns at once.
func (s *Scheduler) changed(c jobs.Change) {
	switch {
	case c.Deleted:
	case c.State == atlas.StateStopping:
		s.wg.Go(func() { s.signal(c.JobID) })
	case c.State == atlas.StateQueued:
		s.Wake()
	}
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

// Waiting says why each job of the head of the queue waits (head: the first queued jobs, in
// queue order, as store.JobQueueHead returns them: why a job waits depends only on the jobs
// ahead of it), as the free resources are now, and why each job handed to an engine that has
// not placed it yet waits there (the engine's own reason). It reads nothing more.
func (s *Scheduler) Waiting(head []*atlas.Job) map[string]string {
	queue := make([]Candidate, len(head))
	for i, j := range head {
		queue[i] = s.candidate(j.ID, j.NumGPUs, j.CreatedAt)
	}
	out := Decide(queue, s.free(), time.Now(), s.cfg.Fairness).Waiting
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.running {
		if why := s.pendingLocked(id); why != "" {
			out[id] = why
		}
	}
	return out
}

// WaitingFor says why one job waits: a queued job, what Waiting would say over the whole
// queue, reading the queue only from its head as far as a job could still start (WaitingOf);
// a job handed to an engine that has not placed it, the engine's reason. "" when it does not
// wait.
func (s *Scheduler) WaitingFor(ctx context.Context, j *atlas.Job) (string, error) {
	if j.State != atlas.StateQueued {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pendingLocked(j.ID), nil
	}
	return WaitingOf(func(limit int) ([]Candidate, error) { return s.head(ctx, limit) },
		s.candidate(j.ID, j.NumGPUs, j.CreatedAt), s.free(), time.Now(), s.cfg.Fairness)
}

// pendingLocked is the engine's reason why a job it was handed has not been placed ("":
// none); s.mu is held.
func (s *Scheduler) pendingLocked(id string) string {
	if r := s.running[id]; r != nil {
		if p, ok := r.handle.(executor.Placer); ok {
			return p.Pending()
		}
	}
	return ""
}

func (s *Scheduler) loop() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
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
	}
}

// free is what is not taken by running jobs.
func (s *Scheduler) free() Free {
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
	return free
}

// candidate is a queued job as the planner sees it.
func (s *Scheduler) candidate(id string, gpus int, queuedAt time.Time) Candidate {
	if _, cluster := s.cfg.Executor.(executor.Cluster); cluster {
		gpus = 0 // the cluster counts its GPUs; Atlas only limits how many jobs it hands over
	}
	return Candidate{ID: id, NumGPUs: gpus, QueuedAt: queuedAt}
}

// head reads the first limit jobs of the queue as the planner sees them.
func (s *Scheduler) head(ctx context.Context, limit int) ([]Candidate, error) {
	queued, err := s.cfg.Store.JobQueue(ctx, limit)
	cands := make([]Candidate, len(queued))
	for i, q := range queued {
		cands[i] = s.candidate(q.ID, q.NumGPUs, q.CreatedAt)
	}
	return cands, err
}

// round runs one scheduling decision and starts what it says. It reads the queue from its
// head only as far as a job could still start, so its cost does not grow with the queue
// (unless jobs that do not fit fill the head of the queue).
func (s *Scheduler) round() error {
	free := s.free()
	if free.Slots <= 0 {
		return nil // nothing can start; a job's end wakes the loop
	}
	plan, err := DecideHead(func(limit int) ([]Candidate, error) { return s.head(s.ctx, limit) }, free, time.Now(), s.cfg.Fairness)
	if err != nil {
		return err
	}
	for _, st := range plan.Start {
		j, err := s.cfg.Jobs.Claim(s.ctx, st.JobID, s.cfg.Executor.Name(), st.GPUIDs)
		if errors.Is(err, atlas.ErrConflict) || errors.Is(err, atlas.ErrNotFound) {
			continue // stopped or cleared since we listed it
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.running[j.ID] = &slot{gpus: st.GPUIDs}
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

// signal stops a running job: SIGTERM, then a kill after the grace period. A job still being
// started is stopped as soon as it has started (see start).
func (s *Scheduler) signal(id string) {
	s.mu.Lock()
	r := s.running[id]
	s.mu.Unlock()
	if r == nil || r.handle == nil {
		return
	}
	if err := r.handle.Stop(s.cfg.Jobs.StopGrace()); err != nil {
		s.cfg.Logger.Error("stop job", "job", id, "err", err)
	}
}
