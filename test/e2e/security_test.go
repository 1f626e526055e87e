package e2e

// Regression tests of attacks on atlas-server: each reproduces one, and fails if the hole
// opens again.

import (
	"encoding/json"
	"fmt"
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

// Re-submitting an existing job id hands the job (and a script's job token) back to the user
// who created it only; anyone else finds the id taken.
func TestResubmittingAnotherUsersJobIsRefused(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	alice := addUser(t, home, "alice", false)
	bob := addUser(t, home, "bob", false)
	s := startServer(t, home, "--auth")
	spec := map[string]any{"id": "hand-run-1", "mode": "execution", "project": "p", "command": []string{"main.py"}}
	code, body := apiAs(t, s, bob, http.MethodPost, "/api/v1/jobs", spec)
	require.Equal(t, http.StatusCreated, code, body)
	require.Contains(t, body, `"token":"job.hand-run-1.`)

	code, body = apiAs(t, s, alice, http.MethodPost, "/api/v1/jobs", spec)
	require.Equal(t, http.StatusConflict, code, body)
	require.NotContains(t, body, "job.hand-run-1.", "alice gets nothing of bob's job, least of all its token")
	require.Contains(t, body, "job hand-run-1 already exists")

	code, body = apiAs(t, s, bob, http.MethodPost, "/api/v1/jobs", spec)
	require.Equal(t, http.StatusOK, code, "bob's retry is his job: %s", body)
	require.Contains(t, body, `"token":"job.hand-run-1.`)
}

// jobToken is a job's FOUNDATIONS_TOKEN, as the job printed it.
func jobToken(t *testing.T, s *Server, id string) string {
	t.Helper()
	m := regexp.MustCompile(`TOKEN (job\.\S+)`).FindStringSubmatch(s.waitLog(t, id, "TOKEN "))
	require.NotNil(t, m)
	return m[1]
}

// A job's token stops working once the job is deleted: it cannot submit children (with no
// user) in the deleted job's name.
func TestDeletedJobsTokenIsRefused(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "tokens", map[string]string{"main.py": "import os\nprint('TOKEN ' + os.environ['FOUNDATIONS_TOKEN'], flush=True)\n"})
	id := s.submitNoStream(t, proj, "main.py")
	tok := jobToken(t, s, id)
	require.Equal(t, "completed", s.waitDone(t, id).State)
	code, body := apiAs(t, s, tok, http.MethodGet, "/api/v1/jobs/"+id, nil)
	require.Equal(t, http.StatusOK, code, "just finished: the token still delivers what is left: %s", body)

	res := cli(t, s.Home, proj, "delete", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	code, body = apiAs(t, s, tok, http.MethodPost, "/api/v1/jobs", map[string]any{"command": []string{"child.py"}})
	require.Equal(t, http.StatusUnauthorized, code, body)
	require.Contains(t, body, "the token of job "+id+" no longer works: the job was deleted")
	require.Empty(t, s.jobs(t, ""), "no child was queued")
}

// With --auth, jobs run as their users' local accounts (nobody, for users without one), and
// cannot read the server's secret or database, which are its owner's only.
func TestAuthJobsCannotReadTheServersFiles(t *testing.T) {
	requirePython(t)
	if os.Getuid() != 0 {
		t.Skip("jobs run as other accounts only when atlas-server runs as root")
	}
	t.Parallel()
	home := newHome(t)
	alice := addUser(t, home, "alice", false)
	s := startServer(t, home, "--auth")
	for _, f := range []string{"secret", "atlas.db"} {
		fi, err := os.Stat(filepath.Join(home, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	client := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, client, "login", s.URL, "--token", alice).Code)
	proj := newProject(t, "snoop", map[string]string{"main.py": `import json, os
home = os.environ["FOUNDATIONS_HOME"]
seen = {"uid": os.getuid()}
for name in ("secret", "atlas.db", "blobs", "logs/jobs"):
    try:
        p = os.path.join(home, name)
        if os.path.isdir(p):
            os.listdir(p)
        else:
            open(p, "rb").read(1)
        seen[name] = "read"
    except OSError as e:
        seen[name] = type(e).__name__
open("mine.txt", "w").write("a job writes its own directory")
print("SEEN " + json.dumps(seen), flush=True)
`})
	id := s.submitNoStream(t, proj, "main.py")
	j := waitDoneAs(t, s, alice, id)
	require.Equal(t, "completed", j.State, j.Reason)
	m := regexp.MustCompile(`SEEN (.*)`).FindStringSubmatch(logsAs(t, s, alice, id))
	require.NotNil(t, m)
	var seen map[string]any
	require.NoError(t, json.Unmarshal([]byte(m[1]), &seen))
	require.Equal(t, 65534.0, seen["uid"], "alice has no local account: her jobs run as nobody")
	for _, f := range []string{"secret", "atlas.db", "blobs", "logs/jobs"} {
		require.Equal(t, "PermissionError", seen[f], f)
	}
}

// A server that is not root cannot run jobs as their users' accounts: with --auth it refuses
// the process executor, and says why.
func TestAuthProcessExecutorNeedsRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the test runs atlas-server as another account, which needs root")
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		t.Skip("runuser (util-linux) is not installed")
	}
	t.Parallel()
	home := newHome(t)
	addUser(t, home, "alice", true)
	out, err := exec.Command("chown", "-R", "nobody:nogroup", home).CombinedOutput()
	require.NoError(t, err, string(out))
	shareBinaries(t)
	res := runIn(t, home, home, nil, "runuser", "-u", "nobody", "--", serverBin(), "start", "--port", "0", "--auth", "--executor", "process")
	requireOneLineError(t, res, "--auth with the process executor needs atlas-server to run as root")
}

