package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/sdk"
)

// trackLimit caps a batch of tracked values.
const trackLimit = 64 << 20

// trackBodies holds buffers of track bodies read before, to read the next ones into: a batch
// of a fast writer is megabytes, and fresh memory for each costs more than reading it.
var trackBodies sync.Pool

func (s *Server) track(w http.ResponseWriter, r *http.Request) error {
	buf, _ := trackBodies.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	data, err := readJSON(w, r, trackLimit, *buf)
	if err != nil {
		return err
	}
	var b sdk.TrackBatch
	err = sdk.DecodeTrackBatch(data, &b) // b holds nothing of data
	*buf = data[:0]
	trackBodies.Put(buf)
	if err != nil {
		return bodyError(err)
	}
	applied, err := s.cfg.Jobs.Track(r.Context(), callerOf(r), r.PathValue("id"), &b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sdk.TrackResult{Applied: applied})
	return nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	state, stop, err := s.cfg.Jobs.Heartbeat(r.Context(), callerOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sdk.HeartbeatResult{State: string(state), Stop: stop})
	return nil
}

// finish records the end of an execution-mode job, reported by its script, or discards it
// (a driver, not a job).
func (s *Server) finish(w http.ResponseWriter, r *http.Request) error {
	var req sdk.FinishRequest
	if err := decode(w, r, 1<<20, &req); err != nil {
		return err
	}
	if req.Discard {
		if err := s.cfg.Jobs.Discard(r.Context(), callerOf(r), r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	j, err := s.cfg.Jobs.Finish(r.Context(), callerOf(r), r.PathValue("id"), &req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWire(j))
	return nil
}

func (s *Server) setTag(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Value string `json:"value"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, 1<<20, &body); err != nil {
			return err
		}
	}
	if err := s.cfg.Jobs.SetTag(r.Context(), callerOf(r), r.PathValue("id"), r.PathValue("key"), body.Value); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteTag(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.Jobs.DeleteTag(r.Context(), callerOf(r), r.PathValue("id"), r.PathValue("key")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// DefaultMaxPoints is how many points of a series a chart gets unless it asks otherwise.
const DefaultMaxPoints = 2000

func (s *Server) metricSeries(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, key := r.PathValue("id"), r.PathValue("key")
	if _, err := s.cfg.Jobs.Job(ctx, callerOf(r), id); err != nil {
		return err
	}
	maxPoints := DefaultMaxPoints
	if v := r.URL.Query().Get("max_points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 100000 {
			return atlas.Invalidf("invalid max_points %q: want 2 to 100000", v)
		}
		maxPoints = n
	}
	pts, err := s.cfg.Store.MetricSeries(ctx, id, key)
	if err != nil {
		return err
	}
	if len(pts) == 0 {
		return atlas.NotFoundf("job %s has no metric %q", id, key)
	}
	down := Downsample(pts, maxPoints)
	out := sdk.MetricSeries{Key: key, Total: len(pts), Downsampled: len(down) < len(pts), Points: make([]sdk.MetricPoint, len(down))}
	for i, p := range down {
		out.Points[i] = sdk.MetricPoint{Step: p.Step, Value: p.Value, Time: p.Time}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Downsample keeps at most limit points of a series: the first and last, and in each bucket in
// between the points with the smallest and largest value, so spikes stay visible. Series with
// string values are thinned evenly.
func Downsample(pts []atlas.MetricPoint, limit int) []atlas.MetricPoint {
	if len(pts) <= limit || limit < 4 {
		return pts
	}
	buckets := (limit - 2) / 2
	out := make([]atlas.MetricPoint, 0, limit)
	out = append(out, pts[0])
	inner := pts[1 : len(pts)-1]
	for b := 0; b < buckets; b++ {
		lo, hi := b*len(inner)/buckets, (b+1)*len(inner)/buckets
		if lo >= hi {
			continue
		}
		minI, maxI := lo, lo
		minV, maxV := math.Inf(1), math.Inf(-1)
		for i := lo; i < hi; i++ {
			f, ok := atlas.Number(inner[i].Value)
			if !ok {
				continue
			}
			if f < minV {
				minV, minI = f, i
			}
			if f > maxV {
				maxV, maxI = f, i
			}
		}
		first, second := min(minI, maxI), max(minI, maxI)
		out = append(out, inner[first])
		if second != first {
			out = append(out, inner[second])
		}
	}
	return append(out, pts[len(pts)-1])
}

func (s *Server) artifact(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, key := r.PathValue("id"), r.PathValue("key")
	if _, err := s.cfg.Jobs.Job(ctx, callerOf(r), id); err != nil {
		return err
	}
	arts, err := s.cfg.Store.Artifacts(ctx, id)
	if err != nil {
		return err
	}
	for _, a := range arts {
		if a.Key != key {
			continue
		}
		artifactHeaders(w.Header(), a.Filename, r.URL.Query().Get("download") != "")
		return s.serveBlob(w, r, a.Digest, a.CreatedAt)
	}
	if _, err := s.cfg.Store.JobGet(ctx, id); err != nil {
		return err
	}
	return atlas.NotFoundf("job %s has no artifact %q", id, key)
}
