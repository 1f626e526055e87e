package slurm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// These are unit tests of what the executor asks of Slurm and how it reads the answers,
// against a fake of Slurm's commands. How jobs really run on a cluster is tested against a
// real one: contract_test.go here, and test/e2e.

// fakeSlurm answers Slurm's commands from what the test says the cluster holds.
type fakeSlurm struct {
	mu     sync.Mutex
	calls  []Command
	squeue string // squeue's output
	sacct  string // sacct's output
	err    map[string]error
}

func (f *fakeSlurm) run(_ context.Context, c Command) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	if err := f.err[c.Name]; err != nil {
		return "", err
	}
	switch c.Name {
	case "sbatch":
		return "4242\n", nil
	case "squeue":
		return f.squeue, nil
	case "sacct":
		return f.sacct, nil
	}
	return "", nil
}

func (f *fakeSlurm) set(squeue, sacct string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.squeue, f.sacct = squeue, sacct
}

// ran returns the commands named name that ran, as "name arg arg...".
func (f *fakeSlurm) ran(name string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.Name == name {
			out = append(out, strings.Join(append([]string{c.Name}, c.Args...), " "))
		}
	}
	return out
}

func newTestExecutor(t *testing.T, cfg Config) (*Executor, *fakeSlurm) {
	t.Helper()
	f := &fakeSlurm{err: map[string]error{}}
	if cfg.Installation == "" {
		cfg.Installation = "lab-a"
	}
	cfg.SchedulerURL, cfg.Run = "http://login1:5555", f.run
	return newExecutor(cfg), f
}

func spec(j *atlas.Job) *executor.Spec {
	return &executor.Spec{Job: j, Env: []string{"FOUNDATIONS_JOB_ID=" + j.ID, "FOUNDATIONS_TOKEN=job-secret",
		"FOUNDATIONS_HOME=/srv/atlas", "FOUNDATIONS_SCHEDULER_URL=http+unix://%2Fsrv%2Fatlas%2Fapi.sock",
		"SEED=it's 7"}}
}

func TestTheBatchJobAsksForWhatTheAtlasJobDoes(t *testing.T) {
	e, _ := newTestExecutor(t, Config{Partition: "gpu", Account: "ml-lab", QOS: "short", TimeLimit: 90*time.Minute + time.Second,
		Sbatch: []string{"--constraint=a100", "--nodes=1"}, Setup: "module load python/3.11\n", Python: "/opt/py/bin/python3",
		ScratchDir: "/scratch/atlas", EnvCacheDir: "/shared/envs"})
	c := e.submission(spec(&atlas.Job{ID: "a1", Project: "p", User: "alice", RAMGB: 0.5, NumGPUs: 2}), nil)
	require.Equal(t, "sbatch", c.Name)
	require.Equal(t, []string{"--parsable", "--job-name=lab-a", "--comment=atlas:lab-a:a1",
		"--output=/scratch/atlas/atlas-%j.out", "--chdir=/scratch/atlas", "--no-requeue", "--export=PATH,HOME,USER,LOGNAME",
		"--partition=gpu", "--account=ml-lab", "--qos=short", "--time=91", "--mem=512M", "--gpus=2"}, c.Args)
	for _, a := range c.Args {
		require.NotContains(t, a, "job-secret", "the token is not on sbatch's command line, where any user of the machine sees it")
	}
	require.Contains(t, c.Env, "SLURM_UMASK=0077", "the job's output file is its account's alone")
	for _, kv := range c.Env {
		k, _, _ := strings.Cut(kv, "=")
		require.Contains(t, []string{"PATH", "HOME", "USER", "LOGNAME", "SLURM_UMASK", "SLURM_CONF"}, k, "none of the server's environment")
	}

	script := c.Stdin
	require.True(t, strings.HasPrefix(script, "#!/bin/bash\n#SBATCH --constraint=a100\n#SBATCH --nodes=1\n"), script)
	require.Contains(t, script, "\nmodule load python/3.11\n")
	require.Contains(t, script, "\nexport FOUNDATIONS_TOKEN='job-secret'\n")
	require.Contains(t, script, `export SEED='it'\''s 7'`)
	require.Contains(t, script, "export FOUNDATIONS_SCHEDULER_URL='http://login1:5555'", "nodes reach the server over the network")
	require.NotContains(t, script, "FOUNDATIONS_HOME", "a node has none of the server's files")
	require.NotContains(t, script, "api.sock")
	require.Contains(t, script, "ATLAS_ENV_DIR='/shared/envs'/$(id -u)", "one environment cache per account")
	require.Contains(t, script, "\nexec /opt/py/bin/python3 -c '")
	if bash, err := exec.LookPath("bash"); err == nil {
		out, err := exec.Command(bash, "-n", "-c", script).CombinedOutput()
		require.NoError(t, err, "the script is valid shell: %s", out)
	}

	e, _ = newTestExecutor(t, Config{GPUGres: "gpu:a100"})
	c = e.submission(spec(&atlas.Job{ID: "g", NumGPUs: 3}), nil)
	require.Contains(t, c.Args, "--gres=gpu:a100:3")
	require.Contains(t, c.Args, "--output=/tmp/atlas-%j.out", "scratch_dir defaults to /tmp")
	for _, a := range c.Args {
		require.False(t, strings.HasPrefix(a, "--time") || strings.HasPrefix(a, "--mem") || strings.HasPrefix(a, "--partition"),
			"unset: the cluster's defaults (%s)", a)
	}
}

