package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// What the end-to-end tests of cluster executors (Kubernetes, Slurm) share: the walkthrough's
// first steps and its clear-queue, the search, the restart's job and what it must deliver.

// walkthroughOn is the seed's walkthrough on a server whose jobs run with executor, up to get
// job: init, submit with streaming logs, params, metrics, tags and artifacts, get logs, get job
// (the archive the job uploaded). It returns the job's id.
func walkthroughOn(t *testing.T, s *Server, executor string) string {
	t.Helper()
	work := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, work, "init", "my_project").Code)
	proj := filepath.Join(work, "my_project")

	out, code := cliCombined(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, code, out)
	id := jobID(t, out)
	requireInOrder(t, out,
		"Foundations INFO: Job submitted with ID '"+id+"'.",
		"Foundations INFO: Job queued. Ctrl-C to stop streaming - job will not be interrupted or cancelled.",
		"Foundations INFO: Job running, streaming logs.",
		"No user requirements found.",
		"epoch 1/5: loss 0.7000",
		"epoch 5/5: loss 0.1681",
		"Foundations INFO: Job '"+id+"' has completed.",
	)
	j := s.record(t, id)
	require.Equal(t, "completed", j.State)
	require.Equal(t, executor, j.Executor)
	require.EqualValues(t, 5, j.Params["epochs"])
	require.InDelta(t, 0.16807, j.Metric("loss"), 1e-9)
	require.Contains(t, j.Tags, "sample")
	require.Len(t, j.Artifacts, 1)
	readme, err := os.ReadFile(filepath.Join(proj, "README.txt"))
	require.NoError(t, err)
	require.Equal(t, readme, s.artifact(t, id, "Project_README"))
	require.NotNil(t, j.StartedAt)
	require.True(t, j.FinishedAt.After(*j.StartedAt), "running since the cluster started it")

	res := cli(t, s.Home, proj, "get", "logs", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	requireInOrder(t, res.Stdout, "epoch 1/5: loss 0.7000", "epoch 5/5: loss 0.1681")
	dest := t.TempDir()
	res = cli(t, s.Home, dest, "get", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.FileExists(t, filepath.Join(dest, id, "main.py"), "the archive the job uploaded")
	return id
}

// clearQueueOn runs clear-queue in proj on a server whose pending jobs were handed to the
// cluster, which has not started them, and whose queued job waits in Atlas's queue: the one is
// removed and the others are stopped.
func clearQueueOn(t *testing.T, s *Server, proj string, pending []string, queued string) {
	t.Helper()
	res := cli(t, s.Home, proj, "clear-queue", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Removed 1 job(s) from queue\n")
	require.Contains(t, res.Stdout, fmt.Sprintf("Stopping %d job(s) that had not started running:", len(pending)))
	for _, id := range pending {
		j := s.waitDone(t, id)
		require.Equal(t, "stopped", j.State)
		require.Equal(t, "stopped on request; it had not started running", j.Reason)
	}
	require.False(t, s.jobExists(t, queued))
}

// searchOn runs a hyperparameter search of 10 jobs from the SDK: every job runs once with its
// own params, and the bundle is stored once. It returns the jobs' ids.
func searchOn(t *testing.T, s *Server) []string {
	t.Helper()
	proj := newProject(t, "search", map[string]string{
		"main.py": `import foundations
p = foundations.load_parameters()
for step in range(3):
    foundations.log_metric("score", p["x"] * 10 + step, step=step)
print("x =", p["x"])
`,
		"drive.py": `import os
os.environ["FOUNDATIONS_COMMAND_LINE"] = "True"
import foundations
for x in range(10):
    job = foundations.submit(scheduler_config="scheduler", command=["main.py"], params={"x": x})
    print("SUBMITTED", job.job_name(), x)
`})
	res := python(t, s.Home, proj, nil, "drive.py")
	require.Equal(t, 0, res.Code, res.String())
	xs := map[string]int{}
	for _, m := range regexp.MustCompile(`SUBMITTED (\S+) (\d+)`).FindAllStringSubmatch(res.Stdout, -1) {
		x, _ := strconv.Atoi(m[2])
		xs[m[1]] = x
	}
	require.Len(t, xs, 10)
	var ids []string
	bundles := map[string]bool{}
	for id, x := range xs {
		j := s.waitDone(t, id)
		require.Equal(t, "completed", j.State, "job %s: %s", id, j.Reason)
		require.EqualValues(t, x, j.Params["x"])
		require.EqualValues(t, x*10+2, j.Metric("score"))
		require.Contains(t, s.logs(t, id), fmt.Sprintf("x = %d\n", x))
		bundles[j.BundleDigest] = true
		ids = append(ids, id)
	}
	require.Len(t, bundles, 1, "one bundle for the whole search")
	return ids
}

// halvesMain is the main.py of jobs a server restart cuts in two: it logs 200 metric points,
// waits at the gate (gate.py) its first argument names, then logs 200 more.
const halvesMain = `import foundations
for i in range(200):
    foundations.log_metric("m", i, step=i)
print("first half delivered", flush=True)
exec(open("gate.py").read())
for i in range(200, 400):
    foundations.log_metric("m", i, step=i)
print("second half logged", flush=True)
`

// requireBothHalves checks that a halvesMain job completed with every point and line of
// output once, in order.
func requireBothHalves(t *testing.T, s *Server, id string) {
	t.Helper()
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State, "job %s: %s", id, j.Reason)
	var m struct {
		Total  int `json:"total"`
		Points []struct {
			Value float64 `json:"value"`
		} `json:"points"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+id+"/metrics/m?max_points=1000", nil, &m))
	require.Equal(t, 400, m.Total, "every point exactly once")
	for i, p := range m.Points {
		require.Equal(t, float64(i), p.Value, "in order")
	}
	log := s.logs(t, id)
	require.Equal(t, 1, strings.Count(log, "first half delivered\n"), "output shipped once:\n%s", log)
	require.Contains(t, log, "second half logged")
}
