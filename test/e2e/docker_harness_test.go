package e2e

// Helpers for the Docker executor's end-to-end tests (docker_test.go). They drive the Docker
// engine with the docker CLI, which honours DOCKER_HOST like atlas-server does, so the tests
// work with whatever engine the environment names. Everything a test creates in the engine
// (images, containers) carries a test-unique name or a label of the test's own
// FOUNDATIONS_HOME, and is removed when the test ends: the engine may be shared.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// workerImage is the default worker image atlas-server runs jobs in.
const workerImage = "atlas-ce/worker:latest"

var dockerProbe struct {
	once   sync.Once
	reason string // why Docker tests cannot run; "" when they can
}

// needDocker skips the test when no Docker engine is reachable or the worker image is
// missing, saying why; with CI=true it fails instead, since CI provisions both.
func needDocker(t *testing.T) {
	t.Helper()
	dockerProbe.once.Do(func() { dockerProbe.reason = probeDocker() })
	if dockerProbe.reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the Docker tests cannot run: %s (CI=true, so this is a failure)", dockerProbe.reason)
	}
	t.Skip("Docker tests skipped: " + dockerProbe.reason)
}

func probeDocker() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "the docker CLI is not on PATH"
	}
	engine := os.Getenv("DOCKER_HOST")
	if engine == "" {
		engine = "the default socket"
	}
	if out, err := docker("version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Sprintf("no Docker engine reachable at %s: %s", engine, firstLineOf(out, err))
	}
	if out, err := docker("image", "inspect", "--format", "{{.Id}}", workerImage); err != nil {
		return fmt.Sprintf("the worker image %s is missing (build it with `make worker-image`): %s", workerImage, firstLineOf(out, err))
	}
	return ""
}

func firstLineOf(out string, err error) string {
	s := strings.TrimSpace(out)
	if s == "" {
		s = err.Error()
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// docker runs the docker CLI and returns its combined output, trimmed.
func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	// The classic builder builds FROM local images without asking a registry.
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// mustDocker runs the docker CLI and fails the test if it fails.
func mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := docker(args...)
	require.NoError(t, err, "docker %s:\n%s", strings.Join(args, " "), out)
	return out
}

// uniqueName returns a Docker-safe name no other test (or test run) uses.
func uniqueName(kind string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "atlas-e2e-" + kind + "-" + hex.EncodeToString(b)
}

// homeLabel is the atlas.home label atlas-server puts on the containers of a
// FOUNDATIONS_HOME: the first 16 hex digits of the sha256 of its path.
func homeLabel(home string) string {
	sum := sha256.Sum256([]byte(home))
	return hex.EncodeToString(sum[:])[:16]
}

// removeHomeContainers removes every container labelled for home.
func removeHomeContainers(home string) {
	out, err := docker("ps", "-aq", "--filter", "label=atlas.home="+homeLabel(home))
	if err != nil || out == "" {
		return
	}
	_, _ = docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
}

// startDockerServer starts atlas-server with the Docker executor on home. The containers of
// its jobs are removed when the test ends, after the server stopped.
func startDockerServer(t *testing.T, home string, args ...string) *Server {
	t.Helper()
	t.Cleanup(func() { removeHomeContainers(home) })
	s := startServer(t, home, append([]string{"--executor", "docker"}, args...)...)
	require.Contains(t, s.Stdout.String(), "executor: docker (chosen with --executor docker", "atlas-server says which executor it chose")
	return s
}

// tagWorkerImage tags the worker image under a test-unique name and returns it.
func tagWorkerImage(t *testing.T, kind string) string {
	t.Helper()
	name := uniqueName(kind) + ":latest"
	mustDocker(t, "tag", workerImage, name)
	t.Cleanup(func() { _, _ = docker("rmi", name) })
	return name
}

// buildImage runs `docker build -t name dir` and removes the image when the test ends.
func buildImage(t *testing.T, dir, name string) {
	t.Helper()
	t.Cleanup(func() { _, _ = docker("rmi", "-f", name) })
	mustDocker(t, "build", "--quiet", "-t", name, dir)
}

// dockerTime is a time as docker events takes it.
func dockerTime(tm time.Time) string {
	return fmt.Sprintf("%d.%09d", tm.Unix(), tm.Nanosecond())
}

// containerEvents returns what docker events printed (one line per event, in format) for the
// containers of a job between since and now.
func containerEvents(t *testing.T, jobID string, since time.Time, event, format string) []string {
	t.Helper()
	out := mustDocker(t, "events", "--since", dockerTime(since), "--until", dockerTime(time.Now()),
		"--filter", "type=container", "--filter", "event="+event, "--filter", "label=atlas.job="+jobID,
		"--format", format)
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// jobContainers returns the ids of the containers labelled for a job.
func jobContainers(t *testing.T, jobID string) []string {
	t.Helper()
	return strings.Fields(mustDocker(t, "ps", "-aq", "--filter", "label=atlas.job="+jobID))
}

// runningContainers returns the ids of the running containers labelled for a job.
func runningContainers(t *testing.T, jobID string) []string {
	t.Helper()
	return strings.Fields(mustDocker(t, "ps", "-q", "--filter", "status=running", "--filter", "label=atlas.job="+jobID))
}

// waitContainerGone waits until the container of a job has been removed, following the
// engine's destroy events (including those that happened before the call).
func waitContainerGone(t *testing.T, jobID string, since time.Time) {
	t.Helper()
	if len(jobContainers(t, jobID)) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "events", "--since", dockerTime(since),
		"--filter", "type=container", "--filter", "event=destroy", "--filter", "label=atlas.job="+jobID,
		"--format", "{{.ID}}")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	if !bufio.NewScanner(stdout).Scan() {
		t.Fatalf("the container of job %s was not removed: %v", jobID, jobContainers(t, jobID))
	}
	require.Empty(t, jobContainers(t, jobID), "the container of job %s is gone", jobID)
}

// workDir is the working directory of a running job, mounted at /job/job_source in its
// container.
func (s *Server) workDir(id string) string {
	return filepath.Join(s.Home, "work", id)
}

// openWorkGate creates the file name in a running job's working directory: container jobs
// running gateScript with a relative gate path wait for it.
func (s *Server) openWorkGate(t *testing.T, id, name string) {
	t.Helper()
	openGate(t, filepath.Join(s.workDir(id), name))
}

// Record is the API's job with the fields the Docker tests look at beyond Job's.
type Record struct {
	Job
	User     string  `json:"user"`
	RunAs    string  `json:"run_as"`
	Executor string  `json:"executor"`
	RAMGB    float64 `json:"ram_gb"`
}

// record returns a job as the API describes it.
func (s *Server) record(t *testing.T, id string) *Record {
	t.Helper()
	var r Record
	code := s.api(t, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &r)
	require.Equal(t, http.StatusOK, code, "GET job %s", id)
	return &r
}

// artifact downloads an artifact of a job.
func (s *Server) artifact(t *testing.T, id, key string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		s.URL+"/api/v1/jobs/"+url.PathEscape(id)+"/artifacts/"+url.PathEscape(key), nil)
	require.NoError(t, err)
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "artifact %s of job %s: %s", key, id, buf.String())
	return buf.Bytes()
}