// The batch script, run by bash with stand-ins for the node's Python, exports the job's
// environment and runs the in-job side in a folder of its own.
func TestTheBatchScriptRunsTheInJobSide(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	fakePython := filepath.Join(dir, "python")
	require.NoError(t, os.WriteFile(fakePython, []byte("#!/bin/sh\npwd\nenv | grep -E '^(FOUNDATIONS|ATLAS|SEED|TMPDIR)' | sort\n"), 0o755))
	e, _ := newTestExecutor(t, Config{ScratchDir: filepath.Join(dir, "scratch"), Python: fakePython})
	require.NoError(t, os.Mkdir(filepath.Join(dir, "scratch"), 0o755))
	cmd := exec.Command(bash, "-c", e.script(spec(&atlas.Job{ID: "b1"})))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "SLURM_JOB_ID=77"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	scratch := filepath.Join(dir, "scratch", "atlas-77")
	require.Equal(t, scratch+"\n"+strings.Join([]string{
		"ATLAS_SCRATCH=" + scratch, "ATLAS_SPOOL_DIR=" + scratch + "/spool", "ATLAS_WORK_DIR=" + scratch + "/work",
		"FOUNDATIONS_JOB_ID=b1", "FOUNDATIONS_SCHEDULER_URL=http://login1:5555", "FOUNDATIONS_TOKEN=job-secret",
		"SEED=it's 7", "TMPDIR=" + scratch + "/tmp"}, "\n")+"\n", string(out))
	fi, err := os.Stat(scratch)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "the job's folder is its account's alone")
}

func TestJobsRunAsTheirAccountsAndNeverAsRoot(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no account nobody")
	}
	e, _ := newTestExecutor(t, Config{})
	a, err := e.account(&atlas.Job{RunAs: nobody.Uid + ":" + nobody.Gid})
	require.NoError(t, err)
	require.Nil(t, a, "a server that is not root submits as itself")

	e.runAs = &account{Name: "atlas-jobs", UID: 999, GID: 999}
	for _, runAs := range []string{"", "0:0", "4000123:4000123"} {
		a, err = e.account(&atlas.Job{RunAs: runAs})
		require.NoError(t, err)
		require.Equal(t, "atlas-jobs", a.Name, "a job of root, or of no account here, runs as run_as (%q)", runAs)
	}
	a, err = e.account(&atlas.Job{RunAs: nobody.Uid + ":" + nobody.Gid})
	require.NoError(t, err)
	require.Equal(t, "nobody", a.Name, "a job runs as the account that submitted it")
	c := e.submission(spec(&atlas.Job{ID: "n"}), a)
	require.Equal(t, a, c.As)
	require.Contains(t, c.Env, "USER=nobody")
}

func TestAdmitRefusesContainers(t *testing.T) {
	e, _ := newTestExecutor(t, Config{})
	require.NoError(t, e.Admit(&atlas.Job{Worker: atlas.Worker{Environment: map[string]string{"OMP_NUM_THREADS": "4"}}}))
	require.ErrorContains(t, e.Admit(&atlas.Job{Worker: atlas.Worker{Image: "pytorch:2"}}), "worker.image: jobs on Slurm run without containers")
	require.ErrorContains(t, e.Admit(&atlas.Job{Worker: atlas.Worker{Volumes: map[string]atlas.Volume{"/data": {Bind: "/d"}}}}),
		"worker.volumes: /data: jobs on Slurm see the cluster's filesystems as they are")
	require.ErrorContains(t, e.Admit(&atlas.Job{Worker: atlas.Worker{Environment: map[string]string{"A-B": "1"}}}),
		`"A-B" is not a variable name`)
}

func TestSubmitErrorsAndJobIDs(t *testing.T) {
	e, f := newTestExecutor(t, Config{})
	h, err := e.Start(t.Context(), spec(&atlas.Job{ID: "s"}))
	require.NoError(t, err)
	require.JSONEq(t, `{"worker":"Slurm job 4242","slurm_job":"4242"}`, h.RunInfo())
	require.Equal(t, "submitted to Slurm as job 4242", h.(executor.Placer).Pending())

	f.err["sbatch"] = errors.New(said("sbatch", "sbatch: error: Memory specification can not be satisfied\n"+
		"sbatch: error: Batch job submission failed: Requested node configuration is not available\n"))
	_, err = e.Start(t.Context(), spec(&atlas.Job{ID: "t", RAMGB: 1000}))
	require.EqualError(t, err, "submit to Slurm: sbatch: Memory specification can not be satisfied; "+
		"Batch job submission failed: Requested node configuration is not available")
}

