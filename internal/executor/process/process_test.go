package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/executor/executortest"
	"github.com/atlasgo/atlas/internal/executor/process"
	atlaspython "github.com/atlasgo/atlas/python"
)

// The test binary doubles as the shim, as the server binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == process.ShimArg {
		os.Exit(process.Shim(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is required (CI=true)")
		}
		t.Skip("python3 not found")
	}
	return p
}

func newHarness(t *testing.T) executortest.Harness {
	py := python(t)
	dir := t.TempDir()
	sdkDir, err := atlaspython.Extract(t.TempDir())
	require.NoError(t, err)
	return executortest.Harness{SDKDir: sdkDir, New: func(t *testing.T) executor.Executor {
		e, err := process.New(process.Config{Self: os.Args[0], RunDir: filepath.Join(dir, "run"),
			EnvsDir: filepath.Join(dir, "envs"), Python: py})
		require.NoError(t, err)
		t.Cleanup(func() { e.Close() })
		return e
	}}
}

func TestConformance(t *testing.T) {
	executortest.Exercise(t, newHarness(t))
}

func TestContract(t *testing.T) {
	py := python(t)
	executortest.Contract(t, executortest.ContractHarness{CachesEnvironments: true,
		New: func(t *testing.T, s *executortest.Stack) executor.Executor {
			e, err := process.New(process.Config{Self: os.Args[0], RunDir: filepath.Join(s.Home, "run"),
				EnvsDir: filepath.Join(s.Home, "envs"), Python: py})
			require.NoError(t, err)
			return e
		}})
}

// The contract holds with the shim binary of its own (cmd/atlas-shim) as with the test
// binary behind ShimArg: exit status files, re-attaching after a restart.
func TestContractShimBinary(t *testing.T) {
	py := python(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "github.com/atlasgo/atlas/cmd/atlas-shim")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build atlas-shim: %s", out)
	shim, err := process.FindShim(filepath.Join(bin, "atlas-server"))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(bin, "atlas-shim"), shim)
	executortest.Contract(t, executortest.ContractHarness{CachesEnvironments: true,
		New: func(t *testing.T, s *executortest.Stack) executor.Executor {
			e, err := process.New(process.Config{Self: "/nonexistent/atlas-server", Shim: shim, RunDir: filepath.Join(s.Home, "run"),
				EnvsDir: filepath.Join(s.Home, "envs"), Python: py})
			require.NoError(t, err)
			return e
		}})
}

// Stop ends the whole process group, not just the job's main process.
func TestStopKillsChildren(t *testing.T) {
	h := newHarness(t)
	e := h.New(t)
	work := t.TempDir()
	script := `
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(0.05)"])
open("child.pid", "w").write(str(child.pid))
print("ready", flush=True)
while True:
    time.sleep(0.05)
`
	require.NoError(t, os.WriteFile(filepath.Join(work, "main.py"), []byte(script), 0o644))
	logPath := filepath.Join(t.TempDir(), "job.log")
	hd, err := e.Start(context.Background(), &executor.Spec{Job: &atlas.Job{ID: "kids", Command: []string{"main.py"}},
		WorkDir: work, LogPath: logPath, SDKDir: work})
	require.NoError(t, err)
	deadline := time.Now().Add(time.Minute)
	for {
		data, _ := os.ReadFile(logPath)
		if strings.Contains(string(data), "ready") {
			break
		}
		require.True(t, time.Now().Before(deadline), "job never started: %s", data)
		time.Sleep(10 * time.Millisecond)
	}
	data, err := os.ReadFile(filepath.Join(work, "child.pid"))
	require.NoError(t, err)
	child, err := strconv.Atoi(string(data))
	require.NoError(t, err)
	require.NoError(t, hd.Stop(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = hd.Wait(ctx)
	require.NoError(t, err)
	// The grandchild got SIGTERM with the group. It is not our child, so it may linger as a
	// zombie until init reaps it: check that it is not running.
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		if err != nil || strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))[0] == "Z" {
			break
		}
		require.NoError(t, syscall.Kill(child, 0))
		require.True(t, time.Now().Before(deadline), "child %d still running after stop", child)
		time.Sleep(10 * time.Millisecond)
	}
}

