package api

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGzipJSON(t *testing.T) {
	t.Parallel()
	body := `{"jobs": [` + strings.Repeat(`{"id": "x"},`, 1000) + `{}]}`
	h := func(w http.ResponseWriter, r *http.Request) {
		w, done := withGzip(w, r)
		defer done()
		if r.URL.Path == "/text" {
			w.Header().Set("Content-Type", "text/plain")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		io.WriteString(w, body)
	}
	srv := httptest.NewServer(http.HandlerFunc(h))
	defer srv.Close()
	get := func(path, enc string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		return resp
	}
	resp := get("/json", "gzip, deflate")
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(resp.Body)
	require.NoError(t, err)
	got, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, body, string(got))
	resp = get("/json", "")
	require.Empty(t, resp.Header.Get("Content-Encoding"), "only for clients that accept it")
	resp = get("/text", "gzip")
	require.Empty(t, resp.Header.Get("Content-Encoding"), "streams and files pass through")
	plain, _ := io.ReadAll(resp.Body)
	require.Equal(t, body, string(plain))
}
