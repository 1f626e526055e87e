package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	g := newGuard([]string{"atlas.example.org", "*.lab.example.org", "GPU-Box.", "0.0.0.0"})
	for host, want := range map[string]bool{
		"127.0.0.1:5555": true, "[::1]:5555": true, "localhost:5555": true, "LOCALHOST": true, "localhost.": true,
		"app.localhost:5555":     true, // browsers resolve *.localhost themselves
		"10.1.2.3:5555":          true, // an address is the server's own origin: nothing to rebind
		"[fe80::1%25eth0]:5555":  true,
		"atlas.example.org:443":  true,
		"ATLAS.example.org":      true,
		"gpu-box:5555":           true,
		"a.lab.example.org":      true,
		"b.a.lab.example.org":    true,
		"":                       true, // HTTP/1.0 without Host: not a browser
		"attacker.example:5555":  false,
		"lab.example.org":        false, // *.x allows subdomains of x, not x
		"evillab.example.org":    false,
		"atlas.example.org.evil": false,
		"localhost.evil.example": false,
		"127.0.0.1.nip.io:5555":  false,
	} {
		require.Equal(t, want, g.hostAllowed(host), "Host %q", host)
	}
}

// TestGuard checks the browser checks in front of every route: a request from another site
// that would change something, or naming a host that is not the server, never reaches it.
func TestGuard(t *testing.T) {
	t.Parallel()
	reached := 0
	h := newGuard(nil).handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.WriteHeader(http.StatusNoContent)
	}), func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, err.Error(), statusOf(err))
	})
	type req struct {
		method, path, host, remote string
		headers                    map[string]string
	}
	for _, c := range []struct {
		name string
		req  req
		want int
		msg  string
	}{
		{"the GUI", req{"POST", "/api/v1/jobs", "127.0.0.1:5555", "", map[string]string{"Origin": "http://127.0.0.1:5555", "Sec-Fetch-Site": "same-origin"}}, 204, ""},
		{"the CLI", req{"POST", "/api/v1/jobs", "127.0.0.1:5555", "", nil}, 204, ""},
		{"old browser, same origin", req{"POST", "/api/v1/jobs", "localhost:5555", "", map[string]string{"Origin": "http://localhost:5555"}}, 204, ""},
		{"cross-site read", req{"GET", "/api/v1/jobs", "127.0.0.1:5555", "", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}}, 204, ""},
		{"cross-site no-cors POST", req{"POST", "/api/v1/jobs", "127.0.0.1:5555", "", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}}, 403, "another site"},
		{"another port of localhost", req{"POST", "/api/v1/jobs", "127.0.0.1:5555", "", map[string]string{"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"}}, 403, "another site"},
		{"old browser, cross-site", req{"DELETE", "/api/v1/jobs/x", "127.0.0.1:5555", "", map[string]string{"Origin": "http://evil.example"}}, 403, "another site"},
		{"sandboxed page", req{"POST", "/api/v1/queue/clear", "127.0.0.1:5555", "", map[string]string{"Origin": "null"}}, 403, "another site"},
		{"DNS rebinding", req{"GET", "/api/v1/jobs", "evil.example:5555", "", map[string]string{"Sec-Fetch-Site": "same-origin"}}, 403, `"evil.example:5555" is not a name of this server`},
		{"DNS rebinding, GUI", req{"GET", "/", "evil.example:5555", "", nil}, 403, "allowed_hosts"},
		{"unix socket", req{"POST", "/api/v1/jobs", "unix", "@", map[string]string{"Origin": "http://evil.example"}}, 204, ""},
	} {
		r := httptest.NewRequest(c.req.method, c.req.path, strings.NewReader("{}"))
		r.Host = c.req.host
		if c.req.remote != "" {
			r.RemoteAddr = c.req.remote
		}
		for k, v := range c.req.headers {
			r.Header.Set(k, v)
		}
		before := reached
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, c.want, w.Code, "%s: %s", c.name, w.Body.String())
		require.Contains(t, w.Body.String(), c.msg, c.name)
		require.Equal(t, c.want == 204, reached > before, "%s: reached the route", c.name)
		require.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"), c.name)
		if strings.HasPrefix(c.req.path, "/api/") {
			require.Contains(t, w.Header().Get("Content-Security-Policy"), "sandbox", c.name)
		}
	}
}

func TestDecodeNeedsJSON(t *testing.T) {
	t.Parallel()
	for ct, ok := range map[string]bool{"application/json": true, "application/json; charset=utf-8": true, "Application/JSON": true,
		"": false, "text/plain": false, "text/plain;charset=UTF-8": false, "application/x-www-form-urlencoded": false,
		"multipart/form-data; boundary=x": false, "application/jsonx": false} {
		r := httptest.NewRequest("POST", "/api/v1/jobs", strings.NewReader(`{"a": 1}`))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		var v map[string]any
		err := decode(httptest.NewRecorder(), r, 1<<10, &v)
		if ok {
			require.NoError(t, err, ct)
			continue
		}
		require.Error(t, err, ct)
		require.Equal(t, http.StatusUnsupportedMediaType, statusOf(err), ct)
		require.Contains(t, err.Error(), "Content-Type: application/json", ct)
		require.Nil(t, v, "nothing is read from a %q body", ct)
	}
}

func TestArtifactHeaders(t *testing.T) {
	t.Parallel()
	for name, want := range map[string][2]string{
		"plot.png":    {"image/png", "inline"},
		"plot.PNG":    {"image/png", "inline"},
		"speech.wav":  {"audio/", "inline"},
		"clip.mp4":    {"video/mp4", "inline"},
		"notes.txt":   {"text/plain; charset=utf-8", "inline"},
		"data.csv":    {"text/csv; charset=utf-8", "inline"},
		"m.json":      {"application/json", "inline"},
		"figure.svg":  {"image/svg+xml", "attachment"}, // for <img>; a document if opened
		"report.html": {"application/octet-stream", "attachment"},
		"page.xhtml":  {"application/octet-stream", "attachment"},
		"feed.xml":    {"application/octet-stream", "attachment"},
		"evil.js":     {"application/octet-stream", "attachment"},
		"evil.mjs":    {"application/octet-stream", "attachment"},
		"evil.css":    {"application/octet-stream", "attachment"},
		"doc.pdf":     {"application/octet-stream", "attachment"},
		"model.pt":    {"application/octet-stream", "attachment"},
		"README":      {"application/octet-stream", "attachment"},
	} {
		h := http.Header{}
		artifactHeaders(h, name, false)
		require.True(t, strings.HasPrefix(h.Get("Content-Type"), want[0]), "%s: %s", name, h.Get("Content-Type"))
		require.True(t, strings.HasPrefix(h.Get("Content-Disposition"), want[1]+";"), "%s: %s", name, h.Get("Content-Disposition"))
		require.Contains(t, h.Get("Content-Disposition"), name)
		artifactHeaders(h, name, true)
		require.True(t, strings.HasPrefix(h.Get("Content-Disposition"), "attachment;"), "%s downloaded", name)
	}
}
