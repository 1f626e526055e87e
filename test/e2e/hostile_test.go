package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rawAPI sends a request with a raw body and returns the status and the error message.
func rawAPI(t *testing.T, s *Server, method, path, contentType string, body []byte) (int, string) {
	t.Helper()
	headers := map[string]string{}
	if contentType != "" {
		headers["Content-Type"] = contentType
	}
	return send(t, s.http, s.URL, method, path, bytes.NewReader(body), headers)
}

// send sends a request with the given headers (Host among them) to base (through client) and
// returns the status and the error message, or the body if it is not an error.
func send(t *testing.T, client *http.Client, base, method, path string, body io.Reader, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, body)
	require.NoError(t, err)
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		require.NotContains(t, e.Error, "\n", "errors are one line")
		return resp.StatusCode, e.Error
	}
	return resp.StatusCode, string(data)
}

func digestOf(data []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(data)) }

func hostileServer(t *testing.T) *Server {
	t.Helper()
	home := newHome(t)
	require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"),
		[]byte("max_bundle_bytes: 4194304\nmax_bundle_files: 1000\n"), 0o644))
	return startServer(t, home)
}

// Every hostile bundle is refused at submit with one line, and nothing is queued or written.
func TestHostileBundlesAreRefusedAtSubmit(t *testing.T) {
	t.Parallel()
	s := hostileServer(t)
	fixtures, err := filepath.Glob(filepath.Join(repoRoot, "internal", "bundle", "testdata", "hostile", "*.tar.gz"))
	require.NoError(t, err)
	require.NotEmpty(t, fixtures)
	for _, f := range fixtures {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		d := digestOf(data)
		code, msg := rawAPI(t, s, http.MethodPut, "/api/v1/blobs/"+d, "application/octet-stream", data)
		if code == http.StatusRequestEntityTooLarge {
			continue // refused at upload already
		}
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, code, "%s: %s", filepath.Base(f), msg)
		spec, _ := json.Marshal(map[string]any{"command": []string{"main.py"}, "bundle_digest": d, "project": "hostile"})
		code, msg = rawAPI(t, s, http.MethodPost, "/api/v1/jobs", "application/json", spec)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", filepath.Base(f), msg)
		require.Contains(t, msg, "cannot be used", filepath.Base(f))
	}
	require.Empty(t, s.jobs(t, "hostile"), "no hostile bundle was queued")
	// The scratch space used to check bundles is left empty, and nothing escaped the data dir.
	left, err := os.ReadDir(filepath.Join(s.Home, "blobs", "tmp"))
	require.NoError(t, err)
	require.Empty(t, left)
}

func TestHostileUploads(t *testing.T) {
	t.Parallel()
	s := hostileServer(t)
	big := bytes.Repeat([]byte("x"), 5<<20)
	code, msg := rawAPI(t, s, http.MethodPut, "/api/v1/blobs/"+digestOf(big), "application/octet-stream", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, msg)
	require.Contains(t, msg, "larger than the server's limit")

	data := []byte("some bundle content")
	code, msg = rawAPI(t, s, http.MethodPut, "/api/v1/blobs/"+digestOf([]byte("other content")), "application/octet-stream", data)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, msg, "does not match digest")

	code, msg = rawAPI(t, s, http.MethodPut, "/api/v1/blobs/sha256:abc", "application/octet-stream", data)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, msg, "invalid digest")

	// A truncated upload: the connection ends before the announced length.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	require.NoError(t, err)
	fmt.Fprintf(conn, "PUT /api/v1/blobs/%s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		digestOf(append(data, data...)), 2*len(data), data)
	require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	reply, _ := io.ReadAll(conn)
	conn.Close()
	require.Contains(t, string(reply), "400 Bad Request")
	left, err := os.ReadDir(filepath.Join(s.Home, "blobs", "tmp"))
	require.NoError(t, err)
	require.Empty(t, left, "nothing partial is kept")
	ok, _ := os.ReadDir(filepath.Join(s.Home, "blobs", "sha256"))
	require.Empty(t, ok, "no blob was stored by any bad upload")
}

