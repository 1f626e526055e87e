package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// archiveMain changes its working directory (writes, edits and deletes files), prints a line,
// waits at a gate, then prints another line.
const archiveMain = `import os, sys, time
GATE = %q
job = os.environ["FOUNDATIONS_JOB_ID"]
os.makedirs("outputs", exist_ok=True)
with open("outputs/result.txt", "w") as f:
    f.write("result of " + job + "\n")
with open("notes.txt", "a") as f:
    f.write("edited by the job\n")
os.remove("scratch.txt")
print("first line of output", flush=True)
deadline = time.monotonic() + 120
while not os.path.exists(GATE):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
print("last line of output", flush=True)
`

// `foundations get logs` shows the output so far while the job runs and all of it after;
// `foundations get job` extracts the working directory as the job left it into ./<id>/ or
// --save_dir. The server stores only what the job changed in its folder.
func TestGetLogsAndJobArchive(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	data := make([]byte, 384<<10)
	rand.Read(data)
	proj := newProject(t, "archive", map[string]string{
		"main.py":     fmt.Sprintf(archiveMain, gate),
		"notes.txt":   "written by the user\n",
		"scratch.txt": "deleted by the job\n",
		"data.txt":    base64.StdEncoding.EncodeToString(data), // 512 KiB, about 390 KiB compressed
	})
	id := s.submitNoStream(t, proj, "main.py")
	s.waitLog(t, id, "first line of output")

	// While running: the output so far.
	res := cli(t, s.Home, proj, "get", "logs", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "No user requirements found.")
	require.Contains(t, res.Stdout, "first line of output")
	require.NotContains(t, res.Stdout, "last line of output")

	// No archive before the job ends: a clear error.
	early := t.TempDir()
	res = cli(t, s.Home, early, "get", "job", "scheduler", id)
	requireOneLineError(t, res, id)
	_, err := os.Stat(filepath.Join(early, id, "main.py"))
	require.True(t, os.IsNotExist(err), "nothing is extracted before the job ends")

	openGate(t, gate)
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State)
	fi, err := os.Stat(s.blobPath(j.ArchiveDigest))
	require.NoError(t, err)
	require.Less(t, fi.Size(), int64(64<<10), "the stored archive holds what the job changed, not the unchanged data.txt")

	// After: all of it, in order.
	res = cli(t, s.Home, proj, "get", "logs", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	requireInOrder(t, res.Stdout, "No user requirements found.", "first line of output", "last line of output")

	// get job extracts into ./<id>/.
	dest := t.TempDir()
	res = cli(t, s.Home, dest, "get", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	requireWorkingDirAtEnd(t, filepath.Join(dest, id), id, proj)

	// --save_dir DIR extracts there instead.
	saveDir := filepath.Join(t.TempDir(), "saved")
	res = cli(t, s.Home, dest, "get", "job", "scheduler", id, "--save_dir", saveDir)
	require.Equal(t, 0, res.Code, res.String())
	requireWorkingDirAtEnd(t, saveDir, id, proj)
}

func requireWorkingDirAtEnd(t *testing.T, dir, id, proj string) {
	t.Helper()
	read := func(rel string) string {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		require.NoError(t, err, "the archive should hold %s", rel)
		return string(data)
	}
	want, err := os.ReadFile(filepath.Join(proj, "main.py"))
	require.NoError(t, err)
	require.Equal(t, string(want), read("main.py"), "the submitted code is in the archive")
	require.Equal(t, "result of "+id+"\n", read("outputs/result.txt"), "a file the job wrote is in the archive")
	require.Equal(t, "written by the user\nedited by the job\n", read("notes.txt"), "files are as the job left them")
	wantData, err := os.ReadFile(filepath.Join(proj, "data.txt"))
	require.NoError(t, err)
	require.True(t, string(wantData) == read("data.txt"), "a file the job left alone is in the archive")
	_, err = os.Stat(filepath.Join(dir, "scratch.txt"))
	require.True(t, os.IsNotExist(err), "a file the job deleted is not in the archive")
}

// `foundations stop job scheduler <id>` and `foundations stop scheduler <id>` stop running
// jobs (state stopped) and take queued jobs out of the queue.
func TestStopJobs(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t), "--workers", "2")
	gate := gatePath(t)
	proj := newProject(t, "stopping", map[string]string{"main.py": gateScript})
	var ids []string
	for range 4 {
		ids = append(ids, s.submitNoStream(t, proj, "main.py", gate))
	}
	runA, runB, queuedC, queuedD := ids[0], ids[1], ids[2], ids[3]
	s.waitLog(t, runA, "job is waiting for its gate")
	s.waitLog(t, runB, "job is waiting for its gate")
	require.Equal(t, "queued", s.job(t, queuedC).State)
	require.Equal(t, "queued", s.job(t, queuedD).State)

	// Queued jobs first, so that stopping the running ones frees no worker for them.
	res := cli(t, s.Home, proj, "stop", "job", "scheduler", queuedC)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, queuedC)
	res = cli(t, s.Home, proj, "stop", "scheduler", queuedD)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, queuedD)
	queued, running := s.queue(t)
	require.Empty(t, queued, "stopped jobs leave the queue")
	require.ElementsMatch(t, []string{runA, runB}, running)
	require.Equal(t, "stopped", s.job(t, queuedC).State)
	require.Equal(t, "stopped", s.job(t, queuedD).State)

	res = cli(t, s.Home, proj, "stop", "job", "scheduler", runA)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, runA)
	res = cli(t, s.Home, proj, "stop", "scheduler", runB)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, runB)
	for _, id := range []string{runA, runB} {
		j := s.waitDone(t, id)
		require.Equal(t, "stopped", j.State, "job %s", id)
		require.NotContains(t, s.logs(t, id), "job passed its gate", "a stopped job does not go on")
	}

	// Nothing is left to run: the queued jobs never started.
	openGate(t, gate)
	for _, id := range []string{queuedC, queuedD} {
		j := s.job(t, id)
		require.Equal(t, "stopped", j.State)
		require.Nil(t, j.StartedAt, "job %s was stopped while queued and must never start", id)
	}
	queued, running = s.queue(t)
	require.Empty(t, queued)
	require.Empty(t, running)

	// Stopping a finished job is refused clearly.
	res = cli(t, s.Home, proj, "stop", "job", "scheduler", runA)
	requireOneLineError(t, res, runA, "stopped")
}

