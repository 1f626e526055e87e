package e2e

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// describeMain logs a param, a metric three times, a tag and an artifact.
const describeMain = `import foundations
foundations.log_param("lr", 0.01)
for v in (0.9, 0.5, 0.7):
    foundations.log_metric("loss", v)
foundations.set_tag("team", "vision")
with open("out.txt", "w") as f:
    f.write("hello")
foundations.save_artifact("out.txt", key="result")
print("trained", flush=True)
`

// `foundations describe job` shows a job's state, times, params, metrics (last, min, max),
// tags, artifacts and worker, and --json the API's job object; submit --json prints only the
// job on stdout; the 8 characters the GUI shows name the job for every command.
func TestCLIDescribeJob(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "describe", map[string]string{"main.py": describeMain})

	res := cli(t, s.Home, proj, "submit", "--json", "--name", "first-try", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	var submitted Job
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &submitted), "stdout is the job as JSON, nothing else:\n%s", res)
	require.Equal(t, "completed", submitted.State)
	require.Contains(t, res.Stderr, "trained", "the job's output goes to stderr")
	id := submitted.ID
	short := id[:8]

	res = cli(t, s.Home, proj, "describe", "job", "scheduler", short)
	require.Equal(t, 0, res.Code, res.String())
	out := res.Stdout
	require.Contains(t, out, "Job "+id+"\n")
	for _, re := range []string{
		`(?m)^  name:\s+first-try$`,
		`(?m)^  project:\s+describe$`,
		`(?m)^  state:\s+completed$`,
		`(?m)^  submitted:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`,
		`(?m)^  started:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(after [0-9.]+m?s in the queue\)$`,
		`(?m)^  ended:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(ran [0-9.]+m?s\)$`,
		`(?m)^  command:\s+main\.py$`,
		`(?m)^  worker:\s+(pid \d+ \(process|container [0-9a-f]+ \(docker) executor\)$`,
		`(?m)^  exit code:\s+0$`,
		`(?m)^  lr\s+0\.01$`,
		`(?m)^Metrics\s+LAST\s+MIN\s+MAX\s+STEP\s+COUNT$`,
		`(?m)^  loss\s+0\.7\s+0\.5\s+0\.9\s+2\s+3$`,
		`(?m)^  team\s+vision$`,
		`(?m)^  result\s+out\.txt\s+5 bytes$`,
	} {
		require.Regexp(t, re, out)
	}

	res = cli(t, s.Home, proj, "describe", "job", "scheduler", short, "--json")
	require.Equal(t, 0, res.Code, res.String())
	var described map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &described), res.String())
	var fromAPI map[string]any
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+id, nil, &fromAPI))
	delete(described, "duration_seconds")
	delete(fromAPI, "duration_seconds")
	require.Equal(t, fromAPI, described, "--json is the API's job object")
	require.Equal(t, map[string]any{"key": "loss", "last": 0.7, "last_step": 2.0, "count": 3.0, "min": 0.5, "max": 0.9},
		described["metrics"].([]any)[0])
	require.Equal(t, map[string]any{"team": "vision"}, described["tags"])

	// The GUI's 8 characters name the job everywhere.
	res = cli(t, s.Home, proj, "get", "logs", "scheduler", short)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "trained")
	dest := t.TempDir()
	res = cli(t, s.Home, dest, "get", "job", "scheduler", short, "--json")
	require.Equal(t, 0, res.Code, res.String())
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &got), res.String())
	require.Equal(t, id, got["id"])
	require.Equal(t, filepath.Join(dest, id), got["dir"], "the folder is named after the whole id")
	data, err := os.ReadFile(filepath.Join(dest, id, "out.txt"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(data))

	res = cli(t, s.Home, proj, "clone", "job", "scheduler", short, "--param", "lr=0.5", "--json")
	require.Equal(t, 0, res.Code, res.String())
	var clone Job
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &clone), "stdout is the new job as JSON:\n%s", res)
	require.NotEqual(t, id, clone.ID)
	require.Equal(t, map[string]any{"lr": 0.5}, s.job(t, clone.ID).SubmittedParams, "a clone of the job the prefix names")
}

// handRun records a job the way a script started by hand does (execution mode): it runs until
// it is stopped or finishes.
func handRun(t *testing.T, s *Server, id, project string) {
	t.Helper()
	code := s.api(t, http.MethodPost, "/api/v1/jobs", map[string]any{"id": id, "mode": "execution", "project": project,
		"command": []string{"main.py"}}, nil)
	require.Equal(t, http.StatusCreated, code)
}

