// Package e2e holds black-box end-to-end tests: they build the real atlas-server and
// foundations binaries, start real servers on temporary FOUNDATIONS_HOMEs, and drive them with
// the real CLI and real Python jobs, observing only what a user can (output, exit codes, the
// REST API and files on disk).
//
// Nothing here sleeps to synchronise: servers are ready when they print their address, jobs
// are followed with the API's long poll and log streaming, and jobs that must wait for the test
// block on a "gate" file the test creates.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	// binDir holds atlas-server and foundations, built once by TestMain.
	binDir string
	// repoRoot is the module root; repoRoot/python is the SDK for execution-mode runs.
	repoRoot string
	// python3 is the interpreter on PATH, or "" when there is none.
	python3 string
)

func serverBin() string { return filepath.Join(binDir, "atlas-server") }
func cliBin() string    { return filepath.Join(binDir, "foundations") }

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = root
	python3, _ = exec.LookPath("python3")
	dir, err := os.MkdirTemp("", "atlas-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/atlas-server", "./cmd/atlas-shim", "./cmd/foundations")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the binaries failed: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// authPython is what to add to a server's arguments so that it can run its jobs: a root server
// with --auth runs process jobs as their users' accounts (or nobody), which cannot run an
// interpreter under /root, so it gets the system's.
func authPython(t *testing.T, args []string) []string {
	if slices.Contains(args, "--auth") && !slices.Contains(args, "--python") && os.Getuid() == 0 {
		return []string{"--python", systemPython(t)}
	}
	return nil
}

// systemPython is an interpreter every account may run: the system's, not one installed in
// root's home.
func systemPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "/usr/local/bin/python3"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no system python3 (/usr/bin/python3) for jobs that run as other accounts (CI=true, so this is a failure)")
	}
	t.Skip("no system python3 (/usr/bin/python3) for jobs that run as other accounts")
	return ""
}

// requirePython skips the test when python3 is missing, except on CI, where it fails.
func requirePython(t *testing.T) {
	t.Helper()
	if python3 != "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("python3 is not on PATH; the end-to-end tests need it (CI=true, so this is a failure)")
	}
	t.Skip("python3 is not on PATH; the end-to-end tests run real Python jobs")
}

// baseEnv is this process's environment without anything that would steer the binaries
// away from the test's own FOUNDATIONS_HOME and server.
func baseEnv(home string) []string {
	drop := map[string]bool{"PYTHONPATH": true, "NUM_WORKERS": true, "DISABLE_LOG_STREAMING": true,
		"CUDA_VISIBLE_DEVICES": true, "PROJECT_NAME": true}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if drop[k] || strings.HasPrefix(k, "FOUNDATIONS_") {
			continue
		}
		env = append(env, kv)
	}
	// Jobs sample no system metrics unless a test asks: tests count the series jobs have.
	return append(env, "FOUNDATIONS_HOME="+home, "FOUNDATIONS_SYSTEM_METRICS_INTERVAL=0")
}

// Stream collects a process's output and lets a test wait until some text shows up in it.
type Stream struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
	closed  bool
}

func newStream() *Stream { return &Stream{changed: make(chan struct{})} }

func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

func (s *Stream) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.changed)
	}
}

func (s *Stream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// WaitFor waits until the output contains sub. It fails when the stream ends first or after
// timeout (a limit for broken builds, not a synchronisation device).
func (s *Stream) WaitFor(sub string, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		text, closed, ch := s.buf.String(), s.closed, s.changed
		s.mu.Unlock()
		if strings.Contains(text, sub) {
			return nil
		}
		if closed {
			return fmt.Errorf("output ended without %q; it was:\n%s", sub, text)
		}
		select {
		case <-ch:
		case <-timer.C:
			return fmt.Errorf("no %q within %s; output so far:\n%s", sub, timeout, text)
		}
	}
}

