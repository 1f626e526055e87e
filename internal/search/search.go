// Package search runs hyperparameter searches on top of the job service. A search is a job
// template (a bundle, a command, a job.config.yaml) and a space of params; each trial is an
// ordinary job, a copy of the template with params of its own (the n-th grid point, or the
// n-th random point of the search's seed), submitted through the job service and tagged with
// the search's id. asha and median also judge trials at rungs: as a trial logs the search's
// metric, its value at each rung step is compared with the values other trials had there, and
// a trial that falls behind is stopped through the job service with the reason "early stopped
// by search <id> at step N", so it ends stopped, never failed.
//
// Restart safety: everything the searcher knows is stored. Trial n is a function of the
// search's config and n; a trial is inserted with the search's count of submitted trials in
// one transaction (and only while the search runs); each decision at a rung is stored, in the
// order made, before it is acted on, and a decision is a pure function of the decisions stored
// before it. After a restart the searcher reads its searches back, makes the stops it had
// decided but not yet made, and goes on: no trial is submitted twice or decided differently.
//
// It never runs a job's code, moves a job from state to state itself, or talks HTTP: jobs
// change only through the job service.
package search

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

// Config wires the searcher.
type Config struct {
	Jobs *jobs.Service
	// Store is read for searches, trials and their values; jobs change only through Jobs.
	Store store.Store
	// Workers is the number of worker slots: the default max_concurrent_trials.
	Workers int
	Logger  *slog.Logger
}

// Searcher runs the searches of a server.
type Searcher struct {
	cfg Config

	mu    sync.Mutex
	runs  map[string]*run // searches that are running or stopping
	dirty map[string]bool // searches to look at again
	wake  chan struct{}

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	unlisten func()
}

// run is what the searcher keeps of a search while it runs. Its lock orders the search's
// decisions and submissions: one at a time, each made from what was stored before it.
type run struct {
	mu    sync.Mutex
	id    string
	user  string
	state atlas.SearchState
	cfg   *config.Search
	rule  Rule
	rungs []int64
	// decided holds each trial's decisions, rung by rung; values each rung's values in the
	// order they were recorded.
	decided map[string][]atlas.RungRecord
	values  [][]float64
	// settled holds trials that had ended when their values were last looked at: they cannot
	// reach another rung.
	settled map[string]bool
}

// New returns a searcher; Start starts it.
func New(cfg Config) *Searcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	return &Searcher{cfg: cfg, runs: map[string]*run{}, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Start reads back the searches that were running or stopping when the server last stopped,
// and starts looking after them: it hears of trials that change on the job service's events,
// and of their metric values in the requests that store them.
func (s *Searcher) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.unlisten = s.cfg.Jobs.Events().Listen(s.changed)
	s.cfg.Jobs.OnTrialTracked(s.tracked)
	active, err := s.cfg.Store.SearchList(ctx, "", atlas.SearchRunning, atlas.SearchStopping)
	if err != nil {
		return fmt.Errorf("read searches: %w", err)
	}
	for _, se := range active {
		s.markDirty(se.ID)
	}
	s.wg.Go(s.loop)
	return nil
}

