// Output a job ships itself, stored exactly once by byte offset in its log.

package jobs

import (
	"context"

	"github.com/atlasgo/atlas/internal/atlas"
)

// AppendLog stores output a job ships itself: a script run by hand today, the in-job side of
// a cluster executor later. data is the output from byte offset of the job's log; it is
// stored exactly once (logs.Dir.AppendAt), so a sender simply resends what was not
// acknowledged. It returns the log's length; a *logs.GapError when offset is past the end.
// The caller must be allowed to write to the job (its own token, or its user), and the job
// must not have finished.
func (s *Service) AppendLog(ctx context.Context, c *Caller, id string, offset int64, data []byte) (int64, error) {
	j, err := s.writable(ctx, c, id)
	if err != nil {
		return 0, err
	}
	if j.State.Finished() {
		return 0, atlas.Conflictf("job %s has %s: its log takes no more output", id, j.State)
	}
	return s.cfg.Logs.AppendAt(id, offset, data)
}
