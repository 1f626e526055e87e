// Package executortest is the conformance suite every executor.Executor passes. Jobs in the
// suite are small Python scripts, so any executor that can run `python` can be tested. It must
// only be imported from tests.
package executortest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// Harness creates executors for the suite.
type Harness struct {
	// New returns an executor. Called more than once per test to simulate a server restart:
	// executors made by the same Harness share their state directories.
	New func(t *testing.T) executor.Executor
	// Grace is the stop grace period to use; short, to keep the suite fast.
	Grace time.Duration
	// SDKDir holds the Python SDK (python.Extract), as the server passes it to executors.
	SDKDir string
}

// Exercise runs the suite.
func Exercise(t *testing.T, h Harness) {
	if h.Grace == 0 {
		h.Grace = 2 * time.Second
	}
	t.Run("RunsInWorkDirWithEnvAndLogs", func(t *testing.T) {
		t.Parallel()
		e := h.New(t)
		spec := h.newSpec(t, "a", `
import os
print("hello from", os.environ["FOUNDATIONS_JOB_ID"], os.environ["EXTRA"])
open("out.txt", "w").write("written")
`)
		spec.Env = append(spec.Env, "EXTRA=extra-value")
		res := run(t, e, spec)
		require.Equal(t, 0, res.ExitCode, readLog(t, spec))
		require.Contains(t, readLog(t, spec), "hello from "+spec.Job.ID+" extra-value")
		data, err := os.ReadFile(filepath.Join(spec.WorkDir, "out.txt"))
		require.NoError(t, err)
		require.Equal(t, "written", string(data))
	})

	t.Run("ExitCodeAndStderr", func(t *testing.T) {
		t.Parallel()
		e := h.New(t)
		spec := h.newSpec(t, "b", `
import sys
print("to stderr", file=sys.stderr)
sys.exit(3)
`)
		res := run(t, e, spec)
		require.Equal(t, 3, res.ExitCode)
		require.Contains(t, readLog(t, spec), "to stderr")
	})

	t.Run("ArgumentsReachTheScript", func(t *testing.T) {
		t.Parallel()
		e := h.New(t)
		spec := h.newSpec(t, "c", `
import sys
print("args:", sys.argv[1:])
`)
		spec.Job.Command = append(spec.Job.Command, "--epochs", "3", "two words")
		res := run(t, e, spec)
		require.Equal(t, 0, res.ExitCode)
		require.Contains(t, readLog(t, spec), "args: ['--epochs', '3', 'two words']")
	})

	t.Run("StopSendsTermThenKills", func(t *testing.T) {
		t.Parallel()
		e := h.New(t)
		spec := h.newSpec(t, "d", `
import signal, sys, time
def term(*_):
    print("got SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
while True:
    time.sleep(0.05)
`)
		hd := start(t, e, spec)
		waitForLog(t, spec, "ready")
		require.NoError(t, hd.Stop(h.Grace))
		res := wait(t, hd)
		require.Contains(t, readLog(t, spec), "got SIGTERM")
		require.Equal(t, 0, res.ExitCode)

		stubborn := h.newSpec(t, "e", `
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(0.05)
`)
		hd = start(t, e, stubborn)
		waitForLog(t, stubborn, "ready")
		require.NoError(t, hd.Stop(200*time.Millisecond))
		res = wait(t, hd)
		require.NotEqual(t, 0, res.ExitCode, "a job that ignores SIGTERM is killed after the grace period")
	})

	t.Run("RecoverAfterRestart", func(t *testing.T) {
		t.Parallel()
		e := h.New(t)
		spec := h.newSpec(t, "f", `
import os, time
print("ready", flush=True)
while not os.path.exists("go"):
    time.sleep(0.02)
print("finishing", flush=True)
raise SystemExit(7)
`)
		hd := start(t, e, spec)
		waitForLog(t, spec, "ready")
		spec.Job.RunInfo = hd.RunInfo()
		spec.Job.Executor = e.Name()

		// A new executor, as after a server restart, finds the job again.
		e2 := h.New(t)
		hd2, err := e2.Recover(context.Background(), spec.Job, spec.LogPath)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(spec.WorkDir, "go"), nil, 0o644))
		res := wait(t, hd2)
		require.Equal(t, 7, res.ExitCode)
		require.Contains(t, readLog(t, spec), "finishing")
		wait(t, hd) // the first handle sees the end too

		// A job that ended while nobody watched is recovered as ended, with its status.
		hd3, err := h.New(t).Recover(context.Background(), spec.Job, spec.LogPath)
		require.NoError(t, err)
		require.Equal(t, 7, wait(t, hd3).ExitCode)
	})

	t.Run("ReleasedJobIsGone", func(t *testing.T) {
		t.Parallel()
		e := h.New(t)
		spec := h.newSpec(t, "g", "print('done')\n")
		hd := start(t, e, spec)
		require.Equal(t, 0, wait(t, hd).ExitCode)
		require.NoError(t, hd.Release())
		spec.Job.RunInfo = hd.RunInfo()
		_, err := h.New(t).Recover(context.Background(), spec.Job, spec.LogPath)
		require.True(t, errors.Is(err, executor.ErrGone), "after Release the job cannot be recovered; got %v", err)
	})

	t.Run("RecoverUnknownIsGone", func(t *testing.T) {
		t.Parallel()
		e := h.New(t)
		j := &atlas.Job{ID: "never-started", Executor: e.Name(), RunInfo: `{"pid": 999999999, "container_id": "0000000000000000"}`}
		_, err := e.Recover(context.Background(), j, filepath.Join(t.TempDir(), "x.log"))
		require.True(t, errors.Is(err, executor.ErrGone), "got %v", err)
	})
}

func (h Harness) newSpec(t *testing.T, name, script string) *executor.Spec {
	t.Helper()
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	require.NoError(t, os.MkdirAll(work, 0o777))
	require.NoError(t, os.Chmod(work, 0o777))
	require.NoError(t, os.WriteFile(filepath.Join(work, "main.py"), []byte(strings.TrimSpace(script)+"\n"), 0o644))
	id := fmt.Sprintf("%s-%s-%d", strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"), name, time.Now().UnixNano())
	if len(id) > 100 {
		id = id[len(id)-100:]
	}
	id = strings.TrimLeft(id, "-_.")
	return &executor.Spec{
		Job:     &atlas.Job{ID: id, Project: "p", Command: []string{"main.py"}},
		WorkDir: work,
		Env:     []string{"FOUNDATIONS_JOB_ID=" + id},
		LogPath: filepath.Join(dir, "job.log"),
		SDKDir:  h.SDKDir,
	}
}

func start(t *testing.T, e executor.Executor, spec *executor.Spec) executor.Handle {
	t.Helper()
	hd, err := e.Start(context.Background(), spec)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = hd.Stop(0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = hd.Wait(ctx)
		_ = hd.Release()
	})
	return hd
}

func wait(t *testing.T, hd executor.Handle) executor.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := hd.Wait(ctx)
	require.NoError(t, err)
	return res
}

func run(t *testing.T, e executor.Executor, spec *executor.Spec) executor.Result {
	t.Helper()
	return wait(t, start(t, e, spec))
}

func readLog(t *testing.T, spec *executor.Spec) string {
	t.Helper()
	data, _ := os.ReadFile(spec.LogPath)
	return string(data)
}

// waitForLog waits until the job's log contains s: the job says it reached a point.
func waitForLog(t *testing.T, spec *executor.Spec, s string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(readLog(t, spec), s) {
		if time.Now().After(deadline) {
			t.Fatalf("job log never contained %q; log:\n%s", s, readLog(t, spec))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
