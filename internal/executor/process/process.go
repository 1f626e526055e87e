// Package process runs jobs as local processes, for machines without Docker.
//
// Each job runs under a small supervisor (the "shim": the atlas-shim binary beside the
// server's, or the server binary re-executed with ShimArg when there is none) in the shim's
// process group; a shim runs one job at a time, job after job. The shim installs
// requirements.txt into a cached virtualenv, runs the command with output going straight to
// the job's log file, and writes the exit status to a file when the command ends. Because nothing flows through the server, a job
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
	"io/fs"
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

// SpareArg, given to a shim instead of its spec file, makes it serve job after job: started
// ahead of its first job, it waits for each job's spec file path on its stdin.
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
	// Slots is how many jobs run at a time (the server's workers): as many shims, and one
	// more, wait for jobs between them. 0 means 8.
	Slots int
}

// Executor is the process executor.
//
// A job's start does not wait for a program to be loaded and initialised: shims run job after
// job, and the executor keeps those that wait for one (spares). A job is handed a spare, whose
// process outlives the job when the job leaves nothing behind and becomes a spare again once
// the job is released; when there is none, the job's shim is started with it, and another
// one for the job after it. Spares exit when the server closes the executor or goes away
// (their stdin ends), and so does a shim that runs a job then.
type Executor struct {
	cfg Config

	mu        sync.Mutex
	spares    []*spare // the last one back is the first out
	refilling bool     // the next spare is starting
	closed    bool
}

// spare is a shim that serves jobs: waiting for one, or running one.
type spare struct {
	cmd       *exec.Cmd
	in        io.WriteCloser // its stdin: each job's spec file path; its end: no more jobs
	ack       *os.File       // its ack pipe: ackTook for each job it took, ackEnded for each that ended
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
	if cfg.Slots <= 0 {
		cfg.Slots = 8
	}
	return &Executor{cfg: cfg}, nil
}

// ShimName is the file name of the shim binary, looked for beside the server's.
const ShimName = "atlas-shim"

// ShimProtocol names what a shim and the server that starts it say to each other: the spec
// file's fields and a spare's pipe. Change it with either.
const ShimProtocol = "atlas-shim 3"

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
	specPath := specFile(ss.ExitFile)
	data, _ := json.Marshal(ss)
	if err := os.WriteFile(specPath, data, 0o600); err != nil {
		return nil, fmt.Errorf("write shim spec: %w", err)
	}
	h, err := e.startShim(specPath, ss.ExitFile)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// startShim gives the job's spec to a spare shim when there is one that is still there, or
// starts a shim for it (and the next spare).
func (e *Executor) startShim(specPath, exitFile string) (*handle, error) {
	e.mu.Lock()
	var sp *spare
	if n := len(e.spares); n > 0 {
		sp, e.spares = e.spares[n-1], e.spares[:n-1]
	}
	e.mu.Unlock()
	if sp != nil {
		if h, err := e.hand(sp, specPath, exitFile, e.cfg.SpareTimeout); err == nil {
			return h, nil
		}
	}
	e.ensureSpare() // for the next job, whose start did not find one
	sp, err := e.startSpare()
	if err != nil {
		return nil, fmt.Errorf("start job process: %w", err)
	}
	h, err := e.hand(sp, specPath, exitFile, shimStartTimeout)
	if err != nil {
		return nil, fmt.Errorf("start job process: shim %d did not take the job: %w", sp.cmd.Process.Pid, err)
	}
	return h, nil
}

// shimStartTimeout bounds how long a shim started for a job takes to load and take it.
const shimStartTimeout = time.Minute

// hand gives a spare the job's spec. A spare that died may still take the path into its pipe:
// its word that it took the job tells, within timeout (one that is stopped or stuck never says
// it, and is killed).
func (e *Executor) hand(sp *spare, specPath, exitFile string, timeout time.Duration) (*handle, error) {
	_, err := io.WriteString(sp.in, specPath+"\n")
	if err == nil {
		err = sp.expect(ackTook, time.Now().Add(timeout))
	}
	if err != nil {
		sp.discard()
		return nil, err
	}
	h := &handle{pid: sp.cmd.Process.Pid, startTime: sp.startTime, exitFile: exitFile, e: e, done: make(chan struct{})}
	go h.serve(sp)
	return h, nil
}

// serve waits for the end of the job a spare took: its word that the job ended (the spare is
// then the handle's to give back when the job is released), or its exit.
func (h *handle) serve(sp *spare) {
	if sp.expect(ackEnded, time.Time{}) == nil {
		if st, ok := readExitFile(h.exitFile); ok {
			h.back = sp
			h.finish(executor.Result{ExitCode: st.ExitCode, Reason: st.Reason})
			return
		}
		// It said the job ended and recorded nothing: no job for it again.
		_ = syscall.Kill(-sp.cmd.Process.Pid, syscall.SIGKILL)
	}
	err := sp.cmd.Wait()
	sp.ack.Close()
	h.finish(resultFromWait(sp.cmd.ProcessState, err, h.exitFile))
}

