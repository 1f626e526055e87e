// Package jobs is the job service: the one place where a job moves from state to state.
//
// It owns a job's lifecycle: submit (merging a submission with its job.config.yaml,
// validation, the volume policy, the bundle check), tracking (batches, a job's spool, the
// output a job ships itself), stop, the end of a job (whoever reports it), delete and
// clear-queue (with blob collection), job tokens, who may do what to which job, and the
// events that tell the rest of the server and its clients that something changed. The HTTP
// API decodes a request, calls the service and encodes the answer; the scheduler calls the
// service to claim, start and end jobs, and listens to its events to learn of new jobs and
// stop requests.
//
// The allowed state changes are atlas.CanTransition; the store checks the previous state in
// the same statement that changes it, so two writers racing on one job cannot both win. This
// package must never run a job's code or talk HTTP.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store"
)

// Config wires the service.
type Config struct {
	Store  store.Store
	Blobs  blob.Store
	Logs   *logs.Dir
	Events *Events
	// Secret signs job tokens.
	Secret []byte
	// Auth is on when every request carries a token: callers are then checked against the
	// jobs they touch.
	Auth bool
	// AllowedVolumeRoots are the host paths under which worker.volumes of untrusted
	// submitters (remote, or any non-admin when Auth is on) must lie.
	AllowedVolumeRoots []string
	// BundleLimits bound what a bundle may unpack to (zero fields: bundle.DefaultLimits).
	BundleLimits bundle.Limits
	// Capacity is what the machine offers jobs; a job asking for more is refused at submit.
	Capacity Capacity
	// Admit, when set, is a cluster's own check of scheduled jobs at submit (what it can
	// mount and place); it replaces Capacity and the volume policy.
	Admit func(j *atlas.Job) error
	// Limits bound what jobs may track (zero fields: DefaultLimits).
	Limits Limits
	// ScratchDir is where bundles are unpacked to be checked, on the server's disk.
	ScratchDir string
	// SpoolRoot holds one spool directory per job, where the SDK leaves values it could not
	// deliver; they are stored when the job's end is recorded ("": no spools).
	SpoolRoot string
	// StopGrace is how long a job asked to stop may take to exit before it is killed.
	StopGrace time.Duration
	// HeartbeatTimeout fails scripts run by hand that stopped reporting (0: never).
	HeartbeatTimeout time.Duration
	// NameSource draws the names of jobs submitted without one (nil: seeded at random).
	NameSource rand.Source
	Logger     *slog.Logger
}

// Capacity is what jobs may ask for.
type Capacity struct {
	GPUs int
	// MemoryGB is the machine's memory (0: unknown, not checked).
	MemoryGB float64
}

// Service is the job service.
type Service struct {
	cfg Config
	// blobMu orders "does the bundle exist, then insert a job using it" against "nothing uses
	// this blob, delete it", so collection never removes a blob a new job needs.
	blobMu sync.RWMutex
	// checked remembers how bundles fared when they were unpacked (nil: cleanly), so each is
	// checked once.
	checked sync.Map
	// keys knows the keys of jobs that track, for Limits.KeysPerJob.
	keys keyCache
	// projects remembers the project and search of jobs that track values (job id -> jobRef).
	projects sync.Map
	// trialHook is a TrialHook, told of the metric values of a search's trials.
	trialHook atomic.Value
	// names makes up the names of jobs submitted without one.
	names *namer

	started time.Time
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New returns a service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Events == nil {
		cfg.Events = NewEvents()
	}
	if cfg.Limits.KeysPerJob <= 0 {
		cfg.Limits.KeysPerJob = DefaultLimits.KeysPerJob
	}
	if cfg.Limits.KeysPerBatch <= 0 {
		cfg.Limits.KeysPerBatch = DefaultLimits.KeysPerBatch
	}
	def := bundle.DefaultLimits
	if cfg.BundleLimits.MaxBytes <= 0 {
		cfg.BundleLimits.MaxBytes = def.MaxBytes
	}
	if cfg.BundleLimits.MaxEntries <= 0 {
		cfg.BundleLimits.MaxEntries = def.MaxEntries
	}
	return &Service{cfg: cfg, started: time.Now(), names: newNamer(cfg.NameSource)}
}