// What squeue and sacct say becomes each job's pending reason, placement and end, from one
// squeue call per round for all jobs and one sacct call for those that ended.
func TestOneRoundReadsEveryJob(t *testing.T) {
	e, f := newTestExecutor(t, Config{TimeLimit: time.Minute})
	jobs := map[string]*handle{}
	for _, id := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"} {
		jobs[id] = e.track(id, &atlas.Job{ID: "job" + id, RAMGB: 0.1}, time.Time{})
	}
	jobs["9"].stopped.Store(true) // Atlas cancelled it before it started
	start := time.Date(2026, 3, 1, 12, 0, 5, 0, time.Local)
	f.set(`1|PENDING|Resources|N/A||0
2|PENDING|QOSMaxGRESPerUser|N/A||0
3|RUNNING|None|2026-03-01T12:00:05|vm|0
4|COMPLETED|None|2026-03-01T12:00:05|vm|0
5|FAILED|NonZeroExitCode|2026-03-01T12:00:05|vm|36608
6|OUT_OF_MEMORY|OutOfMemory|2026-03-01T12:00:05|vm|0
7|TIMEOUT|TimeLimit|2026-03-01T12:00:05|vm|0
8|CANCELLED|None|2026-03-01T12:00:05|vm|0
9|CANCELLED|BeginTime|2026-03-01T12:00:05||0
10|NODE_FAIL|NodeDown|2026-03-01T12:00:05|vm|0
`, `4|COMPLETED|0:0|2026-03-01T12:00:05|vm
5|FAILED|15:0|2026-03-01T12:00:05|vm
6|OUT_OF_MEMORY|0:125|2026-03-01T12:00:05|vm
7|TIMEOUT|0:0|2026-03-01T12:00:05|vm
8|CANCELLED by 0|0:0|2026-03-01T12:00:05|vm
9|CANCELLED by 0|0:0|2026-03-01T12:00:05|None assigned
10|NODE_FAIL|0:0|2026-03-01T12:00:05|vm
12|FAILED|3:0|2026-03-01T12:00:05|vm
`)
	require.NoError(t, e.round())
	squeue, sacct := f.ran("squeue"), f.ran("sacct")
	require.Len(t, squeue, 1, "one squeue for all jobs")
	require.Contains(t, squeue[0], "--states=all")
	require.Len(t, sacct, 1, "one sacct for the ones squeue says too little about")
	_, asked, _ := strings.Cut(sacct[0], "--jobs=")
	asked, _, _ = strings.Cut(asked, " ")
	require.ElementsMatch(t, []string{"8", "9", "11", "12"}, strings.Split(asked, ","),
		"sacct is asked who cancelled a job, and about jobs squeue no longer shows")

	require.Equal(t, "Slurm: Resources (the resources it asks for are in use)", jobs["1"].Pending())
	require.Equal(t, "Slurm: QOSMaxGRESPerUser (a limit of its QOS or account)", jobs["2"].Pending())
	require.False(t, jobs["1"].IsPlaced())
	require.True(t, jobs["3"].IsPlaced())
	require.Empty(t, jobs["3"].Pending())
	require.Equal(t, start, jobs["3"].Since(), "running since Slurm started it")

	res := func(id string) executor.Result {
		t.Helper()
		select {
		case <-jobs[id].ended:
			return jobs[id].result
		default:
			t.Fatalf("job %s has not ended", id)
			return executor.Result{}
		}
	}
	require.Equal(t, executor.Result{ExitCode: 0}, res("4"))
	require.Equal(t, start, jobs["4"].Since(), "an ended job's start is recorded first")
	require.Equal(t, 143, res("5").ExitCode, "squeue's exit status: sacct says 15 for 143")
	require.Empty(t, res("5").Reason, "the job's own last line says why")
	require.Equal(t, "killed: out of memory (the job's limit is ram: 0.1 GB; Slurm: OUT_OF_MEMORY)", res("6").Reason)
	require.NotZero(t, res("6").ExitCode)
	require.Equal(t, "killed: it ran out of time (the time limit is slurm.time_limit: 1m0s; Slurm: TIMEOUT)", res("7").Reason)
	require.Equal(t, "cancelled in Slurm by root (scancel 8)", res("8").Reason, "cancelled behind Atlas's back")
	require.False(t, res("8").Lost)
	require.Equal(t, executor.Result{ExitCode: -1, Lost: true, Reason: "it had not started running"}, res("9"))
	require.Equal(t, 3, res("12").ExitCode, "gone from squeue: sacct says how it ended")
	require.Equal(t, "its node failed (Slurm: NODE_FAIL)", res("10").Reason)

	// Job 11 is known to neither: given up after a few rounds.
	for range missingRounds - 1 {
		require.NoError(t, e.round())
	}
	require.Equal(t, executor.Result{ExitCode: -1, Lost: true, Reason: "Slurm no longer knows its job 11"}, res("11"))
}