// fileOwner returns the uid and gid owning path (without following a last symlink).
func fileOwner(t *testing.T, path string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

// chownTree gives a tree to uid:gid.
func chownTree(t *testing.T, root string, uid, gid int) {
	t.Helper()
	require.NoError(t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}))
}

var shareBinariesOnce sync.Once

// shareBinaries lets other local users run the test's atlas-server and foundations binaries
// (their directory is private to the test's user).
func shareBinaries(t *testing.T) {
	t.Helper()
	var err error
	shareBinariesOnce.Do(func() { err = os.Chmod(binDir, 0o755) })
	require.NoError(t, err)
}

// startServerEnv is startServer with extra environment (later entries win) and a working
// directory of the test's choosing; the server's containers are removed at the end.
func startServerEnv(t *testing.T, home, dir string, extraEnv []string, args ...string) *Server {
	t.Helper()
	t.Cleanup(func() { removeHomeContainers(home) })
	cmd := exec.Command(serverBin(), append([]string{"start", "--port", "0"}, args...)...)
	cmd.Env = append(baseEnv(home), extraEnv...)
	cmd.Dir = dir
	s := &Server{t: t, Home: home, cmd: cmd, Stdout: newStream(), Stderr: newStream(), done: make(chan struct{}),
		http: &http.Client{Transport: &http.Transport{Proxy: nil}}}
	cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
	require.NoError(t, cmd.Start())
	go func() {
		_ = cmd.Wait()
		s.Stdout.close()
		s.Stderr.close()
		close(s.done)
	}()
	t.Cleanup(s.Stop)
	require.NoError(t, s.Stdout.WaitFor("Atlas server listening on", time.Minute), "stderr:\n%s", s.Stderr)
	m := listeningRE.FindStringSubmatch(s.Stdout.String())
	require.NotNil(t, m, s.Stdout.String())
	s.URL = m[1]
	u, err := url.Parse(s.URL)
	require.NoError(t, err)
	s.Port, _ = strconv.Atoi(u.Port())
	return s
}

// startSharedHomeServer starts a Docker server whose FOUNDATIONS_HOME another local user can
// read (t.TempDir is private to the test's user), and returns it with the base directory.
func startSharedHomeServer(t *testing.T) (*Server, string) {
	t.Helper()
	base, err := os.MkdirTemp("", "atlas-e2e-docker-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	home := filepath.Join(base, "home")
	require.NoError(t, os.MkdirAll(home, 0o755))
	return startDockerServer(t, home), base
}

// userPython returns a python3 that the user cred can run and the environment that puts the
// server's extracted SDK on its path (as a user who pip-installed it would have).
func userPython(t *testing.T, cred *syscall.Credential, s *Server) (string, []string) {
	t.Helper()
	py := ""
	for _, cand := range []string{python3, "/usr/bin/python3"} {
		probe := exec.Command(cand, "-c", "pass")
		probe.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if cand != "" && probe.Run() == nil {
			py = cand
			break
		}
	}
	if py == "" {
		t.Skipf("no python3 that uid %d can run", cred.Uid)
	}
	sdks, err := filepath.Glob(filepath.Join(s.Home, "sdk", "*", "foundations"))
	require.NoError(t, err)
	require.Len(t, sdks, 1, "the server extracted its SDK")
	return py, []string{"PYTHONPATH=" + filepath.Dir(sdks[0])}
}