// Server is a running atlas-server.
type Server struct {
	t      *testing.T
	Home   string
	URL    string
	Port   int
	cmd    *exec.Cmd
	Stdout *Stream
	Stderr *Stream
	done   chan struct{}
	http   *http.Client
}

var listeningRE = regexp.MustCompile(`Atlas server listening on (https?://\S+) \(GUI and API\)\. Ctrl-C to stop\.`)

// newHome returns a fresh FOUNDATIONS_HOME, in a folder other accounts may pass through (not
// t.TempDir, which is its user's only): a root server with --auth runs process jobs as their
// users' accounts, which must reach their working directories in it.
func newHome(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "atlas-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o711))
	home := filepath.Join(base, "foundations-home")
	require.NoError(t, os.MkdirAll(home, 0o755))
	return home
}

// startServer starts `atlas-server start --port 0 args...` on home and waits until it serves.
// The server is stopped, and any job process it left behind killed, when the test ends.
func startServer(t *testing.T, home string, args ...string) *Server {
	t.Helper()
	s, err := launchServer(t, home, args...)
	require.NoError(t, err)
	return s
}

func launchServer(t *testing.T, home string, args ...string) (*Server, error) {
	t.Helper()
	argv := []string{"start"}
	hasPort := false
	for _, a := range args {
		if a == "--port" || a == "-p" || strings.HasPrefix(a, "--port=") {
			hasPort = true
		}
	}
	if !hasPort {
		argv = append(argv, "--port", "0")
	}
	argv = append(argv, authPython(t, args)...)
	return runServer(t, home, exec.Command(serverBin(), append(argv, args...)...))
}

// runServer starts cmd, an atlas-server command line (maybe wrapped, e.g. in `ip netns exec`),
// and waits until it serves.
func runServer(t *testing.T, home string, cmd *exec.Cmd) (*Server, error) {
	t.Helper()
	cmd.Env = baseEnv(home)
	cmd.Dir = home
	s := &Server{t: t, Home: home, cmd: cmd, Stdout: newStream(), Stderr: newStream(), done: make(chan struct{}),
		http: &http.Client{Transport: &http.Transport{Proxy: nil}}}
	cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		s.Stdout.close()
		s.Stderr.close()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Stop()
		killJobProcesses(home)
	})
	if err := s.Stdout.WaitFor("Atlas server listening on", 60*time.Second); err != nil {
		return s, fmt.Errorf("atlas-server did not start: %v\nstderr:\n%s", err, s.Stderr.String())
	}
	m := listeningRE.FindStringSubmatch(s.Stdout.String())
	if m == nil {
		return s, fmt.Errorf("atlas-server's listening line is not as documented:\n%s", s.Stdout.String())
	}
	s.URL = m[1]
	u, err := url.Parse(s.URL)
	if err != nil {
		return s, err
	}
	s.Port, _ = strconv.Atoi(u.Port())
	return s, nil
}

// Exited reports whether the server process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// WaitExit waits for the server process to end and returns its exit code.
func (s *Server) WaitExit(timeout time.Duration) (int, error) {
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("atlas-server did not exit within %s", timeout)
	}
}

// Kill kills the server (kill -9) and waits for it to be gone. Jobs keep running.
func (s *Server) Kill(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGKILL))
	_, err := s.WaitExit(30 * time.Second)
	require.NoError(t, err)
}

