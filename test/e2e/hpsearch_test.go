package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hpTrial is a deterministic trial: its loss at step s is a function of its params alone,
// q·(1 + layers/10)/s. It asks after every step whether the search stopped it. Trial 3 waits,
// before its first step, for the gate named by its first argument (a test kills the server
// meanwhile).
const hpTrial = `import os, sys, time
import foundations
p = foundations.load_parameters()
trial = int(os.environ["FOUNDATIONS_JOB_ID"].rsplit("-t", 1)[1])
for step in range(1, 10):
    if trial == 3 and step == 1:
        print("trial 3 is waiting for its gate", flush=True)
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.02)
    foundations.log_metric("loss", p["q"] * (1 + p["net"]["layers"] / 10) / step, step=step)
    if foundations.should_stop():
        print("asked to stop at step", step, flush=True)
        sys.exit(0)
print("ran every step", flush=True)
`

const hpConfig = `project_name: hpsearch
search:
  method: asha
  metric: loss
  smaller_is_better: true
  max_trials: 7
  max_concurrent_trials: 1
  seed: 21
  reduction_factor: 3
  max_steps: 9
  params:
    q: {type: uniform, min: 1, max: 10}
    net:
      layers: {type: int, min: 1, max: 4}
      kind: {type: categorical, values: [mlp, cnn]}
`

// Search is the part of the API's search that the tests look at.
type Search struct {
	ID              string         `json:"id"`
	State           string         `json:"state"`
	Reason          string         `json:"reason"`
	TrialsPlanned   int            `json:"trials_planned"`
	TrialsSubmitted int            `json:"trials_submitted"`
	Counts          map[string]int `json:"counts"`
	Warnings        []string       `json:"warnings"`
	Version         string         `json:"version"`
	Best            *SearchTrial   `json:"best"`
	Trials          []SearchTrial  `json:"trials"`
}

// SearchTrial is one trial of a Search.
type SearchTrial struct {
	Trial     int            `json:"trial"`
	JobID     string         `json:"job_id"`
	State     string         `json:"state"`
	Reason    string         `json:"reason"`
	Params    map[string]any `json:"params"`
	Value     *float64       `json:"value"`
	StoppedAt *int64         `json:"stopped_at"`
	Rungs     []struct {
		Step  int64   `json:"step"`
		Value float64 `json:"value"`
		Stop  bool    `json:"stop"`
	} `json:"rungs"`
}

var searchIDRE = regexp.MustCompile(`Search submitted with ID '([^']+)'\.`)

// startSearch runs `foundations search scheduler . args...` in dir and returns the search's id.
func (s *Server) startSearch(t *testing.T, dir string, args ...string) string {
	t.Helper()
	res := cli(t, s.Home, dir, append([]string{"search", "scheduler", "."}, args...)...)
	require.Equal(t, 0, res.Code, "search failed:\n%s", res)
	m := searchIDRE.FindStringSubmatch(res.Stderr)
	require.NotNil(t, m, "no \"Search submitted with ID\" line in:\n%s", res)
	return m[1]
}

func (s *Server) search(t *testing.T, id string) *Search {
	t.Helper()
	var se Search
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/searches/"+url.PathEscape(id), nil, &se))
	return &se
}

// waitSearch long-polls a search until cond holds (at most three minutes).
func (s *Server) waitSearch(t *testing.T, id string, cond func(*Search) bool) *Search {
	t.Helper()
	se := s.search(t, id)
	deadline := time.Now().Add(3 * time.Minute)
	for !cond(se) {
		require.True(t, time.Now().Before(deadline), "search %s: condition not met after three minutes: %+v", id, se)
		var next Search
		require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/searches/"+url.PathEscape(id)+"?timeout=30s&wait_since="+se.Version, nil, &next))
		se = &next
	}
	return se
}

func searchEnded(se *Search) bool {
	return se.State == "completed" || se.State == "stopped" || se.State == "failed"
}

// decisions is what a search decided about its trials, to compare two runs of it.
func decisions(se *Search) []string {
	var out []string
	for _, tr := range se.Trials {
		line := fmt.Sprintf("trial %d %s q=%v net=%v:", tr.Trial, tr.State, tr.Params["q"], tr.Params["net"])
		for _, r := range tr.Rungs {
			line += fmt.Sprintf(" [step %d %.6f stop=%v]", r.Step, r.Value, r.Stop)
		}
		out = append(out, line)
	}
	return out
}

