package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/unixsock"
)

// What a web page the user visits can make their browser send to a server on their machine.
// The browser-side versions of these attacks, from real Chromium pages, are in
// web/tests/security.test.mjs; here the same requests are sent by hand, header by header.

// crossSiteSpec is a job a page would like to run: it leaves a marker file behind.
func crossSiteSpec(marker string) string {
	data, _ := json.Marshal(map[string]any{"project": "victim",
		"command": []string{"-c", "open(" + strconv.Quote(marker) + ", 'w').write('pwned')"}})
	return string(data)
}

func TestCrossSiteRequestsCannotRunJobs(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t), "--executor", "process") // the job writes to this machine's files
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	spec := crossSiteSpec(victim)
	port := strconv.Itoa(s.Port)

	// What fetch(url, {method: "POST", mode: "no-cors", body}) sends from another site: no
	// preflight, because text/plain is a "simple" type.
	for name, headers := range map[string]map[string]string{
		"cross-site no-cors":       {"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
		"another port of loopback": {"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"},
		"an older browser":         {"Content-Type": "text/plain", "Origin": "http://evil.example"},
		"a form":                   {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
		// A JSON body needs a preflight, which the server never answers; without any browser
		// header this is not a browser, but the body must still say what it is.
		"text/plain, no origin": {"Content-Type": "text/plain"},
	} {
		code, msg := send(t, s.http, s.URL, http.MethodPost, "/api/v1/jobs", strings.NewReader(spec), headers)
		require.Contains(t, []int{http.StatusForbidden, http.StatusUnsupportedMediaType}, code, "%s: %s", name, msg)
		require.NotContains(t, msg, "\n")
	}
	code, msg := send(t, s.http, s.URL, http.MethodPost, "/api/v1/jobs", strings.NewReader(spec), map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"})
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, msg, `a page of another site ("http://evil.example") may not change anything on this server`)
	code, msg = send(t, s.http, s.URL, http.MethodPost, "/api/v1/jobs", strings.NewReader(spec), map[string]string{"Content-Type": "text/plain"})
	require.Equal(t, http.StatusUnsupportedMediaType, code)
	require.Contains(t, msg, "Content-Type: application/json")
	// Nothing else changes from another site either: stopping, deleting, clearing the queue.
	for _, path := range []string{"/api/v1/queue/clear", "/api/v1/jobs/x/stop", "/api/v1/projects/victim/notes"} {
		code, msg = send(t, s.http, s.URL, http.MethodPost, path, nil, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
		require.Equal(t, http.StatusForbidden, code, "%s: %s", path, msg)
	}
	require.Empty(t, s.jobs(t, ""), "no request from another site made a job")

	// DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 is same-origin
	// with whatever answers there. The server refuses to be evil.example, for reads too.
	for _, path := range []string{"/api/v1/jobs", "/", "/projects"} {
		code, msg = send(t, s.http, s.URL, http.MethodGet, path, nil, map[string]string{"Host": "evil.example:" + port})
		require.Equal(t, http.StatusForbidden, code, path)
		require.Contains(t, msg, `"evil.example:`+port+`" is not a name of this server`)
		require.Contains(t, msg, "allowed_hosts")
	}
	code, msg = send(t, s.http, s.URL, http.MethodPost, "/api/v1/jobs", strings.NewReader(spec),
		map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port, "Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusForbidden, code, msg)
	require.Empty(t, s.jobs(t, ""))
	_, err := os.Stat(victim)
	require.ErrorIs(t, err, os.ErrNotExist)

	// The same job, from the GUI (same origin) or a client (no browser headers), runs: the
	// requests above were refused for where they came from, not for what they asked.
	for name, headers := range map[string]map[string]string{
		"the GUI":   {"Content-Type": "application/json", "Origin": s.URL, "Sec-Fetch-Site": "same-origin"},
		"localhost": {"Content-Type": "application/json", "Host": "localhost:" + port, "Origin": "http://localhost:" + port},
		"a client":  {"Content-Type": "application/json; charset=utf-8"},
	} {
		code, msg = send(t, s.http, s.URL, http.MethodPost, "/api/v1/jobs", strings.NewReader(spec), headers)
		require.Equal(t, http.StatusCreated, code, "%s: %s", name, msg)
	}
	jobs := s.jobs(t, "victim")
	require.Len(t, jobs, 3)
	require.Equal(t, "completed", s.waitDone(t, jobs[0].ID).State, s.logs(t, jobs[0].ID))
	data, err := os.ReadFile(victim)
	require.NoError(t, err, "the job the pages could not submit does run when it may")
	require.Equal(t, "pwned", string(data))

	// The unix socket is for local processes (jobs, the CLI), never browsers: whatever Host
	// their HTTP library sends is fine.
	sock := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return unixsock.Dial(ctx, filepath.Join(s.Home, "run", "sock", "api.sock"))
	}}}
	code, msg = send(t, sock, "http://unix", http.MethodGet, "/api/v1/jobs?project=victim", nil, map[string]string{"Host": "whatever.example"})
	require.Equal(t, http.StatusOK, code, msg)
}