// Stop stops the server as Ctrl-C does and waits for it to exit. Jobs keep running.
func (s *Server) Stop() {
	if s.Exited() {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	if _, err := s.WaitExit(30 * time.Second); err != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// killJobProcesses kills every process whose environment names this FOUNDATIONS_HOME: the
// job processes (and their supervisors) a test started, which outlive their server by design.
func killJobProcesses(home string) {
	want := []byte("FOUNDATIONS_HOME=" + home + "\x00")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, want...)) {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Result is how a command ended.
type Result struct {
	Stdout string
	Stderr string
	Code   int
}

func (r Result) String() string {
	return fmt.Sprintf("exit code %d\n--- stdout ---\n%s\n--- stderr ---\n%s", r.Code, r.Stdout, r.Stderr)
}

const commandTimeout = 3 * time.Minute

// runIn runs a program in dir with FOUNDATIONS_HOME=home plus extra environment.
func runIn(t *testing.T, home, dir string, extraEnv []string, name string, args ...string) Result {
	t.Helper()
	return runAs(t, nil, home, dir, extraEnv, name, args...)
}

// runAs runs a program in dir as another user (cred nil: as this process), with
// FOUNDATIONS_HOME=home plus extra environment.
func runAs(t *testing.T, cred *syscall.Credential, home, dir string, extraEnv []string, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(home), extraEnv...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		t.Fatalf("run %s %v: %v", name, args, err)
	}
	require.NoError(t, ctx.Err(), "%s %v did not finish within %s:\n%s", name, args, commandTimeout, res)
	return res
}

// cli runs `foundations args...` in dir with FOUNDATIONS_HOME=home.
func cli(t *testing.T, home, dir string, args ...string) Result {
	t.Helper()
	return runIn(t, home, dir, nil, cliBin(), args...)
}

// cliCombined runs foundations with stdout and stderr on one pipe, so that the order of
// progress lines (stderr) and job output (stdout) is kept.
func cliCombined(t *testing.T, home, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliBin(), args...)
	cmd.Dir = dir
	cmd.Env = baseEnv(home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run foundations %v: %v", args, err)
	}
	require.NoError(t, ctx.Err(), "foundations %v did not finish:\n%s", args, out.String())
	return out.String(), code
}

// Proc is a command running in the background.
type Proc struct {
	cmd    *exec.Cmd
	Stdout *Stream
	Stderr *Stream
	done   chan struct{}
}

// startCLI starts foundations in the background; the test waits on it with Wait.
func startCLI(t *testing.T, home, dir string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(cliBin(), args...)
	cmd.Dir = dir
	cmd.Env = baseEnv(home)
	p := &Proc{cmd: cmd, Stdout: newStream(), Stderr: newStream(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	require.NoError(t, cmd.Start())
	go func() {
		_ = cmd.Wait()
		p.Stdout.close()
		p.Stderr.close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Wait waits for the process to end and returns how it ended.
func (p *Proc) Wait(t *testing.T) Result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(commandTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("command did not end within %s:\nstdout:\n%s\nstderr:\n%s", commandTimeout, p.Stdout, p.Stderr)
	}
	return Result{Stdout: p.Stdout.String(), Stderr: p.Stderr.String(), Code: p.cmd.ProcessState.ExitCode()}
}

// python runs `python3 args...` in dir with the repository's SDK on PYTHONPATH, as a user who
// pip-installed it would.
func python(t *testing.T, home, dir string, extraEnv []string, args ...string) Result {
	t.Helper()
	env := append([]string{"PYTHONPATH=" + filepath.Join(repoRoot, "python")}, extraEnv...)
	return runIn(t, home, dir, env, python3, args...)
}

// writeFiles writes files (relative path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
}

// newProject makes a project folder with the given files and returns its path.
func newProject(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	writeFiles(t, dir, files)
	return dir
}

// gateScript is a job that prints a line, waits until the file named by its first argument
// exists, then prints another line. It gives up after two minutes so that a broken test
// never leaves it behind for long.
const gateScript = `import os, sys, time
gate = sys.argv[1]
print("job is waiting for its gate", flush=True)
deadline = time.monotonic() + 120
while not os.path.exists(gate):
    if time.monotonic() > deadline:
        print("gate never opened", flush=True)
        sys.exit(3)
    time.sleep(0.02)
print("job passed its gate", flush=True)
`

// gatePath returns a path for a gate file; openGate creates it. The gate's folder is one any
// account can see into, for jobs that run as their users' accounts (a server with --auth):
// it is under /tmp itself, since a test's TMPDIR may sit in a folder only its owner can enter.
func gatePath(t *testing.T) string {
	dir, err := os.MkdirTemp("/tmp", "atlas-gate-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "gate")
}

func openGate(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte("open"), 0o644))
}

var submittedRE = regexp.MustCompile(`Job submitted with ID '([^']+)'\.`)

// jobID returns the job id a submit printed.
func jobID(t *testing.T, output string) string {
	t.Helper()
	m := submittedRE.FindStringSubmatch(output)
	require.NotNil(t, m, "no \"Job submitted with ID\" line in:\n%s", output)
	return m[1]
}

// submitNoStream submits a job without streaming its logs and returns its id.
func (s *Server) submitNoStream(t *testing.T, dir string, args ...string) string {
	t.Helper()
	res := cli(t, s.Home, dir, append([]string{"submit", "--stream-job-logs", "False", "scheduler", "."}, args...)...)
	require.Equal(t, 0, res.Code, "submit failed:\n%s", res)
	return jobID(t, res.Stderr)
}

// Job is the part of the API's job that the tests look at.
type Job struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Project         string            `json:"project"`
	State           string            `json:"state"`
	Mode            string            `json:"mode"`
	Command         []string          `json:"command"`
	SubmittedParams map[string]any    `json:"submitted_params"`
	Params          map[string]any    `json:"params"`
	Tags            map[string]string `json:"tags"`
	NumGPUs         int               `json:"num_gpus"`
	GPUIDs          []string          `json:"gpu_ids"`
	BundleDigest    string            `json:"bundle_digest"`
	ArchiveDigest   string            `json:"archive_digest"`
	ExitCode        *int              `json:"exit_code"`
	Reason          string            `json:"reason"`
	ParentID        string            `json:"parent_id"`
	StartedAt       *time.Time        `json:"started_at"`
	FinishedAt      *time.Time        `json:"finished_at"`
	QueuePosition   int               `json:"queue_position"`
	WaitingReason   string            `json:"waiting_reason"`
	Metrics         []struct {
		Key   string `json:"key"`
		Last  any    `json:"last"`
		Count int    `json:"count"`
	} `json:"metrics"`
	Artifacts []struct {
		Key      string `json:"key"`
		Filename string `json:"filename"`
	} `json:"artifacts"`
}

