package api

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/sdk"
)

func postJSON(t testing.TB, srv *httptest.Server, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b.String()
}

func newJob(t testing.TB, srv *httptest.Server, id string) {
	t.Helper()
	code, body := postJSON(t, srv, "/api/v1/jobs", fmt.Sprintf(`{"id":%q,"mode":"execution","project":"p","user":"u","command":["x"]}`, id))
	require.Equal(t, http.StatusCreated, code, body)
}

func series(t *testing.T, srv *httptest.Server, id, key string) sdk.MetricSeries {
	t.Helper()
	resp, err := http.Get(srv.URL + "/api/v1/jobs/" + id + "/metrics/" + key + "?max_points=100000")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var s sdk.MetricSeries
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s
}

func packedHex(vs ...any) string {
	var b []byte
	for _, v := range vs {
		switch x := v.(type) {
		case float64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		case int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(x))
		}
	}
	return hex.EncodeToString(b)
}

// A batch with packed columns (values_f64, steps_i64, times_ns) stores exactly what the same
// batch in JSON stores: values, steps (given, and -1 for the next), times to the last bit. A
// batch sent again is stored once; a non-finite packed value is refused with nothing stored.
func TestTrackPackedColumns(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Config{})
	newJob(t, srv, "json")
	newJob(t, srv, "packed")
	const t0 = int64(1_700_000_000_123_456_789)
	jsonBody := fmt.Sprintf(`{"writer":"w","seq":1,"metrics":{"loss":{"values":[0.1,-2.5e-8,1e300,3],
		"steps":[-1,7,-1,20],"times":[%de-9,%de-9,%de-9,%de-9]}}}`, t0, t0+1, t0+999, t0+123456789)
	packedBody := fmt.Sprintf(`{"writer":"w","seq":1,"metrics":{"loss":{"values_f64":%q,"steps_i64":%q,"times_ns":%q}}}`,
		packedHex(0.1, -2.5e-8, 1e300, 3.0), packedHex(int64(-1), int64(7), int64(-1), int64(20)), packedHex(t0, t0+1, t0+999, t0+123456789))
	for id, body := range map[string]string{"json": jsonBody, "packed": packedBody} {
		code, resp := postJSON(t, srv, "/api/v1/jobs/"+id+"/track", body)
		require.Equal(t, http.StatusOK, code, resp)
		require.JSONEq(t, `{"applied":true}`, resp, id)
	}
	want := series(t, srv, "json", "loss")
	require.Equal(t, 4, want.Total)
	require.Equal(t, []int64{0, 7, 2, 20}, []int64{want.Points[0].Step, want.Points[1].Step, want.Points[2].Step, want.Points[3].Step})
	require.Equal(t, want, series(t, srv, "packed", "loss"))

	code, resp := postJSON(t, srv, "/api/v1/jobs/packed/track", packedBody)
	require.Equal(t, http.StatusOK, code, resp)
	require.JSONEq(t, `{"applied":false}`, resp, "the same (writer, seq) again is a retry")
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		code, resp = postJSON(t, srv, "/api/v1/jobs/packed/track",
			fmt.Sprintf(`{"writer":"w","seq":2,"metrics":{"loss":{"values_f64":%q}}}`, packedHex(1.0, bad)))
		require.Equal(t, http.StatusBadRequest, code, resp)
		require.Contains(t, resp, "finite")
	}
	require.Equal(t, want, series(t, srv, "packed", "loss"), "nothing more stored")
}

// A batch over the limit is refused (413) whether its length is declared or it is sent in
// chunks, and nothing of it is stored.
func TestTrackBodyOverTheLimit(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Config{})
	newJob(t, srv, "big")
	for _, declared := range []bool{true, false} {
		head := `{"writer":"w","seq":1,"params":{"k":"`
		body := io.MultiReader(strings.NewReader(head), io.LimitReader(repeatByte('a'), trackLimit), strings.NewReader(`"}}`))
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/jobs/big/track", body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if declared {
			req.ContentLength = int64(len(head)) + trackLimit + 3
		} // else: unknown length, sent chunked
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "length declared: %v", declared)
	}
	code, resp := postJSON(t, srv, "/api/v1/jobs/big/track", `{"writer":"w","seq":1,"params":{"k":"small"}}`)
	require.Equal(t, http.StatusOK, code, resp)
	require.JSONEq(t, `{"applied":true}`, resp, "the refused batches stored nothing, not even their seq")
}

// repeatByte reads as b repeated without end.
type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
