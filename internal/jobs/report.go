// What the in-job side of a job that runs where the server's files are not (a Kubernetes pod,
// a Slurm node) reports over the API: how its command ended, and its archive.

package jobs

import (
	"context"

	"github.com/atlasgo/atlas/internal/atlas"
)

// ReportExit records how a scheduled job's command ended, as its in-job side reports it with
// the job's own token, and the archive of its working directory it uploaded (archive may be
// empty). The job's state does not change: its executor sees the job end and the scheduler
// records the end, with this exit code when the executor cannot tell one (Ended).
func (s *Service) ReportExit(ctx context.Context, c *Caller, id string, code int, archive string) (*atlas.Job, error) {
	j, err := s.writable(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if c.JobID != id {
		return nil, atlas.Deniedf("only job %s itself reports how its command ended", id)
	}
	if j.Mode != atlas.ModeScheduled {
		return nil, atlas.Conflictf("job %s was started by hand: it reports its end with POST /api/v1/jobs/%s/finish", id, id)
	}
	if archive != "" {
		if ok, _, err := s.cfg.Blobs.Has(ctx, archive); err != nil || !ok {
			return nil, atlas.Invalidf("archive %s was not uploaded: PUT it to /api/v1/blobs/{digest} first", archive)
		}
	}
	return s.cfg.Store.JobReportExit(ctx, id, code, archive,
		[]atlas.State{atlas.StateStarting, atlas.StateRunning, atlas.StateStopping})
}
