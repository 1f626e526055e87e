package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// GET /metrics speaks Prometheus's text format, and what it says follows what the server did:
// a job waiting behind another shows in the queue; a job that tracks 25 points moves the job,
// point, request, store and blob counts.
func TestPrometheusMetrics(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t)) // one worker
	before := scrape(t, s, "")
	require.Equal(t, 0.0, before.value(t, `atlas_jobs{state="completed"}`))
	require.Equal(t, 0.0, before.value(t, `atlas_queue_length`))
	require.Equal(t, 0.0, before.value(t, `atlas_queue_oldest_wait_seconds`))
	require.Equal(t, 1.0, before.value(t, `atlas_workers`))

	gate := gatePath(t)
	first := s.submitNoStream(t, newProject(t, "promgate", map[string]string{"main.py": gateScript}), "main.py", gate)
	s.waitRunning(t, first)
	id := s.submitNoStream(t, newProject(t, "promproj", map[string]string{"main.py": `
import foundations
for i in range(25):
    foundations.log_metric("loss", 1.0 / (i + 1))
`}), "main.py")
	waiting := scrape(t, s, "")
	require.Equal(t, 1.0, waiting.value(t, `atlas_queue_length`))
	require.Equal(t, 1.0, waiting.value(t, `atlas_jobs{state="queued"}`))
	require.Equal(t, 1.0, waiting.value(t, `atlas_jobs{state="running"}`))
	require.Greater(t, waiting.value(t, `atlas_queue_oldest_wait_seconds`), 0.0)

	openGate(t, gate)
	require.Equal(t, "completed", s.waitDone(t, first).State, s.logs(t, first))
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State, s.logs(t, id))
	require.Equal(t, 25, metricCount(j, "loss"))

	after := scrape(t, s, "")
	require.Equal(t, 25.0, after.value(t, "atlas_tracked_points_total")-before.value(t, "atlas_tracked_points_total"))
	require.Equal(t, 2.0, after.value(t, `atlas_jobs{state="completed"}`))
	require.Equal(t, 0.0, after.value(t, `atlas_queue_length`))
	submit := `atlas_http_responses_total{code="201",route="POST /api/v1/jobs"}`
	require.Equal(t, 2.0, after.value(t, submit)-before.get(submit))
	submitTime := `atlas_http_request_duration_seconds_count{route="POST /api/v1/jobs"}`
	require.Equal(t, 2.0, after.value(t, submitTime)-before.get(submitTime))
	require.GreaterOrEqual(t, after.value(t, `atlas_http_responses_total{code="200",route="POST /api/v1/jobs/{id}/track"}`), 1.0)
	insert := `atlas_store_duration_seconds_count{op="JobInsert"}`
	require.Equal(t, 2.0, after.value(t, insert)-before.get(insert))
	require.GreaterOrEqual(t, after.value(t, `atlas_store_duration_seconds_count{op="TrackBatch"}`), 1.0)
	require.Greater(t, after.value(t, `atlas_blob_bytes_total{direction="in"}`), before.get(`atlas_blob_bytes_total{direction="in"}`),
		"the bundles and the archives went into the blob store")
	require.Greater(t, after.value(t, `atlas_blob_bytes_total{direction="out"}`), before.get(`atlas_blob_bytes_total{direction="out"}`),
		"the bundles were read to run the jobs")
	for key := range after {
		require.NotContains(t, key, id, "routes are labelled by pattern, not by path")
	}
}

// With --auth, /metrics needs a user's token; any user's will do, a job's will not.
func TestPrometheusMetricsWithAuth(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	addUser(t, home, "admin", true)
	scraper := addUser(t, home, "prometheus", false)
	s := startServer(t, home, "--auth")
	code, body := apiAs(t, s, "", http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusUnauthorized, code, body)
	scrape(t, s, scraper)

	// A job's own token may not.
	code, body = apiAs(t, s, scraper, http.MethodPost, "/api/v1/jobs", map[string]any{"mode": "execution", "project": "p", "command": []string{"x"}})
	require.Equal(t, http.StatusCreated, code, body)
	var sub struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &sub))
	require.NotEmpty(t, sub.Token)
	code, body = apiAs(t, s, sub.Token, http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusForbidden, code, body)
}

// exposition is a scrape: each sample's value by its name and labels, labels sorted by name
// (`name{a="x",b="y"}`).
type exposition map[string]float64

