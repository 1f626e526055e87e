// A job's way from claimed to ended: every state change after submit, stop, delete and clear-queue.

package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

// move changes a job's state and announces it.
func (s *Service) move(ctx context.Context, p *store.JobSetStateParams) (*atlas.Job, error) {
	j, err := s.cfg.Store.JobSetState(ctx, p)
	if err != nil {
		return nil, err
	}
	s.changed(j)
	return j, nil
}

// Claim takes a queued job for the scheduler: queued → starting, with the executor and the
// GPUs it gets. atlas.ErrConflict or ErrNotFound mean it was stopped or removed meanwhile.
func (s *Service) Claim(ctx context.Context, id, executor string, gpus []string) (*atlas.Job, error) {
	return s.move(ctx, &store.JobSetStateParams{ID: id, From: []atlas.State{atlas.StateQueued}, To: atlas.StateStarting,
		Executor: executor, GPUIDs: gpus})
}

// Started records that the executor started a claimed job, with what it needs to find the job
// again after a restart. A job asked to stop while it was starting stays stopping.
func (s *Service) Started(ctx context.Context, id, runInfo string) (*atlas.Job, error) {
	j, err := s.move(ctx, &store.JobSetStateParams{ID: id, From: []atlas.State{atlas.StateStarting}, To: atlas.StateRunning,
		RunInfo: runInfo})
	var se *store.StateError
	if !errors.As(err, &se) || se.Job.State != atlas.StateStopping {
		return j, err
	}
	if err := s.cfg.Store.JobSetRunInfo(ctx, id, runInfo); err != nil {
		return nil, err
	}
	return s.cfg.Store.JobGet(ctx, id)
}

// Handed records that the executor handed a claimed job to an engine that has still to place
// it (a cluster): the job stays starting, with what the executor needs to find it again.
func (s *Service) Handed(ctx context.Context, id, runInfo string) (*atlas.Job, error) {
	if err := s.cfg.Store.JobSetRunInfo(ctx, id, runInfo); err != nil {
		return nil, err
	}
	return s.cfg.Store.JobGet(ctx, id)
}

// Placed records that a job handed to an engine runs, since at (the engine's clock; zero:
// now). A job asked to stop meanwhile stays stopping; one that ended stays ended.
func (s *Service) Placed(ctx context.Context, id string, at time.Time) (*atlas.Job, error) {
	if !at.IsZero() && at.After(time.Now()) {
		at = time.Time{} // another machine's clock ahead of ours
	}
	return s.move(ctx, &store.JobSetStateParams{ID: id, From: []atlas.State{atlas.StateStarting}, To: atlas.StateRunning, At: at})
}

// Reattached records that a job the server found starting at its start is running.
func (s *Service) Reattached(ctx context.Context, id string) (*atlas.Job, error) {
	return s.move(ctx, &store.JobSetStateParams{ID: id, From: []atlas.State{atlas.StateStarting}, To: atlas.StateRunning})
}

// Requeue puts a claimed job that never started back in the queue.
func (s *Service) Requeue(ctx context.Context, id string) (*atlas.Job, error) {
	return s.move(ctx, &store.JobSetStateParams{ID: id, From: []atlas.State{atlas.StateStarting}, To: atlas.StateQueued})
}

// FailStart records that a claimed job could not be started, with the reason in its log too.
func (s *Service) FailStart(ctx context.Context, id, reason string) (*atlas.Job, error) {
	_ = s.cfg.Logs.Append(id, "Foundations ERROR: "+reason+"\n")
	return s.move(ctx, &store.JobSetStateParams{ID: id, From: []atlas.State{atlas.StateStarting}, To: atlas.StateFailed,
		Reason: reason})
}

// Outcome is how a scheduled job ended, as its executor saw it.
type Outcome struct {
	ExitCode int
	// Reason explains an abnormal end ("killed by signal 9").
	Reason string
	// Killed is set when the executor killed the job because it did not exit within the
	// grace period of a stop.
	Killed bool
	// Lost is set when the job's fate cannot be known; Reason says why.
	Lost bool
	// ArchiveDigest is the blob holding the job's final working directory ("" if none).
	ArchiveDigest string
	// Output is what the engine kept of the job's output; it is added to the log when the
	// job's in-job side never reported (it crashed before it could ship anything).
	Output string
}

