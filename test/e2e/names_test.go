package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// madeUpName is the form of the names the server gives jobs submitted without one.
var madeUpName = regexp.MustCompile(`^[a-z]+-[a-z]+$`)

// `foundations submit --name` names a job; without it the job gets a made-up name. Both show
// beside the id in what submit prints and in `foundations get jobs`; a bad name is a one-line
// error and queues nothing.
func TestJobNames(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "names", map[string]string{"main.py": "print('named')\n"})

	res := cli(t, s.Home, proj, "submit", "--stream-job-logs", "False", "--name", "baseline: lr=0.1", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	named := jobID(t, res.Stderr)
	require.Contains(t, res.Stderr, "Foundations INFO: Job '"+named+"' (baseline: lr=0.1) queued in project 'names'.")
	unnamed := s.submitNoStream(t, proj, "main.py")
	require.Equal(t, "baseline: lr=0.1", s.job(t, named).Name)
	made := s.job(t, unnamed).Name
	require.Regexp(t, madeUpName, made)

	res = cli(t, s.Home, proj, "get", "jobs", "scheduler", "--project", "names")
	require.Equal(t, 0, res.Code, res.String())
	require.Regexp(t, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(named)+` +baseline: lr=0\.1 +\w+ +names `), res.Stdout)
	require.Regexp(t, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(unnamed)+` +`+made+` +\w+ +names `), res.Stdout)

	for _, bad := range []string{"two\nlines", strings.Repeat("x", 101)} {
		res = cli(t, s.Home, proj, "submit", "--stream-job-logs", "False", "--name", bad, "scheduler", ".", "main.py")
		requireOneLineError(t, res, "job name")
	}
	code := s.api(t, http.MethodPost, "/api/v1/jobs", map[string]any{"command": []string{"main.py"}, "project": "names",
		"name": "tab\there"}, nil)
	require.Equal(t, http.StatusBadRequest, code)
	require.Len(t, s.jobs(t, "names"), 2, "nothing refused was queued")
}

// `foundations clone job` queues a finished job again with a param changed: the copy runs the
// same folder and command, and foundations.load_parameters() in it returns the new value. An
// unknown job is a 404, and a one-line error in the CLI.
func TestCloneJob(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "clones", map[string]string{
		"job.config.yaml": "params:\n  lr: 0.1\n  epochs: 2\n",
		"main.py": `import foundations
p = foundations.load_parameters()
print("lr is", p["lr"], "epochs", p["epochs"])
foundations.log_metric("lr_seen", p["lr"])
`,
	})
	out, code := cliCombined(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, code, out)
	src := jobID(t, out)
	require.Equal(t, "completed", s.job(t, src).State)

	res := cli(t, s.Home, proj, "clone", "job", "scheduler", src, "--param", "lr=0.5", "--name", "higher lr")
	require.Equal(t, 0, res.Code, res.String())
	clone := jobID(t, res.Stderr)
	require.NotEqual(t, src, clone)
	require.Contains(t, res.Stderr, "Foundations INFO: Job '"+clone+"' (higher lr) queued in project 'clones'.")
	j := s.waitDone(t, clone)
	require.Equal(t, "completed", j.State, s.logs(t, clone))
	require.Equal(t, "higher lr", j.Name)
	require.Equal(t, map[string]any{"lr": 0.5, "epochs": 2.0}, j.SubmittedParams)
	require.Equal(t, 0.5, j.Metric("lr_seen"), "load_parameters() in the copy saw the new value")
	require.Contains(t, s.logs(t, clone), "lr is 0.5 epochs 2")
	require.Equal(t, 0.1, s.job(t, src).Metric("lr_seen"), "the source is left as it was")

	code = s.api(t, http.MethodPost, "/api/v1/jobs/no-such-job/clone", map[string]any{"params": map[string]any{"lr": 1}}, nil)
	require.Equal(t, http.StatusNotFound, code)
	res = cli(t, s.Home, proj, "clone", "job", "scheduler", "no-such-job", "--param", "lr=1")
	requireOneLineError(t, res, "no-such-job", "does not exist")
	require.Len(t, s.jobs(t, "clones"), 2)
}