// A job with requirements.txt gets a virtualenv built once per requirements content.
func TestRequirementsAreCached(t *testing.T) {
	py := python(t)
	if err := exec.Command(py, "-c", "import venv, ensurepip").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 venv and ensurepip are required (CI=true)")
		}
		t.Skip("python3 cannot create virtualenvs here")
	}
	h := newHarness(t)
	e := h.New(t)
	// An empty requirements file still gets an environment: installing nothing needs no index.
	runJob := func(name string) string {
		work := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(work, "requirements.txt"), []byte("# nothing\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(work, "main.py"), []byte("import sys\nprint('prefix', sys.prefix)\n"), 0o644))
		logPath := filepath.Join(t.TempDir(), "job.log")
		hd, err := e.Start(context.Background(), &executor.Spec{Job: &atlas.Job{ID: name, Command: []string{"main.py"}},
			WorkDir: work, LogPath: logPath, SDKDir: work})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		res, err := hd.Wait(ctx)
		require.NoError(t, err)
		data, _ := os.ReadFile(logPath)
		require.Equal(t, 0, res.ExitCode, string(data))
		return string(data)
	}
	first := runJob("req1")
	require.Contains(t, first, "Installing user requirements")
	second := runJob("req2")
	require.Contains(t, second, "Using cached environment")
	require.NotContains(t, second, "Installing user requirements")
	// Both jobs ran in the same cached virtualenv.
	require.Equal(t, prefixLine(t, first), prefixLine(t, second))
	require.Contains(t, prefixLine(t, first), string(filepath.Separator)+"envs"+string(filepath.Separator))
}

func prefixLine(t *testing.T, log string) string {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "prefix ") {
			return l
		}
	}
	t.Fatalf("no prefix line in log:\n%s", log)
	return ""
}

// spares returns the pids of this process's children that are spare shims of the executor
// whose run directory is runDir, waiting for a job.
func spares(t *testing.T, runDir string) []int {
	t.Helper()
	var out []int
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile("/proc/" + d.Name() + "/stat")
		cmdline, err2 := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err1 != nil || err2 != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		cwd, _ := os.Readlink("/proc/" + d.Name() + "/cwd")
		if f[0] != "Z" && f[1] == strconv.Itoa(os.Getpid()) && cwd == runDir &&
			strings.HasSuffix(string(cmdline), "\x00"+process.ShimArg+"\x00"+process.SpareArg+"\x00") {
			out = append(out, pid)
		}
	}
	return out
}

// waitSpares waits until the executor whose run directory is runDir has n spare shims and
// returns their pids.
func waitSpares(t *testing.T, runDir string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if s := spares(t, runDir); len(s) == n {
			return s
		}
		require.True(t, time.Now().Before(deadline), "not %d spare shims", n)
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStopped waits until every thread of the process has stopped: a thread that was not
// the one to take SIGSTOP runs on until the stop reaches it, and might take a job meanwhile.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		require.NoError(t, err)
		stopped := len(tasks) > 0
		for _, task := range tasks {
			stat, err := os.ReadFile(task)
			if err != nil {
				continue // the thread ended
			}
			if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); f[0] != "T" {
				stopped = false
			}
		}
		if stopped {
			return
		}
		require.True(t, time.Now().Before(deadline), "process %d did not stop", pid)
		time.Sleep(10 * time.Millisecond)
	}
}

