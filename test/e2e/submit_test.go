package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireInOrder checks that lines appear in out in this order, each as a whole line.
func requireInOrder(t *testing.T, out string, lines ...string) {
	t.Helper()
	all := strings.Split(out, "\n")
	i := 0
	for _, want := range lines {
		found := false
		for ; i < len(all); i++ {
			if all[i] == want {
				found = true
				i++
				break
			}
		}
		require.True(t, found, "line %q missing or out of order in:\n%s", want, out)
	}
}

// The seed's walkthrough: init a project, submit main.py, see the progress lines in the
// seed's order around the job's own output, exit 0, and find the job tracked.
func TestSubmitWalkthrough(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	work := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, work, "init", "my_project").Code)
	proj := filepath.Join(work, "my_project")

	out, code := cliCombined(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, code, out)
	id := jobID(t, out)
	banner := strings.Repeat("=", 120)
	requireInOrder(t, out,
		"Foundations INFO: Job submission started. Ctrl-C to cancel.",
		"Foundations INFO: Preparing to bundle contents of "+proj+" for execution. Estimating bundle size.",
		"Foundations INFO: Bundling job contents.",
		"Foundations INFO: Job submitted with ID '"+id+"'.",
		"Foundations INFO: Job queued. Ctrl-C to stop streaming - job will not be interrupted or cancelled.",
		"Foundations INFO: Job running, streaming logs.",
		banner,
		"No user requirements found.",
		banner,
		"epoch 1/5: loss 0.7000", // the sample main.py's own output, streamed
		"epoch 5/5: loss 0.1681",
		"Foundations INFO: Job '"+id+"' has completed.",
	)
	require.NotContains(t, out, "WARNING", "the template project should submit without warnings")

	j := s.job(t, id)
	require.Equal(t, "completed", j.State)
	require.Equal(t, "my_project", j.Project, "the project defaults to the folder's name")
	require.Equal(t, []string{"main.py"}, j.Command)
	// The sample main.py's tracking reached the server.
	require.EqualValues(t, 3, j.Params["depth"])
	require.EqualValues(t, 5, j.Params["epochs"])
	require.EqualValues(t, 0.9, j.Metric("accuracy"))
	require.InDelta(t, 0.16807, j.Metric("loss"), 1e-9)
	require.Contains(t, j.Tags, "sample")
	require.Len(t, j.Artifacts, 1)
	require.Equal(t, "Project_README", j.Artifacts[0].Key)
}

// A job that fails makes submit exit non-zero and say so; its output is still streamed.
func TestSubmitFailingJob(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "failing", map[string]string{
		"main.py": "import sys\nprint('about to fail', flush=True)\nsys.exit(1)\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.NotEqual(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.Contains(t, res.Stdout, "about to fail")
	require.Contains(t, res.Stderr, "Job '"+id+"' has failed")
	require.NotContains(t, res.Stderr, "has completed")
	j := s.job(t, id)
	require.Equal(t, "failed", j.State)
	require.NotNil(t, j.ExitCode)
	require.Equal(t, 1, *j.ExitCode)
}

// Arguments after the script reach it unchanged, including ones that look like flags.
func TestSubmitPassesArgumentsToScript(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "args", map[string]string{
		"main.py": "import json, sys\nprint('ARGV=' + json.dumps(sys.argv[1:]))\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py", "--epochs", "3", "-v", "--stream-job-logs", "False", "plain")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, `ARGV=["--epochs", "3", "-v", "--stream-job-logs", "False", "plain"]`)
	id := jobID(t, res.Stderr)
	require.Equal(t, []string{"main.py", "--epochs", "3", "-v", "--stream-job-logs", "False", "plain"}, s.job(t, id).Command)
}

