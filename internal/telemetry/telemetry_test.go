package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The exposition as Prometheus reads it: families sorted by name with HELP and TYPE, label
// values escaped, histogram buckets cumulative (a value on a bound counts in that bucket).
func TestWriteText(t *testing.T) {
	tel := New(`1.0 "beta"`)
	tel.ObserveRequest("GET /api/v1/jobs/{id}", 200, 5*time.Millisecond)
	tel.ObserveRequest("GET /api/v1/jobs/{id}", 404, 2*time.Second)
	tel.observeStore("JobGet", time.Now())
	tel.points.add(7)
	tel.blobBytes.add(10, "in")
	var b strings.Builder
	require.NoError(t, tel.WriteText(&b, Gauge{Name: "atlas_jobs", Help: "Jobs by state.\nback\\slash", Labels: []string{"state"},
		Samples: []Sample{{LabelValues: []string{"running"}, Value: 2}, {LabelValues: []string{"queued"}, Value: 0.5}}}))
	out := b.String()
	for _, want := range []string{
		"# HELP atlas_build_info The server's version.\n# TYPE atlas_build_info gauge\natlas_build_info{version=\"1.0 \\\"beta\\\"\"} 1\n",
		"# HELP atlas_jobs Jobs by state.\\nback\\\\slash\n# TYPE atlas_jobs gauge\natlas_jobs{state=\"queued\"} 0.5\natlas_jobs{state=\"running\"} 2\n",
		"atlas_http_request_duration_seconds_bucket{route=\"GET /api/v1/jobs/{id}\",le=\"0.0025\"} 0\n" +
			"atlas_http_request_duration_seconds_bucket{route=\"GET /api/v1/jobs/{id}\",le=\"0.005\"} 1\n",
		"atlas_http_request_duration_seconds_bucket{route=\"GET /api/v1/jobs/{id}\",le=\"1\"} 1\n" +
			"atlas_http_request_duration_seconds_bucket{route=\"GET /api/v1/jobs/{id}\",le=\"2.5\"} 2\n",
		"atlas_http_request_duration_seconds_bucket{route=\"GET /api/v1/jobs/{id}\",le=\"+Inf\"} 2\n" +
			"atlas_http_request_duration_seconds_sum{route=\"GET /api/v1/jobs/{id}\"} 2.005\n" +
			"atlas_http_request_duration_seconds_count{route=\"GET /api/v1/jobs/{id}\"} 2\n",
		"atlas_http_responses_total{route=\"GET /api/v1/jobs/{id}\",code=\"200\"} 1\n" +
			"atlas_http_responses_total{route=\"GET /api/v1/jobs/{id}\",code=\"404\"} 1\n",
		"atlas_store_duration_seconds_count{op=\"JobGet\"} 1\n",
		"# TYPE atlas_tracked_points_total counter\natlas_tracked_points_total 7\n",
		"atlas_blob_bytes_total{direction=\"in\"} 10\n",
	} {
		require.Contains(t, out, want)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names = append(names, strings.Fields(name)[0])
		}
	}
	require.IsIncreasing(t, names, "families sorted by name")
}
