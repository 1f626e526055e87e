package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

const specLimit = 16 << 20

// toWire converts a job for the API. Tracked values are added by enrich.
func toWire(j *atlas.Job) *sdk.Job {
	w := &sdk.Job{
		ID: j.ID, Name: j.Name, Project: j.Project, User: j.User, State: string(j.State), Mode: string(j.Mode), Priority: j.Priority,
		ParentID: j.ParentID, Command: j.Command, Entrypoint: j.Entrypoint, SubmittedParams: j.Params, NumGPUs: j.NumGPUs,
		RAMGB: j.RAMGB, RunAs: j.RunAs, BundleDigest: j.BundleDigest, ArchiveDigest: j.ArchiveDigest, Executor: j.Executor,
		GPUIDs: j.GPUIDs, ExitCode: j.ExitCode, Reason: j.Reason, StopRequested: j.State == atlas.StateStopping,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, StoppingAt: j.StoppingAt, ReportedExitCode: j.ReportedExitCode,
		SearchID: j.SearchID, SearchTrial: j.SearchTrial,
		Params: map[string]any{}, Metrics: []sdk.Metric{}, Tags: map[string]string{}, Worker: *jobs.WireWorker(j.Worker),
	}
	w.WorkerID = executor.WorkerID(j.RunInfo)
	if j.StartedAt != nil {
		end := time.Now()
		if j.FinishedAt != nil {
			end = *j.FinishedAt
		}
		d := end.Sub(*j.StartedAt).Seconds()
		w.DurationSeconds = &d
	}
	return w
}

// listedKeys caps the params and the metrics of each job in a listing (a job may have up to
// the server's max_keys_per_job of each; GET /jobs/{id} has them all), and listedColumns the
// param and metric names of a project, so a listing stays a page, whatever jobs logged.
const (
	listedKeys    = 1000
	listedColumns = 5000
)