// Events is where the service announces changes.
func (s *Service) Events() *Events { return s.cfg.Events }

// StopGrace is how long a job asked to stop may take to exit before it is killed.
func (s *Service) StopGrace() time.Duration { return s.cfg.StopGrace }

// BundleLimits are the limits bundles are unpacked with.
func (s *Service) BundleLimits() bundle.Limits { return s.cfg.BundleLimits }

// Start starts the service's chores: the watch over scripts run by hand (one that stops
// sending heartbeats for HeartbeatTimeout is failed, so it does not stay "running" forever),
// and the hourly collection of blobs nothing refers to.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.started = time.Now()
	s.wg.Go(func() {
		tick := time.NewTicker(BlobGrace)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				n, err := s.collectBlobs(ctx, BlobGrace)
				if err != nil && ctx.Err() == nil {
					s.cfg.Logger.Warn("collect unused blobs", "err", err)
				} else if n > 0 {
					s.cfg.Logger.Info("removed blobs nothing refers to", "blobs", n)
				}
			}
		}
	})
	if s.cfg.HeartbeatTimeout > 0 {
		s.wg.Go(func() {
			tick := time.NewTicker(min(10*time.Second, s.cfg.HeartbeatTimeout))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					s.failSilentScripts(ctx)
				}
			}
		})
	}
	return nil
}

// Stop ends the watch. It is idempotent.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Caller is who asks the service for something, as the API authenticated them.
type Caller struct {
	// User is the user; for a job token, the job's user.
	User  string
	Admin bool
	// JobID is set when the request carries a job's own token; Job is that job as loaded to
	// authenticate the request (nil if it no longer exists).
	JobID string
	Job   *atlas.Job
	// Local is set for requests from this machine (loopback or the server's unix socket).
	Local bool
	// RunAs is "uid:gid" of the local user who made the request, as the kernel reports it
	// (never what a client claims); empty when unknown.
	RunAs string
}

// trusted reports whether the caller may mount any host path into its jobs: a local user of
// a server without authentication, or an admin.
func (s *Service) trusted(c *Caller) bool {
	return (c.Local && !s.cfg.Auth && c.JobID == "") || c.Admin
}

// mayRead checks that the caller may see a job: anyone without authentication; with it, a
// job's token sees only jobs of its own user.
func (s *Service) mayRead(c *Caller, j *atlas.Job) error {
	if c.JobID == j.ID {
		return nil
	}
	return s.MayReadOwned(c, "job "+j.ID, j.User)
}

// mayWrite checks that the caller may track values on or tag a job: a job's token only its
// own job; a user their own jobs (an admin any).
func (s *Service) mayWrite(c *Caller, j *atlas.Job) error {
	switch {
	case !s.cfg.Auth && c.JobID == "":
		return nil
	case c.JobID != "":
		if c.JobID == j.ID {
			return nil
		}
		return atlas.Deniedf("a job's token can only write to its own job")
	case c.Admin || c.User == j.User:
		return nil
	}
	return atlas.Deniedf("job %s belongs to %s", j.ID, j.User)
}

// mayControl checks that the caller may stop or delete a job: its user, or an admin.
func (s *Service) mayControl(c *Caller, j *atlas.Job) error {
	return s.mayControlOwned(c, "job "+j.ID, j.User, "stop or delete")
}

// MayReadOwned checks that the caller may see something other than a job (a search, what) that
// owner owns, by the rule for jobs.
func (s *Service) MayReadOwned(c *Caller, what, owner string) error {
	if !s.cfg.Auth || c.JobID == "" || c.User == owner {
		return nil
	}
	return atlas.NotFoundf("%s not found", what)
}

// MayControlOwned checks that the caller may stop something other than a job (a search, what)
// that owner owns, by the rule for jobs.
func (s *Service) MayControlOwned(c *Caller, what, owner string) error {
	return s.mayControlOwned(c, what, owner, "stop")
}