// SpoolDir is the job's spool: where its SDK leaves tracked values it could not deliver
// ("" when the server keeps no spools).
func (s *Service) SpoolDir(id string) string {
	if s.cfg.SpoolRoot == "" {
		return ""
	}
	return filepath.Join(s.cfg.SpoolRoot, id)
}

// Ended records how a scheduled job ended: first what it left in its spool, then its final
// state — stopped if a stop was asked for (with how it ended: exited after SIGTERM, or killed
// after the grace period), failed with the reason if it exited non-zero or was lost,
// completed otherwise.
func (s *Service) Ended(ctx context.Context, id string, o Outcome) (*atlas.Job, error) {
	if d := s.SpoolDir(id); d != "" {
		// Stored values are applied once by (writer, seq): removing the spool only after the
		// drain is safe against a crash at any point.
		if err := s.DrainSpool(ctx, id, d); err != nil {
			s.cfg.Logger.Error("store the values the job left in its spool", "job", id, "err", err)
		} else {
			os.RemoveAll(d)
		}
	}
	cur, err := s.cfg.Store.JobGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if o.Output != "" && cur.ReportedExitCode == nil {
		_ = s.cfg.Logs.Append(id, strings.TrimRight(o.Output, "\n")+"\n")
	}
	if o.Lost && cur.ReportedExitCode != nil {
		// The engine lost sight of the job, but the job said how its command ended.
		o = Outcome{ExitCode: *cur.ReportedExitCode, ArchiveDigest: o.ArchiveDigest}
	}
	to, reason := atlas.StateCompleted, ""
	switch {
	case cur.State == atlas.StateStopping:
		to, reason = atlas.StateStopped, stopReason(cur, o, s.cfg.StopGrace)
		if cur.Reason != "" { // why it was stopped, then how it exited
			reason = cur.Reason + " (" + reason + ")"
		}
	case o.Lost:
		to, reason = atlas.StateFailed, o.Reason
	case o.ExitCode != 0:
		to, reason = atlas.StateFailed, fmt.Sprintf("exited with code %d", o.ExitCode)
		if o.Reason != "" {
			reason = o.Reason
		} else if last := logs.LastLine(s.cfg.Logs.Tail(id, 8<<10)); last != "" {
			reason += ": " + last // usually the exception, e.g. "RuntimeError: the loss diverged"
		}
	}
	var code *int
	if !o.Lost {
		code = &o.ExitCode
	}
	return s.move(ctx, &store.JobSetStateParams{ID: id, To: to, Reason: reason, ExitCode: code, ArchiveDigest: o.ArchiveDigest})
}

// stopReason says how a job asked to stop ended.
func stopReason(j *atlas.Job, o Outcome, grace time.Duration) string {
	switch {
	case o.Lost:
		return "stopped on request; " + o.Reason
	case o.Killed:
		return fmt.Sprintf("killed after %s grace (it did not exit on SIGTERM)", seconds(grace))
	case j.StoppingAt != nil:
		return fmt.Sprintf("exited after SIGTERM in %s", seconds(time.Since(*j.StoppingAt)))
	}
	return "stopped on request"
}

// seconds formats a duration as users read it: "1.2 s", "10 s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', -1, 64) + " s"
}

// Finish records the end of a script run by hand, as the script reports it.
func (s *Service) Finish(ctx context.Context, c *Caller, id string, req *sdk.FinishRequest) (*atlas.Job, error) {
	j, err := s.cfg.Store.JobGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.mayWrite(c, j); err != nil {
		return nil, err
	}
	if j.Mode != atlas.ModeExecution {
		return nil, atlas.Conflictf("job %s is run by the scheduler; only scripts started by hand report their end", id)
	}
	to := atlas.State(req.State)
	if to != atlas.StateCompleted && to != atlas.StateFailed && to != atlas.StateStopped {
		return nil, atlas.Invalidf("invalid state %q: want completed, failed or stopped", req.State)
	}
	if req.ArchiveDigest != "" {
		if ok, _, err := s.cfg.Blobs.Has(ctx, req.ArchiveDigest); err != nil || !ok {
			return nil, atlas.Invalidf("archive %s was not uploaded", req.ArchiveDigest)
		}
	}
	if j.State.Finished() {
		// Stopped from the GUI, or given up on: keep that state, but keep the archive too.
		if req.ArchiveDigest != "" && j.ArchiveDigest == "" {
			if err := s.cfg.Store.JobSetArchive(ctx, id, req.ArchiveDigest); err != nil {
				return nil, err
			}
			j.ArchiveDigest = req.ArchiveDigest
		}
		return j, nil
	}
	return s.move(ctx, &store.JobSetStateParams{ID: id, To: to, ExitCode: req.ExitCode, Reason: req.Reason,
		ArchiveDigest: req.ArchiveDigest})
}

