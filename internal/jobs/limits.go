// Limits: how much one job, or one request, may store, so that no job can make the server
// slow or its listings huge.

package jobs

import (
	"context"
	"fmt"
	"sync"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// Limits bound what jobs may track. Zero fields take the defaults.
type Limits struct {
	// KeysPerJob caps the distinct params, the distinct metrics and the distinct tags of one
	// job (each).
	KeysPerJob int
	// KeysPerBatch caps the keys of one tracking batch.
	KeysPerBatch int
}

// DefaultLimits are far above what a training script logs.
var DefaultLimits = Limits{KeysPerJob: 10_000, KeysPerBatch: 10_000}

// LimitError is a request refused because it goes over a limit; it says which, and the
// server setting that raises it.
type LimitError struct {
	What, Limit, Key string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: over the limit of %s (%s in server.config.yaml)", e.What, e.Limit, e.Key)
}

// Unwrap makes it a refusal of the request as invalid.
func (e *LimitError) Unwrap() error { return atlas.ErrInvalid }

// jobKeys are the keys a job has tracked, known to the service while the job tracks.
type jobKeys struct {
	mu     sync.Mutex
	loaded bool
	kinds  map[string]map[string]struct{} // "param", "metric", "tag" -> keys
}

// keyCache holds the keys of jobs that track; a job leaves it when it ends.
type keyCache struct {
	mu   sync.Mutex
	jobs map[string]*jobKeys
}

const maxCachedJobs = 4096

func (c *keyCache) get(jobID string) *jobKeys {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs == nil {
		c.jobs = map[string]*jobKeys{}
	}
	k := c.jobs[jobID]
	if k == nil {
		if len(c.jobs) >= maxCachedJobs {
			for id := range c.jobs { // forget one; it is read again from the store if it tracks
				delete(c.jobs, id)
				break
			}
		}
		k = &jobKeys{}
		c.jobs[jobID] = k
	}
	return k
}

func (c *keyCache) forget(jobID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.jobs, jobID)
}

// withinKeyLimit runs store, which stores b, if b keeps the job within KeysPerJob; the keys
// it adds are then remembered. Batches of one job are checked one at a time.
func (s *Service) withinKeyLimit(ctx context.Context, b *store.TrackBatch, apply func() error) error {
	k := s.keys.get(b.JobID)
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loaded {
		if err := s.loadKeys(ctx, b.JobID, k); err != nil {
			return err
		}
	}
	batch := map[string][]string{"param": keysOf(b.Params), "metric": keysOf(b.Metrics), "tag": keysOf(b.Tags)}
	for kind, keys := range batch {
		known, added := k.kinds[kind], 0
		for _, key := range keys {
			if _, ok := known[key]; !ok {
				added++
			}
		}
		if n := len(known) + added; added > 0 && n > s.cfg.Limits.KeysPerJob {
			return &LimitError{What: fmt.Sprintf("job %s would have %d distinct %ss", b.JobID, n, kind),
				Limit: fmt.Sprintf("%d %ss a job", s.cfg.Limits.KeysPerJob, kind), Key: "max_keys_per_job"}
		}
	}
	if err := apply(); err != nil {
		return err
	}
	for kind, keys := range batch {
		for _, key := range keys {
			k.kinds[kind][key] = struct{}{}
		}
	}
	return nil
}

func (s *Service) loadKeys(ctx context.Context, jobID string, k *jobKeys) error {
	ids := []string{jobID}
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
	k.kinds = map[string]map[string]struct{}{"param": {}, "metric": {}, "tag": {}}
	for key := range params[jobID] {
		k.kinds["param"][key] = struct{}{}
	}
	for _, m := range metrics[jobID] {
		k.kinds["metric"][m.Key] = struct{}{}
	}
	for key := range tags[jobID] {
		k.kinds["tag"][key] = struct{}{}
	}
	k.loaded = true
	return nil
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
