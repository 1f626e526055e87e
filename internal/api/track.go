package api

import (
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

const (
	trackLimit     = 64 << 20
	maxKeyLen      = 1000
	maxStringValue = 10000
)

func validKey(kind, k string) error {
	switch {
	case k == "":
		return atlas.Invalidf("%s key is empty", kind)
	case !utf8.ValidString(k):
		return atlas.Invalidf("%s key is not valid UTF-8", kind)
	case utf8.RuneCountInString(k) > maxKeyLen:
		return atlas.Invalidf("%s key %s is %d characters long; the limit is %d", kind, shorten(k), utf8.RuneCountInString(k), maxKeyLen)
	case strings.ContainsRune(k, 0):
		return atlas.Invalidf("%s key contains a NUL character", kind)
	}
	return nil
}

// metricValue checks one metric value: a finite number or a string.
func metricValue(key string, v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, atlas.Invalidf("metric %s: value %s is out of range (metrics must be finite numbers)", shorten(key), shorten(string(x)))
		}
		return x, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, atlas.Invalidf("metric %q: value %v is not finite", key, x)
		}
		return x, nil
	case string:
		if utf8.RuneCountInString(x) > maxStringValue {
			return nil, atlas.Invalidf("metric %s: string value is longer than %d characters", shorten(key), maxStringValue)
		}
		return x, nil
	case bool:
		if x {
			return json.Number("1"), nil
		}
		return json.Number("0"), nil
	}
	return nil, atlas.Invalidf("metric %s: value must be a number or a string, got %s", shorten(key), jsonKind(v))
}

// shorten quotes s for an error message, cut to a readable length.
func shorten(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:37]) + "..."
	}
	return strconv.Quote(s)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// trackBatch validates a wire batch and turns it into a store batch.
func (s *Server) trackBatch(jobID string, b *sdk.TrackBatch) (*store.TrackBatch, error) {
	out := &store.TrackBatch{JobID: jobID, Writer: b.Writer, Seq: b.Seq, Params: b.Params, Tags: b.Tags}
	if b.Writer != "" && b.Seq <= 0 {
		return nil, atlas.Invalidf("seq must be 1 or more when writer is set")
	}
	for k, v := range b.Params {
		if err := validKey("param", k); err != nil {
			return nil, err
		}
		if f, ok := v.(json.Number); ok {
			if x, err := f.Float64(); err != nil || math.IsInf(x, 0) {
				return nil, atlas.Invalidf("param %s: value %s is out of range", shorten(k), shorten(string(f)))
			}
		}
	}
	for k := range b.Tags {
		if err := validKey("tag", k); err != nil {
			return nil, err
		}
	}
	now := float64(time.Now().UnixNano()) / 1e9
	if len(b.Metrics) > 0 {
		out.Metrics = map[string][]atlas.MetricPoint{}
	}
	for k, m := range b.Metrics {
		if err := validKey("metric", k); err != nil {
			return nil, err
		}
		if len(m.Steps) != 0 && len(m.Steps) != len(m.Values) {
			return nil, atlas.Invalidf("metric %q: %d steps for %d values", k, len(m.Steps), len(m.Values))
		}
		if len(m.Times) != 0 && len(m.Times) != len(m.Values) {
			return nil, atlas.Invalidf("metric %q: %d times for %d values", k, len(m.Times), len(m.Values))
		}
		pts := make([]atlas.MetricPoint, len(m.Values))
		for i, v := range m.Values {
			val, err := metricValue(k, v)
			if err != nil {
				return nil, err
			}
			pts[i] = atlas.MetricPoint{Step: -1, Value: val, Time: now}
			if len(m.Steps) > 0 {
				pts[i].Step = m.Steps[i]
			}
			if len(m.Times) > 0 {
				pts[i].Time = m.Times[i]
			}
		}
		out.Metrics[k] = pts
	}
	for _, a := range b.Artifacts {
		if err := validKey("artifact", a.Key); err != nil {
			return nil, err
		}
		if a.Filename == "" || strings.ContainsAny(a.Filename, "/\\\x00") {
			return nil, atlas.Invalidf("artifact %q: invalid file name %q", a.Key, a.Filename)
		}
		ok, size, err := s.cfg.Blobs.Has(a.Digest)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, atlas.Invalidf("artifact %q: blob %s was not uploaded", a.Key, a.Digest)
		}
		out.Artifacts = append(out.Artifacts, atlas.Artifact{Key: a.Key, Filename: a.Filename, Digest: a.Digest, Size: size})
	}
	return out, nil
}

func (s *Server) track(w http.ResponseWriter, r *http.Request) error {
	var b sdk.TrackBatch
	if err := decode(w, r, trackLimit, &b); err != nil {
		return err
	}
	if err := s.writable(r, r.PathValue("id")); err != nil {
		return err
	}
	sb, err := s.trackBatch(r.PathValue("id"), &b)
	if err != nil {
		return err
	}
	project, err := s.projectOf(r, sb.JobID)
	if err != nil {
		return err
	}
	applied, err := s.cfg.Store.TrackBatch(r.Context(), sb)
	if err != nil {
		return err
	}
	if applied {
		s.cfg.Hub.Tracked(sb.JobID, project)
	}
	writeJSON(w, http.StatusOK, sdk.TrackResult{Applied: applied})
	return nil
}