// The search of hpConfig is run twice: once straight through, once with the server killed
// with SIGKILL while trial 3 runs. The second run makes every decision the first made, submits
// no trial twice and loses none; trials the search stops end stopped with the reason, after
// they saw should_stop() say so.
func TestSearchSurvivesKill9(t *testing.T) {
	requirePython(t)
	t.Parallel()

	// Straight through, followed with --follow.
	ref := startServer(t, newHome(t), "--workers", "1")
	open := gatePath(t)
	openGate(t, open)
	refProj := newProject(t, "hpsearch", map[string]string{"main.py": hpTrial, "job.config.yaml": hpConfig})
	out, code := cliCombined(t, ref.Home, refProj, "search", "scheduler", ".", "main.py", open, "--follow")
	require.Equal(t, 0, code, out)
	m := searchIDRE.FindStringSubmatch(out)
	require.NotNil(t, m, out)
	want := ref.search(t, m[1])
	require.Equal(t, "completed", want.State)
	require.Len(t, want.Trials, 7)
	for _, line := range []string{"asha search of loss (smaller is better): 7 trial(s), at most 1 at a time, seed 21, rungs at steps 1, 3.",
		"Trial 0 (job " + m[1] + "-t0) running: net.kind=", "Best so far: trial 0, loss ", "TRIAL  JOB ID"} {
		require.Contains(t, out, line)
	}
	stopped := 0
	for _, tr := range want.Trials {
		logs := ref.logs(t, tr.JobID)
		if tr.State == "stopped" {
			stopped++
			require.NotNil(t, tr.StoppedAt)
			require.Regexp(t, fmt.Sprintf(`^early stopped by search %s at step %d \(`, regexp.QuoteMeta(want.ID), *tr.StoppedAt), tr.Reason)
			require.Contains(t, logs, fmt.Sprintf("asked to stop at step %d", *tr.StoppedAt), "the trial heard of it at its rung")
			require.Contains(t, out, fmt.Sprintf("Trial %d (job %s) stopped: loss ", tr.Trial, tr.JobID))
		} else {
			require.Equal(t, "completed", tr.State, "trial %d: %s", tr.Trial, tr.Reason)
			require.Contains(t, logs, "ran every step")
		}
	}
	require.Positive(t, stopped, "the seed was chosen so that asha stops some trials: %v", decisions(want))
	require.Less(t, stopped, 7)

	// With a SIGKILL of the server while trial 3 runs.
	s := startServer(t, newHome(t), "--workers", "1")
	gate := gatePath(t)
	proj := newProject(t, "hpsearch", map[string]string{"main.py": hpTrial, "job.config.yaml": hpConfig})
	id := s.startSearch(t, proj, "main.py", gate)
	s.waitSearch(t, id, func(se *Search) bool { return se.TrialsSubmitted >= 4 })
	s.waitLog(t, id+"-t3", "trial 3 is waiting for its gate")
	s.Kill(t)
	s = startServer(t, s.Home, "--port", fmt.Sprint(s.Port), "--workers", "1")
	require.Equal(t, "running", s.search(t, id).State, "the search goes on after the restart")
	openGate(t, gate)
	got := s.waitSearch(t, id, searchEnded)
	require.Equal(t, "completed", got.State, got.Reason)
	require.Equal(t, decisions(want), decisions(got), "the same trials, decided the same way")
	require.Len(t, s.jobs(t, "hpsearch"), 7, "no trial submitted twice, none lost")
	require.Contains(t, s.logs(t, id+"-t3"), "trial 3 is waiting for its gate")

	// get search shows the trials, their state, params, metric and the best.
	res := cli(t, s.Home, proj, "get", "search", "scheduler", id)
	require.Equal(t, 0, res.Code, res)
	require.Contains(t, res.Stdout, "Search "+id+" (project hpsearch): completed")
	require.Contains(t, res.Stdout, fmt.Sprintf("best:    trial %d (job %s): loss ", got.Best.Trial, got.Best.JobID))
	require.Regexp(t, `TRIAL\s+JOB ID\s+STATE\s+LOSS\s+STEP\s+PARAMS\s+REASON`, res.Stdout)
	require.Contains(t, res.Stdout, "early stopped by search "+id+" at step")
}

