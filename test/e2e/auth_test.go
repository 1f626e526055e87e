package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// addUser creates a user on a server's home and returns a new token of theirs.
func addUser(t *testing.T, home, name string, admin bool) string {
	t.Helper()
	args := []string{"user", "add", name}
	if admin {
		args = append(args, "--admin")
	}
	res := runIn(t, home, t.TempDir(), nil, serverBin(), args...)
	require.Equal(t, 0, res.Code, res.String())
	res = runIn(t, home, t.TempDir(), nil, serverBin(), "token", "create", name, "--label", "test")
	require.Equal(t, 0, res.Code, res.String())
	tok := strings.TrimSpace(strings.SplitN(res.Stdout, "\n", 2)[0])
	require.True(t, strings.HasPrefix(tok, "atl_"), res.String())
	return tok
}

// apiAs calls the API with a token and returns the status and body.
func apiAs(t *testing.T, s *Server, token, method, path string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestAuthStartRefusals(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	// --auth with nobody able to log in is refused.
	res := runIn(t, home, t.TempDir(), nil, serverBin(), "start", "--port", "0", "--auth")
	require.NotEqual(t, 0, res.Code)
	requireOneLineError(t, res, "no user has a token")
	// A non-loopback address without auth is refused, unless --insecure says so.
	res = runIn(t, home, t.TempDir(), nil, serverBin(), "start", "--port", "0", "--host", "0.0.0.0")
	require.NotEqual(t, 0, res.Code)
	requireOneLineError(t, res, "refusing to listen on 0.0.0.0 without authentication")
	s := startServer(t, home, "--host", "0.0.0.0", "--insecure")
	require.Contains(t, s.Stderr.String(), "WARNING: listening on 0.0.0.0 without authentication")
}

func TestAuthTokensUsersAndJobTokens(t *testing.T) {
	requirePython(t)
	t.Parallel()
	home := newHome(t)
	alice := addUser(t, home, "alice", true)
	bob := addUser(t, home, "bob", false)
	s := startServer(t, home, "--auth")
	require.Contains(t, s.Stdout.String(), "auth:     on")

	// Without a token every command is refused in one line.
	client := t.TempDir()
	res := cli(t, s.Home, client, "clear-queue", "scheduler")
	require.Equal(t, 1, res.Code)
	requireOneLineError(t, res, "authentication required")
	code, _ := apiAs(t, s, "", http.MethodGet, "/api/v1/jobs", nil)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = apiAs(t, s, "", http.MethodGet, "/api/v1/health", nil)
	require.Equal(t, http.StatusOK, code, "health needs no token")

	// login checks the token and stores it, readable by the user only.
	res = cli(t, s.Home, client, "login", s.URL, "--token", "atl_wrong")
	require.Equal(t, 1, res.Code)
	requireOneLineError(t, res, "Login Failed!")
	res = cli(t, s.Home, client, "login", s.URL, "--token", alice)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "as alice")
	fi, err := os.Stat(filepath.Join(s.Home, "credentials.yaml"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Jobs record the token's user, not what the client claims.
	gate := gatePath(t)
	proj := newProject(t, "authproj", map[string]string{"main.py": gateScript})
	aliceJob := s.submitNoStream(t, proj, "main.py", gate)
	j := jobAs(t, s, alice, aliceJob)
	require.Equal(t, "alice", j.User)
	// FOUNDATIONS_TOKEN wins over the stored token.
	res = runIn(t, s.Home, proj, []string{"FOUNDATIONS_TOKEN=" + bob}, cliBin(), "submit", "--stream-job-logs", "False", "scheduler", ".", "main.py", gate)
	require.Equal(t, 0, res.Code, res.String())
	bobJob := jobID(t, res.Stderr)
	require.Equal(t, "bob", jobAs(t, s, bob, bobJob).User)

	// bob may not stop alice's job; alice, an admin, may stop bob's.
	res = runIn(t, s.Home, client, []string{"FOUNDATIONS_TOKEN=" + bob}, cliBin(), "stop", "job", "scheduler", aliceJob)
	require.Equal(t, 1, res.Code)
	requireOneLineError(t, res, "belongs to alice")
	res = cli(t, s.Home, client, "stop", "job", "scheduler", bobJob)
	require.Equal(t, 0, res.Code, res.String())

	// The GUI logs in with a cookie; a stale cookie does not lock it out of logging in again.
	code, body := apiAs(t, s, "", http.MethodPost, "/api/v1/login", map[string]string{"token": bob})
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"user":"bob"`)
	stale := &http.Cookie{Name: "atlas_token", Value: "atl_revoked"}
	for _, path := range []string{"/api/v1/health", "/api/v1/login", "/api/v1/logout"} {
		method, payload := http.MethodPost, `{"token": "`+bob+`"}`
		if path == "/api/v1/health" {
			method = http.MethodGet
		}
		req, err := http.NewRequest(method, s.URL+path, strings.NewReader(payload))
		require.NoError(t, err)
		req.AddCookie(stale)
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.http.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, "%s with a stale cookie", path)
	}
	openGate(t, gate)
	require.Equal(t, "completed", waitDoneAs(t, s, alice, aliceJob).State)
}

const jobTokenMain = `
import json, os, foundations
from foundations._client import APIError, Client
me = os.environ["FOUNDATIONS_JOB_ID"]
client = Client(os.environ["FOUNDATIONS_SCHEDULER_URL"], os.environ["FOUNDATIONS_TOKEN"])
def call(method, path):
    try:
        return client.request(method, path)[0]
    except APIError as e:
        return e.status
results = {
    "read own": call("GET", "/api/v1/jobs/" + me),
    "read other user's": call("GET", "/api/v1/jobs/%s"),
    "delete other": call("DELETE", "/api/v1/jobs/%s"),
    "stop own": call("POST", "/api/v1/jobs/" + me + "/stop"),
    "clear queue": call("POST", "/api/v1/queue/clear"),
}
def get(path):
    try:
        return client.json("GET", path)
    except APIError as e:
        return e.status
# bob's values and the names of his params and metrics are not for alice's job
v = get("/api/v1/projects/bobs/values?column=metric:bob_metric")
results["bob's values"] = v["ids"] if isinstance(v, dict) else v
listing = get("/api/v1/jobs?project=bobs")
results["bob's key lists"] = [listing.get("params"), listing.get("metrics")] if isinstance(listing, dict) else listing
child = foundations.submit(scheduler_config="scheduler", command=["child.py"])
results["child"] = child.job_name()
foundations.log_metric("from_job", 1)
print("RESULTS " + json.dumps(results), flush=True)
`

// A job's own token writes to that job and submits child jobs, and nothing more.
func TestAuthJobTokenScope(t *testing.T) {
	requirePython(t)
	t.Parallel()
	home := newHome(t)
	alice := addUser(t, home, "alice", false)
	bob := addUser(t, home, "bob", false)
	s := startServer(t, home, "--auth", "--workers", "2")
	client := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, client, "login", s.URL, "--token", bob).Code)
	bobJob := s.submitNoStream(t, newProject(t, "bobs", map[string]string{
		"main.py": "import foundations\nfoundations.log_param('bobs_param', 1)\nfoundations.log_metric('bob_metric', 1)\nprint('bob was here')\n",
	}), "main.py")
	require.Equal(t, "completed", waitDoneAs(t, s, bob, bobJob).State)
	code, body := apiAs(t, s, bob, http.MethodGet, "/api/v1/projects/bobs/values?column=metric:bob_metric", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, bobJob, "bob's token reads his values")

	require.Equal(t, 0, cli(t, s.Home, client, "login", s.URL, "--token", alice).Code)
	proj := newProject(t, "alices", map[string]string{
		"main.py":  fmt.Sprintf(jobTokenMain, bobJob, bobJob),
		"child.py": "print('child ran')\n",
	})
	id := s.submitNoStream(t, proj, "main.py")
	j := waitDoneAs(t, s, alice, id)
	require.Equal(t, "completed", j.State, "reason %s", j.Reason)
	logs := logsAs(t, s, alice, id)
	m := regexp.MustCompile(`RESULTS (.*)`).FindStringSubmatch(logs)
	require.NotNil(t, m, logs)
	var results map[string]any
	require.NoError(t, json.Unmarshal([]byte(m[1]), &results))
	require.Equal(t, 200.0, results["read own"])
	require.Equal(t, 404.0, results["read other user's"], "a job cannot see other users' jobs")
	require.Equal(t, 403.0, results["delete other"])
	require.Equal(t, 403.0, results["stop own"], "a job's token cannot stop jobs")
	require.Equal(t, 403.0, results["clear queue"])
	require.Equal(t, []any{}, results["bob's values"], "a job's token reads only its user's values")
	require.Equal(t, []any{nil, nil}, results["bob's key lists"], "nor the names of other users' params and metrics")
	require.Equal(t, 1.0, j.Metric("from_job"))
	child := waitDoneAs(t, s, alice, results["child"].(string))
	require.Equal(t, "completed", child.State)
	require.Equal(t, id, child.ParentID, "the child records the job that submitted it")
	require.Equal(t, "alice", child.User)
	require.Equal(t, "completed", jobAs(t, s, bob, bobJob).State, "bob's job is untouched")
}

type authJob struct {
	Job
	User string `json:"user"`
}

func jobAs(t *testing.T, s *Server, token, id string) *authJob {
	t.Helper()
	code, body := apiAs(t, s, token, http.MethodGet, "/api/v1/jobs/"+id, nil)
	require.Equal(t, http.StatusOK, code, body)
	var j authJob
	require.NoError(t, json.Unmarshal([]byte(body), &j))
	return &j
}

func waitDoneAs(t *testing.T, s *Server, token, id string) *authJob {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		code, body := apiAs(t, s, token, http.MethodGet, "/api/v1/jobs/"+id+"?wait_while=queued,starting,running&timeout=30s", nil)
		require.Equal(t, http.StatusOK, code, body)
		var j authJob
		require.NoError(t, json.Unmarshal([]byte(body), &j))
		if finished(j.State) {
			return &j
		}
		require.True(t, time.Now().Before(deadline), "job %s did not finish", id)
	}
}

func logsAs(t *testing.T, s *Server, token, id string) string {
	t.Helper()
	code, body := apiAs(t, s, token, http.MethodGet, "/api/v1/jobs/"+id+"/logs", nil)
	require.Equal(t, http.StatusOK, code, body)
	return body
}

// netns runs a test server in a network namespace of its own, reached over a veth pair, so
// the client really crosses a network boundary (and is not on the server's loopback).
type netns struct {
	name, serverIP string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 || exec.Command("ip", "netns", "list").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("network namespaces are required (CI=true): run as root with iproute2")
		}
		t.Skip("network namespaces need root and iproute2")
	}
	n := fmt.Sprintf("atl%d", time.Now().UnixNano()%1_000_000)
	sub := fmt.Sprintf("10.%d.%d", 100+time.Now().Nanosecond()%100, time.Now().Nanosecond()/1000%250)
	ns := &netns{name: n, serverIP: sub + ".2"}
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	run("netns", "add", n)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", n+"h").Run()
		exec.Command("ip", "netns", "del", n).Run()
	})
	run("link", "add", n+"h", "type", "veth", "peer", "name", n+"c")
	run("link", "set", n+"c", "netns", n)
	run("addr", "add", sub+".1/24", "dev", n+"h")
	run("link", "set", n+"h", "up")
	run("-n", n, "addr", "add", ns.serverIP+"/24", "dev", n+"c")
	run("-n", n, "link", "set", n+"c", "up")
	run("-n", n, "link", "set", "lo", "up")
	return ns
}

// startServer starts atlas-server inside the namespace, listening on its address.
func (ns *netns) startServer(t *testing.T, home string, args ...string) *Server {
	t.Helper()
	argv := append([]string{"netns", "exec", ns.name, serverBin(), "start", "--host", ns.serverIP, "--port", "0"}, authPython(t, args)...)
	argv = append(argv, args...)
	s, err := runServer(t, home, exec.Command("ip", argv...))
	require.NoError(t, err)
	return s
}

// The seed's remote scheduler config: the same CLI and SDK against a server on another host.
func TestRemoteSchedulerAcrossANetwork(t *testing.T) {
	requirePython(t)
	t.Parallel()
	ns := newNetns(t)
	serverHome := newHome(t)
	tok := addUser(t, serverHome, "carol", false)
	roots := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(serverHome, "config"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(serverHome, "config", "server.config.yaml"),
		[]byte("allowed_volume_roots: ["+roots+"]\n"), 0o644))
	s := ns.startServer(t, serverHome, "--auth")

	// The client has its own FOUNDATIONS_HOME with the seed's aws.config.yaml, every key.
	clientHome := newHome(t)
	sub := filepath.Join(clientHome, "config", "submission")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(sub, "aws.config.yaml"), []byte(`cache_config:
  end_point: /cache_end_point
container_config_root: /remote/.foundations/config/local_docker_scheduler/worker_config
job_deployment_env: local_docker_scheduler_plugin
job_results_root: /remote/.foundations/job_data
scheduler_url: `+s.URL+`
working_dir_root: /remote/.foundations/local_docker_scheduler/work_dir
`), 0o644))
	res := cli(t, clientHome, t.TempDir(), "info", "--env")
	require.Contains(t, res.Stdout, s.URL)
	require.Equal(t, 0, cli(t, clientHome, t.TempDir(), "login", s.URL, "--token", tok).Code)

	// submit streams the logs across the network.
	proj := newProject(t, "remote", map[string]string{"main.py": `
import foundations
print("hello from the remote worker", flush=True)
foundations.log_metric("score", 3)
open("result.txt", "w").write("kept")
`})
	out, code := cliCombined(t, clientHome, proj, "submit", "aws", ".", "main.py")
	require.Equal(t, 0, code, out)
	id := jobID(t, out)
	requireInOrder(t, out, "Foundations INFO: Job running, streaming logs.", "hello from the remote worker",
		"Foundations INFO: Job '"+id+"' has completed.")
	res = cli(t, clientHome, t.TempDir(), "get", "logs", "aws", id)
	require.Contains(t, res.Stdout, "hello from the remote worker")
	dir := t.TempDir()
	res = cli(t, clientHome, dir, "get", "job", "aws", id)
	require.Equal(t, 0, res.Code, res.String())
	data, err := os.ReadFile(filepath.Join(dir, id, "result.txt"))
	require.NoError(t, err)
	require.Equal(t, "kept", string(data))

	// Artifact links are relative: they work through whatever address the client used.
	j := jobAs(t, s, tok, id)
	require.Equal(t, "carol", j.User)
	require.Equal(t, 3.0, j.Metric("score"))

	// foundations.submit(scheduler_config='aws') from Python, and stop, clear-queue, delete.
	gate := gatePath(t)
	driver := newProject(t, "driver", map[string]string{"main.py": gateScript, "drive.py": `
import foundations, sys
d = foundations.submit(scheduler_config="aws", command=["main.py", sys.argv[1]])
print("SUBMITTED", d.job_name())
`})
	res = runIn(t, clientHome, driver, []string{"FOUNDATIONS_COMMAND_LINE=True", "PYTHONPATH=" + filepath.Join(repoRoot, "python")},
		"python3", "drive.py", gate)
	require.Equal(t, 0, res.Code, res.String())
	running := strings.TrimSpace(strings.SplitN(res.Stdout, "SUBMITTED ", 2)[1])
	queued := jobID(t, cli(t, clientHome, proj, "submit", "--stream-job-logs", "False", "aws", ".", "main.py").Stderr)
	res = cli(t, clientHome, t.TempDir(), "clear-queue", "aws")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Removed 1 job(s) from queue")
	code, _ = apiAs(t, s, tok, http.MethodGet, "/api/v1/jobs/"+queued, nil)
	require.Equal(t, http.StatusNotFound, code)
	res = cli(t, clientHome, t.TempDir(), "stop", "job", "aws", running)
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, "stopped", waitDoneAs(t, s, tok, running).State)
	res = cli(t, clientHome, t.TempDir(), "delete", "job", "aws", id)
	require.Equal(t, 0, res.Code, res.String())

	// A remote, non-admin submitter may only mount volumes under the allowed roots.
	vol := newProject(t, "volumes", map[string]string{"main.py": "print('x')\n",
		"job.config.yaml": "worker:\n  volumes:\n    /etc:\n      bind: /host-etc\n      mode: ro\n"})
	res = cli(t, clientHome, vol, "submit", "aws", ".", "main.py")
	require.Equal(t, 1, res.Code)
	requireOneLineError(t, res, "worker.volumes: /etc is not under")
	ok := newProject(t, "volumes-ok", map[string]string{"main.py": "print('mounted')\n",
		"job.config.yaml": "worker:\n  volumes:\n    " + roots + ":\n      bind: /data\n      mode: ro\n"})
	res = cli(t, clientHome, ok, "submit", "aws", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
}

// With --auth, a note's author and a description's editor are the authenticated user, never
// what the request says; the description's edits are kept; only admins and the project's users
// (who have jobs in it) may edit its description, and a job's token edits neither.
func TestAuthProjectAuthorship(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	alice := addUser(t, home, "alice", true)
	bob := addUser(t, home, "bob", false)
	carol := addUser(t, home, "carol", false)
	s := startServer(t, home, "--auth")
	code, body := apiAs(t, s, bob, http.MethodPost, "/api/v1/jobs", map[string]any{"project": "p", "mode": "execution", "command": []string{"main.py"}})
	require.Equal(t, http.StatusCreated, code, body)
	var sub struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &sub))

	code, body = apiAs(t, s, carol, http.MethodPost, "/api/v1/projects/p/notes", map[string]string{"author": "alice", "message": "I am alice"})
	require.Equal(t, http.StatusCreated, code, body)
	require.Contains(t, body, `"author":"carol"`)
	code, body = apiAs(t, s, bob, http.MethodPut, "/api/v1/projects/p/description", map[string]string{"description": "# v1", "editor": "alice"})
	require.Equal(t, http.StatusNoContent, code, body)
	code, body = apiAs(t, s, carol, http.MethodPut, "/api/v1/projects/p/description", map[string]string{"description": "# defaced"})
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, "only admins and users with jobs in project")
	for _, path := range []string{"/api/v1/projects/p/description", "/api/v1/projects/p/notes"} {
		method := http.MethodPost
		if strings.HasSuffix(path, "description") {
			method = http.MethodPut
		}
		code, body = apiAs(t, s, sub.Token, method, path, map[string]string{"description": "# by a job", "message": "by a job"})
		require.Equal(t, http.StatusForbidden, code, "a job's token: %s", body)
	}
	code, body = apiAs(t, s, alice, http.MethodPut, "/api/v1/projects/p/description", map[string]string{"description": "# v2"})
	require.Equal(t, http.StatusNoContent, code, body)

	var proj struct {
		Description   string `json:"description"`
		DescriptionBy string `json:"description_by"`
		DescriptionAt string `json:"description_at"`
	}
	code, body = apiAs(t, s, carol, http.MethodGet, "/api/v1/projects/p", nil)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &proj))
	require.Equal(t, "# v2", proj.Description)
	require.Equal(t, "alice", proj.DescriptionBy)
	require.NotEmpty(t, proj.DescriptionAt)
	var edits []struct {
		Editor, Description string
	}
	code, body = apiAs(t, s, carol, http.MethodGet, "/api/v1/projects/p/description/history", nil)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &edits))
	require.Len(t, edits, 2, body)
	require.Equal(t, "alice", edits[0].Editor)
	require.Equal(t, "bob", edits[1].Editor)
	require.Equal(t, "# v1", edits[1].Description)
	var notes []struct{ Author, Message string }
	code, body = apiAs(t, s, bob, http.MethodGet, "/api/v1/projects/p/notes", nil)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(body), &notes))
	require.Len(t, notes, 1, "the job's note was refused")
	require.Equal(t, "carol", notes[0].Author)
}