// Metric returns the last value of a metric, or nil.
func (j *Job) Metric(key string) any {
	for _, m := range j.Metrics {
		if m.Key == key {
			return m.Last
		}
	}
	return nil
}

func finished(state string) bool {
	return state == "completed" || state == "failed" || state == "stopped"
}

// api sends a request and decodes a JSON answer into out (when not nil). It returns the status.
func (s *Server) api(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && resp.StatusCode/100 == 2 {
		require.NoError(t, json.Unmarshal(data, out), "%s %s answered %s", method, path, data)
	}
	return resp.StatusCode
}

// job returns a job from the API; it fails the test if the job does not exist.
func (s *Server) job(t *testing.T, id string) *Job {
	t.Helper()
	var j Job
	code := s.api(t, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &j)
	require.Equal(t, http.StatusOK, code, "GET job %s", id)
	return &j
}

// jobExists reports whether the API knows the job.
func (s *Server) jobExists(t *testing.T, id string) bool {
	t.Helper()
	code := s.api(t, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, nil)
	require.Contains(t, []int{http.StatusOK, http.StatusNotFound}, code)
	return code == http.StatusOK
}

// waitWhile long-polls the job until its state is none of states.
func (s *Server) waitWhile(t *testing.T, id string, states ...string) *Job {
	t.Helper()
	path := "/api/v1/jobs/" + url.PathEscape(id) + "?wait_while=" + strings.Join(states, ",") + "&timeout=30s"
	for range 6 { // at most three minutes
		var j Job
		code := s.api(t, http.MethodGet, path, nil, &j)
		require.Equal(t, http.StatusOK, code, "GET job %s", id)
		still := false
		for _, st := range states {
			still = still || j.State == st
		}
		if !still {
			return &j
		}
	}
	t.Fatalf("job %s is still %v after three minutes", id, states)
	return nil
}

