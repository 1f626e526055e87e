// Submit: merging a submission with its job.config.yaml, the checks, and storing the job.

package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	osuser "os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

// Submitted is the answer to a submission.
type Submitted struct {
	Job *atlas.Job
	// Warnings are about the submission's job.config.yaml (unknown keys...).
	Warnings []string
	// Existing is set when the submission was a retry of one already stored.
	Existing bool
	// Token is the job's own token, for a script run by hand that records itself as a job.
	Token string
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Submit stores a new job: queued for the scheduler, or running for a script run by hand
// (mode execution). The client may choose the job's id, so that a retried submission is not
// queued twice: the same submission again answers with the job it created.
func (s *Service) Submit(ctx context.Context, c *Caller, spec *sdk.JobSpec) (*Submitted, error) {
	j, warnings, err := s.prepare(c, spec)
	if err != nil {
		return nil, err
	}
	if err := s.insert(ctx, j); err != nil {
		if !errors.Is(err, atlas.ErrConflict) || spec.ID == "" {
			return nil, err
		}
		// A retried submission: answer with the job it created, if it is the same one and the
		// same submitter asks. To anyone else the id is taken: the answer would hand them the
		// job, and with a script's job its token.
		prev, gerr := s.cfg.Store.JobGet(ctx, j.ID)
		if gerr != nil || !SameSubmission(prev, j) {
			return nil, atlas.Conflictf("job %s already exists", j.ID)
		}
		return s.submitted(prev, warnings, true), nil
	}
	s.changed(j)
	return s.submitted(j, warnings, false), nil
}

// prepare turns a submission into the job to store, with everything decided that depends on
// who submits: the user, the parent job, the volume policy, the account the job runs as, and
// whether the server could ever run it.
func (s *Service) prepare(c *Caller, spec *sdk.JobSpec) (*atlas.Job, []string, error) {
	j, warnings, err := fromSpec(spec)
	if err != nil {
		return nil, nil, err
	}
	if j.Name == "" {
		j.Name = s.names.next()
	}
	if s.cfg.Auth || c.JobID != "" {
		j.User = c.User // the real user, not what the client says
	}
	if c.JobID != "" {
		j.ParentID = c.JobID // a job submits child jobs
	}
	if !s.trusted(c) && s.cfg.Admit == nil {
		if err := s.checkVolumes(j); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case s.cfg.Auth:
		j.RunAs = accountFor(j.User)
	case c.Local:
		// Jobs run as the local user who submitted, as the kernel reports them: what the
		// client claims is never trusted.
		j.RunAs = c.RunAs
	}
	now := time.Now().UTC()
	j.CreatedAt = now
	if j.Mode == atlas.ModeExecution {
		j.State, j.StartedAt, j.HeartbeatAt = atlas.StateRunning, &now, &now
	} else {
		j.State = atlas.StateQueued
		if err := s.admit(j); err != nil {
			return nil, nil, err
		}
	}
	return j, warnings, nil
}

// Template checks a submission as Submit does, without storing anything, and returns the job
// it describes: what a search copies for each of its trials. The job must be one the scheduler
// runs, with a bundle that was uploaded and unpacks cleanly.
func (s *Service) Template(ctx context.Context, c *Caller, spec *sdk.JobSpec) (*atlas.Job, []string, error) {
	if spec.Mode != "" && spec.Mode != string(atlas.ModeScheduled) {
		return nil, nil, atlas.Invalidf("the trials of a search are run by the scheduler: mode must be scheduled, not %q", spec.Mode)
	}
	j, warnings, err := s.prepare(c, spec)
	if err != nil {
		return nil, nil, err
	}
	if j.BundleDigest == "" {
		return nil, nil, atlas.Invalidf("a search needs the bundle of its job folder (bundle_digest)")
	}
	s.blobMu.RLock()
	defer s.blobMu.RUnlock()
	if err := s.bundleReady(ctx, j); err != nil {
		return nil, nil, err
	}
	j.ID = ""
	if spec.Name == "" {
		j.Name = "" // each trial gets a name of its own
	}
	return j, warnings, nil
}

// SubmitTrial queues a trial of a search: t is a copy of the search's Template with its own
// id, params, SearchID and SearchTrial. The store refuses it unless the search is running.
// Submitting a trial again answers with the job stored the first time (existing is true), so
// a searcher that restarts after a crash never queues a trial twice.
func (s *Service) SubmitTrial(ctx context.Context, t *atlas.Job) (j *atlas.Job, existing bool, err error) {
	if t.SearchID == "" || !idPattern.MatchString(t.ID) {
		return nil, false, atlas.Invalidf("invalid trial %q of search %q", t.ID, t.SearchID)
	}
	if t.Name == "" {
		t.Name = s.names.next()
	} else {
		t.Name = fmt.Sprintf("%s #%d", t.Name, t.SearchTrial) // the search's name, numbered
	}
	now := time.Now().UTC()
	t.State, t.Mode, t.CreatedAt = atlas.StateQueued, atlas.ModeScheduled, now
	t.StartedAt, t.FinishedAt, t.HeartbeatAt, t.StoppingAt = nil, nil, nil, nil
	if err := s.insert(ctx, t); err != nil {
		var se *store.SearchStateError
		if !errors.Is(err, atlas.ErrConflict) || errors.As(err, &se) {
			return nil, false, err
		}
		prev, gerr := s.cfg.Store.JobGet(ctx, t.ID)
		if gerr != nil || prev.SearchID != t.SearchID || prev.SearchTrial != t.SearchTrial {
			return nil, false, atlas.Conflictf("job %s already exists and is not trial %d of search %s", t.ID, t.SearchTrial, t.SearchID)
		}
		return prev, true, nil
	}
	s.changed(t)
	return t, false, nil
}

// SameSubmission reports whether a stored job (or a search's template) is what the submission
// j asks for, from the same submitter: the same user (the token's, with authentication), the
// same local account (as the kernel reported it), the same parent job (a job's token), the same
// mode, bundle and command.
func SameSubmission(prev, j *atlas.Job) bool {
	return prev.User == j.User && prev.RunAs == j.RunAs && prev.ParentID == j.ParentID && prev.Mode == j.Mode &&
		prev.BundleDigest == j.BundleDigest && slices.Equal(prev.Command, j.Command)
}

func (s *Service) submitted(j *atlas.Job, warnings []string, existing bool) *Submitted {
	out := &Submitted{Job: j, Warnings: warnings, Existing: existing}
	if j.Mode == atlas.ModeExecution {
		out.Token = s.JobToken(j.ID)
	}
	return out
}

// insert stores a job after checking its bundle, with blob collection held off until the job
// refers to the bundle.
func (s *Service) insert(ctx context.Context, j *atlas.Job) error {
	s.blobMu.RLock()
	defer s.blobMu.RUnlock()
	if err := s.bundleReady(ctx, j); err != nil {
		return err
	}
	return s.cfg.Store.JobInsert(ctx, j)
}

// bundleReady checks that a job's bundle, if it has one, was uploaded and, for a scheduled job,
// unpacks cleanly. The caller holds blobMu.
func (s *Service) bundleReady(ctx context.Context, j *atlas.Job) error {
	if j.BundleDigest == "" {
		return nil
	}
	ok, _, err := s.cfg.Blobs.Has(ctx, j.BundleDigest)
	if err != nil {
		return err
	}
	if !ok {
		return atlas.Invalidf("bundle %s was not uploaded: PUT it to /api/v1/blobs/{digest} first", j.BundleDigest)
	}
	if j.Mode == atlas.ModeScheduled {
		return s.checkBundle(ctx, j.BundleDigest)
	}
	return nil
}

// admit refuses, at submit time, jobs that could never start here.
func (s *Service) admit(j *atlas.Job) error {
	if s.cfg.Admit != nil {
		return s.cfg.Admit(j)
	}
	if n := s.cfg.Capacity.GPUs; j.NumGPUs > n {
		return atlas.Invalidf("job asks for %d GPU%s but this server has %d (start atlas-server with -g, or --gpus with a list of ids)",
			j.NumGPUs, plural(j.NumGPUs), n)
	}
	if m := s.cfg.Capacity.MemoryGB; m > 0 && j.RAMGB > m {
		return atlas.Invalidf("job asks for ram: %g GB but this machine has %.1f GB", j.RAMGB, m)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// accountFor is the local account the jobs of an authenticated user run as: the account of
// the same name, or nobody when there is none. Never root: a user's code must not be able to
// read the server's files.
func accountFor(user string) string {
	for _, name := range []string{user, "nobody"} {
		if u, err := osuser.Lookup(name); err == nil && u.Uid != "0" {
			return u.Uid + ":" + u.Gid
		}
	}
	return "65534:65534"
}

// checkVolumes refuses worker.volumes outside the allowed roots.
func (s *Service) checkVolumes(j *atlas.Job) error {
	for host := range j.Worker.Volumes {
		p := filepath.Clean(host)
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		if !atlas.UnderRoot(p, s.cfg.AllowedVolumeRoots) {
			roots := "none are configured (allowed_volume_roots in server.config.yaml)"
			if len(s.cfg.AllowedVolumeRoots) > 0 {
				roots = strings.Join(s.cfg.AllowedVolumeRoots, ", ")
			}
			return atlas.Deniedf("worker.volumes: %s is not under a host path this server lets remote users mount; %s", host, roots)
		}
	}
	return nil
}

// fromSpec merges a submission with its job.config.yaml: explicit fields win.
func fromSpec(spec *sdk.JobSpec) (*atlas.Job, []string, error) {
	cfg := &config.Job{}
	if spec.JobConfig != "" {
		var err error
		if cfg, err = config.ParseJob(config.JobConfigFile, []byte(spec.JobConfig)); err != nil {
			return nil, nil, err
		}
	}
	if err := config.ValidateJobName(spec.Name); err != nil {
		return nil, nil, err
	}
	j := &atlas.Job{ID: spec.ID, Name: spec.Name, Project: spec.Project, User: spec.User, Mode: atlas.Mode(spec.Mode), ParentID: spec.ParentID,
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
	j.NumGPUs = firstOf(spec.NumGPUs, cfg.NumGPUs)
	if j.NumGPUs < 0 {
		return nil, nil, atlas.Invalidf("num_gpus must be 0 or more, got %d", j.NumGPUs)
	}
	j.RAMGB = firstOf(spec.RAMGB, cfg.RAMGB)
	if j.RAMGB < 0 {
		return nil, nil, atlas.Invalidf("ram must be a number of GB greater than 0, got %v", j.RAMGB)
	}
	j.Priority = firstOf(spec.Priority, cfg.Priority)
	if w := spec.Worker; w != nil {
		mergeWorker(&j.Worker, w)
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

// firstOf is the first value given, or the zero value.
func firstOf[T any](vs ...*T) T {
	for _, v := range vs {
		if v != nil {
			return *v
		}
	}
	var zero T
	return zero
}

// mergeWorker overrides the job.config.yaml's worker settings with the submission's.
func mergeWorker(dst *atlas.Worker, w *sdk.Worker) {
	if w.Image != "" {
		dst.Image = w.Image
	}
	if len(w.Entrypoint) > 0 {
		dst.Entrypoint = w.Entrypoint
	}
	if len(w.Command) > 0 {
		dst.Command = w.Command
	}
	if w.WorkingDir != "" {
		dst.WorkingDir = w.WorkingDir
	}
	for k, v := range w.Volumes {
		if dst.Volumes == nil {
			dst.Volumes = map[string]atlas.Volume{}
		}
		dst.Volumes[k] = atlas.Volume{Bind: v.Bind, Mode: v.Mode}
	}
	for k, v := range w.Environment {
		if dst.Environment == nil {
			dst.Environment = map[string]string{}
		}
		dst.Environment[k] = v
	}
}