// expect reads the spare's next word on its ack pipe, by deadline unless that is zero.
func (sp *spare) expect(word byte, deadline time.Time) error {
	_ = sp.ack.SetReadDeadline(deadline)
	var b [1]byte
	if _, err := io.ReadFull(sp.ack, b[:]); err != nil {
		return err
	}
	if b[0] != word {
		return fmt.Errorf("shim %d said %q, not %q", sp.cmd.Process.Pid, b[0], word)
	}
	return nil
}

// shimCommand is a shim's command line: in a process group of its own, whose stop signals
// reach the job's every process. Its own environment only lasts until it has read its first
// spec, and one processor is all it needs. Until then its output is the server's: only a
// broken spec file.
func (e *Executor) shimCommand() *exec.Cmd {
	cmd := exec.Command(e.cfg.Self, ShimArg, SpareArg)
	if e.cfg.Shim != "" {
		cmd = exec.Command(e.cfg.Shim, SpareArg)
	}
	cmd.Dir = e.cfg.RunDir
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// ensureSpare starts the next spare shim unless there is one, one is starting, or the executor
// is closed. It is called when a job is released, once its end is recorded, rather than when a
// job takes the spare, so that starting a shim competes for the processors with neither a
// job's start nor its end; and when a job's start found no spare.
func (e *Executor) ensureSpare() {
	e.mu.Lock()
	start := len(e.spares) == 0 && !e.refilling && !e.closed
	e.refilling = e.refilling || start
	e.mu.Unlock()
	if start {
		go e.refill()
	}
}

// refill starts the next spare shim; the executor's state says one is starting. A spare that
// cannot start is no error: the next job's shim starts with the job.
func (e *Executor) refill() {
	sp, _ := e.startSpare()
	e.mu.Lock()
	e.refilling = false
	e.mu.Unlock()
	if sp != nil {
		e.putSpare(sp)
	}
}

// putSpare keeps a shim that waits for a job, unless the executor is closed or keeps enough.
func (e *Executor) putSpare(sp *spare) {
	e.mu.Lock()
	keep := !e.closed && len(e.spares) <= e.cfg.Slots
	if keep {
		e.spares = append(e.spares, sp)
	}
	e.mu.Unlock()
	if !keep {
		sp.discard()
	}
}

func (e *Executor) startSpare() (*spare, error) {
	cmd := e.shimCommand()
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	ack, ackW, err := os.Pipe()
	if err != nil {
		in.Close()
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{ackW} // fd 3 (ackFD)
	err = cmd.Start()
	ackW.Close()
	if err != nil {
		in.Close()
		ack.Close()
		return nil, err
	}
	sp := &spare{cmd: cmd, in: in, ack: ack}
	sp.startTime, _ = procStartTime(cmd.Process.Pid)
	return sp, nil
}

// discard ends a spare that will get no job, or did not say it took one.
func (sp *spare) discard() {
	sp.in.Close() // a spare that reads the end of its stdin exits
	// Its process group: one that took the job after all, too late, may have started the command.
	_ = syscall.Kill(-sp.cmd.Process.Pid, syscall.SIGKILL)
	go func() {
		_ = sp.cmd.Wait()
		sp.ack.Close()
	}()
}

// Close ends the spare shims; jobs that run keep running, and their shims exit when the jobs
// end. It is idempotent.
func (e *Executor) Close() error {
	e.mu.Lock()
	spares := e.spares
	e.spares, e.closed = nil, true
	e.mu.Unlock()
	for _, sp := range spares {
		sp.in.Close()
		_ = sp.cmd.Process.Kill() // it has no job: nothing to lose, and it may be stuck
		_ = sp.cmd.Wait()
		sp.ack.Close()
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

// Recover implements executor.Executor. The job ends when its shim records its exit status,
// which the shim does before it exits; the shim of a server that is still there (two servers
// on one data folder, or a test) does not exit then, and the file itself is looked for every
// recoverPoll.
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
	if _, err := os.Stat(specFile(ri.ExitFile)); errors.Is(err, fs.ErrNotExist) {
		// Released: its shim, if it is still there, runs other jobs.
		return nil, fmt.Errorf("%w: job %s was released", executor.ErrGone, job.ID)
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
			n, err := unix.Poll(fds, int(recoverPoll/time.Millisecond))
			if st, ok := readExitFile(ri.ExitFile); ok {
				h.finish(executor.Result{ExitCode: st.ExitCode, Reason: st.Reason})
				return
			}
			if n > 0 || err != nil && !errors.Is(err, unix.EINTR) {
				break
			}
		}
		h.finish(executor.Result{ExitCode: 137, Reason: "the job's process ended without an exit status (killed)"})
	}()
	return h, nil
}

// recoverPoll is how often a recovered job's exit status file is looked for.
const recoverPoll = time.Second

// specFile is the path of the shim spec of the job whose exit status file is given.
func specFile(exitFile string) string { return strings.TrimSuffix(exitFile, ".exit") + ".json" }

type handle struct {
	pid       int
	startTime uint64
	exitFile  string
	e         *Executor // whose next spare starts when the job is released
	back      *spare    // the shim that ran the job, to serve the next once this is released

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
	if h.back != nil {
		h.e.putSpare(h.back)
		h.back = nil
	} else {
		h.e.ensureSpare()
	}
	os.Remove(specFile(h.exitFile))
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
