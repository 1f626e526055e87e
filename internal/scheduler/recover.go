// Recovery: re-attaching, after a restart, to the jobs an earlier server process started.

package scheduler

import (
	"context"
	"fmt"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// recover re-attaches to jobs that were starting, running or stopping when the server last
// stopped: claimed jobs that never started go back to the queue (or end stopped, if a stop
// was asked for), jobs the executor finds again are watched to their end (and signalled
// again if they were stopping), and jobs it cannot find are failed with the reason (what they
// left is still archived). Leftovers of jobs the server no longer knows are removed.
func (s *Scheduler) recover(ctx context.Context) error {
	jobs, err := s.cfg.Store.JobsInState(ctx, atlas.StateStarting, atlas.StateRunning, atlas.StateStopping)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.Mode == atlas.ModeExecution {
			continue // the script reports its own end; the job service watches its heartbeats
		}
		if j.RunInfo == "" && (j.State == atlas.StateStarting || j.State == atlas.StateStopping) {
			if j.State == atlas.StateStopping {
				s.finish(j, executor.Result{ExitCode: -1, Lost: true, Reason: "it had not started when the server stopped"})
			} else if _, err := s.cfg.Jobs.Requeue(ctx, j.ID); err == nil {
				s.cfg.Logger.Info("job was starting when the server stopped; queued again", "job", j.ID)
			}
			continue
		}
		if j.Executor != s.cfg.Executor.Name() {
			s.lost(j, fmt.Sprintf("the job ran with the %s executor, which this server does not use", j.Executor))
			continue
		}
		h, err := s.cfg.Executor.Recover(ctx, j, s.cfg.Logs.Path(j.ID))
		if err != nil {
			s.lost(j, "lost while the server was down: "+atlas.OneLine(err))
			continue
		}
		if _, placer := h.(executor.Placer); j.State == atlas.StateStarting && !placer {
			if j2, err := s.cfg.Jobs.Reattached(ctx, j.ID); err == nil {
				j = j2
			}
		}
		s.cfg.Logger.Info("re-attached to running job", "job", j.ID, "executor", j.Executor)
		s.mu.Lock()
		s.running[j.ID] = &slot{gpus: j.GPUIDs, handle: h}
		s.mu.Unlock()
		if j.State == atlas.StateStopping {
			_ = h.Stop(s.cfg.Jobs.StopGrace()) // the stop may not have reached it before the restart
		}
		s.wg.Go(func() { s.follow(j, h) })
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
			s.cfg.Logger.Info("removed what a job this server no longer knows left behind", "what", r)
		}
		if err != nil {
			s.cfg.Logger.Warn("remove what jobs this server no longer knows left behind", "err", err)
		}
	}
	return nil
}

// lost fails a scheduled job whose process or container cannot be found; what it left
// (working directory, spool) is still archived and stored.
func (s *Scheduler) lost(j *atlas.Job, reason string) {
	s.cfg.Logger.Warn("marking job failed", "job", j.ID, "reason", reason)
	_ = s.cfg.Logs.Append(j.ID, "Foundations ERROR: "+reason+"\n")
	s.finish(j, executor.Result{ExitCode: -1, Lost: true, Reason: reason})
}