// Stop stops looking after searches; they go on at the next Start. It is idempotent.
func (s *Searcher) Stop() {
	s.cfg.Jobs.OnTrialTracked(nil)
	if s.unlisten != nil {
		s.unlisten()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// changed hears every job change; a change of a trial is a reason to look at its search again.
// It runs in the publisher's goroutine and returns at once.
func (s *Searcher) changed(c jobs.Change) {
	if c.Search != "" && c.JobID != "" && !c.Tracked {
		s.markDirty(c.Search)
	}
}

func (s *Searcher) markDirty(id string) {
	s.mu.Lock()
	s.dirty[id] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop looks at the searches that changed: at once when told, and every few seconds at every
// search that runs, in case something went wrong the first time (a database error).
func (s *Searcher) loop() {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-tick.C:
			s.mu.Lock()
			for id := range s.runs {
				s.dirty[id] = true
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		ids := make([]string, 0, len(s.dirty))
		for id := range s.dirty {
			ids = append(ids, id)
		}
		clear(s.dirty)
		s.mu.Unlock()
		for _, id := range ids {
			if err := s.reconcile(s.ctx, id); err != nil && s.ctx.Err() == nil {
				s.cfg.Logger.Error("search", "search", id, "err", err)
			}
		}
	}
}

// load returns the run of a search, reading it from the store the first time; nil when the
// search has finished.
func (s *Searcher) load(ctx context.Context, id string) (*run, error) {
	s.mu.Lock()
	r := s.runs[id]
	s.mu.Unlock()
	if r != nil {
		return r, nil
	}
	// Read without the lock: markDirty takes it in the publisher's goroutine, which must not
	// wait on the database. Whoever installs the run first wins.
	se, err := s.cfg.Store.SearchGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if se.State.Finished() {
		return nil, nil
	}
	cfg, err := decodeConfig(se.Config)
	if err != nil {
		return nil, fmt.Errorf("search %s: read its config: %w", id, err)
	}
	r = &run{id: id, user: se.User, state: se.State, cfg: cfg, rungs: cfg.Rungs(), decided: map[string][]atlas.RungRecord{},
		settled: map[string]bool{}}
	switch cfg.Method {
	case "asha":
		r.rule = ASHA(cfg.ReductionFactor, cfg.SmallerIsBetter)
	case "median":
		r.rule = Median(cfg.SmallerIsBetter)
	}
	r.values = make([][]float64, len(r.rungs))
	recs, err := s.cfg.Store.SearchRungs(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		r.add(rec)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if first := s.runs[id]; first != nil {
		return first, nil
	}
	s.runs[id] = r
	return r, nil
}

func (r *run) add(rec atlas.RungRecord) {
	r.decided[rec.JobID] = append(r.decided[rec.JobID], rec)
	if rec.Rung < len(r.values) {
		r.values[rec.Rung] = append(r.values[rec.Rung], rec.Value)
	}
}

// stoppedAt returns the decision that stopped a trial, or nil.
func (r *run) stoppedAt(jobID string) *atlas.RungRecord {
	recs := r.decided[jobID]
	if n := len(recs); n > 0 && recs[n-1].Stop {
		return &recs[n-1]
	}
	return nil
}

func (s *Searcher) forget(id string) {
	s.mu.Lock()
	delete(s.runs, id)
	s.mu.Unlock()
}

// caller is who the searcher acts as on the job service: the search's user.
func (r *run) caller() *jobs.Caller { return &jobs.Caller{User: r.user, Admin: true} }

// tracked hears that metric values of a trial were stored, in the request that stored them:
// the decisions they lead to are made, and stored, before the job hears back.
func (s *Searcher) tracked(ctx context.Context, searchID, jobID string) {
	ctx = context.WithoutCancel(ctx) // a decision, once begun, is made and acted on
	if err := s.observeOne(ctx, searchID, jobID); err != nil {
		s.cfg.Logger.Error("search: judge a trial", "search", searchID, "job", jobID, "err", err)
		s.markDirty(searchID) // try again from the loop
	}
}

func (s *Searcher) observeOne(ctx context.Context, searchID, jobID string) error {
	r, err := s.load(ctx, searchID)
	if err != nil || r == nil || r.rule == nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != atlas.SearchRunning {
		return nil
	}
	j, err := s.cfg.Store.JobGet(ctx, jobID)
	if err != nil {
		return err
	}
	sums, err := s.cfg.Store.MetricSummaries(ctx, []string{jobID})
	if err != nil {
		return err
	}
	return s.observe(ctx, r, j, summaryOf(sums[jobID], r.cfg.Metric))
}

func summaryOf(ms []atlas.MetricSummary, key string) *atlas.MetricSummary {
	for i := range ms {
		if ms[i].Key == key {
			return &ms[i]
		}
	}
	return nil
}

// observe records a trial's decisions at the rungs it reached since it was last looked at,
// and stops it when one of them says so. It is called with the run's lock held.
func (s *Searcher) observe(ctx context.Context, r *run, j *atlas.Job, sum *atlas.MetricSummary) error {
	recs := r.decided[j.ID]
	k := len(recs)
	if sum == nil || r.rule == nil || k >= len(r.rungs) || r.stoppedAt(j.ID) != nil || Progress(sum, r.cfg.TimeAttribute) < r.rungs[k] {
		return nil
	}
	points, err := s.cfg.Store.MetricSeries(ctx, j.ID, r.cfg.Metric)
	if err != nil {
		return err
	}
	added := false
	defer func() {
		if added {
			if se, err := s.cfg.Store.SearchGet(ctx, r.id); err == nil {
				s.cfg.Jobs.Events().SearchChanged(se)
			}
		}
	}()
	for ; k < len(r.rungs); k++ {
		v, ok := ValueAt(points, r.rungs[k], r.cfg.TimeAttribute)
		if !ok {
			return nil
		}
		rec := atlas.RungRecord{SearchID: r.id, JobID: j.ID, Trial: j.SearchTrial, Rung: k, Step: r.rungs[k], Value: v,
			Stop: !r.rule(r.values[k], v)}
		if err := s.cfg.Store.SearchRungAdd(ctx, &rec); err != nil {
			if errors.Is(err, atlas.ErrConflict) {
				s.forget(r.id) // what is stored is not what this run knows: read it again
			}
			return err
		}
		r.add(rec)
		added = true
		if rec.Stop {
			return s.stopJob(ctx, r, j, StopReason(r.id, rec.Step))
		}
	}
	return nil
}

// stopJob stops one of the search's trials with a reason, unless it has ended or is stopping
// already; a trial that ends or is deleted meanwhile is no error.
func (s *Searcher) stopJob(ctx context.Context, r *run, j *atlas.Job, reason string) error {
	if j.State.Finished() || j.State == atlas.StateStopping {
		return nil
	}
	_, err := s.cfg.Jobs.StopWithReason(ctx, r.caller(), j.ID, reason)
	if errors.Is(err, atlas.ErrConflict) || errors.Is(err, atlas.ErrNotFound) {
		return nil
	}
	return err
}

// StopReason is the reason a trial stopped early by a search ends with.
func StopReason(searchID string, step int64) string {
	return fmt.Sprintf("early stopped by search %s at step %d", searchID, step)
}

// reconcile brings a search up to date: it records the decisions its trials' values call for
// (a trial's last values, stored when it ended, or while the server was down), makes the stops
// decided but not made, submits trials while there is room, and ends the search when all its
// trials have.
func (s *Searcher) reconcile(ctx context.Context, id string) error {
	r, err := s.load(ctx, id)
	if err != nil || r == nil {
		if errors.Is(err, atlas.ErrNotFound) {
			s.forget(id)
			return nil
		}
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	se, err := s.cfg.Store.SearchGet(ctx, id)
	if err != nil {
		return err
	}
	r.state = se.State
	if se.State.Finished() {
		s.forget(id)
		return nil
	}
	trials, err := s.cfg.Store.SearchTrials(ctx, id)
	if err != nil {
		return err
	}
	if err := s.observeAll(ctx, r, trials); err != nil {
		return err
	}
	var unfinished []*atlas.Job
	for _, j := range trials {
		if !j.State.Finished() {
			unfinished = append(unfinished, j)
		}
	}
	switch se.State {
	case atlas.SearchRunning:
		for _, j := range unfinished {
			if rec := r.stoppedAt(j.ID); rec != nil {
				if err := s.stopJob(ctx, r, j, StopReason(r.id, rec.Step)); err != nil {
					return err
				}
			}
		}
		total, limit := r.cfg.Trials(), r.cfg.MaxConcurrentTrials
		if limit == 0 {
			limit = s.cfg.Workers
		}
		for n := se.Trials; n < total && len(unfinished) < limit; n++ {
			j, err := s.submit(ctx, r, se, n)
			var sse *store.SearchStateError
			switch {
			case errors.As(err, &sse):
				return nil // stopped meanwhile: the stop's own reconcile follows
			case errors.Is(err, atlas.ErrInvalid) || errors.Is(err, atlas.ErrDenied) || errors.Is(err, atlas.ErrNotFound):
				return s.fail(ctx, r, fmt.Sprintf("trial %d could not be submitted: %s", n, atlas.OneLine(err)), unfinished)
			case err != nil:
				return err
			}
			unfinished = append(unfinished, j)
			se.Trials = n + 1
		}
		if se.Trials >= total && len(unfinished) == 0 {
			return s.end(ctx, r, atlas.SearchCompleted, "")
		}
	case atlas.SearchStopping:
		for _, j := range unfinished {
			if err := s.stopJob(ctx, r, j, "stopped with search "+id); err != nil {
				return err
			}
		}
		if len(unfinished) == 0 {
			return s.end(ctx, r, atlas.SearchStopped, "")
		}
	}
	return nil
}

// observeAll records the decisions due for the search's trials: those running, and those that
// ended since they were last looked at (their last values were stored when they ended).
func (s *Searcher) observeAll(ctx context.Context, r *run, trials []*atlas.Job) error {
	if r.rule == nil || r.state != atlas.SearchRunning {
		return nil
	}
	var look []*atlas.Job
	var ids []string
	for _, j := range trials {
		if j.StartedAt == nil || r.settled[j.ID] {
			continue
		}
		look = append(look, j)
		ids = append(ids, j.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	sums, err := s.cfg.Store.MetricSummaries(ctx, ids)
	if err != nil {
		return err
	}
	for _, j := range look {
		if err := s.observe(ctx, r, j, summaryOf(sums[j.ID], r.cfg.Metric)); err != nil {
			return err
		}
		if j.State.Finished() {
			r.settled[j.ID] = true
		}
	}
	return nil
}

// submit queues trial n of a search.
func (s *Searcher) submit(ctx context.Context, r *run, se *atlas.Search, n int) (*atlas.Job, error) {
	t := *se.Template
	t.ID = TrialID(se.ID, n)
	t.SearchID, t.SearchTrial = se.ID, n
	t.Params = Point(r.cfg, se.Template.Params, n)
	j, _, err := s.cfg.Jobs.SubmitTrial(ctx, &t)
	return j, err
}

// TrialID is the job id of trial n of a search.
func TrialID(searchID string, n int) string { return fmt.Sprintf("%s-t%d", searchID, n) }

// fail ends a search that cannot go on, and stops its trials.
func (s *Searcher) fail(ctx context.Context, r *run, reason string, unfinished []*atlas.Job) error {
	s.cfg.Logger.Warn("search failed", "search", r.id, "reason", reason)
	if err := s.end(ctx, r, atlas.SearchFailed, reason); err != nil {
		return err
	}
	for _, j := range unfinished {
		if err := s.stopJob(ctx, r, j, "search "+r.id+" failed"); err != nil {
			return err
		}
	}
	return nil
}

// end moves a search to a final state and forgets it.
func (s *Searcher) end(ctx context.Context, r *run, to atlas.SearchState, reason string) error {
	se, err := s.cfg.Store.SearchSetState(ctx, r.id, to, reason)
	if err != nil {
		return err
	}
	r.state = se.State
	s.forget(r.id)
	s.cfg.Jobs.Events().SearchChanged(se)
	s.cfg.Logger.Info("search ended", "search", r.id, "state", se.State)
	return nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Submitted is the answer to a search's submission.
type Submitted struct {
	Search   *sdk.Search
	Warnings []string
	// Existing is set when the submission was a retry of one already stored.
	Existing bool
}

// Submit starts a search: the job every trial runs is checked as a submission is (nothing is
// queued when it would be refused), the search's config is parsed, and the search is stored
// running; its first trials follow at once. Bad input is one ErrInvalid, and nothing is stored.
func (s *Searcher) Submit(ctx context.Context, c *jobs.Caller, spec *sdk.SearchSpec) (*Submitted, error) {
	id := spec.ID
	if id == "" {
		id = uuid.NewString()
	}
	if !idPattern.MatchString(id) {
		return nil, atlas.Invalidf("invalid search id %q: use up to 100 letters, digits, '.', '_' and '-'", id)
	}
	if spec.Job.ID != "" || spec.Job.Params != nil {
		return nil, atlas.Invalidf("a search's job has no id or params of its own: each trial gets them from the search")
	}
	cfg, err := parseSearch(spec)
	if err != nil {
		return nil, err
	}
	tmpl, warnings, err := s.cfg.Jobs.Template(ctx, c, &spec.Job)
	if err != nil {
		return nil, err
	}
	warnings = append(warnings, cfg.Warnings...)
	if cfg.Seed == nil {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed := int64(binary.LittleEndian.Uint64(b[:]) >> 1)
		cfg.Seed = &seed
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	se := &atlas.Search{ID: id, Project: tmpl.Project, User: tmpl.User, State: atlas.SearchRunning, Config: data, Template: tmpl,
		CreatedAt: time.Now().UTC()}
	if err := s.cfg.Store.SearchInsert(ctx, se); err != nil {
		if !errors.Is(err, atlas.ErrConflict) || spec.ID == "" {
			return nil, err
		}
		prev, gerr := s.cfg.Store.SearchGet(ctx, id)
		if gerr != nil || !jobs.SameSubmission(prev.Template, tmpl) {
			return nil, atlas.Conflictf("search %s already exists", id)
		}
		view, err := s.view(ctx, prev, false)
		return &Submitted{Search: view, Warnings: warnings, Existing: true}, err
	}
	s.cfg.Jobs.Events().SearchChanged(se)
	s.markDirty(id)
	view, err := s.view(ctx, se, false)
	return &Submitted{Search: view, Warnings: warnings}, err
}

// parseSearch reads the search of a submission: its own config, or the search: section of the
// job's job.config.yaml.
func parseSearch(spec *sdk.SearchSpec) (*config.Search, error) {
	if spec.Config != "" {
		name := spec.ConfigName
		if name == "" {
			name = "search config"
		}
		return config.ParseSearch(name, []byte(spec.Config))
	}
	if spec.Job.JobConfig == "" {
		return nil, atlas.Invalidf("no search given: add a search: section to %s, or give the search in a file of its own (--config FILE)", config.JobConfigFile)
	}
	cfg, err := config.ParseSearch(config.JobConfigFile, []byte(spec.Job.JobConfig))
	var ce *config.Error
	if errors.As(err, &ce) && ce.Key == "" && ce.Line <= 1 {
		return nil, atlas.Invalidf("%s has no search: section: add one, or give the search in a file of its own (--config FILE)", config.JobConfigFile)
	}
	return cfg, err
}

// StopSearch stops a search: it submits no more trials, and its queued and running trials are
// stopped with the reason "stopped with search <id>". The search is stopping until they have
// all ended, then stopped.
func (s *Searcher) StopSearch(ctx context.Context, c *jobs.Caller, id string) (*sdk.Search, error) {
	se, err := s.Get(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Jobs.MayControlOwned(c, "search "+id, se.User); err != nil {
		return nil, err
	}
	if se.State.Finished() {
		return nil, atlas.Conflictf("search %s is %s and cannot be stopped", id, se.State)
	}
	ctx = context.WithoutCancel(ctx)
	if se.State == atlas.SearchRunning {
		r, err := s.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if r != nil {
			r.mu.Lock()
		}
		se, err = s.cfg.Store.SearchSetState(ctx, id, atlas.SearchStopping, "stopped on request")
		if r != nil {
			if err == nil {
				r.state = se.State
			}
			r.mu.Unlock()
		}
		var sse *store.SearchStateError
		if errors.As(err, &sse) {
			se = sse.Search // it ended, or another stop came first
		} else if err != nil {
			return nil, err
		} else {
			s.cfg.Jobs.Events().SearchChanged(se)
		}
	}
	if err := s.reconcile(ctx, id); err != nil {
		return nil, err
	}
	if se, err = s.cfg.Store.SearchGet(ctx, id); err != nil {
		return nil, err
	}
	return s.view(ctx, se, true)
}

// Get returns a search the caller may read.
func (s *Searcher) Get(ctx context.Context, c *jobs.Caller, id string) (*atlas.Search, error) {
	se, err := s.cfg.Store.SearchGet(ctx, id)
	if err != nil {
		return nil, err
	}
	return se, s.cfg.Jobs.MayReadOwned(c, "search "+id, se.User)
}