// Lost fails a script run by hand that can no longer be heard from, with the reason in its
// log too.
func (s *Service) Lost(ctx context.Context, j *atlas.Job, reason string) {
	s.cfg.Logger.Warn("marking job failed", "job", j.ID, "reason", reason)
	_ = s.cfg.Logs.Append(j.ID, "Foundations ERROR: "+reason+"\n")
	if _, err := s.move(ctx, &store.JobSetStateParams{ID: j.ID, To: atlas.StateFailed, Reason: reason}); err != nil {
		s.cfg.Logger.Error("record job failure", "job", j.ID, "err", err)
	}
}

// failSilentScripts fails scripts run by hand that stopped sending heartbeats (killed, or the
// machine went down).
func (s *Service) failSilentScripts(ctx context.Context) {
	jobs, err := s.cfg.Store.JobsInState(ctx, atlas.StateRunning)
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
			s.Lost(ctx, j, fmt.Sprintf("no heartbeat from the script for %s (it probably died)", s.cfg.HeartbeatTimeout))
		}
	}
}

// StopJob stops a job: a queued one leaves the queue; a running one becomes stopping (the
// scheduler, listening to the events, signals it, and it becomes stopped once it has exited
// and been archived); one run by hand, whose process the server does not own, is marked
// stopped and told at its next heartbeat. Asking again while a job is stopping is not an
// error: the answer is the job, still stopping.
func (s *Service) StopJob(ctx context.Context, c *Caller, id string) (*atlas.Job, error) {
	return s.StopWithReason(ctx, c, id, "")
}

// StopWithReason stops a job as StopJob does, and records why (a search stopping a trial
// early): the job ends stopped with that reason, followed by how it exited.
func (s *Service) StopWithReason(ctx context.Context, c *Caller, id, reason string) (*atlas.Job, error) {
	for {
		j, err := s.Job(ctx, c, id)
		if err != nil {
			return nil, err
		}
		if err := s.mayControl(c, j); err != nil {
			return nil, err
		}
		p := &store.JobSetStateParams{ID: id, From: []atlas.State{j.State}, Reason: reason}
		switch {
		case j.State.Finished():
			return nil, atlas.Conflictf("job %s is %s and cannot be stopped", id, j.State)
		case j.State == atlas.StateStopping:
			return j, nil
		case j.State == atlas.StateQueued:
			p.To = atlas.StateStopped
			if reason == "" {
				p.Reason = "stopped while queued"
			}
		case j.Mode == atlas.ModeExecution:
			p.To = atlas.StateStopped
			if reason == "" {
				p.Reason = "stopped on request (the script was started outside the scheduler; it is asked to stop at its next heartbeat)"
			}
		default:
			p.To = atlas.StateStopping
		}
		j, err = s.move(ctx, p)
		if errors.Is(err, atlas.ErrConflict) {
			continue // it moved on meanwhile (claimed, ended, or another stop won): look again
		}
		return j, err
	}
}