func (e exposition) value(t *testing.T, key string) float64 {
	t.Helper()
	v, ok := e[key]
	require.True(t, ok, "no sample %s", key)
	return v
}

// get is a sample's value, 0 when absent (a series appears at its first event).
func (e exposition) get(key string) float64 { return e[key] }

var (
	metricName = `[a-zA-Z_:][a-zA-Z0-9_:]*`
	helpLine   = regexp.MustCompile(`^# HELP (` + metricName + `) (.*)$`)
	typeLine   = regexp.MustCompile(`^# TYPE (` + metricName + `) (counter|gauge|histogram|summary|untyped)$`)
	sampleLine = regexp.MustCompile(`^(` + metricName + `)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(?:,|$)`)
)

// scrape fetches /metrics and checks it against the text format (version 0.0.4): every sample
// belongs to a family declared once with HELP and TYPE, label values are escaped, and each
// histogram's buckets grow to +Inf, which equals its count.
func scrape(t *testing.T, s *Server, token string) exposition {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/metrics", nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", data)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4"), resp.Header.Get("Content-Type"))

	out := exposition{}
	kinds, helped := map[string]string{}, map[string]bool{}
	type bucket struct {
		le    float64
		count float64
	}
	buckets := map[string][]bucket{} // histogram series (name and labels but le) -> buckets in order
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		if m := helpLine.FindStringSubmatch(line); m != nil {
			require.False(t, helped[m[1]], "HELP of %s twice", m[1])
			helped[m[1]] = true
			continue
		}
		if m := typeLine.FindStringSubmatch(line); m != nil {
			require.NotContains(t, kinds, m[1], "TYPE of %s twice", m[1])
			kinds[m[1]] = m[2]
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		require.NotNil(t, m, "not a line of the text format: %q", line)
		name, rest := m[1], m[2]
		family, kind := name, kinds[name]
		if kind == "" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := strings.CutSuffix(name, suffix); ok && kinds[f] == "histogram" {
					family, kind = f, "histogram"
				}
			}
		}
		require.NotEmpty(t, kind, "sample %s of no declared family", name)
		require.True(t, helped[family], "family %s has no HELP", family)
		labels := map[string]string{}
		for rest != "" {
			p := labelPair.FindStringSubmatch(rest)
			require.NotNil(t, p, "bad labels in %q", line)
			require.NotContains(t, labels, p[1], "label %s twice in %q", p[1], line)
			labels[p[1]] = strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, "\n").Replace(p[2])
			rest = rest[len(p[0]):]
		}
		v, err := strconv.ParseFloat(m[3], 64)
		require.NoError(t, err, "value of %q", line)
		le, isBucket := labels["le"]
		delete(labels, "le")
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range labels {
				if !yield(k) {
					return
				}
			}
		})
		var key strings.Builder
		key.WriteString(name)
		if len(names) > 0 {
			key.WriteString("{")
			for i, k := range names {
				if i > 0 {
					key.WriteString(",")
				}
				key.WriteString(k + `="` + labels[k] + `"`)
			}
			key.WriteString("}")
		}
		if kind == "histogram" && strings.HasSuffix(name, "_bucket") {
			require.True(t, isBucket, "bucket without le: %q", line)
			bound, err := strconv.ParseFloat(le, 64)
			require.NoError(t, err, "le of %q", line)
			series := strings.Replace(key.String(), "_bucket", "", 1)
			if prev := buckets[series]; len(prev) > 0 {
				require.Greater(t, bound, prev[len(prev)-1].le, "buckets in order: %q", line)
				require.GreaterOrEqual(t, v, prev[len(prev)-1].count, "buckets are cumulative: %q", line)
			}
			buckets[series] = append(buckets[series], bucket{bound, v})
			continue
		}
		require.NotContains(t, out, key.String(), "sample %s twice", key.String())
		out[key.String()] = v
	}
	require.NotEmpty(t, kinds)
	for series, bs := range buckets {
		last := bs[len(bs)-1]
		require.Equal(t, "+Inf", strconv.FormatFloat(last.le, 'g', -1, 64), "%s ends with +Inf", series)
		count := strings.Replace(series, "{", "_count{", 1)
		if !strings.Contains(series, "{") {
			count = series + "_count"
		}
		require.Equal(t, last.count, out[count], "%s: +Inf bucket = count", series)
	}
	return out
}