// waitDone waits for a job to finish and returns it.
func (s *Server) waitDone(t *testing.T, id string) *Job {
	t.Helper()
	return s.waitWhile(t, id, "queued", "starting", "running", "stopping")
}

// waitRunning waits for a job to leave the queue; it must then be running.
func (s *Server) waitRunning(t *testing.T, id string) *Job {
	t.Helper()
	j := s.waitWhile(t, id, "queued", "starting")
	require.Equal(t, "running", j.State, "job %s did not run: %+v\nlogs:\n%s", id, j, s.logs(t, id))
	return j
}

// logs returns a job's output so far.
func (s *Server) logs(t *testing.T, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/jobs/"+url.PathEscape(id)+"/logs", nil)
	require.NoError(t, err)
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(data)
}

// waitLog follows a job's log until it contains sub, and returns the log so far.
func (s *Server) waitLog(t *testing.T, id, sub string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		s.URL+"/api/v1/jobs/"+url.PathEscape(id)+"/logs?follow=true", nil)
	require.NoError(t, err)
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got bytes.Buffer
	r := bufio.NewReader(resp.Body)
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if strings.Contains(got.String(), sub) {
			return got.String()
		}
		if err != nil {
			t.Fatalf("log of job %s ended (%v) without %q:\n%s", id, err, sub, got.String())
		}
	}
}

// jobs lists the jobs of a project ("" for all), oldest first.
func (s *Server) jobs(t *testing.T, project string) []Job {
	t.Helper()
	q := url.Values{"limit": {"0"}, "sort": {"created_at"}}
	if project != "" {
		q.Set("project", project)
	}
	var out struct {
		Jobs  []Job `json:"jobs"`
		Total int   `json:"total"`
	}
	code := s.api(t, http.MethodGet, "/api/v1/jobs?"+q.Encode(), nil, &out)
	require.Equal(t, http.StatusOK, code)
	return out.Jobs
}

// queue returns the ids of queued and running jobs.
func (s *Server) queue(t *testing.T) (queued, running []string) {
	t.Helper()
	var q struct {
		Queued  []Job `json:"queued"`
		Running []Job `json:"running"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/queue", nil, &q))
	for _, j := range q.Queued {
		queued = append(queued, j.ID)
	}
	for _, j := range q.Running {
		running = append(running, j.ID)
	}
	return queued, running
}

// blobPath is where the server keeps a blob under its FOUNDATIONS_HOME.
func (s *Server) blobPath(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return filepath.Join(s.Home, "blobs", "sha256", hex[:2], hex)
}

// logPath is where the server keeps a job's log under its FOUNDATIONS_HOME.
func (s *Server) logPath(id string) string {
	return filepath.Join(s.Home, "logs", "jobs", id+".log")
}

// freePort returns a TCP port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

// errorLines returns the lines of output that report an error.
func errorLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Error:") || strings.HasPrefix(l, "Foundations ERROR:") {
			lines = append(lines, l)
		}
	}
	return lines
}

// requireOneLineError checks a failed command: non-zero exit, and exactly one error line that
// contains every one of wants.
func requireOneLineError(t *testing.T, res Result, wants ...string) {
	t.Helper()
	require.NotEqual(t, 0, res.Code, "the command should fail:\n%s", res)
	lines := errorLines(res.Stderr)
	require.Len(t, lines, 1, "want one error line:\n%s", res)
	for _, w := range wants {
		require.Contains(t, lines[0], w, "error line lacks %q:\n%s", w, res)
	}
}

// knownBug skips a test that shows a product bug, so the suite stays green until it is fixed.
// E2E_RUN_KNOWN_BUGS=1 runs such tests anyway (they fail while the bug is there).
func knownBug(t *testing.T, description string) {
	t.Helper()
	if os.Getenv("E2E_RUN_KNOWN_BUGS") == "1" {
		return
	}
	t.Skip("known bug: " + description)
}
