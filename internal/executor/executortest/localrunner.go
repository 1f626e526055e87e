// LocalRunner: the in-job side of remote executors (python.Bootstrap) run as a process on this
// machine that shares nothing with the server but its API — what a Kubernetes pod or a Slurm
// batch job does, without a cluster. The contract suite runs it to check the in-job side.

package executortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/python"
)

// LocalRunner is a remote executor whose "nodes" are local processes.
type LocalRunner struct {
	// URL is how jobs reach the server's API.
	URL string
	// Python runs the bootstrap.
	Python string
	// Dir holds each job's working and spool folders, and EnvDir the environments cache
	// ("" for none), as a node's scratch space and a shared volume would. A job's temporary
	// files go in its folder's tmp, as a batch job's do in its scratch folder.
	Dir, EnvDir string

	mu     sync.Mutex
	exited map[string]chan struct{} // by job id: closed when the job's in-job side has exited
}

var _ executor.Remote = (*LocalRunner)(nil)

// Name implements executor.Executor.
func (l *LocalRunner) Name() string { return "localrunner" }

// Remote implements executor.Remote.
func (l *LocalRunner) Remote() {}

// Start implements executor.Executor.
func (l *LocalRunner) Start(ctx context.Context, spec *executor.Spec) (executor.Handle, error) {
	if spec.WorkDir != "" || spec.LogPath != "" {
		return nil, errors.New("a remote executor got a working directory or a log file: the scheduler prepared the job")
	}
	node := filepath.Join(l.Dir, spec.Job.ID)
	if err := os.MkdirAll(filepath.Join(node, "tmp"), 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(l.Python, "-c", python.Bootstrap())
	cmd.Dir = node
	var env []string
	for _, kv := range spec.Env { // the job's environment, and nothing of the server's files
		if !strings.HasPrefix(kv, "FOUNDATIONS_SCHEDULER_URL=") && !strings.HasPrefix(kv, "FOUNDATIONS_HOME=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"), "HOME="+node, "FOUNDATIONS_SCHEDULER_URL="+l.URL,
		"ATLAS_WORK_DIR="+filepath.Join(node, "work"), "ATLAS_SPOOL_DIR="+filepath.Join(node, "spool"),
		"TMPDIR="+filepath.Join(node, "tmp"))
	if l.EnvDir != "" {
		cmd.Env = append(cmd.Env, "ATLAS_ENV_DIR="+l.EnvDir)
	}
	out, err := os.Create(filepath.Join(node, "engine.log")) // what the engine's own log would show
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the in-job side: %w", err)
	}
	h := &localHandle{cmd: cmd, done: make(chan struct{})}
	l.mu.Lock()
	if l.exited == nil {
		l.exited = map[string]chan struct{}{}
	}
	l.exited[spec.Job.ID] = h.done
	l.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(h.done)
	}()
	return h, nil
}

// Exited is closed when the in-job side of the job has exited; nil if the job never started.
func (l *LocalRunner) Exited(id string) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.exited[id]
}

// Recover implements executor.Executor: local runners are not found again after a restart.
func (l *LocalRunner) Recover(ctx context.Context, job *atlas.Job, logPath string) (executor.Handle, error) {
	return nil, fmt.Errorf("%w: the local runner does not re-attach", executor.ErrGone)
}

type localHandle struct {
	cmd    *exec.Cmd
	done   chan struct{}
	killed atomic.Bool
}

func (h *localHandle) RunInfo() string {
	b, _ := json.Marshal(executor.Worker{Worker: fmt.Sprintf("local runner pid %d", h.cmd.Process.Pid)})
	return string(b)
}

func (h *localHandle) Wait(ctx context.Context) (executor.Result, error) {
	select {
	case <-h.done:
	case <-ctx.Done():
		return executor.Result{}, ctx.Err()
	}
	ps := h.cmd.ProcessState
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return executor.Result{ExitCode: 128 + int(ws.Signal()), Reason: "killed by signal " + ws.Signal().String(),
			Killed: h.killed.Load()}, nil
	}
	return executor.Result{ExitCode: ps.ExitCode(), Killed: h.killed.Load()}, nil
}

// Stop sends SIGTERM to the in-job side only, as an engine does to a pod's first process: it
// must pass it on to the job's command. When the grace is over, the whole group is killed.
func (h *localHandle) Stop(grace time.Duration) error {
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	go func() {
		select {
		case <-h.done:
		case <-time.After(grace):
			h.killed.Store(true)
			_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	return nil
}

func (h *localHandle) Release() error { return nil }
