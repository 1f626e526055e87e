// Clone: queueing a job again with some of its params changed.

package jobs

import (
	"context"
	"maps"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/sdk"
)

// Clone queues a copy of the job id in any state: the same project, bundle, command,
// entrypoint, worker settings, GPUs, memory and priority, with its submitted params changed by
// spec.Params (keys replaced or added) and spec.Name as its name (a new one made up when
// empty). Cloning runs the source's files, so the caller must be one who may read its bundle;
// the copy is then a submission of the caller's, checked as Submit checks any.
func (s *Service) Clone(ctx context.Context, c *Caller, id string, spec *sdk.CloneSpec) (*Submitted, error) {
	src, err := s.Bundle(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if src.Mode != atlas.ModeScheduled {
		return nil, atlas.Invalidf("job %s is a script that was run by hand: only jobs the scheduler ran can be cloned", id)
	}
	params := maps.Clone(src.Params)
	if params == nil && len(spec.Params) > 0 {
		params = map[string]any{}
	}
	maps.Copy(params, spec.Params)
	return s.Submit(ctx, c, &sdk.JobSpec{ID: spec.ID, Name: spec.Name, Project: src.Project, User: src.User,
		Command: src.Command, Entrypoint: src.Entrypoint, Params: params, NumGPUs: &src.NumGPUs, RAMGB: &src.RAMGB,
		Priority: &src.Priority, Worker: WireWorker(src.Worker), BundleDigest: src.BundleDigest})
}

// WireWorker is a job's worker settings as the API shows and takes them.
func WireWorker(w atlas.Worker) *sdk.Worker {
	out := &sdk.Worker{Image: w.Image, Entrypoint: w.Entrypoint, Command: w.Command, WorkingDir: w.WorkingDir,
		Environment: w.Environment}
	if len(w.Volumes) > 0 {
		out.Volumes = map[string]sdk.Volume{}
		for k, v := range w.Volumes {
			out.Volumes[k] = sdk.Volume{Bind: v.Bind, Mode: v.Mode}
		}
	}
	return out
}
