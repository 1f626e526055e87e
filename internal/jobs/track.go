// Tracking: batches of params, metrics, tags and artifacts, and heartbeats, checked and stored once.

package jobs

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

const (
	maxKeyLen      = 1000
	maxStringValue = 10000 // characters of a string metric or a tag
	maxParamBytes  = 64 << 10
)

func validKey(kind, k string) error {
	switch {
	case k == "":
		return atlas.Invalidf("%s key is empty", kind)
	case !utf8.ValidString(k):
		return atlas.Invalidf("%s key is not valid UTF-8", kind)
	case utf8.RuneCountInString(k) > maxKeyLen:
		return atlas.Invalidf("%s key %s is %d characters long; the limit is %d", kind, atlas.Shorten(k), utf8.RuneCountInString(k), maxKeyLen)
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
			return nil, atlas.Invalidf("metric %s: value %s is out of range (metrics must be finite numbers)", atlas.Shorten(key), atlas.Shorten(string(x)))
		}
		return x, nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, atlas.Invalidf("metric %q: value %v is not finite", key, x)
		}
		return x, nil
	case string:
		if utf8.RuneCountInString(x) > maxStringValue {
			return nil, atlas.Invalidf("metric %s: string value is longer than %d characters", atlas.Shorten(key), maxStringValue)
		}
		return x, nil
	case bool:
		if x {
			return json.Number("1"), nil
		}
		return json.Number("0"), nil
	}
	return nil, atlas.Invalidf("metric %s: value must be a number or a string, got %s", atlas.Shorten(key), jsonKind(v))
}

// metricPoints checks the points of one metric of a batch, each column in JSON or packed
// (sdk.MetricBatch), and returns them; a point without a step has step -1 (the next one), one
// without a time has now.
func metricPoints(k string, m *sdk.MetricBatch, now float64) ([]atlas.MetricPoint, error) {
	n := len(m.Values)
	if len(m.ValuesF64) > 0 {
		if n > 0 {
			return nil, atlas.Invalidf("metric %s: both values and values_f64 given", atlas.Shorten(k))
		}
		if len(m.ValuesF64)%8 != 0 {
			return nil, atlas.Invalidf("metric %s: values_f64 holds %d bytes, not a whole number of 8-byte floats", atlas.Shorten(k), len(m.ValuesF64))
		}
		n = len(m.ValuesF64) / 8
	}
	for _, c := range []struct {
		name, packed string
		json, bytes  int
	}{{"steps", "steps_i64", len(m.Steps), len(m.StepsI64)}, {"times", "times_ns", len(m.Times), len(m.TimesNs)}} {
		switch {
		case c.json > 0 && c.bytes > 0:
			return nil, atlas.Invalidf("metric %s: both %s and %s given", atlas.Shorten(k), c.name, c.packed)
		case c.json > 0 && c.json != n:
			return nil, atlas.Invalidf("metric %s: %d %s for %d values", atlas.Shorten(k), c.json, c.name, n)
		case c.bytes > 0 && c.bytes != 8*n:
			return nil, atlas.Invalidf("metric %s: %s holds %d bytes for %d values; want %d", atlas.Shorten(k), c.packed, c.bytes, n, 8*n)
		}
	}
	le, packed := binary.LittleEndian, len(m.ValuesF64) > 0
	pts := make([]atlas.MetricPoint, n)
	for i := range pts {
		p := &pts[i]
		p.Step, p.Time = -1, now
		if packed {
			f := math.Float64frombits(le.Uint64(m.ValuesF64[8*i:]))
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, atlas.Invalidf("metric %s: value %v is out of range (metrics must be finite numbers)", atlas.Shorten(k), f)
			}
			p.Value = f
		} else {
			v, err := metricValue(k, m.Values[i])
			if err != nil {
				return nil, err
			}
			p.Value = v
		}
		switch {
		case len(m.Steps) > 0:
			p.Step = m.Steps[i]
		case len(m.StepsI64) > 0:
			p.Step = int64(le.Uint64(m.StepsI64[8*i:]))
		}
		switch {
		case len(m.Times) > 0:
			p.Time = m.Times[i]
		case len(m.TimesNs) > 0:
			p.Time = nanosToSeconds(int64(le.Uint64(m.TimesNs[8*i:])))
		}
	}
	return pts, nil
}