// runJob runs a job that prints its working directory and FOUNDATIONS_X, and the rest of
// main.py when given, releases it, and returns the pid of its shim and its log.
func runJob(t *testing.T, e executor.Executor, id string, more ...string) (int, string) {
	t.Helper()
	work := t.TempDir()
	script := "import os\nprint('cwd', os.getcwd(), 'x', os.environ.get('FOUNDATIONS_X'))\n" + strings.Join(more, "\n")
	require.NoError(t, os.WriteFile(filepath.Join(work, "main.py"), []byte(script), 0o644))
	logPath := filepath.Join(t.TempDir(), "job.log")
	hd, err := e.Start(context.Background(), &executor.Spec{Job: &atlas.Job{ID: id, Command: []string{"main.py"}},
		WorkDir: work, LogPath: logPath, SDKDir: work, Env: []string{"FOUNDATIONS_X=" + id, "FOUNDATIONS_ONLY_" + id + "=1"}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := hd.Wait(ctx)
	require.NoError(t, err)
	data, _ := os.ReadFile(logPath)
	require.Equal(t, 0, res.ExitCode, string(data))
	require.Contains(t, string(data), "cwd "+work+" x "+id, "the job's directory and environment")
	var ri struct{ PID int }
	require.NoError(t, json.Unmarshal([]byte(hd.RunInfo()), &ri))
	require.NoError(t, hd.Release()) // as the scheduler does once the end is recorded
	return ri.PID, string(data)
}

// newExecutor returns a process executor whose shim is the test binary, and its run directory.
func newExecutor(t *testing.T) (*process.Executor, string) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	e, err := process.New(process.Config{Self: os.Args[0], RunDir: run, EnvsDir: filepath.Join(dir, "envs"), Python: python(t)})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e, run
}

// From its first job on, the executor keeps a shim started ahead of the next job, and a shim
// runs job after job, each with its own directory, environment and log; one whose job left a
// process behind is not used again. Closing the executor ends the spares, and jobs still start
// after that.
func TestShimsRunJobAfterJob(t *testing.T) {
	e, run := newExecutor(t)
	require.Empty(t, spares(t, run), "no spare before the first job")
	first, _ := runJob(t, e, "first")
	waiting := waitSpares(t, run, 2) // the first job's shim, and the one started with it
	require.Contains(t, waiting, first)
	shims := map[int]bool{}
	for _, id := range []string{"a", "b", "c", "d"} {
		pid, log := runJob(t, e, id, "print('leak', sorted(k for k in os.environ if k.startswith('FOUNDATIONS_ONLY_')))")
		require.Contains(t, log, "leak ['FOUNDATIONS_ONLY_"+id+"']", "only the job's own environment")
		require.Contains(t, waiting, pid, "the job ran in a waiting shim")
		shims[pid] = true
	}
	require.Len(t, shims, 1, "one shim ran the jobs one after another")

	// A job that leaves a process behind: its shim ends once the job's end is recorded.
	stray := filepath.Join(t.TempDir(), "stray.pid")
	pid, _ := runJob(t, e, "stray", "import subprocess",
		"p = subprocess.Popen(['sleep', '600'], start_new_session=True)",
		"open("+strconv.Quote(stray)+", 'w').write(str(p.pid))")
	data, err := os.ReadFile(stray)
	require.NoError(t, err)
	strayPID, err := strconv.Atoi(string(data))
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Kill(strayPID, syscall.SIGKILL) })
	deadline := time.Now().Add(time.Minute)
	for slices.Contains(spares(t, run), pid) {
		require.True(t, time.Now().Before(deadline), "the shim of a job that left a process behind still waits for jobs")
		time.Sleep(10 * time.Millisecond)
	}
	next, _ := runJob(t, e, "next")
	require.NotEqual(t, pid, next)

	require.NoError(t, e.Close())
	require.Empty(t, spares(t, run), "the spares ended with the executor")
	runJob(t, e, "third")
	require.Empty(t, spares(t, run), "a closed executor keeps no spare")
}

// A spare that died before its job came is replaced by a shim started for the job.
func TestADeadSpareIsNotUsed(t *testing.T) {
	e, run := newExecutor(t)
	runJob(t, e, "first")
	dead := waitSpares(t, run, 2)
	for _, pid := range dead {
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	pid, _ := runJob(t, e, "second")
	require.NotContains(t, dead, pid)
}

// A spare that is there but does not take its job in time (here: stopped) is killed, and the
// job starts in a shim of its own.
func TestAStuckSpareIsNotUsed(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	e, err := process.New(process.Config{Self: os.Args[0], RunDir: run, EnvsDir: filepath.Join(dir, "envs"), Python: python(t),
		SpareTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	runJob(t, e, "first")
	stuck := waitSpares(t, run, 2)
	for _, pid := range stuck {
		require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	}
	for _, pid := range stuck {
		waitStopped(t, pid)
	}
	pid, _ := runJob(t, e, "second")
	require.NotContains(t, stuck, pid, "the job ran in a shim of its own")
	deadline := time.Now().Add(time.Minute)
	for len(spares(t, run)) != 2 { // one stuck spare was killed; the job's shim waits now
		require.True(t, time.Now().Before(deadline), "the stuck spare was not killed")
		time.Sleep(10 * time.Millisecond)
	}
	require.Contains(t, spares(t, run), pid)
}

// A shim beside the server is used only when it speaks the server's protocol: one of another
// build is left out, with a reason, and jobs start through the server itself.
func TestFindShimSkipsAShimOfAnotherBuild(t *testing.T) {
	bin := t.TempDir()
	server := filepath.Join(bin, "atlas-server")
	shim, err := process.FindShim(server)
	require.NoError(t, err)
	require.Empty(t, shim, "no shim beside the server")
	old := filepath.Join(bin, process.ShimName)
	require.NoError(t, os.WriteFile(old, []byte("#!/bin/sh\necho 'atlas shim: want one argument, the spec file' >&2\nexit 2\n"), 0o755))
	shim, err = process.FindShim(server)
	require.Empty(t, shim)
	require.ErrorContains(t, err, "of another build")
	require.NoError(t, os.WriteFile(old, []byte("#!/bin/sh\necho '"+process.ShimProtocol+"'\n"), 0o755))
	shim, err = process.FindShim(server)
	require.NoError(t, err)
	require.Equal(t, old, shim, "a shim that speaks the protocol")
}