// Job ids may be any unique prefix of at least 4 characters; an ambiguous one says how many
// jobs it names; stop and delete take several ids, report each and do the others when one
// fails.
func TestCLIJobIDPrefixesAndSeveralIDs(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	for _, id := range []string{"cafe0001-a", "cafe0001-b", "beef0002-c", "d00d0003-d"} {
		handRun(t, s, id, "prefixes")
	}
	dir := t.TempDir()

	res := cli(t, s.Home, dir, "describe", "job", "scheduler", "beef")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Job beef0002-c\n")
	res = cli(t, s.Home, dir, "get", "logs", "scheduler", "cafe0001")
	requireOneLineError(t, res, "job id cafe0001 is ambiguous: 2 jobs' ids start with it (cafe0001-a, cafe0001-b)")
	res = cli(t, s.Home, dir, "describe", "job", "scheduler", "bee")
	requireOneLineError(t, res, "job bee not found")

	// Several ids: each is stopped, and the one that does not exist is reported.
	res = cli(t, s.Home, dir, "stop", "job", "scheduler", "cafe0001-a", "nope-0000", "beef")
	require.Equal(t, 1, res.Code, res.String())
	requireOneLineError(t, res, "nope-0000", "not found")
	require.Contains(t, res.Stdout, "Stopped job cafe0001-a")
	require.Contains(t, res.Stdout, "Stopped job beef0002-c")
	require.Equal(t, "stopped", s.job(t, "cafe0001-a").State)
	require.Equal(t, "stopped", s.job(t, "beef0002-c").State)
	require.Equal(t, "running", s.job(t, "cafe0001-b").State)

	res = cli(t, s.Home, dir, "stop", "scheduler", "d00d", "--json")
	require.Equal(t, 0, res.Code, res.String())
	var stopped []map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &stopped), res.String())
	require.Len(t, stopped, 1)
	require.Equal(t, "d00d0003-d", stopped[0]["id"])
	require.Equal(t, "stopped", stopped[0]["state"])

	res = cli(t, s.Home, dir, "delete", "job", "scheduler", "cafe0001-a", "cafe0001-b", "beef", "d00d0003-d", "--json")
	require.Equal(t, 1, res.Code, "a running job cannot be deleted:\n%s", res)
	requireOneLineError(t, res, "cafe0001-b", "running")
	var deleted []map[string]any
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &deleted), res.String())
	require.Len(t, deleted, 4)
	require.Equal(t, []any{"deleted", nil, "deleted", "deleted"},
		[]any{deleted[0]["state"], deleted[1]["state"], deleted[2]["state"], deleted[3]["state"]})
	require.Equal(t, "beef0002-c", deleted[2]["id"], "the whole id of a prefix")
	require.False(t, s.jobExists(t, "cafe0001-a"))
	require.False(t, s.jobExists(t, "beef0002-c"))
	require.True(t, s.jobExists(t, "cafe0001-b"), "the job that failed is left alone")

	res = cli(t, s.Home, dir, "stop", "scheduler", "cafe")
	require.Equal(t, 0, res.Code, "cafe is unique again:\n%s", res)
	res = cli(t, s.Home, dir, "delete", "job", "scheduler", "cafe")
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, "Job cafe0001-b successfully deleted\n", res.Stdout)
}

