// Package process runs jobs as local processes, for machines without Docker.
//
// Each job runs under a small supervisor (the "shim": the atlas-shim binary beside the
// server's, or the server binary re-executed with ShimArg when there is none) in its own
// process group. The shim installs requirements.txt into a cached
// virtualenv, runs the command with output going straight to the job's log file, and writes the
// exit status to a file when the command ends. Because nothing flows through the server, a job
// keeps running and logging while the server restarts, and the new server re-attaches to it by
// pid and reads its exit status from that file.
//
// Stop sends SIGTERM to the whole group, waits the grace period, then sends SIGKILL.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// ShimArg is the hidden first argument that makes the server binary act as a job's shim.
const ShimArg = "__atlas-shim"

// SpareArg, given to a shim instead of its spec file, makes it a spare: started ahead of the
// next job, it waits for the spec file's path on its stdin.
const SpareArg = "-"

// Config configures the executor.
type Config struct {
	// Self is the path of the binary that implements the shim behind ShimArg (the server
	// itself).
	Self string
	// Shim, when set, is the path of a binary that is only the shim (cmd/atlas-shim): jobs
	// start through it rather than through Self, which costs much less per job.
	Shim string
	// RunDir holds per-job shim specs and exit status files.
	RunDir string
	// EnvsDir holds the cached virtualenvs, one per requirements.txt content.
	EnvsDir string
	// Python is the interpreter jobs run with when they have no requirements.txt.
	Python string
	// SpareTimeout is how long a spare shim has to say it took a job's spec (default 10 s);
	// a spare that does not is killed, and the job starts in a shim of its own.
	SpareTimeout time.Duration
}

// Executor is the process executor.
//
// It keeps one shim started ahead of the next job (a spare), so that a job's start does not
// wait for a program to be loaded and initialised: it hands the spare the job's spec, and starts
// the next spare once a job is released. A spare that is never used exits when the server
// closes the executor or goes away (its stdin ends).
type Executor struct {
	cfg Config

	mu        sync.Mutex
	spare     *spare // nil until the first job, and while the next one starts
	refilling bool   // the next spare is starting
	closed    bool
}

// spare is a shim waiting for its job's spec.
type spare struct {
	cmd       *exec.Cmd
	in        io.WriteCloser // its stdin: the spec file's path, then the end
	ack       io.ReadCloser  // its stdout: one byte once it has taken the job, then the end
	startTime uint64
}

var _ executor.Executor = (*Executor)(nil)

// New returns a process executor.
func New(cfg Config) (*Executor, error) {
	for _, d := range []string{cfg.RunDir, cfg.EnvsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if cfg.Python == "" {
		cfg.Python = "python3"
	}
	cfg.Python = resolvePython(cfg.Python)
	if cfg.SpareTimeout <= 0 {
		cfg.SpareTimeout = 10 * time.Second
	}
	return &Executor{cfg: cfg}, nil
}

// ShimName is the file name of the shim binary, looked for beside the server's.
const ShimName = "atlas-shim"

// ShimProtocol names what a shim and the server that starts it say to each other: the spec
// file's fields and a spare's pipe. Change it with either.
const ShimProtocol = "atlas-shim 2"

// ProtocolArg makes a shim print its ShimProtocol and exit.
const ProtocolArg = "--protocol"

// FindShim returns the shim binary beside self (the server's binary), or "" when there is
// none. A shim of another build that speaks another protocol is not used (it would run jobs
// with another idea of their spec): FindShim then returns "" and says so, and jobs start
// through the server's own binary.
func FindShim(self string) (string, error) {
	p := filepath.Join(filepath.Dir(self), ShimName)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return "", nil
	}
	out, _ := exec.Command(p, ProtocolArg).Output()
	if got := strings.TrimSpace(string(out)); got != ShimProtocol {
		return "", fmt.Errorf("%s is of another build (it does not speak %q): jobs start through atlas-server itself, "+
			"which costs more per job; install atlas-server and atlas-shim from one build", p, ShimProtocol)
	}
	return p, nil
}

// resolvePython returns the interpreter's real path, so that jobs skip wrapper scripts such as
// pyenv shims (which cost tens of milliseconds per start). It returns name unchanged when the
// interpreter cannot be run; jobs then fail with that error.
func resolvePython(name string) string {
	out, err := exec.Command(name, "-c", "import sys; print(sys.executable)").Output()
	if p := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(p) {
		return p
	}
	return name
}

// Python returns the interpreter jobs run with.
func (e *Executor) Python() string { return e.cfg.Python }

// Name implements executor.Executor.
func (e *Executor) Name() string { return "process" }

