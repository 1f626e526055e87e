// Package telemetry is the server's measurements of itself — how long HTTP requests and store
// calls take, how many metric points were stored, how many bytes went into and out of the blob
// store — and their exposition in Prometheus's text format (GET /metrics).
//
// It keeps counters in memory, from the start of the process, and never reads the database
// itself: values that are read when scraped (jobs by state, the queue) are gauges the caller
// passes to WriteText. The text format is small enough to write by hand, so the server needs
// no metrics library.
package telemetry

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ContentType is the media type of WriteText's output.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

var (
	httpBuckets  = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	storeBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}
)

// Telemetry holds the server's counters and histograms. Its methods are safe for concurrent use.
type Telemetry struct {
	version   string
	requests  *histogram
	responses *counter
	store     *histogram
	points    *counter
	blobBytes *counter
}

// New returns empty telemetry of a server of the given version.
func New(version string) *Telemetry {
	return &Telemetry{
		version: version,
		requests: newHistogram("atlas_http_request_duration_seconds",
			"Time to answer HTTP requests, by route pattern (long polls and streams count their whole length).",
			httpBuckets, "route"),
		responses: newCounter("atlas_http_responses_total", "HTTP responses by route pattern and status code.", "route", "code"),
		store:     newHistogram("atlas_store_duration_seconds", "Time of database calls, by operation.", storeBuckets, "op"),
		points:    newCounter("atlas_tracked_points_total", "Metric points stored (a batch sent again counts once)."),
		blobBytes: newCounter("atlas_blob_bytes_total",
			"Bytes written to (in) and read from (out) the blob store: uploads, archives, downloads and bundles unpacked.",
			"direction"),
	}
}

// ObserveRequest records one answered HTTP request of route (a route pattern, never a raw path,
// so that the number of series stays bounded).
func (t *Telemetry) ObserveRequest(route string, code int, d time.Duration) {
	t.requests.observe(d.Seconds(), route)
	t.responses.add(1, route, strconv.Itoa(code))
}

func (t *Telemetry) observeStore(op string, start time.Time) {
	t.store.observe(time.Since(start).Seconds(), op)
}

// Gauge is a value read when scraped: one sample per set of label values.
type Gauge struct {
	Name, Help string
	Labels     []string
	Samples    []Sample
}

// Sample is one value of a Gauge.
type Sample struct {
	LabelValues []string
	Value       float64
}

// WriteText writes every measurement and the gauges in Prometheus's text exposition format
// (version 0.0.4), families sorted by name.
func (t *Telemetry) WriteText(w io.Writer, gauges ...Gauge) error {
	bw := bufio.NewWriter(w)
	gauges = append(gauges, Gauge{Name: "atlas_build_info", Help: "The server's version.", Labels: []string{"version"},
		Samples: []Sample{{LabelValues: []string{t.version}, Value: 1}}})
	type family struct {
		name  string
		write func(*bufio.Writer)
	}
	var fams []family
	for _, g := range gauges {
		fams = append(fams, family{g.Name, g.write})
	}
	for _, c := range []*counter{t.responses, t.points, t.blobBytes} {
		fams = append(fams, family{c.name, c.write})
	}
	for _, h := range []*histogram{t.requests, t.store} {
		fams = append(fams, family{h.name, h.write})
	}
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.name, b.name) })
	for _, f := range fams {
		f.write(bw)
	}
	return bw.Flush()
}

func (g Gauge) write(w *bufio.Writer) {
	header(w, g.Name, g.Help, "gauge")
	samples := slices.Clone(g.Samples)
	slices.SortFunc(samples, func(a, b Sample) int { return slices.Compare(a.LabelValues, b.LabelValues) })
	for _, s := range samples {
		sample(w, g.Name, g.Labels, s.LabelValues, "", s.Value)
	}
}

// counter is a monotonic count per set of label values.
type counter struct {
	name, help string
	labels     []string
	mu         sync.RWMutex
	series     map[string]*counterSeries
}

type counterSeries struct {
	values []string
	n      atomic.Uint64
}

func newCounter(name, help string, labels ...string) *counter {
	c := &counter{name: name, help: help, labels: labels, series: map[string]*counterSeries{}}
	if len(labels) == 0 {
		c.get() // a counter without labels is shown from the start, at 0
	}
	return c
}

func (c *counter) get(values ...string) *counterSeries {
	key := strings.Join(values, "\xff")
	c.mu.RLock()
	s := c.series[key]
	c.mu.RUnlock()
	if s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s = c.series[key]; s == nil {
		s = &counterSeries{values: values}
		c.series[key] = s
	}
	return s
}

func (c *counter) add(n uint64, values ...string) { c.get(values...).n.Add(n) }

func (c *counter) write(w *bufio.Writer) {
	header(w, c.name, c.help, "counter")
	for _, s := range sortedSeries(&c.mu, c.series, func(s *counterSeries) []string { return s.values }) {
		sample(w, c.name, c.labels, s.values, "", float64(s.n.Load()))
	}
}

// histogram counts observations into buckets per set of label values.
type histogram struct {
	name, help string
	labels     []string
	buckets    []float64
	mu         sync.RWMutex
	series     map[string]*histogramSeries
}

type histogramSeries struct {
	values []string
	counts []atomic.Uint64 // per bucket, not cumulative; the last one is +Inf
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(name, help string, buckets []float64, labels ...string) *histogram {
	return &histogram{name: name, help: help, labels: labels, buckets: buckets, series: map[string]*histogramSeries{}}
}

func (h *histogram) observe(v float64, values ...string) {
	key := strings.Join(values, "\xff")
	h.mu.RLock()
	s := h.series[key]
	h.mu.RUnlock()
	if s == nil {
		h.mu.Lock()
		if s = h.series[key]; s == nil {
			s = &histogramSeries{values: values, counts: make([]atomic.Uint64, len(h.buckets)+1)}
			h.series[key] = s
		}
		h.mu.Unlock()
	}
	i, _ := slices.BinarySearch(h.buckets, v) // the first bucket whose bound is >= v
	s.counts[i].Add(1)
	for {
		old := s.sum.Load()
		if s.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (h *histogram) write(w *bufio.Writer) {
	header(w, h.name, h.help, "histogram")
	labels := append(slices.Clone(h.labels), "le")
	for _, s := range sortedSeries(&h.mu, h.series, func(s *histogramSeries) []string { return s.values }) {
		var cum uint64
		for i := range s.counts {
			cum += s.counts[i].Load()
			le := "+Inf"
			if i < len(h.buckets) {
				le = formatFloat(h.buckets[i])
			}
			sample(w, h.name, labels, append(slices.Clone(s.values), le), "_bucket", float64(cum))
		}
		sample(w, h.name, h.labels, s.values, "_sum", math.Float64frombits(s.sum.Load()))
		sample(w, h.name, h.labels, s.values, "_count", float64(cum))
	}
}

func sortedSeries[S any](mu *sync.RWMutex, m map[string]S, values func(S) []string) []S {
	mu.RLock()
	out := make([]S, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	mu.RUnlock()
	slices.SortFunc(out, func(a, b S) int { return slices.Compare(values(a), values(b)) })
	return out
}

func header(w *bufio.Writer, name, help, kind string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, helpEscaper.Replace(help), name, kind)
}

func sample(w *bufio.Writer, name string, labels, values []string, suffix string, v float64) {
	w.WriteString(name + suffix)
	if len(labels) > 0 {
		w.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(l + `="` + labelEscaper.Replace(values[i]) + `"`)
		}
		w.WriteByte('}')
	}
	w.WriteString(" " + formatFloat(v) + "\n")
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