// A command line that does not fit says what is wrong and shows the usage; a forgotten job id
// is named as such; every command's help has examples.
func TestCLIUsageErrorsAndExamples(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"stop", "job", "scheduler"},
		{"stop", "scheduler"},
		{"delete", "job", "scheduler"},
		{"get", "logs", "scheduler"},
		{"get", "job", "scheduler"},
		{"describe", "job", "scheduler"},
	} {
		res := cli(t, home, dir, args...)
		requireOneLineError(t, res, "missing the job id")
		require.NotContains(t, res.Stderr, "submission configuration", "%q", args)
		require.Contains(t, res.Stderr, "\nUsage:\n  foundations "+args[0]+" ", "%q", args)
	}
	res := cli(t, home, dir, "get", "jobs", "scheduler", "--nope")
	requireOneLineError(t, res, "unknown flag: --nope")
	require.Contains(t, res.Stderr, "Usage:\n  foundations get jobs <scheduler_config>")
	res = cli(t, home, dir, "submit", "scheduler")
	requireOneLineError(t, res, "missing the job directory")
	require.Contains(t, res.Stderr, "Usage:\n  foundations submit")

	for _, args := range [][]string{
		{}, {"init"}, {"submit"}, {"search"}, {"get"}, {"get", "logs"}, {"get", "job"}, {"get", "jobs"},
		{"get", "queue"}, {"get", "projects"}, {"get", "searches"}, {"get", "search"}, {"describe"}, {"describe", "job"},
		{"stop"}, {"stop", "search"}, {"clear-queue"}, {"delete"}, {"delete", "job"}, {"info"}, {"login"},
		{"completion"}, {"completion", "bash"}, {"completion", "zsh"}, {"completion", "fish"},
	} {
		res := cli(t, home, dir, append(args, "--help")...)
		require.Equal(t, 0, res.Code, res.String())
		require.Regexp(t, `\nExamples:\n  .*foundations `, res.Stdout, "foundations %s --help", strings.Join(args, " "))
	}
}

// Commands that print data print JSON with --json, and nothing else on stdout.
func TestCLIJSONOutputs(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	handRun(t, s, "json0001-a", "jsonproj")
	dir := t.TempDir()
	decode := func(args ...string) any {
		t.Helper()
		res := cli(t, s.Home, dir, append(args, "--json")...)
		require.Equal(t, 0, res.Code, res.String())
		var v any
		require.NoError(t, json.Unmarshal([]byte(res.Stdout), &v), "%q:\n%s", args, res)
		return v
	}
	jobs := decode("get", "jobs", "scheduler").(map[string]any)
	require.Equal(t, 1.0, jobs["total"])
	require.Equal(t, "json0001-a", jobs["jobs"].([]any)[0].(map[string]any)["id"])
	projects := decode("get", "projects", "scheduler").([]any)
	require.Equal(t, "jsonproj", projects[0].(map[string]any)["name"])
	require.Equal(t, []any{}, decode("get", "searches", "scheduler"))
	queue := decode("get", "queue", "scheduler").(map[string]any)
	require.Equal(t, "json0001-a", queue["running"].([]any)[0].(map[string]any)["id"])
	envs := decode("info", "--env").([]any)
	require.Equal(t, "scheduler", envs[0].(map[string]any)["name"])
	require.Equal(t, s.URL, envs[0].(map[string]any)["scheduler_url"])
	cleared := decode("clear-queue", "scheduler").(map[string]any)
	require.Equal(t, 0.0, cleared["removed"])

	// Without --json, a table for people.
	res := cli(t, s.Home, dir, "get", "projects", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	require.Regexp(t, `(?m)^PROJECT\s+JOBS\s+RUNNING\s+QUEUED`, res.Stdout)
	require.Regexp(t, `(?m)^jsonproj\s+1\s+1\s+0`, res.Stdout)
}

// `foundations completion` prints each shell's script; completion offers env names and job
// ids from the server, and nothing, quietly, when the server is down.
func TestCLICompletion(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	handRun(t, s, "comp0001-running", "comp")
	handRun(t, s, "comp0002-stopped", "comp")
	require.Equal(t, 0, cli(t, s.Home, t.TempDir(), "stop", "scheduler", "comp0002-stopped").Code)
	writeFiles(t, s.Home, map[string]string{"config/submission/down.config.yaml": fmt.Sprintf("scheduler_url: http://127.0.0.1:%d\n", freePort(t))})
	dir := t.TempDir()

	for shell, want := range map[string]string{"bash": "__start_foundations", "zsh": "#compdef foundations", "fish": "complete -c foundations"} {
		res := cli(t, s.Home, dir, "completion", shell)
		require.Equal(t, 0, res.Code, res.String())
		require.Contains(t, res.Stdout, want, shell)
	}
	complete := func(args ...string) []string {
		t.Helper()
		res := cli(t, s.Home, dir, append([]string{"__complete"}, args...)...)
		require.Equal(t, 0, res.Code, res.String())
		var words []string
		for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
			if !strings.HasPrefix(l, ":") { // the last line is cobra's directive
				word, _, _ := strings.Cut(l, "\t")
				words = append(words, word)
			}
		}
		return words
	}
	require.ElementsMatch(t, []string{"down", "scheduler"}, complete("get", "logs", ""))
	require.ElementsMatch(t, []string{"scheduler"}, complete("describe", "job", "sch"))
	require.ElementsMatch(t, []string{"search", "job", "down", "scheduler"}, complete("stop", ""))
	require.ElementsMatch(t, []string{"comp0001-running", "comp0002-stopped"}, complete("get", "logs", "scheduler", ""))
	require.ElementsMatch(t, []string{"comp0001-running"}, complete("stop", "job", "scheduler", "comp"), "stop offers unfinished jobs")
	require.ElementsMatch(t, []string{"comp0002-stopped"}, complete("delete", "job", "scheduler", ""), "delete offers finished jobs")
	require.Empty(t, complete("get", "logs", "scheduler", "comp0001-running", ""), "get logs takes one id")
	require.Empty(t, complete("get", "logs", "down", ""), "a server that is down offers nothing")
	require.ElementsMatch(t, []string{"down", "scheduler"}, complete("submit", "--num-gpus", "1", ""))
	res := cli(t, s.Home, dir, "__complete", "submit", "scheduler", "")
	require.Equal(t, ":16", strings.TrimSpace(res.Stdout), "folders (cobra's ShellCompDirectiveFilterDirs) for the job directory:\n%s", res)
}

