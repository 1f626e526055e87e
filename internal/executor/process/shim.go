package process

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/atlasgo/atlas/internal/atomicfile"
	"github.com/atlasgo/atlas/internal/executor"
)

// Banner frames the worker's own messages in a job's log, as Atlas's worker did.
var Banner = strings.Repeat("=", 120)

// RequirementsFile is installed before the command when present in the job folder.
const RequirementsFile = "requirements.txt"

// Shim is the supervisor of jobs: for each, it prepares the Python environment, runs the
// command with the shim's own stdout/stderr (the job's log file), and records the exit status.
// It returns the process exit code. args are the arguments after ShimArg: SpareArg (serve), or
// ProtocolArg.
func Shim(args []string) int {
	if len(args) == 1 && args[0] == ProtocolArg {
		fmt.Println(ShimProtocol)
		return 0
	}
	if len(args) != 1 || args[0] != SpareArg {
		fmt.Fprintf(os.Stderr, "atlas shim: want one argument, %q (the server starts shims)\n", SpareArg)
		return 2
	}
	return serve(os.Getppid()) // the server: it waits for the shim, unless it stops or crashes meanwhile
}

// serve runs jobs one after another for the server: started ahead of its first job (or with
// it), it reads each job's spec file path from its stdin, says on its ack pipe (fd 3) that it
// took the job, and, once the job's exit status is recorded, that the job ended (ackEnded) and it can take
// another. It exits when its stdin ends (the server went, or needs no more shims) and, after
// recording the job's end, when the job cannot be followed by another in this process: its
// spec could not be read, or the job left processes behind (they would share the next job's
// process group, and its stop). The server then sees the end as the shim's exit, as with a
// shim of one job.
func serve(server int) int {
	ack := os.NewFile(ackFD, "ack")
	syscall.CloseOnExec(ackFD) // the job's processes do not get it
	// Processes the job leaves behind become the shim's children, so that it can tell.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	home, _ := os.Getwd()
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadString('\n')
		if line == "" && err != nil {
			return 0 // the server went, or needs no more shims
		}
		if _, err := ack.Write([]byte{ackTook}); err != nil { // its word to the server that it took the job
			return 0 // the server went
		}
		code, recorded := shimJob(strings.TrimSuffix(line, "\n"), server)
		if !recorded || !childless() || idle(home) != nil {
			return code
		}
		if _, err := ack.Write([]byte{ackEnded}); err != nil {
			return code // the server went; the exit status is recorded
		}
	}
}

// What a serving shim says on its ack pipe.
const (
	ackFD    = 3
	ackTook  = 't' // it took the job whose spec path it read
	ackEnded = 'e' // the job's exit status is recorded, and it takes the next job
)

// childless reaps the shim's ended children and tells whether none is left.
func childless() bool {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.ECHILD):
			return true
		case errors.Is(err, unix.EINTR) || err == nil && pid > 0:
			continue
		default:
			return false // one still runs
		}
	}
}

// idle leaves the last job's log and directory before the next job: the shim's output goes
// nowhere (not back to the server's: a shim may outlive the server, and must not hold what
// the server wrote to open), and it waits in the directory it was started in.
func idle(home string) error {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(null.Fd()), fd, 0); err != nil {
			return err
		}
	}
	return os.Chdir(home)
}