// shimSpec is what the shim reads from its spec file.
type shimSpec struct {
	JobID      string   `json:"job_id"`
	WorkDir    string   `json:"work_dir"`
	Entrypoint []string `json:"entrypoint"`
	Command    []string `json:"command"`
	Python     string   `json:"python"`
	EnvsDir    string   `json:"envs_dir"`
	ExitFile   string   `json:"exit_file"`
	// LogPath is the job's log, which the shim's own output and the command's go to.
	LogPath string `json:"log_path"`
	// Env is the job's environment (jobEnv), which the shim takes as its own before anything
	// else, since it may have been started before the job was known.
	Env []string `json:"env"`
	// SDKDir holds the Python SDK, whose foundations/_system.py samples the job's system metrics.
	SDKDir string `json:"sdk_dir,omitempty"`
	// Account, when set, is the account the command (and the installation of its
	// requirements) runs as; the shim itself stays the server's, to record the exit status.
	Account *executor.Account `json:"account,omitempty"`
	// Home and User are HOME and USER of a command run as another account.
	Home string `json:"home,omitempty"`
	User string `json:"user,omitempty"`
}

// exitStatus is what the shim writes when the command ends.
type exitStatus struct {
	ExitCode int    `json:"exit_code"`
	Reason   string `json:"reason,omitempty"`
}

// runInfo is stored with the job to find it after a restart.
type runInfo struct {
	executor.Worker
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // /proc/<pid>/stat field 22, to detect pid reuse
	ExitFile  string `json:"exit_file"`
}

// Start implements executor.Executor.
func (e *Executor) Start(ctx context.Context, spec *executor.Spec) (executor.Handle, error) {
	j := spec.Job
	ss := shimSpec{JobID: j.ID, WorkDir: spec.WorkDir, Entrypoint: j.Entrypoint, Command: j.Command,
		Python: e.cfg.Python, EnvsDir: e.cfg.EnvsDir, ExitFile: filepath.Join(e.cfg.RunDir, j.ID+".exit"), SDKDir: spec.SDKDir}
	if len(j.Worker.Entrypoint) > 0 && len(ss.Entrypoint) == 0 {
		ss.Entrypoint = j.Worker.Entrypoint
	}
	if len(ss.Command) == 0 {
		ss.Command = j.Worker.Command
	}
	if err := e.runAs(j, spec, &ss); err != nil {
		return nil, err
	}
	os.Remove(ss.ExitFile)
	ss.LogPath, ss.Env = spec.LogPath, jobEnv(spec)
	specPath := filepath.Join(e.cfg.RunDir, j.ID+".json")
	data, _ := json.Marshal(ss)
	if err := os.WriteFile(specPath, data, 0o600); err != nil {
		return nil, fmt.Errorf("write shim spec: %w", err)
	}
	h, err := e.startShim(spec, specPath, ss.ExitFile)
	if err != nil {
		return nil, err
	}
	go func() {
		err := h.cmd.Wait()
		h.finish(resultFromWait(h.cmd.ProcessState, err, ss.ExitFile))
	}()
	return &h.handle, nil
}

// startedShim is a shim that runs a job, and its process to wait for.
type startedShim struct {
	handle
	cmd *exec.Cmd
}

// startShim gives the job's spec to the spare shim when there is one that is still there, or
// starts a shim for it (and the next spare).
func (e *Executor) startShim(spec *executor.Spec, specPath, exitFile string) (*startedShim, error) {
	e.mu.Lock()
	sp := e.spare
	e.spare = nil
	e.mu.Unlock()
	if sp != nil {
		// A spare that died may still take the path into its pipe: its word that it took the
		// job tells, in time (one that is stopped or stuck never says it).
		_, err := io.WriteString(sp.in, specPath+"\n")
		if err == nil {
			err = sp.in.Close()
		}
		if err == nil {
			if f, ok := sp.ack.(*os.File); ok {
				_ = f.SetReadDeadline(time.Now().Add(e.cfg.SpareTimeout))
			}
			var b [1]byte
			_, err = io.ReadFull(sp.ack, b[:])
			sp.ack.Close()
		}
		if err == nil {
			return &startedShim{handle: handle{pid: sp.cmd.Process.Pid, startTime: sp.startTime, exitFile: exitFile,
				e: e, done: make(chan struct{})}, cmd: sp.cmd}, nil
		}
		sp.discard() // it is gone: start one for the job
	}
	e.ensureSpare() // for the next job, whose start did not find one
	logf, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := e.shimCommand(specPath)
	cmd.Dir = spec.WorkDir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start job process: %w", err)
	}
	h := &startedShim{handle: handle{pid: cmd.Process.Pid, exitFile: exitFile, e: e, done: make(chan struct{})}, cmd: cmd}
	h.startTime, _ = procStartTime(h.pid)
	return h, nil
}

