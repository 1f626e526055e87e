package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

const specLimit = 16 << 20

// toWire converts a job for the API. Tracked values are added by enrich.
func toWire(j *atlas.Job) *sdk.Job {
	w := &sdk.Job{
		ID: j.ID, Project: j.Project, User: j.User, State: string(j.State), Mode: string(j.Mode), Priority: j.Priority,
		ParentID: j.ParentID, Command: j.Command, Entrypoint: j.Entrypoint, SubmittedParams: j.Params, NumGPUs: j.NumGPUs,
		RAMGB: j.RAMGB, RunAs: j.RunAs, BundleDigest: j.BundleDigest, ArchiveDigest: j.ArchiveDigest, Executor: j.Executor,
		GPUIDs: j.GPUIDs, ExitCode: j.ExitCode, Reason: j.Reason, StopRequested: j.StopRequested,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt,
		Params: map[string]any{}, Metrics: []sdk.Metric{}, Tags: map[string]string{},
		Worker: sdk.Worker{Image: j.Worker.Image, Entrypoint: j.Worker.Entrypoint, Command: j.Worker.Command,
			WorkingDir: j.Worker.WorkingDir, Environment: j.Worker.Environment},
	}
	if len(j.Worker.Volumes) > 0 {
		w.Worker.Volumes = map[string]sdk.Volume{}
		for k, v := range j.Worker.Volumes {
			w.Worker.Volumes[k] = sdk.Volume{Bind: v.Bind, Mode: v.Mode}
		}
	}
	var ri struct {
		PID         int    `json:"pid"`
		ContainerID string `json:"container_id"`
	}
	if j.RunInfo != "" && json.Unmarshal([]byte(j.RunInfo), &ri) == nil {
		switch {
		case ri.ContainerID != "":
			w.WorkerID = "container " + ri.ContainerID[:min(12, len(ri.ContainerID))]
		case ri.PID > 0:
			w.WorkerID = fmt.Sprintf("pid %d", ri.PID)
		}
	}
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

// enrich adds params, metric summaries and tags to jobs, in three queries.
func (s *Server) enrich(ctx context.Context, jobs []*sdk.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	params, err := s.cfg.Store.Params(ctx, ids)
	if err != nil {
		return err
	}
	metrics, err := s.cfg.Store.MetricSummaries(ctx, ids)
	if err != nil {
		return err
	}
	tags, err := s.cfg.Store.Tags(ctx, ids)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if p := params[j.ID]; p != nil {
			j.Params = p
		}
		for _, m := range metrics[j.ID] {
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
	if err := s.enrich(ctx, []*sdk.Job{w}); err != nil {
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
		queue, err := s.cfg.Store.JobQueue(ctx)
		if err != nil {
			return nil, err
		}
		for i, q := range queue {
			if q.ID == j.ID {
				w.QueuePosition = i + 1
			}
		}
		w.WaitingReason = s.cfg.Scheduler.Waiting()[j.ID]
	}
	return w, nil
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// jobFromSpec merges a submission with its job.config.yaml: explicit fields win.
func jobFromSpec(spec *sdk.JobSpec) (*atlas.Job, []string, error) {
	cfg := &config.Job{}
	if spec.JobConfig != "" {
		var err error
		if cfg, err = config.ParseJob(config.JobConfigFile, []byte(spec.JobConfig)); err != nil {
			return nil, nil, err
		}
	}
	j := &atlas.Job{ID: spec.ID, Project: spec.Project, User: spec.User, Mode: atlas.Mode(spec.Mode), ParentID: spec.ParentID,
		Command: spec.Command, Entrypoint: spec.Entrypoint, Params: spec.Params, BundleDigest: spec.BundleDigest, Worker: cfg.Worker}
	if j.ID == "" {
		j.ID = uuid.NewString()
	}
	if !idPattern.MatchString(j.ID) {
		return nil, nil, atlas.Invalidf("invalid job id %q: use letters, digits, '.', '_' and '-'", j.ID)
	}
	if j.Mode == "" {
		j.Mode = atlas.ModeScheduled
	}
	if j.Mode != atlas.ModeScheduled && j.Mode != atlas.ModeExecution {
		return nil, nil, atlas.Invalidf("invalid mode %q: want scheduled or execution", j.Mode)
	}
	if j.Project == "" {
		j.Project = cfg.ProjectName
	}
	if j.Project == "" {
		j.Project = "default"
	}
	if err := config.ValidateProjectName(j.Project); err != nil {
		return nil, nil, err
	}
	if j.User == "" {
		j.User = "unknown"
	}
	if len(j.Entrypoint) == 0 {
		j.Entrypoint = cfg.Entrypoint
	}
	if j.Params == nil {
		j.Params = cfg.Params
	}
	switch {
	case spec.NumGPUs != nil:
		j.NumGPUs = *spec.NumGPUs
	case cfg.NumGPUs != nil:
		j.NumGPUs = *cfg.NumGPUs
	}
	if j.NumGPUs < 0 {
		return nil, nil, atlas.Invalidf("num_gpus must be 0 or more, got %d", j.NumGPUs)
	}
	switch {
	case spec.RAMGB != nil:
		j.RAMGB = *spec.RAMGB
	case cfg.RAMGB != nil:
		j.RAMGB = *cfg.RAMGB
	}
	if j.RAMGB < 0 {
		return nil, nil, atlas.Invalidf("ram must be a number of GB greater than 0, got %v", j.RAMGB)
	}
	switch {
	case spec.Priority != nil:
		j.Priority = *spec.Priority
	case cfg.Priority != nil:
		j.Priority = *cfg.Priority
	}
	if w := spec.Worker; w != nil {
		if w.Image != "" {
			j.Worker.Image = w.Image
		}
		if len(w.Entrypoint) > 0 {
			j.Worker.Entrypoint = w.Entrypoint
		}
		if len(w.Command) > 0 {
			j.Worker.Command = w.Command
		}
		if w.WorkingDir != "" {
			j.Worker.WorkingDir = w.WorkingDir
		}
		for k, v := range w.Volumes {
			if j.Worker.Volumes == nil {
				j.Worker.Volumes = map[string]atlas.Volume{}
			}
			j.Worker.Volumes[k] = atlas.Volume{Bind: v.Bind, Mode: v.Mode}
		}
		for k, v := range w.Environment {
			if j.Worker.Environment == nil {
				j.Worker.Environment = map[string]string{}
			}
			j.Worker.Environment[k] = v
		}
	}
	if len(j.Command) == 0 {
		j.Command = j.Worker.Command
	}
	if j.Mode == atlas.ModeScheduled && len(j.Command) == 0 && len(j.Entrypoint) == 0 && len(j.Worker.Entrypoint) == 0 {
		return nil, nil, atlas.Invalidf("no command: give the script to run, e.g. `foundations submit scheduler . main.py`")
	}
	if j.Params != nil {
		if _, err := json.Marshal(j.Params); err != nil {
			return nil, nil, atlas.Invalidf("params are not JSON: %v", err)
		}
	}
	return j, cfg.Warnings, nil
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request) error {
	var spec sdk.JobSpec
	if err := decode(w, r, specLimit, &spec); err != nil {
		return err
	}
	j, warnings, err := jobFromSpec(&spec)
	if err != nil {
		return err
	}
	ctx := r.Context()
	p := principalOf(r)
	if s.cfg.Auth || p.JobID != "" {
		j.User = p.User // the real user, not what the client says
	}
	if p.JobID != "" {
		j.ParentID = p.JobID // a job submits child jobs
	}
	trusted := (p.Local && !s.cfg.Auth) || p.Admin
	if !trusted {
		if err := s.checkVolumes(j); err != nil {
			return err
		}
	}
	if p.Local && !s.cfg.Auth {
		// Containers run as the local user who submitted, as the kernel reports them: what the
		// client claims (spec.UID) is never trusted.
		if who, ok := peerUser(r); ok {
			j.RunAs = who
		}
	}
	now := time.Now().UTC()
	j.CreatedAt = now
	if j.Mode == atlas.ModeExecution {
		j.State, j.StartedAt, j.HeartbeatAt = atlas.StateRunning, &now, &now
	} else {
		j.State = atlas.StateQueued
		if err := s.cfg.Scheduler.Validate(j); err != nil {
			return err
		}
	}
	s.blobMu.RLock()
	if j.BundleDigest != "" {
		ok, _, err := s.cfg.Blobs.Has(j.BundleDigest)
		if err != nil {
			s.blobMu.RUnlock()
			return err
		}
		if !ok {
			s.blobMu.RUnlock()
			return atlas.Invalidf("bundle %s was not uploaded: PUT it to /api/v1/blobs/{digest} first", j.BundleDigest)
		}
		if j.Mode == atlas.ModeScheduled {
			if err := s.checkBundle(j.BundleDigest); err != nil {
				s.blobMu.RUnlock()
				return err
			}
		}
	}
	err = s.cfg.Store.JobInsert(ctx, j)
	s.blobMu.RUnlock()
	status := http.StatusCreated
	if errors.Is(err, atlas.ErrConflict) && spec.ID != "" {
		// A retried submission: answer with the job it created, if it is the same one.
		prev, gerr := s.cfg.Store.JobGet(ctx, j.ID)
		if gerr != nil || prev.BundleDigest != j.BundleDigest || strings.Join(prev.Command, "\x00") != strings.Join(j.Command, "\x00") {
			return err
		}
		j, err, status = prev, nil, http.StatusOK
	}
	if err != nil {
		return err
	}
	s.cfg.Hub.JobChanged(j)
	s.cfg.Scheduler.Wake()
	res := &sdk.SubmitResult{Job: toWire(j), Warnings: warnings}
	if j.Mode == atlas.ModeExecution {
		res.Token = JobToken(s.cfg.Secret, j.ID)
	}
	writeJSON(w, status, res)
	return nil
}

// checkVolumes refuses worker.volumes outside the allowed roots.
func (s *Server) checkVolumes(j *atlas.Job) error {
	for host := range j.Worker.Volumes {
		p := filepath.Clean(host)
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		ok := false
		for _, root := range s.cfg.AllowedVolumeRoots {
			root = filepath.Clean(root)
			ok = ok || p == root || strings.HasPrefix(p, root+string(filepath.Separator))
		}
		if !ok {
			roots := "none are configured (allowed_volume_roots in server.config.yaml)"
			if len(s.cfg.AllowedVolumeRoots) > 0 {
				roots = strings.Join(s.cfg.AllowedVolumeRoots, ", ")
			}
			return atlas.Deniedf("worker.volumes: %s is not under a host path this server lets remote users mount; %s", host, roots)
		}
	}
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ctx := r.Context()
	if wait := r.URL.Query().Get("wait_while"); wait != "" {
		return s.waitJob(w, r, id, strings.Split(wait, ","))
	}
	j, err := s.jobFor(r, id)
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
	timeout := 25 * time.Second
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < 0 {
			return atlas.Invalidf("invalid timeout %q: want a duration like 30s", t)
		}
		timeout = min(d, 60*time.Second)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	changes, unsubscribe := s.cfg.Hub.Subscribe()
	defer unsubscribe()
	recheck := time.NewTicker(time.Second) // the hub may drop changes for slow subscribers
	defer recheck.Stop()
	for {
		j, err := s.jobFor(r, id)
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
	wait:
		for {
			select {
			case c := <-changes:
				if c.JobID == id && !c.Tracked {
					break wait
				}
			case <-recheck.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
	}
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
	ctx := r.Context()
	if who := principalOf(r); s.cfg.Auth && who.JobID != "" {
		p.Filters = append(p.Filters, store.Filter{Field: "user", Op: "in", Values: []string{who.User}})
	}
	jobs, total, err := s.cfg.Store.JobList(ctx, p)
	if err != nil {
		return err
	}
	out := &sdk.JobList{Jobs: make([]*sdk.Job, len(jobs)), Total: total}
	for i, j := range jobs {
		out.Jobs[i] = toWire(j)
	}
	if err := s.enrich(ctx, out.Jobs); err != nil {
		return err
	}
	if p.Project != "" {
		if out.Params, out.Metrics, err = s.cfg.Store.ProjectColumns(ctx, p.Project); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) stopJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.jobFor(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.canControl(r, j); err != nil {
		return err
	}
	j, err = s.cfg.Scheduler.StopJob(r.Context(), j.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWire(j))
	return nil
}

func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) error {
	j, err := s.jobFor(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.canControl(r, j); err != nil {
		return err
	}
	j, arts, err := s.cfg.Store.JobDelete(r.Context(), j.ID)
	if err != nil {
		return err
	}
	digests := []string{j.BundleDigest, j.ArchiveDigest}
	for _, a := range arts {
		digests = append(digests, a.Digest)
	}
	s.cleanup(r.Context(), j, digests)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cleanup removes what a deleted job left on disk: its log, and blobs nothing else uses.
func (s *Server) cleanup(ctx context.Context, j *atlas.Job, digests []string) {
	s.projects.Delete(j.ID)
	if err := s.cfg.Logs.Remove(j.ID); err != nil {
		s.cfg.Logger.Warn("remove job log", "job", j.ID, "err", err)
	}
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	for _, d := range digests {
		if d == "" {
			continue
		}
		n, err := s.cfg.Store.BlobRefs(ctx, d)
		if err != nil || n > 0 {
			continue
		}
		if err := s.cfg.Blobs.Delete(d); err != nil {
			s.cfg.Logger.Warn("remove blob", "digest", d, "err", err)
		}
	}
	s.cfg.Hub.Publish(Change{JobID: j.ID, Project: j.Project, State: j.State, Deleted: true})
}