// shimJob runs the job of one spec file and returns the shim's exit code for it, and whether
// the job's end is recorded in its exit status file.
func shimJob(specPath string, server int) (code int, recorded bool) {
	data, err := os.ReadFile(specPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "atlas shim: %v\n", err)
		return 2, false
	}
	var ss shimSpec
	if err := json.Unmarshal(data, &ss); err != nil {
		fmt.Fprintf(os.Stderr, "atlas shim: %v\n", err)
		return 2, false
	}
	if err := ss.enter(); err != nil {
		fmt.Fprintf(os.Stderr, "atlas shim: %v\n", err)
		return 2, false
	}
	// SIGTERM reaches the whole process group; the shim outlives the command to record how it
	// ended. (Notify, not Ignore: an ignored signal would stay ignored in the command.) Between
	// jobs it ends the shim, as any signal that ends a program.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	code, reason := runShim(&ss)
	st, _ := json.Marshal(exitStatus{ExitCode: code, Reason: reason})
	recorded = true
	if err := writeExitStatus(ss.ExitFile, st, os.Getppid() != server); err != nil {
		fmt.Fprintf(os.Stderr, "atlas shim: record exit status: %v\n", err)
		recorded = false
	}
	if code > 255 || code < 0 {
		code = 1
	}
	return code, recorded
}

// enter makes the shim's process the job's: its output goes to the job's log, it runs in the
// job's working directory with the job's environment (the command, the requirements'
// installation and the sampler inherit them), whatever it was started with.
func (ss *shimSpec) enter() error {
	logf, err := os.OpenFile(ss.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(logf.Fd()), fd, 0); err != nil {
			return fmt.Errorf("output to the job's log: %w", err)
		}
	}
	if err := os.Chdir(ss.WorkDir); err != nil {
		return err
	}
	os.Clearenv()
	for _, kv := range ss.Env {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// writeExitStatus puts the exit status in its file with one rename, so that nobody reads half
// of it. It is made durable first (synced to the disk) only when the server that started the
// shim is gone (the shim then has another parent): a server that is there reads the file as
// soon as the shim has exited and records the job's end in its database, whose durability is
// then what counts, so syncing would only delay every job's end. A server started later
// reads the file from the disk, maybe after the machine itself restarted. (SQLite's commits,
// in WAL mode with synchronous=NORMAL, survive the server's crash but not always the
// machine's loss of power: a job that ended just before one may then be found lost.)
func writeExitStatus(path string, data []byte, durable bool) error {
	return atomicfile.Write(path, data, 0o644, durable)
}

func runShim(ss *shimSpec) (int, string) {
	out := os.Stdout
	python := ss.Python
	req := filepath.Join(ss.WorkDir, RequirementsFile)
	fmt.Fprintln(out, Banner)
	if _, err := os.Stat(req); err == nil {
		envDir, err := ensureEnv(ss, req, out)
		if err != nil {
			fmt.Fprintf(out, "Installing user requirements failed: %v\n%s\n", err, Banner)
			return 1, "installing requirements.txt failed (see the job's logs)"
		}
		python = filepath.Join(envDir, "bin", "python")
		os.Setenv("PATH", filepath.Join(envDir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
		os.Setenv("VIRTUAL_ENV", envDir)
	} else {
		fmt.Fprintln(out, "No user requirements found.")
	}
	fmt.Fprintln(out, Banner)

	argv := append(append([]string{}, ss.Entrypoint...), ss.Command...)
	if len(ss.Entrypoint) == 0 {
		argv = append([]string{python}, ss.Command...)
	}
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "Foundations ERROR: no command to run")
		return 1, "no command to run"
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = ss.WorkDir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	ss.as(cmd)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "Foundations ERROR: cannot start %q: %v\n", argv[0], err)
		return 127, fmt.Sprintf("cannot start %q: %v", argv[0], err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited: // too short to sample: no second interpreter for it
	case <-time.After(samplerDelay):
		stopSampling := ss.sample(cmd.Process.Pid)
		err = <-waited
		stopSampling()
	}
	ps := cmd.ProcessState
	if ps == nil {
		return 1, fmt.Sprintf("waiting for the command failed: %v", err)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), "killed by signal " + signalName(ws.Signal())
	}
	return ps.ExitCode(), ""
}

// samplerDelay is how long a command runs before its system metrics are sampled: most jobs
// of a test suite or a quick sweep end sooner, and starting a Python interpreter for each
// would cost more than the job.
const samplerDelay = 500 * time.Millisecond