// Flags go anywhere before the command, as with Atlas's argparse: between the scheduler config
// and the job directory, and after the job directory. "--" ends the flags.
func TestSubmitFlagsAnywhereBeforeTheCommand(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "flags", map[string]string{
		"main.py": "import json, sys\nprint('ARGV=' + json.dumps(sys.argv[1:]))\n",
	})
	cases := []struct {
		args    []string
		project string
		argv    string
	}{
		{[]string{"submit", "scheduler", "--project-name", "P1", ".", "main.py", "--project-name", "mine"}, "P1",
			`ARGV=["--project-name", "mine"]`},
		{[]string{"submit", "scheduler", ".", "--project-name=P2", "--stream-job-logs", "False", "main.py", "-x"}, "P2", ""},
		{[]string{"submit", "--project-name", "P3", "scheduler", "--", ".", "main.py", "--", "a"}, "P3", `ARGV=["--", "a"]`},
		{[]string{"submit", "scheduler", ".", "--project-name", "P4", "--", "-c", "print('dash command ran')"}, "P4", ""},
	}
	for _, c := range cases {
		res := cli(t, s.Home, proj, c.args...)
		require.Equal(t, 0, res.Code, "%v:\n%s", c.args, res)
		j := s.waitDone(t, jobID(t, res.Stderr))
		require.Equal(t, c.project, j.Project, "%v", c.args)
		require.Equal(t, "completed", j.State, "%v", c.args)
		if c.argv != "" {
			require.Contains(t, res.Stdout, c.argv, "%v", c.args)
		}
	}
	require.Contains(t, s.logs(t, s.jobs(t, "P4")[0].ID), "dash command ran", "python -c ... ran")
	require.Equal(t, []string{"main.py", "-x"}, s.jobs(t, "P2")[0].Command)

	// An unknown flag before the command is an error that says how to pass it to the job.
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "--epochs", "3", "main.py")
	requireOneLineError(t, res, "unknown flag: --epochs", `put "--" before a command`)
	res = cli(t, s.Home, proj, "submit", "--project-name", "P5", "scheduler")
	requireOneLineError(t, res, "missing the job directory")
	require.Contains(t, res.Stderr, "\nUsage:\n  foundations submit [flags] <scheduler_config> <job_directory> [command...]")
	res = cli(t, s.Home, proj, "submit", "--help")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Flags go anywhere before the command")
}

// --debug, on every command, adds diagnostics on stderr: config files read, HTTP calls, timings.
func TestDebugFlag(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "debug", map[string]string{"main.py": "print('debugged job ran')\n"})
	config := filepath.Join(s.Home, "config", "submission", "scheduler.config.yaml")

	res := cli(t, s.Home, proj, "submit", "--debug", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	for _, want := range []string{
		"Foundations DEBUG: read submission config " + config + ": scheduler_url " + s.URL,
		"Foundations DEBUG: no job.config.yaml in " + proj,
		"Foundations DEBUG: POST " + s.URL + "/api/v1/jobs -> 201 Created (",
		"Foundations DEBUG: bundling took ",
		"Foundations DEBUG: exit code 0 after ",
	} {
		require.Contains(t, res.Stderr, want)
	}
	require.Contains(t, res.Stdout, "debugged job ran")
	require.NotContains(t, res.Stdout, "DEBUG", "diagnostics go to stderr only")

	for _, args := range [][]string{
		{"get", "logs", "scheduler", id, "--debug"},
		{"--debug", "get", "jobs", "scheduler"},
		{"get", "job", "--debug", "scheduler", id, "--save_dir", t.TempDir()},
	} {
		res := cli(t, s.Home, proj, args...)
		require.Equal(t, 0, res.Code, "%v: %s", args, res)
		require.Contains(t, res.Stderr, "Foundations DEBUG: GET "+s.URL+"/api/v1/jobs", "%v", args)
		require.Contains(t, res.Stderr, "Foundations DEBUG: read submission config "+config, "%v", args)
	}
	// Without --debug, none of it.
	res = cli(t, s.Home, proj, "get", "logs", "scheduler", id)
	require.NotContains(t, res.Stderr, "DEBUG")
	require.Equal(t, "debugged job ran\n", strings.SplitAfter(res.Stdout, "="+strings.Repeat("=", 119)+"\n")[2])

	// A failure shows the error's chain.
	res = cli(t, s.Home, proj, "get", "logs", "nowhere", id, "--debug")
	require.Equal(t, 1, res.Code)
	require.Contains(t, res.Stderr, "Foundations DEBUG: looking for "+filepath.Join(s.Home, "config", "submission", "nowhere.config.yaml"))
	require.Contains(t, res.Stderr, "Foundations DEBUG: error ")
}

