package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A failed job's reason carries the last line it printed, usually the exception.
func TestFailureReasonNamesTheError(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "reason", map[string]string{"main.py": "print('training')\nraise RuntimeError('the loss diverged')\n"})
	j := s.waitDone(t, s.submitNoStream(t, proj, "main.py"))
	require.Equal(t, "failed", j.State)
	require.Equal(t, "exited with code 1: RuntimeError: the loss diverged", j.Reason)
}

// tail_bytes starts a long log at a whole line near its end.
func TestLogTail(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "tail", map[string]string{"main.py": "for i in range(2000):\n    print('line %04d' % i)\n"})
	id := s.submitNoStream(t, proj, "main.py")
	require.Equal(t, "completed", s.waitDone(t, id).State)
	resp, err := http.Get(s.URL + "/api/v1/jobs/" + id + "/logs?tail_bytes=100")
	require.NoError(t, err)
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NotEmpty(t, lines)
	require.LessOrEqual(t, len(lines), 10)
	require.Regexp(t, `^line \d{4}$`, lines[0], "the tail starts at a whole line")
	require.Equal(t, "line 1999", lines[len(lines)-1])
	require.NotEmpty(t, resp.Header.Get("X-Log-Offset"))

	resp, err = http.Get(s.URL + "/api/v1/jobs/" + id + "/logs?offset=0&length=25")
	require.NoError(t, err)
	defer resp.Body.Close()
	head, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Len(t, head, 25, "length caps the bytes sent")
	require.True(t, strings.HasPrefix(string(head), "===="), string(head))
}

// The event stream says when a running job tracks new values, and what runs each job.
func TestTrackEventsAndWorkerID(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	proj := newProject(t, "events", map[string]string{"main.py": fmt.Sprintf(`
import os, time, foundations
foundations.log_metric("loss", 1.0)
foundations.flush()
print("tracked", flush=True)
while not os.path.exists(%q):
    time.sleep(0.02)
`, gate)})
	resp, err := http.Get(s.URL + "/api/v1/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	events := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			events <- sc.Text()
		}
		close(events)
	}()
	id := s.submitNoStream(t, proj, "main.py")
	s.waitLog(t, id, "tracked")
	j := jobWorker(t, s, id)
	require.Regexp(t, `^pid \d+$`, j)
	deadline := time.After(time.Minute)
	seen := false
	for !seen {
		select {
		case l, ok := <-events:
			require.True(t, ok, "event stream ended")
			seen = l == "event: track"
		case <-deadline:
			t.Fatal("no track event")
		}
	}
	data := <-events
	require.True(t, strings.HasPrefix(data, "data: ") && strings.Contains(data, id), data)
	openGate(t, gate)
	require.Equal(t, "completed", s.waitDone(t, id).State)
	var p struct {
		Users []string `json:"users"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/projects/events", nil, &p))
	require.Len(t, p.Users, 1)
}

func jobWorker(t *testing.T, s *Server, id string) string {
	t.Helper()
	var j struct {
		WorkerID string `json:"worker_id"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+id, nil, &j))
	return j.WorkerID
}

// foundations get jobs and get queue list jobs, with --json for scripts.
func TestCLIListsJobsAndQueue(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	proj := newProject(t, "lists", map[string]string{"main.py": gateScript})
	running := s.submitNoStream(t, proj, "main.py", gate)
	s.waitRunning(t, running)
	queued := s.submitNoStream(t, proj, "main.py", gate)

	res := cli(t, s.Home, proj, "get", "queue", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "1 running, 1 queued")
	require.Regexp(t, `(?m)^1\s+`+queued+`\s+`+s.job(t, queued).Name+`\s+lists\s+\S+\s+0\s+waiting for a free worker \(1 of 1 busy\)$`, res.Stdout)
	require.Regexp(t, `(?m)^`+running+`\s+`+s.job(t, running).Name+`\s+lists\s+\S+\s+pid \d+`, res.Stdout)

	// Places in the queue: priority first, then submit order; the page lists the head only.
	last := s.submitNoStream(t, proj, "main.py", gate)
	urgent := s.submitNoStream(t, proj, "--priority", "5", "main.py", gate)
	for i, id := range []string{urgent, queued, last} {
		j := s.job(t, id)
		require.Equal(t, i+1, j.QueuePosition, "job %d of the queue", i+1)
		require.Equal(t, "waiting for a free worker (1 of 1 busy)", j.WaitingReason)
	}
	var page struct {
		Queued []struct {
			ID            string `json:"id"`
			QueuePosition int    `json:"queue_position"`
			WaitingReason string `json:"waiting_reason"`
		} `json:"queued"`
		QueuedTotal int `json:"queued_total"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/queue?limit=2", nil, &page))
	require.Equal(t, 3, page.QueuedTotal)
	require.Len(t, page.Queued, 2)
	require.Equal(t, []string{urgent, queued}, []string{page.Queued[0].ID, page.Queued[1].ID})
	require.Equal(t, 2, page.Queued[1].QueuePosition)
	require.Equal(t, "waiting for a free worker (1 of 1 busy)", page.Queued[1].WaitingReason)
	res = cli(t, s.Home, proj, "clear-queue", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	queued = s.submitNoStream(t, proj, "main.py", gate)

	res = cli(t, s.Home, proj, "get", "jobs", "scheduler", "--project", "lists", "--json")
	require.Equal(t, 0, res.Code, res.String())
	var list struct {
		Jobs []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"jobs"`
		Total int `json:"total"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &list))
	require.Equal(t, 2, list.Total)
	require.Equal(t, queued, list.Jobs[0].ID, "newest first")
	res = cli(t, s.Home, proj, "get", "jobs", "scheduler", "--state", "running")
	require.Contains(t, res.Stdout, running)
	require.NotContains(t, res.Stdout, queued)
	openGate(t, gate)
	require.Equal(t, "completed", s.waitDone(t, queued).State)
}

// The server's Go profiles: off by default; with --pprof, to this machine without --auth and
// to admins only with it.
func TestPprof(t *testing.T) {
	t.Parallel()
	off := startServer(t, newHome(t))
	code, body := apiAs(t, off, "", "GET", "/api/v1/debug/pprof/goroutine?debug=1", nil)
	require.Equal(t, http.StatusNotFound, code, body)
	require.Contains(t, body, "--pprof")

	local := startServer(t, newHome(t), "--pprof")
	code, body = apiAs(t, local, "", "GET", "/api/v1/debug/pprof/goroutine?debug=1", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "goroutine profile:")
	code, body = apiAs(t, local, "", "GET", "/api/v1/debug/pprof/", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "heap")

	home := newHome(t)
	admin := addUser(t, home, "alice", true)
	user := addUser(t, home, "bob", false)
	authed := startServer(t, home, "--auth", "--pprof")
	code, body = apiAs(t, authed, "", "GET", "/api/v1/debug/pprof/heap", nil)
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, body = apiAs(t, authed, user, "GET", "/api/v1/debug/pprof/heap", nil)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, "admins")
	code, body = apiAs(t, authed, admin, "GET", "/api/v1/debug/pprof/heap?debug=1", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "heap profile:")
}