// Stopping a search stops its running trial, takes its queued one out of the queue, and
// submits nothing more.
func TestStopSearch(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t), "--workers", "1")
	gate := gatePath(t) // never opened
	proj := newProject(t, "stopsearch", map[string]string{"main.py": gateScript, "job.config.yaml": `search:
  method: random
  metric: loss
  smaller_is_better: true
  max_trials: 5
  max_concurrent_trials: 2
  params:
    lr: {type: log_uniform, min: 0.0001, max: 0.1}
`})
	id := s.startSearch(t, proj, "main.py", gate)
	s.waitLog(t, id+"-t0", "job is waiting for its gate")
	s.waitSearch(t, id, func(se *Search) bool { return se.TrialsSubmitted == 2 })
	require.Equal(t, "queued", s.job(t, id+"-t1").State, "more trials than worker slots wait in the queue")

	res := cli(t, s.Home, proj, "stop", "search", "scheduler", id)
	require.Equal(t, 0, res.Code, res)
	require.Equal(t, "Stopped search "+id+": 2 of 5 trials had been submitted\n", res.Stdout)
	se := s.search(t, id)
	require.Equal(t, "stopped", se.State)
	require.Len(t, se.Trials, 2)
	require.Equal(t, "stopped", se.Trials[0].State)
	require.True(t, strings.HasPrefix(se.Trials[0].Reason, "stopped with search "+id+" ("), se.Trials[0].Reason)
	require.Equal(t, "stopped", se.Trials[1].State)
	require.Equal(t, "stopped with search "+id, se.Trials[1].Reason)

	res = cli(t, s.Home, proj, "stop", "search", "scheduler", id)
	requireOneLineError(t, res, "search "+id+" is stopped and cannot be stopped")

	// Searches are listed for people, and as JSON.
	res = cli(t, s.Home, proj, "get", "searches", "scheduler")
	require.Equal(t, 0, res.Code, res)
	require.Regexp(t, `(?m)^`+id+`\s+stopsearch\s+stopped\s+random\s+2/5\s+`, res.Stdout)
	res = cli(t, s.Home, proj, "get", "searches", "scheduler", "--project", "stopsearch", "--json")
	require.Equal(t, 0, res.Code, res)
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &listed), res)
	require.Len(t, listed, 1)
	require.Equal(t, id, listed[0]["id"])
	require.Equal(t, "stopped", listed[0]["state"])
	res = cli(t, s.Home, proj, "get", "search", "scheduler", "no-such-search")
	requireOneLineError(t, res, "search no-such-search not found")
}

// A bad search is one line naming the file, line and key, and nothing is queued; a metric no
// trial logs is pointed out once trials end without it.
func TestSearchBadInput(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t), "--workers", "1")
	proj := newProject(t, "badsearch", map[string]string{"main.py": "import foundations\nfoundations.log_metric('loss', 1.0)\n"})
	search := func(body string) string {
		return "method: random\nmetric: loss\nsmaller_is_better: true\nmax_trials: 2\n" + body
	}
	for _, c := range []struct{ config, want string }{
		{"method: bayes\nmetric: loss\nsmaller_is_better: true\nparams: {a: 1}\n", `bad.yaml:1: method: unknown method "bayes": want grid, random, asha or median`},
		{search("params:\n  lr: {type: uniform, min: 0.5, max: 0.1}\n"), "bad.yaml:6: params.lr: min 0.5 is greater than max 0.1"},
		{search("params:\n  act: {type: categorical, values: []}\n"), "bad.yaml:6: params.act.values: a categorical parameter needs at least one value"},
		{search("params: [1, 2]\n"), "bad.yaml:5: params: want a mapping of parameter names to parameters"},
	} {
		writeFiles(t, proj, map[string]string{"bad.yaml": c.config})
		res := cli(t, s.Home, proj, "search", "scheduler", ".", "main.py", "--config", "bad.yaml")
		requireOneLineError(t, res, c.want)
	}
	res := cli(t, s.Home, proj, "search", "scheduler", ".", "main.py")
	requireOneLineError(t, res, "no search given: add a search: section to", "--config FILE")

	// The server checks too, whatever the client.
	code := s.api(t, http.MethodPost, "/api/v1/searches", map[string]any{"config": "method: random\n",
		"job": map[string]any{"command": []string{"main.py"}}}, nil)
	require.Equal(t, http.StatusBadRequest, code)
	require.Empty(t, s.jobs(t, ""), "nothing queued")
	var list []Search
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/searches", nil, &list))
	require.Empty(t, list)

	// A metric's name mistyped: no trial logs it.
	writeFiles(t, proj, map[string]string{"typo.yaml": "method: random\nmetric: val_loss\nsmaller_is_better: true\nmax_trials: 1\nparams:\n  lr: {type: uniform, min: 0, max: 1}\n"})
	id := s.startSearch(t, proj, "main.py", "--config", "typo.yaml")
	s.waitSearch(t, id, searchEnded)
	res = cli(t, s.Home, proj, "get", "search", "scheduler", id)
	require.Equal(t, 0, res.Code, res)
	require.Contains(t, res.Stdout, `warning: no trial has logged the metric "val_loss": 1 trial(s) ended without it (they logged only "loss"); check the metric's name`)
}