func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"),
		[]byte("allowed_hosts: [atlas.example.org, '*.lab.example.org']\n"), 0o644))
	s := startServer(t, home, "--allowed-hosts", "gpu-box,other.example.org")
	port := strconv.Itoa(s.Port)
	for host, want := range map[string]int{
		// The flag replaces the file's list, as every flag does.
		"gpu-box": 200, "other.example.org": 200, "atlas.example.org": 403, "a.lab.example.org": 403,
		"localhost": 200, "127.0.0.1": 200, "evil.example": 403,
	} {
		code, msg := send(t, s.http, s.URL, http.MethodGet, "/api/v1/health", nil, map[string]string{"Host": host + ":" + port})
		require.Equal(t, want, code, "%s: %s", host, msg)
	}
	s.Stop()
	s = startServer(t, home)
	for host, want := range map[string]int{"atlas.example.org": 200, "a.lab.example.org": 200, "gpu-box": 403} {
		code, msg := send(t, s.http, s.URL, http.MethodGet, "/api/v1/health", nil, map[string]string{"Host": host})
		require.Equal(t, want, code, "%s: %s", host, msg)
	}
	s.Stop()
	res := runIn(t, home, t.TempDir(), nil, serverBin(), "start", "--port", "0", "--allowed-hosts", "http://gpu-box:5555")
	require.NotEqual(t, 0, res.Code)
	requireOneLineError(t, res, `--allowed-hosts: want host names such as atlas.example.org or *.example.org, got "http://gpu-box:5555"`)
}

// With --auth the GUI's cookie goes along with requests from any page of the same site
// (another port of localhost), so the cookie alone never lets a request change anything.
func TestCrossSiteRequestsWithCookie(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	alice := addUser(t, home, "alice", true)
	s := startServer(t, home, "--auth")
	cookie := "atlas_token=" + alice
	body := `{"project": "victim", "mode": "execution", "command": ["main.py"]}`
	code, msg := send(t, s.http, s.URL, http.MethodPost, "/api/v1/jobs", strings.NewReader(body),
		map[string]string{"Cookie": cookie, "Content-Type": "text/plain", "Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"})
	require.Equal(t, http.StatusForbidden, code, msg)
	code, msg = send(t, s.http, s.URL, http.MethodPost, "/api/v1/projects/victim/notes", strings.NewReader(`{"message": "hi"}`),
		map[string]string{"Cookie": cookie, "Content-Type": "application/json", "Origin": "http://localhost:8000"})
	require.Equal(t, http.StatusForbidden, code, msg)
	code, msg = send(t, s.http, s.URL, http.MethodPost, "/api/v1/jobs", strings.NewReader(body), map[string]string{"Cookie": cookie, "Content-Type": "text/plain"})
	require.Equal(t, http.StatusUnsupportedMediaType, code, msg)
	code, msg = send(t, s.http, s.URL, http.MethodGet, "/api/v1/jobs", nil, map[string]string{"Authorization": "Bearer " + alice})
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, msg, `"total":0`)
	// The GUI itself, same origin, with the cookie.
	code, msg = send(t, s.http, s.URL, http.MethodPost, "/api/v1/jobs", strings.NewReader(body),
		map[string]string{"Cookie": cookie, "Content-Type": "application/json", "Origin": s.URL, "Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusCreated, code, msg)
}