// --stream-job-logs False returns once the job is submitted, while the job still waits.
func TestSubmitWithoutStreaming(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	proj := newProject(t, "nostream", map[string]string{"main.py": gateScript})
	res := cli(t, s.Home, proj, "submit", "--stream-job-logs", "False", "scheduler", ".", "main.py", gate)
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.NotContains(t, res.Stderr, "Job running")
	require.NotContains(t, res.Stderr, "has completed")
	require.NotContains(t, res.Stdout, "job passed its gate")
	// The job cannot have ended: it waits for the gate, which only opens now.
	require.False(t, finished(s.job(t, id).State))
	openGate(t, gate)
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State)
	require.Contains(t, s.logs(t, id), "job passed its gate")
}

// params in job.config.yaml reach foundations.load_parameters() and are logged as the job's
// params.
func TestSubmitJobConfigParams(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "params", map[string]string{
		"job.config.yaml": "project_name: config-params\nparams:\n  learning_rate: 0.25\n  layers: [64, 32]\n  name: resnet\n",
		"main.py":         "import json, foundations\nprint('PARAMS=' + json.dumps(foundations.load_parameters(), sort_keys=True))\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, `PARAMS={"layers": [64, 32], "learning_rate": 0.25, "name": "resnet"}`)
	j := s.job(t, jobID(t, res.Stderr))
	require.Equal(t, "config-params", j.Project, "project_name comes from job.config.yaml")
	require.EqualValues(t, 0.25, j.Params["learning_rate"])
	require.Equal(t, "resnet", j.Params["name"])
	require.EqualValues(t, 64, j.Params["layers_0"], "nested params are flattened when logged")
	require.EqualValues(t, 32, j.Params["layers_1"])
}

// A malformed job.config.yaml stops the submission before anything is submitted, with one
// line naming the file, the line and (for a wrong type) the key.
func TestSubmitMalformedJobConfig(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	cases := []struct {
		name   string
		config string
		wants  []string
	}{
		{"bad YAML", "project_name: broken\nworker:\n  image: x\n   environment: [\n", []string{"job.config.yaml:4:", "invalid YAML"}},
		{"wrong type", "project_name: typed\nlog_level: INFO\nnum_gpus: two\n", []string{"job.config.yaml:3", "num_gpus", "two"}},
		{"wrong nested type", "worker:\n  environment:\n    A: [1, 2]\n", []string{"job.config.yaml:3", "worker.environment.A"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proj := newProject(t, "malformed", map[string]string{"job.config.yaml": c.config, "main.py": "print('ran')\n"})
			res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
			requireOneLineError(t, res, append([]string{filepath.Join(proj, "job.config.yaml")}, c.wants...)...)
			require.NotContains(t, res.Stderr, "Job submitted")
		})
	}
	if !t.Failed() {
		require.Empty(t, s.jobs(t, ""), "nothing may be submitted with a malformed job.config.yaml")
	}
}

// Unknown keys in job.config.yaml only warn, naming the file, line and key; the job runs.
func TestSubmitUnknownJobConfigKeyWarns(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "unknownkey", map[string]string{
		"job.config.yaml": "project_name: unknown-key\nnot_a_key: 1\n",
		"main.py":         "print('ran anyway')\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stderr, "Foundations WARNING: "+filepath.Join(proj, "job.config.yaml")+`:2: unknown key "not_a_key"`)
	require.Contains(t, res.Stdout, "ran anyway")
	require.Contains(t, res.Stderr, "has completed")
}

// The same warning should be printed once, not once by the CLI and again as relayed by the
// server.
func TestSubmitUnknownJobConfigKeyWarnsOnce(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "unknownkey", map[string]string{
		"job.config.yaml": "not_a_key: 1\n",
		"main.py":         "print('ran anyway')\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, 1, strings.Count(res.Stderr, `unknown key "not_a_key"`), res.String())
}

// Bad submissions that the user can fix: each is one clear line, a non-zero exit, and no job.
func TestSubmitRefusals(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))

	t.Run("more GPUs than exist, from job.config.yaml", func(t *testing.T) {
		proj := newProject(t, "gpus", map[string]string{"job.config.yaml": "num_gpus: 2\n", "main.py": "print('ran')\n"})
		res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
		requireOneLineError(t, res, "2 GPUs", "has 0")
		require.NotContains(t, res.Stderr, "Job submitted")
	})
	t.Run("more GPUs than exist, from --num-gpus", func(t *testing.T) {
		proj := newProject(t, "gpus", map[string]string{"main.py": "print('ran')\n"})
		res := cli(t, s.Home, proj, "submit", "--num-gpus", "1", "scheduler", ".", "main.py")
		requireOneLineError(t, res, "1 GPU", "has 0")
	})
	t.Run("unknown scheduler config", func(t *testing.T) {
		proj := newProject(t, "envs", map[string]string{"main.py": "print('ran')\n"})
		res := cli(t, s.Home, proj, "submit", "no_such_env", ".", "main.py")
		requireOneLineError(t, res, `"no_such_env"`, "submission configuration")
	})
	t.Run("missing job folder", func(t *testing.T) {
		work := t.TempDir()
		res := cli(t, s.Home, work, "submit", "scheduler", "no_such_dir", "main.py")
		requireOneLineError(t, res, filepath.Join(work, "no_such_dir"), "does not exist")
	})
	if !t.Failed() {
		require.Empty(t, s.jobs(t, ""), "refused submissions must not create jobs")
	}
}

// With no server running, every command that needs it says so in one line and exits non-zero.
func TestServerDown(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	writeFiles(t, home, map[string]string{"config/submission/scheduler.config.yaml": "scheduler_url: " + url + "\n"})
	proj := newProject(t, "down", map[string]string{"main.py": "print('never')\n"})
	for _, args := range [][]string{
		{"submit", "scheduler", ".", "main.py"},
		{"get", "logs", "scheduler", "some-job"},
		{"get", "job", "scheduler", "some-job"},
		{"stop", "job", "scheduler", "some-job"},
		{"delete", "job", "scheduler", "some-job"},
		{"clear-queue", "scheduler"},
	} {
		res := cli(t, home, proj, args...)
		requireOneLineError(t, res, "cannot reach the Atlas server at "+url)
	}
}

// Ctrl-C while streaming stops the streaming only: submit exits 0 and the job goes on to
// complete.
func TestSubmitCtrlCStopsStreamingOnly(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	proj := newProject(t, "ctrlc", map[string]string{"main.py": gateScript})
	p := startCLI(t, s.Home, proj, "submit", "scheduler", ".", "main.py", gate)
	// The job's output is being streamed: the job runs and the CLI is in its streaming phase.
	require.NoError(t, p.Stdout.WaitFor("job is waiting for its gate", 2*time.Minute))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	res := p.Wait(t)
	require.Equal(t, 0, res.Code, "Ctrl-C while streaming is not a failure:\n%s", res)
	id := jobID(t, res.Stderr)
	require.NotContains(t, res.Stdout, "job passed its gate")

	j := s.job(t, id)
	require.Equal(t, "running", j.State, "Ctrl-C must not stop the job")
	openGate(t, gate)
	j = s.waitDone(t, id)
	require.Equal(t, "completed", j.State)
	require.Contains(t, s.logs(t, id), "job passed its gate")
}

// The job's parameters file is what foundations.load_parameters() reads; it holds exactly the
// submitted params.
func TestSubmitParamsFileInWorkingDir(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "paramsfile", map[string]string{
		"job.config.yaml": "params:\n  epochs: 6\n  batch_size: 64\n",
		"main.py":         "print('FILE=' + open('foundations_job_parameters.json').read().replace('\\n', ''))\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	line := ""
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(l, "FILE=") {
			line = strings.TrimPrefix(l, "FILE=")
		}
	}
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &got), res.String())
	require.Equal(t, map[string]any{"epochs": 6.0, "batch_size": 64.0}, got)
	_, err := os.Stat(filepath.Join(proj, "foundations_job_parameters.json"))
	require.True(t, os.IsNotExist(err), "the params file is written in the job's working directory, not the user's folder")
}

