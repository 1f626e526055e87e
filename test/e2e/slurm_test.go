package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/test/clusters"
)

// slurmServer is atlas-server with its jobs on the test machine's Slurm cluster, run as the
// cluster's test account (the server is root): a scratch directory and an environment cache
// every account may write to stand for a cluster's shared filesystem, and the compute node
// reaches the server on loopback.
type slurmServer struct {
	*Server
	sl           *clusters.Slurm
	installation string
	shared       string // scratch/ and envs/
	workers      int
}

// startSlurmServer starts a server whose slurm: section has extra (indented YAML) besides
// what every test needs (python: in extra replaces the system's).
func startSlurmServer(t *testing.T, workers int, extra string) *slurmServer {
	t.Helper()
	requirePython(t)
	sl := clusters.NeedSlurm(t)
	py := systemPython(t)
	shared := sl.SharedDir(t, "scratch", "envs")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ss := &slurmServer{sl: sl, installation: "e2e-" + hex.EncodeToString(b), shared: shared, workers: workers}
	home := newHome(t)
	port := freePort(t)
	cfg := fmt.Sprintf(`executor: slurm
stop_grace: 5s
slurm:
  partition: %s
  scheduler_url: http://127.0.0.1:%d
  scratch_dir: %s
  env_cache_dir: %s
  run_as: %s
  installation: %s
  poll_interval: 250ms
%s`, sl.Partition, port, filepath.Join(shared, "scratch"), filepath.Join(shared, "envs"), sl.User.Username,
		ss.installation, extra)
	if !strings.Contains(extra, "  python: ") {
		cfg += "  python: " + py + "\n"
	}
	require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte(cfg), 0o600))
	ss.Server = startServerEnv(t, home, home, nil, "--executor", "slurm", "--port", strconv.Itoa(port), "--workers", strconv.Itoa(workers))
	require.Contains(t, ss.Stdout.String(), "executor: slurm (", ss.Stdout.String())
	t.Cleanup(func() { ss.cancelAll(t) })
	return ss
}

// startAgain starts the server again, on the same port, after kill.
func (ss *slurmServer) startAgain(t *testing.T) {
	t.Helper()
	ss.Server = startServerEnv(t, ss.Home, ss.Home, nil, "--executor", "slurm", "--port", strconv.Itoa(ss.Port), "--workers", strconv.Itoa(ss.workers))
}

// slurmJob is the Slurm job id of an Atlas job, from the worker the API shows.
func (ss *slurmServer) slurmJob(t *testing.T, id string) string {
	t.Helper()
	w := jobWorker(t, ss.Server, id)
	n, ok := strings.CutPrefix(w, "Slurm job ")
	require.True(t, ok, "job %s runs on %q", id, w)
	return n
}

// live lists this installation's Slurm jobs that have not ended.
func (ss *slurmServer) live(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("squeue", "--noheader", "--name="+ss.installation, "--format=%i").CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.Fields(string(out))
}

// cancelAll cancels what the test left on the cluster.
func (ss *slurmServer) cancelAll(t *testing.T) {
	if out, err := exec.Command("scancel", "--name="+ss.installation).CombinedOutput(); err != nil {
		t.Logf("scancel --name=%s: %v: %s", ss.installation, err, out)
	}
}

// ramFor is a job's ram: in GB such that two such jobs never fit on the node together.
func ramFor(s *clusters.Slurm) string {
	return strconv.FormatFloat(math.Floor(float64(s.MemoryMB)*0.6/1024*10)/10, 'f', -1, 64)
}