// `foundations clear-queue scheduler` removes queued jobs and says how many; --project
// limits it to one project. Running jobs are not touched.
func TestClearQueue(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	alpha := newProject(t, "alpha", map[string]string{"main.py": gateScript})
	beta := newProject(t, "beta", map[string]string{"main.py": "print('beta ran')\n"})

	runner := s.submitNoStream(t, alpha, "main.py", gate)
	s.waitRunning(t, runner)
	alpha1 := s.submitNoStream(t, alpha, "main.py", gate)
	alpha2 := s.submitNoStream(t, alpha, "main.py", gate)
	beta1 := s.submitNoStream(t, beta, "main.py")
	betaBundle := s.job(t, beta1).BundleDigest
	require.FileExists(t, s.blobPath(betaBundle))
	queued, _ := s.queue(t)
	require.Equal(t, []string{alpha1, alpha2, beta1}, queued)

	res := cli(t, s.Home, alpha, "clear-queue", "scheduler", "--project", "alpha")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Removed 2 job(s) from queue")
	queued, running := s.queue(t)
	require.Equal(t, []string{beta1}, queued, "only project alpha's queue is cleared")
	require.Equal(t, []string{runner}, running, "clear-queue does not touch running jobs")
	require.False(t, s.jobExists(t, alpha1), "cleared jobs are removed")
	require.False(t, s.jobExists(t, alpha2))

	res = cli(t, s.Home, beta, "clear-queue", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Removed 1 job(s) from queue")
	queued, running = s.queue(t)
	require.Empty(t, queued)
	require.Equal(t, []string{runner}, running)
	require.False(t, s.jobExists(t, beta1))
	require.NoFileExists(t, s.blobPath(betaBundle), "the bundle only a cleared job used is removed")

	res = cli(t, s.Home, beta, "clear-queue", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Removed 0 job(s) from queue")

	openGate(t, gate)
	require.Equal(t, "completed", s.waitDone(t, runner).State)
}

// `foundations delete job` deletes a finished job with its logs, archive and artifacts, and
// refuses a running one.
func TestDeleteJob(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	done := newProject(t, "deleting", map[string]string{
		"main.py": `import os, foundations
job = os.environ["FOUNDATIONS_JOB_ID"]
with open("unique.txt", "w") as f:
    f.write("only " + job + " wrote this\n")
foundations.save_artifact("unique.txt", "unique")
print("deletable job ran")
`,
	})
	res := cli(t, s.Home, done, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	j := s.job(t, id)
	require.Equal(t, "completed", j.State)
	require.NotEmpty(t, j.ArchiveDigest)
	require.FileExists(t, s.blobPath(j.ArchiveDigest))
	require.FileExists(t, s.logPath(id))
	var artifact struct {
		Artifacts []struct {
			Digest string `json:"digest"`
		} `json:"artifacts"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+id, nil, &artifact))
	require.Len(t, artifact.Artifacts, 1)
	artifactBlob := s.blobPath(artifact.Artifacts[0].Digest)
	require.FileExists(t, artifactBlob)

	// A running job is refused, and stays.
	running := s.submitNoStream(t, newProject(t, "held", map[string]string{"main.py": gateScript}), "main.py", gate)
	s.waitRunning(t, running)
	res = cli(t, s.Home, done, "delete", "job", "scheduler", running)
	requireOneLineError(t, res, running, "running")
	require.Equal(t, "running", s.job(t, running).State)
	require.FileExists(t, s.logPath(running))
	// So is a queued one.
	queued := s.submitNoStream(t, done, "main.py")
	res = cli(t, s.Home, done, "delete", "job", "scheduler", queued)
	requireOneLineError(t, res, queued, "queued")
	require.Equal(t, "queued", s.job(t, queued).State)

	res = cli(t, s.Home, done, "delete", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, id)
	require.False(t, s.jobExists(t, id))
	require.NoFileExists(t, s.logPath(id), "the job's log file is deleted")
	require.NoFileExists(t, s.blobPath(j.ArchiveDigest), "the job's archive is deleted")
	require.NoFileExists(t, artifactBlob, "the job's artifacts are deleted")
	for _, args := range [][]string{{"get", "job", "scheduler", id}, {"get", "logs", "scheduler", id}} {
		res = cli(t, s.Home, t.TempDir(), args...)
		requireOneLineError(t, res, id)
		require.Regexp(t, "not found|does not exist", errorLines(res.Stderr)[0])
	}
	res = cli(t, s.Home, done, "delete", "job", "scheduler", id)
	requireOneLineError(t, res, id, "not found")

	openGate(t, gate)
	require.Equal(t, "completed", s.waitDone(t, running).State)
	require.Equal(t, "completed", s.waitDone(t, queued).State)
	res = cli(t, s.Home, done, "delete", "job", "scheduler", running)
	require.Equal(t, 0, res.Code, "a job that has finished can be deleted:\n%s", res)
}

// Every command that takes a job id says clearly when there is no such job.
func TestUnknownJobID(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	const id = "no-such-job-123"
	for _, args := range [][]string{
		{"get", "logs", "scheduler", id},
		{"get", "job", "scheduler", id},
		{"get", "job", "scheduler", id, "--save_dir", "out"},
		{"stop", "job", "scheduler", id},
		{"stop", "scheduler", id},
		{"delete", "job", "scheduler", id},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			res := cli(t, s.Home, dir, args...)
			requireOneLineError(t, res, id)
			require.Regexp(t, "not found|does not exist", errorLines(res.Stderr)[0])
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Empty(t, entries, "a failed command leaves nothing behind")
		})
	}
}

// `foundations info --env` lists the scheduler config with its URL, and configs copied from
// Atlas (with its other keys) too.
func TestInfoEnv(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	writeFiles(t, s.Home, map[string]string{"config/submission/aws.config.yaml": `cache_config:
  end_point: /cache_end_point
container_config_root: /home/u/.foundations/config/local_docker_scheduler/worker_config
job_deployment_env: local_docker_scheduler_plugin
job_results_root: /home/u/.foundations/job_data
scheduler_url: http://10.1.2.3:5000
working_dir_root: /home/u/.foundations/local_docker_scheduler/work_dir
`})
	res := cli(t, s.Home, t.TempDir(), "info", "--env")
	require.Equal(t, 0, res.Code, res.String())
	var schedulerLine, awsLine string
	for _, l := range strings.Split(res.Stdout, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "scheduler" {
			schedulerLine = l
		}
		if len(f) > 0 && f[0] == "aws" {
			awsLine = l
		}
	}
	require.NotEmpty(t, schedulerLine, res.String())
	require.Contains(t, schedulerLine, s.URL)
	require.Contains(t, schedulerLine, filepath.Join(s.Home, "config", "submission", "scheduler.config.yaml"))
	require.NotEmpty(t, awsLine, res.String())
	require.Contains(t, awsLine, "http://10.1.2.3:5000")
	require.NotContains(t, awsLine, "invalid")
}

// `foundations --version` and `atlas-server version` print the same version.
func TestVersions(t *testing.T) {
	t.Parallel()
	home := newHome(t)
	res := cli(t, home, t.TempDir(), "--version")
	require.Equal(t, 0, res.Code, res.String())
	cliVersion, ok := strings.CutPrefix(strings.TrimSpace(res.Stdout), "Running Foundations version ")
	require.True(t, ok, res.String())
	require.NotEmpty(t, cliVersion)

	res = runIn(t, home, t.TempDir(), nil, serverBin(), "version")
	require.Equal(t, 0, res.Code, res.String())
	serverVersion, ok := strings.CutPrefix(strings.TrimSpace(res.Stdout), "atlas-server ")
	require.True(t, ok, res.String())
	require.Equal(t, cliVersion, serverVersion)
}

// A job that ignores SIGTERM is killed after the grace period and ends stopped.
func TestStopJobIgnoringSIGTERM(t *testing.T) {
	requirePython(t)
	t.Parallel()
	home := newHome(t)
	writeFiles(t, home, map[string]string{"config/server.config.yaml": "stop_grace: 1s\n"})
	s := startServer(t, home)
	proj := newProject(t, "stubborn", map[string]string{
		"main.py": "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + gateScript,
	})
	id := s.submitNoStream(t, proj, "main.py", gatePath(t))
	s.waitLog(t, id, "job is waiting for its gate")
	res := cli(t, s.Home, proj, "stop", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, "Stopped job "+id+": killed after 1 s grace (it did not exit on SIGTERM)\n", res.Stdout)
	j := s.job(t, id)
	require.Equal(t, "stopped", j.State)
	require.NotContains(t, s.logs(t, id), "job passed its gate")
	queued, running := s.queue(t)
	require.Empty(t, queued)
	require.Empty(t, running, "the killed job frees its worker")
}

// `foundations stop` returns once the job has really stopped and says how it ended, so a
// `foundations delete` right after it works, as users script it.
func TestStopThenDeleteRightAway(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "stop-delete", map[string]string{"main.py": gateScript})
	id := s.submitNoStream(t, proj, "main.py", gatePath(t))
	s.waitLog(t, id, "job is waiting for its gate")
	res := cli(t, s.Home, proj, "stop", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Regexp(t, `^Stopped job `+id+`: exited after SIGTERM in [0-9.]+ s\n$`, res.Stdout)
	require.Equal(t, "stopped", s.job(t, id).State, "stopped when the command says so")
	res = cli(t, s.Home, proj, "delete", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Job "+id+" successfully deleted")
}

// With --no-wait, stop answers at once and says the job is stopping, which the API says too;
// a delete then waits for the stop to finish instead of telling the user to stop the job.
func TestStopNoWaitThenDelete(t *testing.T) {
	requirePython(t)
	t.Parallel()
	home := newHome(t)
	writeFiles(t, home, map[string]string{"config/server.config.yaml": "stop_grace: 2s\n"})
	s := startServer(t, home)
	proj := newProject(t, "stubborn", map[string]string{
		"main.py": "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + gateScript,
	})
	id := s.submitNoStream(t, proj, "main.py", gatePath(t))
	s.waitLog(t, id, "job is waiting for its gate")
	res := cli(t, s.Home, proj, "stop", "job", "scheduler", id, "--no-wait")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "Stopping job "+id)
	require.Equal(t, "stopping", s.job(t, id).State, "the job ignores SIGTERM: it stops only when the grace is over")
	res = cli(t, s.Home, proj, "delete", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stderr, "is stopping; it is deleted once it has stopped")
	require.NotContains(t, res.Stderr+res.Stdout, "stop it first")
	require.Contains(t, res.Stdout, "Job "+id+" successfully deleted")
}

// `foundations get logs` on a queued job says it has no output yet.
func TestGetLogsOfQueuedJob(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	proj := newProject(t, "queued", map[string]string{"main.py": gateScript})
	held := s.submitNoStream(t, proj, "main.py", gate)
	s.waitRunning(t, held)
	waiting := s.submitNoStream(t, proj, "main.py", gate)
	res := cli(t, s.Home, proj, "get", "logs", "scheduler", waiting)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stderr, "queued")
	require.Empty(t, strings.TrimSpace(res.Stdout))
	openGate(t, gate)
	require.Equal(t, "completed", s.waitDone(t, waiting).State)
}

// waitProcessGone waits (without polling) until a process has ended; false if it is still
// alive after timeout.
func waitProcessGone(t *testing.T, pid int, timeout time.Duration) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	require.NoError(t, err)
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		require.NoError(t, err)
		return n > 0
	}
}

// Stopping a job stops the processes it started too.
func TestStopJobStopsItsChildren(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	proj := newProject(t, "tree", map[string]string{
		"main.py": `import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print("CHILD", child.pid, "STARTED", flush=True)
child.wait()
`,
	})
	id := s.submitNoStream(t, proj, "main.py")
	out := s.waitLog(t, id, " STARTED") // print() writes its pieces one by one: wait for the last
	var pid int
	_, err := fmt.Sscanf(out[strings.Index(out, "CHILD "):], "CHILD %d", &pid)
	require.NoError(t, err, out)
	require.False(t, waitProcessGone(t, pid, 0), "the child should be running")
	res := cli(t, s.Home, proj, "stop", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, "stopped", s.waitDone(t, id).State)
	require.True(t, waitProcessGone(t, pid, 30*time.Second), "the job's child process %d outlived the stopped job", pid)
}