// shimCommand is a shim's command line, given its one argument (a spec file or SpareArg): in a
// process group of its own, whose stop signals reach the job's every process. Its own
// environment only lasts until it has read its spec, and one processor is all it needs.
func (e *Executor) shimCommand(arg string) *exec.Cmd {
	cmd := exec.Command(e.cfg.Self, ShimArg, arg)
	if e.cfg.Shim != "" {
		cmd = exec.Command(e.cfg.Shim, arg)
	}
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// ensureSpare starts the next spare shim unless there is one, one is starting, or the executor
// is closed. It is called when a job is released, once its end is recorded, rather than when a
// job takes the spare, so that starting a shim competes for the processors with neither a
// job's start nor its end; and when a job's start found no spare.
func (e *Executor) ensureSpare() {
	e.mu.Lock()
	start := e.spare == nil && !e.refilling && !e.closed
	e.refilling = e.refilling || start
	e.mu.Unlock()
	if start {
		go e.refill()
	}
}

// refill starts the next spare shim; the executor's state says one is starting. A spare that
// cannot start is no error: the next job's shim starts with the job.
func (e *Executor) refill() {
	sp := e.startSpare()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refilling = false
	if sp == nil {
		return
	}
	if e.closed {
		sp.discard()
		return
	}
	e.spare = sp
}

func (e *Executor) startSpare() *spare {
	cmd := e.shimCommand(SpareArg)
	cmd.Dir = e.cfg.RunDir
	cmd.Stderr = os.Stderr // until it has the job's log: only a broken spec file
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil
	}
	ack, err := cmd.StdoutPipe()
	if err != nil {
		in.Close()
		return nil
	}
	if err := cmd.Start(); err != nil {
		in.Close()
		return nil
	}
	sp := &spare{cmd: cmd, in: in, ack: ack}
	sp.startTime, _ = procStartTime(cmd.Process.Pid)
	return sp
}

// discard ends a spare that will get no job, or did not say it took one.
func (sp *spare) discard() {
	sp.in.Close() // a spare that reads the end of its stdin exits
	// Its process group: one that took the job after all, too late, may have started the command.
	_ = syscall.Kill(-sp.cmd.Process.Pid, syscall.SIGKILL)
	go sp.cmd.Wait() // closes ack too
}

// Close ends the spare shim; jobs that run keep running. It is idempotent.
func (e *Executor) Close() error {
	e.mu.Lock()
	sp := e.spare
	e.spare, e.closed = nil, true
	e.mu.Unlock()
	if sp != nil {
		sp.in.Close()
		_ = sp.cmd.Process.Kill() // it has no job: nothing to lose, and it may be stuck
		_ = sp.cmd.Wait()
	}
	return nil
}

// runAs makes a root server run the job as its own account (job.RunAs): the job's working
// directory and spool are handed to it, and the shim runs the command and the installation
// of its requirements as that account, with an environment cache of its own. Any other
// server runs jobs as itself.
func (e *Executor) runAs(j *atlas.Job, spec *executor.Spec, ss *shimSpec) error {
	if j.RunAs == "" || os.Getuid() != 0 {
		return nil
	}
	acct, err := executor.ParseAccount(j.RunAs)
	if err != nil || acct == executor.Self() {
		return err
	}
	for _, d := range []string{spec.WorkDir, spec.SpoolDir} {
		if d == "" {
			continue
		}
		if err := acct.Give(d); err != nil {
			return err
		}
	}
	ss.Account, ss.Home = &acct, spec.WorkDir
	if u, err := user.LookupId(strconv.Itoa(acct.UID)); err == nil {
		ss.User = u.Username
		if fi, err := os.Stat(u.HomeDir); err == nil && fi.IsDir() && u.HomeDir != "/" {
			ss.Home = u.HomeDir
		}
	}
	return nil
}

// jobEnv is the server's environment minus what must not leak into jobs, plus the job's.
func jobEnv(spec *executor.Spec) []string {
	drop := map[string]bool{"FOUNDATIONS_COMMAND_LINE": true, "PYTHONPATH": true}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	// The SDK joins PYTHONPATH: after the job's own (worker.environment), before the server's.
	pythonPath := []string{spec.SDKDir}
	if p := os.Getenv("PYTHONPATH"); p != "" {
		pythonPath = append(pythonPath, p)
	}
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok && v != "" {
			pythonPath = append([]string{v}, pythonPath...)
		}
	}
	env = append(env, "PYTHONUNBUFFERED=1")
	if spec.SpoolDir != "" {
		env = append(env, "FOUNDATIONS_SPOOL_DIR="+spec.SpoolDir)
	}
	for _, kv := range spec.Env {
		if !strings.HasPrefix(kv, "PYTHONPATH=") {
			env = append(env, kv)
		}
	}
	return append(env, "PYTHONPATH="+strings.Join(pythonPath, string(os.PathListSeparator)))
}

