package api

import (
	"io"
	"net/http"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/telemetry"
)

// instrument records how long h takes to answer and with what status, under label: the route
// pattern, never the raw path, so that ids in paths do not make a series each.
func (s *Server) instrument(label string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.cfg.Telemetry.ObserveRequest(label, rec.status, time.Since(start))
	}
}

// statusRecorder notes a response's status; streaming (Flush), http.ResponseController
// (Unwrap) and sendfile (ReadFrom) still reach the connection.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return io.Copy(r.ResponseWriter, src)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		if r.status == 0 {
			r.status = http.StatusOK
		}
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// metrics answers Prometheus: the server's own measurements, and what the store and the
// scheduler say now.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	counts, err := s.cfg.Store.JobCounts(ctx)
	if err != nil {
		return err
	}
	since, err := s.cfg.Store.JobQueueOldest(ctx)
	if err != nil {
		return err
	}
	byState := telemetry.Gauge{Name: "atlas_jobs", Help: "Jobs by state.", Labels: []string{"state"}}
	for _, st := range atlas.States {
		byState.Samples = append(byState.Samples, telemetry.Sample{LabelValues: []string{string(st)}, Value: float64(counts[st])})
	}
	oldest := 0.0
	if !since.IsZero() {
		oldest = max(0, time.Since(since).Seconds())
	}
	gauges := []telemetry.Gauge{byState,
		{Name: "atlas_queue_length", Help: "Jobs waiting in the queue.", Samples: []telemetry.Sample{{Value: float64(counts[atlas.StateQueued])}}},
		{Name: "atlas_queue_oldest_wait_seconds", Help: "How long the job queued longest has waited (0 when none waits).",
			Samples: []telemetry.Sample{{Value: oldest}}},
	}
	if s.cfg.Queue != nil {
		gauges = append(gauges, telemetry.Gauge{Name: "atlas_workers", Help: "Jobs that may run at the same time.",
			Samples: []telemetry.Sample{{Value: float64(s.cfg.Queue.Workers())}}})
	}
	w.Header().Set("Content-Type", telemetry.ContentType)
	return s.cfg.Telemetry.WriteText(w, gauges...)
}