// nanosToSeconds is unix nanoseconds as float seconds, rounded to the nearest float as the
// JSON form of the same time ("<ns>e-9", what the Python SDK writes) is read, so that both
// forms store the same time: a float estimate, checked (and moved by one float if need be)
// with exact integer arithmetic; before 1970-01-01T00:00:01, strconv does it.
func nanosToSeconds(ns int64) float64 {
	const billion = 1e9
	if ns < billion {
		f, _ := strconv.ParseFloat(strconv.FormatInt(ns, 10)+"e-9", 64)
		return f
	}
	c := float64(ns/billion) + float64(ns%billion)/billion // within one float of the answer
	for range 3 {
		// c = m·2^e, 1 <= c < 2^34 so -52 <= e <= -19. c is the nearest float to ns/1e9 when
		// |c - ns/1e9| < 2^(e-1), i.e. |d| < 1e9 for d = 2m·1e9 - ns·2^(1-e), in 128 bits.
		b := math.Float64bits(c)
		m, k := b&(1<<52-1)|1<<52, uint(1-(int(b>>52&0x7ff)-1075))
		hi, lo := bits.Mul64(2*m, billion)
		lo, borrow := bits.Sub64(lo, uint64(ns)<<k, 0)
		hi, _ = bits.Sub64(hi, uint64(ns)>>(64-k), borrow)
		neg := int64(hi) < 0
		if neg { // |d|
			var carry uint64
			lo, carry = bits.Add64(^lo, 1, 0)
			hi = ^hi + carry
		}
		switch {
		case hi == 0 && lo < billion:
			return c
		case neg:
			c = math.Nextafter(c, math.Inf(1))
		default:
			c = math.Nextafter(c, 0)
		}
	}
	return c // not reached: the estimate is at most one float off
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
func (s *Service) trackBatch(ctx context.Context, jobID string, b *sdk.TrackBatch) (*store.TrackBatch, error) {
	out := &store.TrackBatch{JobID: jobID, Writer: b.Writer, Seq: b.Seq, Params: b.Params, Tags: b.Tags}
	if b.Writer != "" && b.Seq <= 0 {
		return nil, atlas.Invalidf("seq must be 1 or more when writer is set")
	}
	if n, limit := len(b.Params)+len(b.Metrics)+len(b.Tags)+len(b.Artifacts), s.cfg.Limits.KeysPerBatch; n > limit {
		return nil, &LimitError{What: fmt.Sprintf("a batch of %d keys", n), Limit: fmt.Sprintf("%d keys a batch", limit), Key: "max_keys_per_batch"}
	}
	for k, v := range b.Params {
		if err := validKey("param", k); err != nil {
			return nil, err
		}
		if f, ok := v.(json.Number); ok {
			if x, err := f.Float64(); err != nil || math.IsInf(x, 0) {
				return nil, atlas.Invalidf("param %s: value %s is out of range", atlas.Shorten(k), atlas.Shorten(string(f)))
			}
		}
		if data, err := json.Marshal(v); err == nil && len(data) > maxParamBytes {
			return nil, atlas.Invalidf("param %s: value is %d bytes of JSON; the limit is %d", atlas.Shorten(k), len(data), maxParamBytes)
		}
	}
	for k, v := range b.Tags {
		if err := validKey("tag", k); err != nil {
			return nil, err
		}
		if n := utf8.RuneCountInString(v); n > maxStringValue {
			return nil, atlas.Invalidf("tag %s: value is %d characters long; the limit is %d", atlas.Shorten(k), n, maxStringValue)
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
		pts, err := metricPoints(k, &m, now)
		if err != nil {
			return nil, err
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
		ok, size, err := s.cfg.Blobs.Has(ctx, a.Digest)
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

// Track stores a batch of tracked values of a job. It reports false when the batch's
// (writer, seq) was stored before: a retry, stored once. The values of a search's trial are
// shown to the search (OnTrialTracked) before the answer goes back to the job, so a job that
// asks whether it should stop after its values were stored hears what the search decided.
func (s *Service) Track(ctx context.Context, c *Caller, jobID string, b *sdk.TrackBatch) (bool, error) {
	if err := s.checkWrite(ctx, c, jobID); err != nil {
		return false, err
	}
	sb, err := s.trackBatch(ctx, jobID, b)
	if err != nil {
		return false, err
	}
	ref, err := s.refOf(ctx, c, jobID)
	if err != nil {
		return false, err
	}
	var applied bool
	err = s.withinKeyLimit(ctx, sb, func() (err error) {
		applied, err = s.cfg.Store.TrackBatch(ctx, sb)
		return err
	})
	if err != nil {
		return false, err
	}
	if applied {
		s.cfg.Events.Tracked(jobID, ref.project, ref.search)
		if ref.search != "" && len(sb.Metrics) > 0 {
			if hook, _ := s.trialHook.Load().(TrialHook); hook != nil {
				hook(ctx, ref.search, jobID)
			}
		}
	}
	return applied, nil
}

// TrialHook is told that metric values of a trial of a search were stored.
type TrialHook func(ctx context.Context, searchID, jobID string)

// OnTrialTracked sets the function told of every batch of metric values stored for a trial of
// a search, in the request that stored it (the searcher, deciding at its rungs). It must not
// track values itself.
func (s *Service) OnTrialTracked(fn TrialHook) { s.trialHook.Store(fn) }

// jobRef is what tracking needs to know of a job, and never changes: its project and search.
type jobRef struct{ project, search string }

// refOf returns a job's project and search, remembered: every batch of a running job needs
// them.
func (s *Service) refOf(ctx context.Context, c *Caller, jobID string) (jobRef, error) {
	if r, ok := s.projects.Load(jobID); ok {
		return r.(jobRef), nil
	}
	j := c.Job
	if j == nil || j.ID != jobID {
		var err error
		if j, err = s.cfg.Store.JobGet(ctx, jobID); err != nil {
			return jobRef{}, err
		}
	}
	r := jobRef{project: j.Project, search: j.SearchID}
	s.projects.Store(jobID, r)
	return r, nil
}

// checkWrite checks that the caller may write to a job, when there is anything to check:
// without authentication, a local user may write to any job, and a missing job is reported
// by the write itself.
func (s *Service) checkWrite(ctx context.Context, c *Caller, id string) error {
	if !s.cfg.Auth && c.JobID == "" {
		return nil
	}
	_, err := s.writable(ctx, c, id)
	return err
}

// Heartbeat records that a script run by hand is alive, and tells it whether it was asked
// to stop.
func (s *Service) Heartbeat(ctx context.Context, c *Caller, id string) (state atlas.State, stop bool, err error) {
	if err := s.checkWrite(ctx, c, id); err != nil {
		return "", false, err
	}
	if err := s.cfg.Store.JobHeartbeat(ctx, id, time.Now().UTC()); err != nil {
		return "", false, err
	}
	j, err := s.cfg.Store.JobGet(ctx, id)
	if err != nil {
		return "", false, err
	}
	return j.State, j.State == atlas.StateStopping || j.State == atlas.StateStopped, nil
}

// SetTag tags a job (the GUI's tag editor; scripts tag through Track).
func (s *Service) SetTag(ctx context.Context, c *Caller, id, key, value string) error {
	if err := validKey("tag", key); err != nil {
		return err
	}
	if err := s.checkWrite(ctx, c, id); err != nil {
		return err
	}
	if n := utf8.RuneCountInString(value); n > maxStringValue {
		return atlas.Invalidf("tag %s: value is %d characters long; the limit is %d", atlas.Shorten(key), n, maxStringValue)
	}
	b := &store.TrackBatch{JobID: id, Tags: map[string]string{key: value}}
	return s.withinKeyLimit(ctx, b, func() error {
		_, err := s.cfg.Store.TrackBatch(ctx, b)
		return err
	})
}

// DeleteTag removes a tag from a job.
func (s *Service) DeleteTag(ctx context.Context, c *Caller, id, key string) error {
	if err := s.checkWrite(ctx, c, id); err != nil {
		return err
	}
	return s.cfg.Store.TagDelete(ctx, id, key)
}
