// Discarding a script's own job: a script run by hand that turned out to be a driver.

package jobs

import (
	"context"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Discard removes an execution-mode job at its own script's request, reported as the script's
// end (POST /jobs/{id}/finish with "discard": true). A script run by hand is a job from the
// moment it imports foundations; one that turns out to be a driver (it submitted jobs and
// tracked nothing itself) was never meant to be one. Only the job's own token may do this, so
// a script discards the job it created and nothing else; users delete jobs with DeleteJob.
// The job goes with its log and the blobs nothing else refers to, as with DeleteJob.
func (s *Service) Discard(ctx context.Context, c *Caller, id string) error {
	if c.JobID != id {
		return atlas.Deniedf("only job %s's own token can discard it; delete finished jobs with DELETE /api/v1/jobs/{id}", id)
	}
	j, err := s.cfg.Store.JobGet(ctx, id)
	if err != nil {
		return err
	}
	if j.Mode != atlas.ModeExecution {
		return atlas.Conflictf("job %s is run by the scheduler; only scripts started by hand discard their own job", id)
	}
	// Running, or already ended (stopped from the GUI, or given up on while the server could
	// not hear from it).
	j, arts, err := s.cfg.Store.JobDelete(ctx, id, []atlas.State{atlas.StateRunning, atlas.StateCompleted,
		atlas.StateFailed, atlas.StateStopped})
	if err != nil {
		return err
	}
	s.deleted(ctx, j, arts)
	return nil
}