// `foundations login` against a server without authentication says that it needs no token,
// succeeds, and stores nothing.
func TestCLILoginWithoutAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	for _, args := range [][]string{{"login", s.URL, "--token", "atl_whatever"}, {"login", s.URL}} {
		res := cli(t, s.Home, t.TempDir(), args...)
		require.Equal(t, 0, res.Code, res.String())
		require.Equal(t, "The server at "+s.URL+" needs no token: it does not require authentication, so every command works without logging in. Nothing was stored.\n", res.Stdout)
		require.NotContains(t, res.Stdout+res.Stderr, "Login Succeeded")
		require.NotContains(t, res.Stderr, "Token:", "no token is asked for")
	}
	_, err := os.Stat(filepath.Join(s.Home, "credentials.yaml"))
	require.True(t, errors.Is(err, os.ErrNotExist), "nothing stored: %v", err)
}

// A large bundle's upload shows its progress on a terminal, and nothing of it when stderr is
// a pipe or the bundle is small.
func TestCLIUploadProgress(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	big := make([]byte, 3<<20) // random: the bundle stays as large
	_, err := rand.Read(big)
	require.NoError(t, err)
	proj := newProject(t, "bigdata", map[string]string{"main.py": "print('ok')\n", "data.bin": string(big)})

	res := cli(t, s.Home, proj, "submit", "--stream-job-logs", "False", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.NotContains(t, res.Stderr, "Uploading the bundle", "no progress on a pipe")

	// onTerminal submits the folder dir with stderr on a terminal and returns what it showed.
	onTerminal := func(dir string) string {
		ptm, pts := openPTY(t)
		cmd := exec.Command(cliBin(), "submit", "--stream-job-logs", "False", "scheduler", ".", "main.py")
		cmd.Dir = dir
		cmd.Env = baseEnv(s.Home)
		cmd.Stderr = pts
		require.NoError(t, cmd.Start())
		pts.Close()
		var screen strings.Builder
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(&screen, ptm) // ends with EIO once the command has exited
			close(done)
		}()
		require.NoError(t, cmd.Wait())
		<-done
		return screen.String()
	}

	// Another bundle (a new digest) on a terminal.
	writeFiles(t, proj, map[string]string{"main.py": "print('ok again')\n"})
	out := onTerminal(proj)
	require.Regexp(t, regexp.MustCompile(`\rFoundations INFO: Uploading the bundle: 3\.0 MB of 3\.0 MB \(100%\), [0-9.]+ [KMG]?B/s, done in `), out)
	require.Contains(t, out, "Job submitted with ID")

	// A small bundle on a terminal: no progress line for it.
	out = onTerminal(newProject(t, "small", map[string]string{"main.py": "print('small')\n"}))
	require.Contains(t, out, "Job submitted with ID")
	require.NotContains(t, out, "Uploading the bundle", "no progress for a small upload")
}

// openPTY opens a pseudo-terminal: its controlling side and its terminal side.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	require.NoError(t, err, "pseudo-terminals")
	t.Cleanup(func() { ptm.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	return ptm, pts
}