// One server per FOUNDATIONS_HOME: of two started at the same moment, one runs and the other
// says which process holds the data folder.
func TestTwoServersOnOneHome(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	type started struct {
		s   *Server
		err error
	}
	results := make(chan started, 2)
	for range 2 {
		go func() {
			cmd := exec.Command(serverBin(), "start", "--port", "0")
			s, err := runServer(t, home, cmd)
			results <- started{s, err}
		}()
	}
	var running *Server
	var refused *Server
	for range 2 {
		r := <-results
		if r.err == nil {
			require.Nil(t, running, "two servers run on one FOUNDATIONS_HOME")
			running = r.s
		} else {
			refused = r.s
		}
	}
	require.NotNil(t, running)
	require.NotNil(t, refused)
	_, err := refused.WaitExit(time.Minute)
	require.NoError(t, err)
	require.NotEqual(t, 0, refused.cmd.ProcessState.ExitCode())
	require.Contains(t, refused.Stderr.String(),
		fmt.Sprintf("atlas-server is already running with this FOUNDATIONS_HOME (%s): pid %d holds it", home, running.cmd.Process.Pid))
}

// With --auth, a job's archive (its whole working directory) is its user's to download, or an
// admin's: not every user's.
func TestArchiveIsItsUsersOnly(t *testing.T) {
	requirePython(t)
	t.Parallel()
	home := newHome(t)
	admin := addUser(t, home, "root-admin", true)
	alice := addUser(t, home, "alice", false)
	bob := addUser(t, home, "bob", false)
	s := startServer(t, home, "--auth")
	client := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, client, "login", s.URL, "--token", alice).Code)
	id := s.submitNoStream(t, newProject(t, "private", map[string]string{"main.py": "open('result.txt', 'w').write('x')\n"}), "main.py")
	require.Equal(t, "completed", waitDoneAs(t, s, alice, id).State)
	for who, want := range map[string]int{alice: http.StatusOK, admin: http.StatusOK, bob: http.StatusForbidden} {
		code, body := apiAs(t, s, who, http.MethodGet, "/api/v1/jobs/"+id+"/archive", nil)
		require.Equal(t, want, code, body)
	}
}

// Small holes: each a clear 4xx, or cleaned at start.
func TestSmallHoles(t *testing.T) {
	requirePython(t)
	t.Parallel()
	home := newHome(t)
	// What a kill -9 left in the blob store's scratch space is gone after a start.
	leftover := filepath.Join(home, "blobs", "tmp", "put-123")
	require.NoError(t, os.MkdirAll(filepath.Dir(leftover), 0o755))
	require.NoError(t, os.WriteFile(leftover, []byte("half an upload"), 0o644))
	s := startServer(t, home)
	require.NoFileExists(t, leftover)

	proj := newProject(t, "holes", map[string]string{"main.py": "print('x')\n"})
	id := s.submitNoStream(t, proj, "main.py")
	s.waitDone(t, id)
	code, body := apiAs(t, s, "", http.MethodGet, "/api/v1/jobs/"+id+"/logs?offset=99999999999999", nil)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "is past the end of the log")

	for _, name := range []string{".", ".."} {
		code, body = apiAs(t, s, "", http.MethodPost, "/api/v1/jobs", map[string]any{"project": name, "command": []string{"main.py"}})
		require.Equal(t, http.StatusBadRequest, code, body)
		require.Contains(t, body, "is not a name")
	}
	require.False(t, strings.Contains(body, "\n{"), "one error")
}

// A job with many metrics cannot make a listing huge: a listing holds at most 1,000 of each
// job's params and metrics (and says so); the job itself has them all.
func TestListingsStayAPage(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	code, body := apiAs(t, s, "", http.MethodPost, "/api/v1/jobs", map[string]any{"mode": "execution", "project": "wide", "command": []string{"x"}})
	require.Equal(t, http.StatusCreated, code, body)
	var sub struct {
		Job   struct{ ID string } `json:"job"`
		Token string              `json:"token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &sub))
	metrics := map[string]any{}
	for i := range 1500 {
		metrics[fmt.Sprintf("m%04d", i)] = map[string]any{"values": []float64{1}}
	}
	code, body = apiAs(t, s, sub.Token, http.MethodPost, "/api/v1/jobs/"+sub.Job.ID+"/track", map[string]any{"writer": "w", "seq": 1, "metrics": metrics})
	require.Equal(t, http.StatusOK, code, body)

	code, body = apiAs(t, s, "", http.MethodGet, "/api/v1/jobs?project=wide", nil)
	require.Equal(t, http.StatusOK, code)
	var list struct {
		Jobs []struct {
			Metrics       []any `json:"metrics"`
			KeysTruncated bool  `json:"keys_truncated"`
		} `json:"jobs"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Jobs, 1)
	require.Len(t, list.Jobs[0].Metrics, 1000)
	require.True(t, list.Jobs[0].KeysTruncated)
	code, body = apiAs(t, s, "", http.MethodGet, "/api/v1/jobs/"+sub.Job.ID, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1500, strings.Count(body, `"key":"m`))
}