// The seed's walkthrough with jobs on Slurm: submit with streaming logs, params, metrics, tags
// and artifacts, get logs, get job (the archive), stop, delete and clear-queue, with Slurm's
// own reason for a job it cannot start yet.
func TestSlurmWalkthrough(t *testing.T) {
	t.Parallel()
	s := startSlurmServer(t, 3, "")
	id := walkthroughOn(t, s.Server, "slurm")
	slurmID := s.slurmJob(t, id)
	require.Equal(t, clusters.Accounting{State: "COMPLETED", ExitCode: "0:0", User: s.sl.User.Username},
		s.sl.Finished(t, slurmID, time.Minute), "the batch job ran as run_as, not as root")

	require.NoFileExists(t, filepath.Join(s.shared, "scratch", "atlas-"+slurmID+".out"), "its Slurm output goes once the end is recorded")
	require.NoDirExists(t, filepath.Join(s.shared, "scratch", "atlas-"+slurmID), "and so does its working directory")

	// A running job streams its logs, shows them to get logs, and stops with SIGTERM.
	gate := gatePath(t)
	liveProj := newProject(t, "live", map[string]string{"gate.py": gateScript})
	p := startCLI(t, s.Home, liveProj, "submit", "scheduler", ".", "gate.py", gate)
	require.NoError(t, p.Stdout.WaitFor("job is waiting for its gate", 3*time.Minute), p.Stderr.String())
	liveID := jobID(t, p.Stderr.String())
	require.Equal(t, "running", s.waitWhile(t, liveID, "starting").State, "the job runs while it waits at its gate")
	res := cli(t, s.Home, liveProj, "get", "logs", "scheduler", liveID)
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "job is waiting for its gate")
	res = cli(t, s.Home, liveProj, "stop", "job", "scheduler", liveID)
	require.Equal(t, 0, res.Code, res.String())
	require.Regexp(t, `Stopped job `+liveID+`: exited after SIGTERM in [0-9.]+ s`, res.Stdout)
	p.Wait(t)
	require.Equal(t, "stopped", s.job(t, liveID).State)
	res = cli(t, s.Home, liveProj, "delete", "job", "scheduler", liveID)
	require.Equal(t, 0, res.Code, res.String())
	require.False(t, s.jobExists(t, liveID))

	// Jobs that each ask for more than half the node's memory: one runs, the next two are
	// handed to Slurm and wait there with its reason, a fourth waits in Atlas's queue.
	// clear-queue removes that one and stops the two Slurm has not started.
	ram := ramFor(s.sl)
	hogGate := gatePath(t)
	big := newProject(t, "big", map[string]string{"gate.py": gateScript, "job.config.yaml": "ram: " + ram + "\n"})
	hog := s.submitNoStream(t, big, "gate.py", hogGate)
	s.waitLog(t, hog, "job is waiting for its gate")
	pending := []string{s.submitNoStream(t, big, "gate.py", hogGate), s.submitNoStream(t, big, "gate.py", hogGate)}
	queued := s.submitNoStream(t, big, "gate.py", hogGate)
	for _, id := range pending {
		require.Equal(t, "starting", s.waitWhile(t, id, "queued").State)
		require.Eventually(t, func() bool {
			why := s.job(t, id).WaitingReason
			return strings.HasPrefix(why, "Slurm: Resources") || strings.HasPrefix(why, "Slurm: Priority")
		}, time.Minute, 100*time.Millisecond, "Slurm's reason: %q", s.job(t, id).WaitingReason)
	}
	res = cli(t, s.Home, big, "get", "queue", "scheduler")
	require.Equal(t, 0, res.Code, res.String())
	require.Regexp(t, `(?m)^`+pending[0]+`\s.*not running yet: Slurm: (Resources \(the resources it asks for are in use\)|Priority)`, res.Stdout)
	require.Regexp(t, `(?m)^1\s+`+queued+`\s.*waiting for a free worker \(3 of 3 busy\)$`, res.Stdout)
	clearQueueOn(t, s.Server, big, pending, queued)
	for _, id := range pending {
		require.Equal(t, "CANCELLED", s.sl.Finished(t, s.slurmJob(t, id), time.Minute).State)
	}
	openGate(t, hogGate)
	require.Equal(t, "completed", s.waitDone(t, hog).State)
	require.Eventually(t, func() bool { return len(s.live(t)) == 0 }, time.Minute, 100*time.Millisecond)
}