// An unclosed flow mapping is reported at the line where it opens.
func TestSubmitMalformedJobConfigUnclosedMappingLine(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "unclosed", map[string]string{
		"job.config.yaml": "project_name: broken\nlog_level: INFO\n\nparams: {a: 1\nnum_gpus: 1\n",
		"main.py":         "print('ran')\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	requireOneLineError(t, res, filepath.Join(proj, "job.config.yaml")+":4:", "invalid YAML")
}

// Everything a job writes, to stdout and stderr, reaches the streaming CLI, in order.
func TestSubmitStreamsAllOutput(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "chatty", map[string]string{
		"main.py": "import sys\nfor i in range(20000):\n    print('line', i)\nprint('to stderr', file=sys.stderr)\nprint('héllo ✓ 日本')\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	var lines []string
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.HasPrefix(l, "line ") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 20000, "every line is streamed exactly once")
	for i, l := range lines {
		if l != fmt.Sprintf("line %d", i) {
			require.Failf(t, "output out of order", "line %d is %q", i, l)
		}
	}
	requireInOrder(t, res.Stdout, "line 19999", "to stderr", "héllo ✓ 日本")
	require.Equal(t, s.logs(t, jobID(t, res.Stderr)), res.Stdout, "what was streamed is the job's log, all of it")
}

// Ctrl-C while the job is still queued also stops only the streaming.
func TestSubmitCtrlCWhileQueued(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	held := s.submitNoStream(t, newProject(t, "held", map[string]string{"main.py": gateScript}), "main.py", gate)
	s.waitRunning(t, held)
	proj := newProject(t, "queued", map[string]string{"main.py": "print('queued job ran')\n"})
	p := startCLI(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.NoError(t, p.Stderr.WaitFor("Job queued.", 2*time.Minute))
	id := jobID(t, p.Stderr.String())
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	res := p.Wait(t)
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, "queued", s.job(t, id).State, "Ctrl-C does not take the job out of the queue")
	openGate(t, gate)
	require.Equal(t, "completed", s.waitDone(t, id).State)
	require.Contains(t, s.logs(t, id), "queued job ran")
}

// A job stopped while submit streams it makes submit exit non-zero and say so.
func TestSubmitStreamingJobStopped(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "stopped", map[string]string{"main.py": gateScript})
	p := startCLI(t, s.Home, proj, "submit", "scheduler", ".", "main.py", gatePath(t))
	require.NoError(t, p.Stdout.WaitFor("job is waiting for its gate", 2*time.Minute))
	id := jobID(t, p.Stderr.String())
	stop := cli(t, s.Home, proj, "stop", "job", "scheduler", id)
	require.Equal(t, 0, stop.Code, stop.String())
	res := p.Wait(t)
	require.NotEqual(t, 0, res.Code, res.String())
	require.Contains(t, res.Stderr, "Job '"+id+"' was stopped")
	require.Equal(t, "stopped", s.job(t, id).State)
}

// A streaming submit rides out a server restart: it reconnects and prints the rest of the
// output, without repeating any, and reports how the job ended.
func TestSubmitStreamingSurvivesServerRestart(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	proj := newProject(t, "reconnect", map[string]string{
		"main.py": gateScript + "for i in range(5):\n    print('after', i, flush=True)\n",
	})
	p := startCLI(t, s.Home, proj, "submit", "scheduler", ".", "main.py", gate)
	require.NoError(t, p.Stdout.WaitFor("job is waiting for its gate", 2*time.Minute))
	s = restart(t, s)
	openGate(t, gate)
	res := p.Wait(t)
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.Contains(t, res.Stderr, "Job '"+id+"' has completed.")
	require.Equal(t, s.logs(t, id), res.Stdout, "the streamed output is the job's whole log, once")
}