// projectOf returns a job's project, remembered: every batch of a running job needs it for
// its announcement, and a job never changes project.
func (s *Server) projectOf(r *http.Request, jobID string) (string, error) {
	if p, ok := s.projects.Load(jobID); ok {
		return p.(string), nil
	}
	if j := principalOf(r).job; j != nil && j.ID == jobID {
		s.projects.Store(jobID, j.Project)
		return j.Project, nil
	}
	j, err := s.cfg.Store.JobGet(r.Context(), jobID)
	if err != nil {
		return "", err
	}
	s.projects.Store(jobID, j.Project)
	return j.Project, nil
}

// writable checks that the requester may write to a job, when there is anything to check.
func (s *Server) writable(r *http.Request, id string) error {
	p := principalOf(r)
	if !s.cfg.Auth && p.JobID == "" {
		return nil
	}
	if p.job != nil && p.job.ID == id {
		return nil // a job writing to itself: authenticate already loaded it
	}
	j, err := s.cfg.Store.JobGet(r.Context(), id)
	if err != nil {
		return err
	}
	return s.canWrite(r, j)
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.writable(r, id); err != nil {
		return err
	}
	if err := s.cfg.Store.JobHeartbeat(r.Context(), id, time.Now().UTC()); err != nil {
		return err
	}
	j, err := s.cfg.Store.JobGet(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sdk.HeartbeatResult{State: string(j.State), Stop: j.StopRequested || j.State == atlas.StateStopped})
	return nil
}

// finish records the end of an execution-mode job, reported by its script.
func (s *Server) finish(w http.ResponseWriter, r *http.Request) error {
	var req sdk.FinishRequest
	if err := decode(w, r, 1<<20, &req); err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	j, err := s.cfg.Store.JobGet(ctx, id)
	if err != nil {
		return err
	}
	if err := s.canWrite(r, j); err != nil {
		return err
	}
	if j.Mode != atlas.ModeExecution {
		return atlas.Conflictf("job %s is run by the scheduler; only scripts started by hand report their end", id)
	}
	to := atlas.State(req.State)
	if to != atlas.StateCompleted && to != atlas.StateFailed && to != atlas.StateStopped {
		return atlas.Invalidf("invalid state %q: want completed, failed or stopped", req.State)
	}
	if req.ArchiveDigest != "" {
		if ok, _, err := s.cfg.Blobs.Has(req.ArchiveDigest); err != nil || !ok {
			return atlas.Invalidf("archive %s was not uploaded", req.ArchiveDigest)
		}
	}
	if j.State.Finished() {
		// Stopped from the GUI, or given up on: keep that state, but keep the archive too.
		if req.ArchiveDigest != "" && j.ArchiveDigest == "" {
			if err := s.cfg.Store.JobSetArchive(ctx, id, req.ArchiveDigest); err != nil {
				return err
			}
			j.ArchiveDigest = req.ArchiveDigest
		}
		writeJSON(w, http.StatusOK, toWire(j))
		return nil
	}
	j, err = s.cfg.Store.JobSetState(ctx, &store.JobSetStateParams{ID: id, To: to, ExitCode: req.ExitCode,
		Reason: req.Reason, ArchiveDigest: req.ArchiveDigest})
	if err != nil {
		return err
	}
	s.cfg.Hub.JobChanged(j)
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
	key := r.PathValue("key")
	if err := validKey("tag", key); err != nil {
		return err
	}
	if err := s.writable(r, r.PathValue("id")); err != nil {
		return err
	}
	_, err := s.cfg.Store.TrackBatch(r.Context(), &store.TrackBatch{JobID: r.PathValue("id"), Tags: map[string]string{key: body.Value}})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteTag(w http.ResponseWriter, r *http.Request) error {
	if err := s.writable(r, r.PathValue("id")); err != nil {
		return err
	}
	if err := s.cfg.Store.TagDelete(r.Context(), r.PathValue("id"), r.PathValue("key")); err != nil {
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
	if _, err := s.jobFor(r, id); err != nil {
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
			f, ok := asFloat(inner[i].Value)
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

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func (s *Server) artifact(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, key := r.PathValue("id"), r.PathValue("key")
	if _, err := s.jobFor(r, id); err != nil {
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
		f, err := s.cfg.Blobs.Open(a.Digest)
		if err != nil {
			return err
		}
		defer f.Close()
		ctype := mime.TypeByExtension(path.Ext(a.Filename))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		disposition := "inline"
		if r.URL.Query().Get("download") != "" {
			disposition = "attachment"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": a.Filename}))
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "sandbox")
		http.ServeContent(w, r, "", a.CreatedAt, f)
		return nil
	}
	if _, err := s.cfg.Store.JobGet(ctx, id); err != nil {
		return err
	}
	return atlas.NotFoundf("job %s has no artifact %q", id, key)
}