func resultFromWait(ps *os.ProcessState, waitErr error, exitFile string) executor.Result {
	if st, ok := readExitFile(exitFile); ok {
		return executor.Result{ExitCode: st.ExitCode, Reason: st.Reason}
	}
	if ps == nil {
		return executor.Result{ExitCode: -1, Reason: fmt.Sprintf("job process failed: %v", waitErr), Lost: true}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return executor.Result{ExitCode: 128 + int(ws.Signal()), Reason: "killed by signal " + signalName(ws.Signal())}
	}
	return executor.Result{ExitCode: ps.ExitCode()}
}

func readExitFile(path string) (exitStatus, bool) {
	var st exitStatus
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &st) != nil {
		return st, false
	}
	return st, true
}

// Recover implements executor.Executor.
func (e *Executor) Recover(ctx context.Context, job *atlas.Job, logPath string) (executor.Handle, error) {
	var ri runInfo
	if err := json.Unmarshal([]byte(job.RunInfo), &ri); err != nil || ri.PID <= 0 {
		return nil, fmt.Errorf("%w: no process recorded for job %s", executor.ErrGone, job.ID)
	}
	h := &handle{pid: ri.PID, startTime: ri.StartTime, exitFile: ri.ExitFile, e: e, done: make(chan struct{})}
	if st, ok := readExitFile(ri.ExitFile); ok {
		h.finish(executor.Result{ExitCode: st.ExitCode, Reason: st.Reason})
		return h, nil
	}
	start, err := procStartTime(ri.PID)
	if err != nil || start != ri.StartTime {
		// Gone; it may have written its status between the two checks.
		if st, ok := readExitFile(ri.ExitFile); ok {
			h.finish(executor.Result{ExitCode: st.ExitCode, Reason: st.Reason})
			return h, nil
		}
		return nil, fmt.Errorf("%w: process %d of job %s ended while the server was down and left no exit status", executor.ErrGone, ri.PID, job.ID)
	}
	fd, err := unix.PidfdOpen(ri.PID, 0)
	if err != nil {
		return nil, fmt.Errorf("watch process %d: %w", ri.PID, err)
	}
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == nil || !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if st, ok := readExitFile(ri.ExitFile); ok {
			h.finish(executor.Result{ExitCode: st.ExitCode, Reason: st.Reason})
			return
		}
		h.finish(executor.Result{ExitCode: 137, Reason: "the job's process ended without an exit status (killed)"})
	}()
	return h, nil
}

type handle struct {
	pid       int
	startTime uint64
	exitFile  string
	e         *Executor // whose next spare starts when the job is released

	once   sync.Once
	done   chan struct{}
	result executor.Result
	killed atomic.Bool // Stop sent SIGKILL when the grace period was over
}

func (h *handle) finish(r executor.Result) {
	h.once.Do(func() {
		h.result = r
		close(h.done)
	})
}

// RunInfo implements executor.Handle.
func (h *handle) RunInfo() string {
	b, _ := json.Marshal(runInfo{Worker: executor.Worker{Worker: fmt.Sprintf("pid %d", h.pid)}, PID: h.pid, StartTime: h.startTime, ExitFile: h.exitFile})
	return string(b)
}

// Wait implements executor.Handle.
func (h *handle) Wait(ctx context.Context) (executor.Result, error) {
	select {
	case <-h.done:
		res := h.result
		res.Killed = h.killed.Load()
		return res, nil
	case <-ctx.Done():
		return executor.Result{}, ctx.Err()
	}
}

// Release implements executor.Handle.
func (h *handle) Release() error {
	h.e.ensureSpare()
	os.Remove(strings.TrimSuffix(h.exitFile, ".exit") + ".json")
	if err := os.Remove(h.exitFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Stop implements executor.Handle.
func (h *handle) Stop(grace time.Duration) error {
	select {
	case <-h.done:
		return nil
	default:
	}
	if err := syscall.Kill(-h.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop process group %d: %w", h.pid, err)
	}
	go func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-h.done:
		case <-t.C:
			h.killed.Store(true)
			_ = syscall.Kill(-h.pid, syscall.SIGKILL)
		}
	}()
	return nil
}

// procStartTime reads the start time of a process, in clock ticks since boot.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	if fields[0] == "Z" {
		return 0, fmt.Errorf("process %d is a zombie", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "9 (SIGKILL; out of memory, or stopped after the grace period)"
	case syscall.SIGTERM:
		return "15 (SIGTERM)"
	case syscall.SIGINT:
		return "2 (SIGINT)"
	case syscall.SIGSEGV:
		return "11 (SIGSEGV)"
	}
	return strconv.Itoa(int(s))
}