// enrich adds params, metric summaries and tags to jobs, in three queries; with perJob > 0 at
// most perJob params and metrics of each (the first by name), and keys_truncated says so.
func (s *Server) enrich(ctx context.Context, jobs []*sdk.Job, perJob int) error {
	if len(jobs) == 0 {
		return nil
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	// Three reads of their own, at once: the store reads on several connections.
	var (
		params  map[string]map[string]any
		metrics map[string][]atlas.MetricSummary
		tags    map[string]map[string]string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { params, err = s.cfg.Store.Params(gctx, ids); return err })
	g.Go(func() (err error) { metrics, err = s.cfg.Store.MetricSummaries(gctx, ids); return err })
	g.Go(func() (err error) { tags, err = s.cfg.Store.Tags(gctx, ids); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	for _, j := range jobs {
		if p := params[j.ID]; p != nil {
			if perJob > 0 && len(p) > perJob {
				for _, k := range slices.Sorted(maps.Keys(p))[perJob:] {
					delete(p, k)
				}
				j.KeysTruncated = true
			}
			j.Params = p
		}
		ms := metrics[j.ID]
		if perJob > 0 && len(ms) > perJob {
			slices.SortFunc(ms, func(a, b atlas.MetricSummary) int { return strings.Compare(a.Key, b.Key) })
			ms, j.KeysTruncated = ms[:perJob], true
		}
		for _, m := range ms {
			j.Metrics = append(j.Metrics, sdk.Metric{Key: m.Key, Last: m.Last, LastStep: m.LastStep, Count: m.Count, Min: m.Min, Max: m.Max})
		}
		if t := tags[j.ID]; t != nil {
			j.Tags = t
		}
	}
	return nil
}

// fullJob returns one job with everything tracked for it and, if queued, its queue position.
func (s *Server) fullJob(ctx context.Context, j *atlas.Job) (*sdk.Job, error) {
	w := toWire(j)
	if err := s.enrich(ctx, []*sdk.Job{w}, 0); err != nil {
		return nil, err
	}
	arts, err := s.cfg.Store.Artifacts(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	for _, a := range arts {
		w.Artifacts = append(w.Artifacts, sdk.Artifact{Key: a.Key, Filename: a.Filename, Digest: a.Digest, Size: a.Size,
			CreatedAt: a.CreatedAt, URL: "/api/v1/jobs/" + url.PathEscape(j.ID) + "/artifacts/" + url.PathEscape(a.Key)})
	}
	if j.State == atlas.StateQueued {
		if w.QueuePosition, err = s.cfg.Store.JobQueuePosition(ctx, j.ID); err != nil {
			return nil, err
		}
	}
	if j.State == atlas.StateQueued || j.State == atlas.StateStarting { // a cluster that has not placed it says why
		if w.WaitingReason, err = s.cfg.Queue.WaitingFor(ctx, j); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request) error {
	var spec sdk.JobSpec
	if err := decode(w, r, specLimit, &spec); err != nil {
		return err
	}
	res, err := s.cfg.Jobs.Submit(r.Context(), s.submitter(r), &spec)
	if err != nil {
		return err
	}
	writeSubmitted(w, res)
	return nil
}

func (s *Server) cloneJob(w http.ResponseWriter, r *http.Request) error {
	var spec sdk.CloneSpec
	if err := decode(w, r, specLimit, &spec); err != nil {
		return err
	}
	res, err := s.cfg.Jobs.Clone(r.Context(), s.submitter(r), r.PathValue("id"), &spec)
	if err != nil {
		return err
	}
	writeSubmitted(w, res)
	return nil
}

// writeSubmitted answers a submission: 201 with the new job, or 200 for a retry of one that was
// stored before.
func writeSubmitted(w http.ResponseWriter, res *jobs.Submitted) {
	writeJSON(w, createdStatus(res.Existing), &sdk.SubmitResult{ID: res.Job.ID, Job: toWire(res.Job), Warnings: res.Warnings, Token: res.Token})
}

// submitter is the caller of a request that submits work: on a server without --auth, what it
// submits runs as the local user who opened the connection.
func (s *Server) submitter(r *http.Request) *jobs.Caller {
	c := callerOf(r)
	if c.Local && !s.cfg.Auth {
		if who, ok := peerUser(r); ok {
			c.RunAs = who
		}
	}
	return c
}

// createdStatus is the status of a submission's answer: 201, or 200 for a retry of one that was
// stored before.
func createdStatus(existing bool) int {
	if existing {
		return http.StatusOK
	}
	return http.StatusCreated
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx := r.Context()
	if wait := r.URL.Query().Get("wait_while"); wait != "" {
		return s.waitJob(w, r, id, strings.Split(wait, ","))
	}
	j, err := s.cfg.Jobs.Job(r.Context(), callerOf(r), id)
	if err != nil {
		return err
	}
	full, err := s.fullJob(ctx, j)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, full)
	return nil
}

// waitJob answers once the job's state is not one of states, or at the timeout (max 60s).
func (s *Server) waitJob(w http.ResponseWriter, r *http.Request, id string, states []string) error {
	timeout, err := waitTimeout(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	changes, unsubscribe := s.cfg.Jobs.Events().Subscribe()
	defer unsubscribe()
	recheck := time.NewTicker(time.Second) // the hub may drop changes for slow subscribers
	defer recheck.Stop()
	for {
		j, err := s.cfg.Jobs.Job(r.Context(), callerOf(r), id)
		if err != nil {
			return err
		}
		waiting := false
		for _, st := range states {
			waiting = waiting || string(j.State) == strings.TrimSpace(st)
		}
		if !waiting || ctx.Err() != nil {
			full, err := s.fullJob(r.Context(), j)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, full)
			return nil
		}
		nextChange(ctx, changes, recheck.C, func(c jobs.Change) bool { return c.JobID == id && !c.Tracked })
	}
}

// nextChange waits for a change that match accepts, the next recheck (the hub may drop
// changes for slow subscribers), or the end of ctx: what a long poll waits for before it looks
// again.
func nextChange(ctx context.Context, changes <-chan jobs.Change, recheck <-chan time.Time, match func(jobs.Change) bool) {
	for {
		select {
		case c := <-changes:
			if match(c) {
				return
			}
		case <-recheck:
			return
		case <-ctx.Done():
			return
		}
	}
}

// waitTimeout is how long a long poll may wait: its timeout parameter (25 s when not given),
// at most 60 s.
func waitTimeout(r *http.Request) (time.Duration, error) {
	t := r.URL.Query().Get("timeout")
	if t == "" {
		return 25 * time.Second, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, atlas.Invalidf("invalid timeout %q: want a duration like 30s", t)
	}
	return min(d, 60*time.Second), nil
}

// listParams reads the selection shared by job lists and value columns: project, state, user,
// q (id contains) and filters.
func listParams(r *http.Request) (*store.JobListParams, error) {
	q := r.URL.Query()
	p := &store.JobListParams{Project: q.Get("project"), Sort: q.Get("sort"), Limit: 100}
	if v := q.Get("state"); v != "" {
		for _, st := range strings.Split(v, ",") {
			if !atlas.State(st).Valid() {
				return nil, atlas.Invalidf("invalid state %q", st)
			}
			p.States = append(p.States, atlas.State(st))
		}
	}
	if v := q.Get("user"); v != "" {
		p.Filters = append(p.Filters, store.Filter{Field: "user", Op: "in", Values: strings.Split(v, ",")})
	}
	if v := q.Get("q"); v != "" {
		p.Filters = append(p.Filters, store.Filter{Field: "id", Op: "contains", Values: []string{v}})
	}
	if v := q.Get("filters"); v != "" {
		var fs []sdk.Filter
		if err := json.Unmarshal([]byte(v), &fs); err != nil {
			return nil, atlas.Invalidf("invalid filters: want a JSON list of {field, op, values, min, max}: %v", err)
		}
		for _, f := range fs {
			p.Filters = append(p.Filters, store.Filter{Field: f.Field, Op: f.Op, Values: f.Values, Min: f.Min, Max: f.Max})
		}
	}
	return p, nil
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p, err := listParams(r)
	if err != nil {
		return err
	}
	p.Desc = q.Get("desc") == "true" || (q.Get("sort") == "" && q.Get("desc") == "")
	if v := q.Get("limit"); v != "" {
		if p.Limit, err = strconv.Atoi(v); err != nil {
			return atlas.Invalidf("invalid limit %q", v)
		}
	}
	if v := q.Get("offset"); v != "" {
		if p.Offset, err = strconv.Atoi(v); err != nil || p.Offset < 0 {
			return atlas.Invalidf("invalid offset %q", v)
		}
	}
	s.cfg.Jobs.Scope(callerOf(r), p)
	// The page (then what its jobs tracked), the count and the project's columns are read at
	// once: the store reads on several connections.
	out := &sdk.JobList{}
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() error {
		page := *p
		page.SkipTotal = p.Limit > 0 // a listing of every job counts them itself
		jobs, total, err := s.cfg.Store.JobList(ctx, &page)
		if err != nil {
			return err
		}
		if !page.SkipTotal {
			out.Total = total
		}
		out.Jobs = make([]*sdk.Job, len(jobs))
		for i, j := range jobs {
			out.Jobs[i] = toWire(j)
		}
		return s.enrich(ctx, out.Jobs, listedKeys)
	})
	if p.Limit > 0 {
		g.Go(func() (err error) { out.Total, err = s.cfg.Store.JobCount(ctx, p); return err })
	}
	// A project's param and metric names are of every user's jobs: not for a job's token,
	// which reads only its own user's jobs.
	if p.Project != "" && callerOf(r).JobID == "" {
		g.Go(func() (err error) {
			if out.Params, out.Metrics, err = s.cfg.Store.ProjectColumns(ctx, p.Project); err != nil {
				return err
			}
			if len(out.Params) > listedColumns || len(out.Metrics) > listedColumns {
				out.Params, out.Metrics = out.Params[:min(len(out.Params), listedColumns)], out.Metrics[:min(len(out.Metrics), listedColumns)]
				out.ColumnsTruncated = true
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) stopJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.cfg.Jobs.StopJob(r.Context(), callerOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWire(j))
	return nil
}

func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Jobs.DeleteJob(r.Context(), callerOf(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