// A server whose slurm: section the cluster cannot honour does not start, and says why in one
// line; neither does one whose jobs would run as root.
func TestSlurmConfigErrors(t *testing.T) {
	t.Parallel()
	sl := clusters.NeedSlurm(t)
	for cfg, want := range map[string]string{
		"slurm:\n  scheduler_url: http://127.0.0.1:5555\n  partition: nope\n": "--executor slurm: slurm.partition: the cluster has no partition nope (it has " + sl.Partition,
		"slurm:\n  scheduler_url: http://127.0.0.1:5555\n  run_as: root\n":    "slurm: want slurm.run_as: an account that is not root",
		"slurm:\n  partition: " + sl.Partition + "\n":                         "want slurm.scheduler_url: how compute nodes reach this server",
	} {
		home := newHome(t)
		require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte("executor: slurm\n"+cfg), 0o600))
		res := runIn(t, home, t.TempDir(), nil, serverBin(), "start", "--executor", "slurm", "--port", "0")
		requireOneLineError(t, res, want)
	}
}

// A hyperparameter search of 10 jobs from the SDK, 4 at a time on the cluster: every job runs
// once with its own params, and the bundle is stored once.
func TestSlurmSearch(t *testing.T) {
	t.Parallel()
	s := startSlurmServer(t, 4, "")
	slurmJobs := map[string]bool{}
	for _, id := range searchOn(t, s.Server) {
		slurmJobs[s.slurmJob(t, id)] = true
	}
	require.Len(t, slurmJobs, 10, "one batch job each")
}

// What goes wrong on a cluster ends the job with Slurm's reason: over its memory limit, over
// its time limit, cancelled by an administrator behind Atlas's back, refused by sbatch.
func TestSlurmFailures(t *testing.T) {
	t.Parallel()
	s := startSlurmServer(t, 4, "  time_limit: 1m\n")
	oom := newProject(t, "oom", map[string]string{"job.config.yaml": "ram: 0.1\n", "main.py": `x = []
for i in range(100):
    x.append(bytearray(20 * 1024 * 1024))
    print("allocated", (i + 1) * 20, "MB", flush=True)
`})
	slow := newProject(t, "slow", map[string]string{"main.py": "import time\nprint('started', flush=True)\ntime.sleep(600)\n"})
	gate := gatePath(t)
	gated := newProject(t, "gated", map[string]string{"gate.py": gateScript})
	gpu := newProject(t, "gpu", map[string]string{"main.py": "print(1)\n", "job.config.yaml": "num_gpus: 1\n"})
	oomID, slowID, cancelled, gpuID := s.submitNoStream(t, oom, "main.py"), s.submitNoStream(t, slow, "main.py"),
		s.submitNoStream(t, gated, "gate.py", gate), s.submitNoStream(t, gpu, "main.py")

	j := s.waitDone(t, oomID)
	require.Equal(t, "failed", j.State)
	require.Equal(t, "killed: out of memory (the job's limit is ram: 0.1 GB; Slurm: OUT_OF_MEMORY)", j.Reason)
	require.Contains(t, s.logs(t, oomID), "allocated 20 MB", "its output up to the kill")

	j = s.waitDone(t, gpuID)
	require.Equal(t, "failed", j.State)
	require.Equal(t, "submit to Slurm: sbatch: Invalid generic resource (gres) specification", j.Reason,
		"the cluster has no GPUs: sbatch refuses the job")

	s.waitLog(t, cancelled, "job is waiting for its gate")
	out, err := exec.Command("scancel", s.slurmJob(t, cancelled)).CombinedOutput()
	require.NoError(t, err, string(out))
	j = s.waitDone(t, cancelled)
	require.Equal(t, "failed", j.State)
	require.Equal(t, "cancelled in Slurm by root (scancel "+s.slurmJob(t, cancelled)+")", j.Reason)

	s.waitLog(t, slowID, "started")
	j = s.waitDone(t, slowID)
	require.Equal(t, "failed", j.State)
	require.Equal(t, "killed: it ran out of time (the time limit is slurm.time_limit: 1m0s; Slurm: TIMEOUT)", j.Reason)
}