// squeue says a job was cancelled before its record reaches sacct, which says who did: the
// record is waited for, for a while; without accounting at all, squeue's word is taken.
func TestACancelledJobWaitsForItsAccounting(t *testing.T) {
	e, f := newTestExecutor(t, Config{})
	h := e.track("5", &atlas.Job{ID: "j"}, time.Time{})
	f.set("5|CANCELLED|None|2026-03-01T12:00:05|vm|0\n", "5|RUNNING|0:0|2026-03-01T12:00:05|vm\n")
	q, a := parseSqueue(f.squeue)["5"], parseSacct(f.sacct)["5"]
	now := time.Now()
	h.observe(q, a, true, now)
	h.observe(q, a, true, now.Add(accountingLag/2))
	require.False(t, h.IsPlaced(), "still waiting for sacct")
	h.observe(q, a, true, now.Add(accountingLag))
	require.Equal(t, "cancelled in Slurm by someone other than Atlas (scancel 5)", h.result.Reason, "squeue's word, once sacct took too long")

	h = e.track("6", &atlas.Job{ID: "k"}, time.Time{})
	f.err["sacct"] = errors.New("sacct: error: Slurm accounting storage is disabled")
	f.set("6|CANCELLED|None|2026-03-01T12:00:05|vm|0\n", "")
	require.NoError(t, e.round())
	require.True(t, h.IsPlaced(), "no accounting: squeue's record is all there is")
	require.Equal(t, "cancelled in Slurm by someone other than Atlas (scancel 6)", h.result.Reason)
}

func TestStopSignalsTheInJobSideThenKills(t *testing.T) {
	e, f := newTestExecutor(t, Config{})
	pending := e.track("10", &atlas.Job{ID: "p"}, time.Time{})
	require.NoError(t, pending.Stop(time.Hour))
	require.Eventually(t, func() bool { return len(f.ran("scancel")) == 1 }, 10*time.Second, time.Millisecond)
	require.Equal(t, []string{"scancel 10"}, f.ran("scancel"), "a job Slurm has not started is cancelled")

	running := e.track("11", &atlas.Job{ID: "r"}, time.Time{})
	running.Running(time.Now())
	require.NoError(t, running.Stop(10*time.Millisecond))
	require.Eventually(t, func() bool { return len(f.ran("scancel")) == 4 }, 10*time.Second, time.Millisecond)
	require.Equal(t, []string{"scancel 10", "scancel --batch --signal=TERM 11", "scancel --full --signal=KILL 11", "scancel 11"},
		f.ran("scancel"), "SIGTERM to the in-job side, which passes it on; when the grace is over, kill")
	f.set("", "11|CANCELLED by 0|0:0|2026-03-01T12:00:05|vm\n")
	require.NoError(t, e.round())
	require.True(t, running.result.Killed)

	polite := e.track("12", &atlas.Job{ID: "q"}, time.Time{})
	polite.Running(time.Now())
	require.NoError(t, polite.Stop(time.Hour))
	require.Eventually(t, func() bool { return len(f.ran("scancel")) == 5 }, 10*time.Second, time.Millisecond)
	f.set("", "12|COMPLETED|0:0|2026-03-01T12:00:05|vm\n")
	require.NoError(t, e.round())
	require.Equal(t, executor.Result{ExitCode: 0}, polite.result, "it exited after SIGTERM")
	require.Len(t, f.ran("scancel"), 5, "nothing is killed once the job ended")
}

func TestOrphansAreThisInstallationsJobsNoAtlasJobOwns(t *testing.T) {
	e, f := newTestExecutor(t, Config{})
	e.track("7", &atlas.Job{ID: "followed"}, time.Time{})
	f.set("5|atlas:lab-a:known\n6|atlas:lab-a:gone\n7|atlas:lab-a:followed\n8|atlas:lab-b:theirs\n9|someone's own|comment\n", "")
	removed, err := e.RemoveOrphans(t.Context(), func(id string) bool { return id == "known" })
	require.NoError(t, err)
	require.Equal(t, []string{"Slurm job 6 (atlas:lab-a:gone)"}, removed)
	require.Equal(t, []string{"scancel 6"}, f.ran("scancel"))
	require.Contains(t, f.ran("squeue")[0], "--name=lab-a", "only this installation's jobs are listed")
}