// DeleteJob removes a finished job with everything recorded for it, and the blobs nothing else
// refers to.
func (s *Service) DeleteJob(ctx context.Context, c *Caller, id string) error {
	j, err := s.Job(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.mayControl(c, j); err != nil {
		return err
	}
	j, arts, err := s.cfg.Store.JobDelete(ctx, id, finished)
	var se *store.StateError
	if errors.As(err, &se) {
		switch st := se.Job.State; st {
		case atlas.StateStopping:
			return atlas.Conflictf("job %s is stopping: it can be deleted once it has stopped", id)
		case atlas.StateQueued:
			return atlas.Conflictf("job %s is queued: stop it first (it then leaves the queue), or clear the queue", id)
		default:
			return atlas.Conflictf("job %s is %s: only completed, failed or stopped jobs can be deleted (stop it first)", id, st)
		}
	}
	if err != nil {
		return err
	}
	s.deleted(ctx, j, arts)
	return nil
}

// deleted cleans up after a job deleted with its artifacts.
func (s *Service) deleted(ctx context.Context, j *atlas.Job, arts []atlas.Artifact) {
	digests := []string{j.BundleDigest, j.ArchiveDigest}
	for _, a := range arts {
		digests = append(digests, a.Digest)
	}
	s.removed(ctx, j, digests)
}

// finished are the states a job may be deleted in.
var finished = []atlas.State{atlas.StateCompleted, atlas.StateFailed, atlas.StateStopped}

// Cleared is what clear-queue did.
type Cleared struct {
	// Removed are the queued jobs it deleted.
	Removed []*atlas.Job
	// Stopped are the jobs it asked to stop that had not started running (handed to a
	// cluster that had not placed them yet).
	Stopped []*atlas.Job
}

// ClearQueue removes every queued job (of one project, when it is not empty) and stops the
// jobs that were claimed but do not run yet. With authentication, a user who is not an admin
// clears only their own jobs.
func (s *Service) ClearQueue(ctx context.Context, c *Caller, project string) (*Cleared, error) {
	user := ""
	if s.cfg.Auth && !c.Admin {
		user = c.User
	}
	removed, err := s.cfg.Store.JobsDeleteQueued(ctx, project, user)
	if err != nil {
		return nil, err
	}
	for _, j := range removed {
		s.removed(ctx, j, []string{j.BundleDigest})
	}
	out := &Cleared{Removed: removed}
	starting, err := s.cfg.Store.JobsInState(ctx, atlas.StateStarting)
	if err != nil {
		return out, err
	}
	for _, j := range starting {
		if (project != "" && j.Project != project) || (user != "" && j.User != user) {
			continue
		}
		j, err := s.move(ctx, &store.JobSetStateParams{ID: j.ID, From: []atlas.State{atlas.StateStarting}, To: atlas.StateStopping})
		if errors.Is(err, atlas.ErrConflict) || errors.Is(err, atlas.ErrNotFound) {
			continue // it started, ended or went meanwhile
		}
		if err != nil {
			return out, err
		}
		out.Stopped = append(out.Stopped, j)
	}
	return out, nil
}

// removed cleans up after a deleted job: its log, and blobs nothing else uses.
func (s *Service) removed(ctx context.Context, j *atlas.Job, digests []string) {
	s.projects.Delete(j.ID)
	s.keys.forget(j.ID)
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
		if err := s.cfg.Blobs.Delete(ctx, d); err != nil {
			s.cfg.Logger.Warn("remove blob", "digest", d, "err", err)
		}
	}
	s.cfg.Events.Publish(Change{JobID: j.ID, Name: j.Name, Project: j.Project, State: j.State, Deleted: true})
}

// BlobGrace is how long a blob no job or artifact refers to is kept: an upload is followed
// by the submission or the tracking batch that refers to it.
const BlobGrace = time.Hour

// collectBlobs deletes the blobs that nothing refers to and that were stored (or asked
// about) more than grace ago. It returns how many it deleted.
func (s *Service) collectBlobs(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := time.Now().Add(-grace)
	var old []string
	err := s.cfg.Blobs.Walk(ctx, func(digest string, stored time.Time) error {
		if stored.Before(cutoff) {
			old = append(old, digest)
		}
		return ctx.Err()
	})
	if err != nil {
		return 0, err
	}
	s.blobMu.Lock()
	defer s.blobMu.Unlock()
	deleted := 0
	for _, d := range old {
		n, err := s.cfg.Store.BlobRefs(ctx, d)
		if err != nil {
			return deleted, err
		}
		if n > 0 {
			continue
		}
		if err := s.cfg.Blobs.Delete(ctx, d); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}
