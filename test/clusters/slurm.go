package clusters

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Slurm is the test machine's single-node Slurm cluster. Its commands (sbatch, squeue, sacct,
// scancel) are on PATH and find its configuration in /etc/slurm.
type Slurm struct {
	Cluster   string
	Partition string // the default partition
	Node      string
	MemoryMB  int        // the node's memory as Slurm counts it: a job asking for more never runs
	User      *user.User // a normal account that may submit jobs
	Logs      string     // slurmctld's, slurmd's and slurmdbd's logs
}

var slurmProbe probe

// NeedSlurm returns the test machine's Slurm cluster. Without it the test skips, saying why;
// with CI=true it fails instead. When the test fails, the end of the daemons' logs is shown.
func NeedSlurm(t testing.TB) *Slurm {
	t.Helper()
	slurmProbe.run("slurm-cluster.sh", "scripts/slurm-cluster.sh up")
	slurmProbe.need(t, "Slurm")
	env := slurmProbe.env
	mem, err := strconv.Atoi(env["ATLAS_SLURM_MEMORY_MB"])
	if err != nil {
		t.Fatalf("the Slurm node's memory: %v", err)
	}
	u, err := user.Lookup(env["ATLAS_SLURM_USER"])
	if err != nil {
		t.Fatalf("the Slurm test account: %v", err)
	}
	s := &Slurm{Cluster: env["ATLAS_SLURM_CLUSTER"], Partition: env["ATLAS_SLURM_PARTITION"], Node: env["ATLAS_SLURM_NODE"],
		MemoryMB: mem, User: u, Logs: env["ATLAS_SLURM_LOGS"]}
	logTails(t, filepath.Join(s.Logs, "slurmctld.log"), filepath.Join(s.Logs, "slurmd.log"), filepath.Join(s.Logs, "slurmdbd.log"))
	return s
}

// Accounting is a job's record in Slurm's accounting database (sacct).
type Accounting struct {
	State    string // COMPLETED, FAILED, CANCELLED, OUT_OF_MEMORY, ...
	ExitCode string // "exit:signal", e.g. "3:0"
	User     string
}

// Finished waits until sacct records a job as finished and returns its record. The record
// reaches the database a moment after the job ends, so it is read until it says the job ended.
func (s *Slurm) Finished(t testing.TB, jobID string, timeout time.Duration) Accounting {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := command(ctx, "sacct", "-n", "-P", "-X", "-j", jobID, "-o", "State,ExitCode,User")
		cancel()
		if err != nil {
			t.Fatalf("sacct: %v", err)
		}
		last = out
		if f := strings.Split(out, "|"); len(f) == 3 && f[0] != "" && !strings.HasPrefix(f[0], "PENDING") &&
			!strings.HasPrefix(f[0], "RUNNING") && !strings.HasPrefix(f[0], "REQUEUED") && !strings.HasPrefix(f[0], "SUSPENDED") {
			// "CANCELLED by 0" names who cancelled it.
			state, _, _ := strings.Cut(f[0], " ")
			return Accounting{State: state, ExitCode: f[1], User: f[2]}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s has not finished in sacct after %s (last: %q)", jobID, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Queue returns a job's state and reason as squeue shows them ("RUNNING", "None"; "PENDING",
// "Resources"), or "" when squeue no longer knows the job.
func (s *Slurm) Queue(t testing.TB, jobID string) (state, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := command(ctx, "squeue", "-h", "-t", "all", "-j", jobID, "-o", "%T|%r")
	if err != nil {
		if strings.Contains(err.Error(), "Invalid job id") {
			return "", ""
		}
		t.Fatalf("squeue: %v", err)
	}
	state, reason, _ = strings.Cut(out, "|")
	return state, reason
}

// WaitQueue waits until squeue shows a job in the given state and returns its reason. A job
// waits as PENDING with reason None until the scheduler has looked at it: WaitQueue waits for
// the scheduler's reason.
func (s *Slurm) WaitQueue(t testing.TB, jobID, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		state, reason := s.Queue(t, jobID)
		if state == want && (state != "PENDING" || reason != "None") {
			return reason
		}
		if state != "PENDING" && state != "CONFIGURING" && state != "RUNNING" {
			t.Fatalf("job %s is %q (reason %q), not %s, and will not be", jobID, state, reason, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %q (reason %q), not %s, after %s", jobID, state, reason, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Cancel cancels jobs, ignoring ones that already ended.
func (s *Slurm) Cancel(t testing.TB, jobIDs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := command(ctx, "scancel", jobIDs...); err != nil {
		t.Errorf("scancel %v: %v (%s)", jobIDs, err, out)
	}
}

// SharedDir makes a folder that every account may write to (sticky, like /tmp), with the named
// folders in it, as a cluster's shared filesystem is to its jobs (t.TempDir is closed to other
// accounts); it goes at the end of the test.
func (s *Slurm) SharedDir(t testing.TB, sub ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "atlas-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range append([]string{""}, sub...) {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o1777); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// String describes the cluster for test logs.
func (s *Slurm) String() string {
	return fmt.Sprintf("Slurm cluster %s (partition %s, node %s)", s.Cluster, s.Partition, s.Node)
}