func TestHostileAPIInput(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := hostileServer(t)
	gate := gatePath(t)
	id := s.submitNoStream(t, newProject(t, "target", map[string]string{"main.py": gateScript}), "main.py", gate)
	s.waitRunning(t, id)
	track := "/api/v1/jobs/" + id + "/track"

	cases := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"invalid JSON", "POST", "/api/v1/jobs", `{"command": [`, 400, "invalid JSON"},
		{"NaN", "POST", track, `{"metrics": {"loss": {"values": [NaN]}}}`, 400, "invalid JSON"},
		{"huge number", "POST", track, `{"metrics": {"loss": {"values": [1e400]}}}`, 400, "out of range"},
		{"value of wrong type", "POST", track, `{"metrics": {"loss": {"values": [{"a": 1}]}}}`, 400, "must be a number or a string"},
		{"10,000-character key", "POST", track, `{"params": {"` + strings.Repeat("k", 10000) + `": 1}}`, 400, "10000 characters long"},
		{"empty key", "POST", track, `{"tags": {"": "x"}}`, 400, "key is empty"},
		{"unknown job", "GET", "/api/v1/jobs/no-such-job", "", 404, "not found"},
		{"unknown job track", "POST", "/api/v1/jobs/no-such-job/track", `{"params": {"a": 1}}`, 404, "not found"},
		{"delete a running job", "DELETE", "/api/v1/jobs/" + id, "", 409, "stop it first"},
		{"unknown route", "GET", "/api/v1/nothing", "", 404, "no such API endpoint"},
		{"bad sort", "GET", "/api/v1/jobs?sort=rm+-rf", "", 400, "cannot sort by"},
		{"bad filter", "GET", `/api/v1/jobs?filters=[{"field":"param:x","op":"drop"}]`, "", 400, "unknown operator"},
		{"bad state", "GET", "/api/v1/jobs?state=exploded", "", 400, "invalid state"},
		{"range over text", "GET", `/api/v1/jobs?filters=[{"field":"user","op":"range","min":1}]`, "", 400, "range applies to"},
		{"text match on a time", "GET", `/api/v1/jobs?filters=[{"field":"created_at","op":"contains","values":["17"]}]`, "", 400, "use range"},
		{"101 filters", "GET", "/api/v1/jobs?filters=[" + strings.Repeat(`{"field":"tag","op":"exists"},`, 100) + `{"field":"tag","op":"exists"}]`, "", 400, "at most 100 filters"},
		{"search not UTF-8", "GET", "/api/v1/jobs?q=%ff", "", 400, "not valid UTF-8"},
		// More than SQLite's 32,766 arguments to one statement.
		{"40,000 users", "GET", "/api/v1/jobs?user=" + strings.Repeat("nobody,", 40000) + "x", "", 200, `"total":0`},
		{"job asking for more memory than the machine", "POST", "/api/v1/jobs", `{"command": ["main.py"], "ram_gb": 1000000}`, 400, "this machine has"},
		{"job asking for GPUs", "POST", "/api/v1/jobs", `{"command": ["main.py"], "num_gpus": 3}`, 400, "asks for 3 GPUs"},
		{"job config with wrong types", "POST", "/api/v1/jobs", `{"command": ["main.py"], "job_config": "num_gpus: two\n"}`, 400, "job.config.yaml:1: num_gpus"},
		{"bad job id", "POST", "/api/v1/jobs", `{"id": "../../etc", "command": ["main.py"]}`, 400, "invalid job id"},
	}
	for _, c := range cases {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		code, msg := rawAPI(t, s, c.method, strings.ReplaceAll(c.path, `"`, "%22"), "application/json", body)
		require.Equal(t, c.status, code, "%s: %s", c.name, msg)
		require.Contains(t, msg, c.msg, c.name)
	}
	// An oversized body is refused without being read whole.
	code, msg := rawAPI(t, s, "POST", "/api/v1/jobs", "application/json", bytes.Repeat([]byte(" "), 17<<20))
	require.Equal(t, http.StatusRequestEntityTooLarge, code, msg)

	// Unicode keys are fine, and nothing above touched the job.
	code, msg = rawAPI(t, s, "POST", track, "application/json", []byte(`{"params": {"λ 学习率 🚀": 0.5}}`))
	require.Equal(t, http.StatusOK, code, msg)
	openGate(t, gate)
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State)
	require.Equal(t, map[string]any{"λ 学习率 🚀": 0.5}, j.Params)
	require.Empty(t, j.Metrics)
}

// The CLI turns configs a user can get wrong into one-line errors before anything is queued.
func TestHostileConfigsThroughTheCLI(t *testing.T) {
	t.Parallel()
	s := hostileServer(t)
	for name, cfg := range map[string]string{
		"this machine has":           "ram: 1000000\n",
		"want a mapping":             "worker: just-a-string\n",
		"host path must be absolute": "worker:\n  volumes:\n    relative/path: {bind: /x}\n",
	} {
		proj := newProject(t, "cfg", map[string]string{"main.py": "print(1)\n", "job.config.yaml": cfg})
		res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
		require.Equal(t, 1, res.Code, res.String())
		requireOneLineError(t, res, name)
	}
	require.Empty(t, s.jobs(t, "cfg"))
}