// samplerWait bounds how long a job's end waits for the last system metrics to be delivered;
// what is left then stays in the job's spool, which the server stores when the job ends.
const samplerWait = 10 * time.Second

// sample runs the SDK's sampler of system metrics (foundations/_system.py) beside the command
// whose pid is given, and returns the function that stops it once the command has ended:
// closing its stdin says so. Sampling is never worth failing or delaying a job over: a sampler
// that does not start is left out, one that does not finish in time is killed.
func (ss *shimSpec) sample(pid int) (stop func()) {
	stop = func() {}
	if ss.SDKDir == "" {
		return
	}
	script := filepath.Join(ss.SDKDir, "foundations", "_system.py")
	if _, err := os.Stat(script); err != nil {
		return
	}
	cmd := exec.Command(ss.Python, "-I", "-S", script, strconv.Itoa(pid))
	cmd.Dir = ss.WorkDir
	in, err := cmd.StdinPipe()
	if err != nil {
		return
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	ss.as(cmd)
	if err := cmd.Start(); err != nil {
		in.Close()
		return
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return func() {
		in.Close()
		select {
		case <-done:
		case <-time.After(samplerWait):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}

// ensureEnv returns a virtualenv with the requirements installed, building it once per
// (interpreter, requirements content). Concurrent jobs with the same requirements wait for
// one build.
func ensureEnv(ss *shimSpec, reqPath string, out io.Writer) (string, error) {
	reqs, err := os.ReadFile(reqPath)
	if err != nil {
		return "", err
	}
	pyPath, err := exec.LookPath(ss.Python)
	if err != nil {
		return "", fmt.Errorf("python interpreter %q not found", ss.Python)
	}
	version, err := exec.Command(pyPath, "-c", "import sys; print(sys.version)").Output()
	if err != nil {
		return "", fmt.Errorf("run %s: %v", pyPath, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", pyPath, version)
	h.Write(reqs)
	key := hex.EncodeToString(h.Sum(nil))[:32]
	acct := executor.Self()
	if ss.Account != nil {
		acct = *ss.Account
	}
	dir, err := executor.EnvDir(ss.EnvsDir, acct, key)
	if err != nil {
		return "", err
	}
	marker := filepath.Join(dir, ".atlas-complete")
	if _, err := os.Stat(marker); err == nil {
		fmt.Fprintf(out, "Using cached environment for requirements.txt (%s): nothing to install.\n", key[:12])
		return dir, nil
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", err
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	if _, err := os.Stat(marker); err == nil { // another job built it while we waited
		fmt.Fprintf(out, "Using cached environment for requirements.txt (%s): nothing to install.\n", key[:12])
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if dir, err = executor.EnvDir(ss.EnvsDir, acct, key); err != nil { // the account's own, empty
		return "", err
	}
	fmt.Fprintf(out, "Installing user requirements from requirements.txt into a new cached environment (%s)...\n", key[:12])
	run := func(name string, args ...string) error {
		c := exec.Command(name, args...)
		c.Dir = ss.WorkDir
		c.Stdout, c.Stderr = out, out
		c.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1")
		ss.as(c) // installing a package runs its code: as the job's account, never the server's
		return c.Run()
	}
	if err := run(pyPath, "-m", "venv", "--clear", "--system-site-packages", dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("create virtualenv: %v", err)
	}
	if err := run(filepath.Join(dir, "bin", "python"), "-m", "pip", "install", "-r", reqPath); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("pip install -r requirements.txt: %v", err)
	}
	if err := os.WriteFile(marker, reqs, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// as makes cmd run as the job's account, with its HOME, when the job has one.
func (ss *shimSpec) as(cmd *exec.Cmd) {
	if ss.Account == nil {
		return
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(ss.Account.UID), Gid: uint32(ss.Account.GID), Groups: []uint32{}}}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env, "HOME="+ss.Home, "USER="+ss.User, "LOGNAME="+ss.User)
}
