package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// BenchmarkJobLifecycle is what the store does for one job of a drain: insert, claim, start,
// end, and a batch of tracked values.
func BenchmarkJobLifecycle(b *testing.B) {
	ctx := b.Context()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "atlas.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	code := 0
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprint("j", i)
		if err := s.JobInsert(ctx, &atlas.Job{ID: id, Project: "p", User: "u", State: atlas.StateQueued,
			Mode: atlas.ModeScheduled, Command: []string{"main.py"}, CreatedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
		for _, p := range []*store.JobSetStateParams{
			{ID: id, From: []atlas.State{atlas.StateQueued}, To: atlas.StateStarting, Executor: "process"},
			{ID: id, To: atlas.StateRunning, RunInfo: "{}"},
			{ID: id, To: atlas.StateCompleted, ExitCode: &code},
		} {
			if _, err := s.JobSetState(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := s.TrackBatch(ctx, &store.TrackBatch{JobID: id, Params: map[string]any{"lr": 0.1},
			Metrics: map[string][]atlas.MetricPoint{"loss": {{Step: 1, Value: 0.5}}}}); err != nil {
			b.Fatal(err)
		}
	}
}