// A node whose Python cannot run fails the job with the shell's own words, read from the
// batch job's output file, since the in-job side never ran to ship them.
func TestSlurmNoPythonOnTheNode(t *testing.T) {
	t.Parallel()
	s := startSlurmServer(t, 1, "  python: /usr/bin/no-such-python3\n")
	proj := newProject(t, "nopython", map[string]string{"main.py": "print(1)\n"})
	id := s.submitNoStream(t, proj, "main.py")
	j := s.waitDone(t, id)
	require.Equal(t, "failed", j.State)
	require.Equal(t, 127, *j.ExitCode)
	require.Regexp(t, `^exited with code 127: .*/usr/bin/no-such-python3: No such file or directory$`, j.Reason)
	require.Contains(t, s.logs(t, id), "/usr/bin/no-such-python3: No such file or directory")
}

// kill -9 of the server while jobs run on the cluster: they go on, one is cancelled by an
// administrator while the server is down, and after the restart every job ends with the truth:
// that one as sacct says, the others with all their output and values, once, what they printed
// while the server was down too. A Slurm job of this installation that no Atlas job owns is
// cancelled.
func TestSlurmRestart(t *testing.T) {
	t.Parallel()
	s := startSlurmServer(t, 4, "")
	gate := gatePath(t)
	gateDir := filepath.Dir(gate)
	proj := newProject(t, "restart", map[string]string{"gate.py": gateScript, "main.py": halvesMain})
	running := []string{s.submitNoStream(t, proj, "main.py", gate), s.submitNoStream(t, proj, "main.py", gate)}
	quick := s.submitNoStream(t, proj, "gate.py", filepath.Join(gateDir, "quick"))
	doomed := s.submitNoStream(t, proj, "gate.py", filepath.Join(gateDir, "never"))
	for _, id := range running {
		s.waitLog(t, id, "first half delivered")
	}
	s.waitLog(t, quick, "job is waiting for its gate")
	s.waitLog(t, doomed, "job is waiting for its gate")
	doomedSlurm := s.slurmJob(t, doomed)

	// A Slurm job of this installation that no Atlas job owns.
	orphan := strings.TrimSpace(mustRun(t, "sbatch", "--parsable", "--partition="+s.sl.Partition, "--job-name="+s.installation,
		"--comment=atlas:"+s.installation+":gone", "--output=/dev/null", "--wrap", "sleep 600"))

	s.Kill(t)
	openGate(t, filepath.Join(gateDir, "quick"))
	mustRun(t, "scancel", doomedSlurm)
	require.Equal(t, "CANCELLED", s.sl.Finished(t, doomedSlurm, time.Minute).State)
	s.startAgain(t)
	require.NoError(t, s.Stderr.WaitFor("Slurm job "+orphan, time.Minute), "a log line for the orphan")
	require.Equal(t, "CANCELLED", s.sl.Finished(t, orphan, time.Minute).State, "the orphan is cancelled")
	openGate(t, gate)

	j := s.waitDone(t, quick)
	require.Equal(t, "completed", j.State, j.Reason)
	require.Contains(t, s.logs(t, quick), "job passed its gate", "what it printed while the server was down")
	j = s.waitDone(t, doomed)
	require.Equal(t, "failed", j.State)
	require.Equal(t, "cancelled in Slurm by root (scancel "+doomedSlurm+")", j.Reason)
	for _, id := range running {
		requireBothHalves(t, s.Server, id)
	}
}

// mustRun runs a command and returns its output.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
	return string(out)
}