func (s *Service) mayControlOwned(c *Caller, what, owner, verbs string) error {
	if !s.cfg.Auth || c.Admin || (c.JobID == "" && c.User == owner) {
		return nil
	}
	return atlas.Deniedf("%s belongs to %s; only they or an admin can %s it", what, owner, verbs)
}

// Job returns a job the caller may read.
func (s *Service) Job(ctx context.Context, c *Caller, id string) (*atlas.Job, error) {
	j, err := s.cfg.Store.JobGet(ctx, id)
	if err != nil {
		return nil, err
	}
	return j, s.mayRead(c, j)
}

// isUUID reports whether id is a whole id as the server generates them.
func isUUID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}

// MinIDPrefix is the fewest characters of a job's id that name it, when no other job's id
// starts with them.
const MinIDPrefix = 4

// ResolveID returns the id of the job that id names: the job whose id it is, else the one job
// whose id starts with it (at least MinIDPrefix characters; the GUI shows 8). An id that
// starts several jobs' ids is ErrInvalid, saying how many; one that names no job is returned
// as it is, for the lookup that follows to say it does not exist. A job's own token names
// jobs by their whole id only, and an id in the form the server generates (a UUID, which the
// GUI and the CLI send once they have it) is taken as whole without a lookup.
func (s *Service) ResolveID(ctx context.Context, c *Caller, id string) (string, error) {
	if c.JobID != "" || len(id) < MinIDPrefix || !idPattern.MatchString(id) || isUUID(id) {
		return id, nil
	}
	const shown = 3
	ids, total, err := s.cfg.Store.JobIDsByPrefix(ctx, id, shown)
	switch {
	case err != nil:
		return "", fmt.Errorf("look up job id %s: %w", id, err)
	case total == 0 || ids[0] == id:
		return id, nil
	case total == 1:
		return ids[0], nil
	}
	more := ""
	if total > len(ids) {
		more = ", …"
	}
	return "", atlas.Invalidf("job id %s is ambiguous: %d jobs' ids start with it (%s%s); give more of the id",
		id, total, strings.Join(ids, ", "), more)
}

// Archive returns a job whose archive the caller may download. An archive holds the job's
// whole working directory, so with authentication only the job's user (or an admin, or a job
// of that user) may read it.
func (s *Service) Archive(ctx context.Context, c *Caller, id string) (*atlas.Job, error) {
	return s.folder(ctx, c, id, "archive")
}

// Bundle returns a job whose bundle (the folder it was submitted with) the caller may
// download: the job itself, with its own token, and whoever may download its archive, which
// holds the same files.
func (s *Service) Bundle(ctx context.Context, c *Caller, id string) (*atlas.Job, error) {
	return s.folder(ctx, c, id, "bundle")
}

// folder returns a job whose files (its archive or bundle) the caller may download.
func (s *Service) folder(ctx context.Context, c *Caller, id, what string) (*atlas.Job, error) {
	j, err := s.Job(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if s.cfg.Auth && !c.Admin && c.User != j.User {
		return nil, atlas.Deniedf("the %s of job %s is its user's (%s) or an admin's to read", what, id, j.User)
	}
	return j, nil
}

// writable loads a job the caller may write to. A job writing to itself was loaded when its
// token was checked.
func (s *Service) writable(ctx context.Context, c *Caller, id string) (*atlas.Job, error) {
	if c.Job != nil && c.Job.ID == id {
		return c.Job, nil
	}
	j, err := s.cfg.Store.JobGet(ctx, id)
	if err != nil {
		return nil, err
	}
	return j, s.mayWrite(c, j)
}

// Scope narrows a job listing to what the caller may read: with authentication, a job's
// token lists only its own user's jobs.
func (s *Service) Scope(c *Caller, p *store.JobListParams) {
	if s.cfg.Auth && c.JobID != "" {
		p.Filters = append(p.Filters, store.Filter{Field: "user", Op: "in", Values: []string{c.User}})
	}
}

// changed announces a job's new state.
func (s *Service) changed(j *atlas.Job) {
	if j.State.Finished() {
		s.keys.forget(j.ID)
	}
	s.cfg.Events.JobChanged(j)
}
