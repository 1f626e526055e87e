package clusters

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sbatch submits a batch job and returns its id; runAs, when not nil, submits as that
// account (the way jobs that run as their submitting user reach Slurm).
func sbatch(t *testing.T, s *Slurm, runAs []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	argv := append(append(runAs, "sbatch", "--parsable", "--partition", s.Partition), args...)
	out, err := command(ctx, argv[0], argv[1:]...)
	require.NoError(t, err)
	id, _, _ := strings.Cut(out, ";") // "id;cluster" on a federation
	_, err = strconv.Atoi(id)
	require.NoError(t, err, "sbatch --parsable printed %q", out)
	return id
}

// outputDir is a directory the test account may write job output into.
func outputDir(t *testing.T, s *Slurm) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "atlas-slurm-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(s.User.Uid)
	gid, _ := strconv.Atoi(s.User.Gid)
	require.NoError(t, os.Chown(dir, uid, gid))
	return dir
}

func token() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// A batch script runs to its end; its output lands where --output says, and sacct records the
// job as COMPLETED, or FAILED with the script's exit code.
func TestSlurmBatchJobsFinishWithTheirExitCodes(t *testing.T) {
	t.Parallel()
	s := NeedSlurm(t)
	dir := outputDir(t, s)
	tok := token()
	script := filepath.Join(dir, "job.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/bash\necho \"hello $1 from $SLURM_JOB_ID\"\nexit $2\n"), 0o755))

	ok := sbatch(t, s, nil, "--output", filepath.Join(dir, "ok-%j.out"), script, tok, "0")
	failed := sbatch(t, s, nil, "--output", filepath.Join(dir, "failed-%j.out"), script, tok, "3")

	require.Equal(t, Accounting{State: "COMPLETED", ExitCode: "0:0", User: "root"}, s.Finished(t, ok, time.Minute))
	require.Equal(t, Accounting{State: "FAILED", ExitCode: "3:0", User: "root"}, s.Finished(t, failed, time.Minute))
	out, err := os.ReadFile(filepath.Join(dir, "ok-"+ok+".out"))
	require.NoError(t, err)
	require.Equal(t, "hello "+tok+" from "+ok+"\n", string(out))
}

// A job asking for the node's whole memory waits while another holds it, and squeue says why;
// scancel ends both, the running one and the waiting one.
func TestSlurmPendingReasonAndCancel(t *testing.T) {
	t.Parallel()
	s := NeedSlurm(t)
	dir := outputDir(t, s)
	mem := strconv.Itoa(s.MemoryMB)
	started := filepath.Join(dir, "started")
	sleep := "sleep 600." + strconv.Itoa(int(time.Now().UnixNano()%1e6)) // a command line no other process has
	hog := sbatch(t, s, nil, "--mem", mem, "--output", filepath.Join(dir, "hog.out"), "--wrap", "touch "+started+"; exec "+sleep)
	blocked := sbatch(t, s, nil, "--mem", mem, "--output", filepath.Join(dir, "blocked.out"), "--wrap", "true")
	t.Cleanup(func() { s.Cancel(t, hog, blocked) })

	s.WaitQueue(t, hog, "RUNNING", 2*time.Minute)
	// Resources: the memory is taken; Priority: a job ahead of it waits (so squeue says for a
	// moment after it was submitted, and while another test's job waits too).
	require.Contains(t, []string{"Resources", "Priority"}, s.WaitQueue(t, blocked, "PENDING", time.Minute),
		"squeue says why the job waits")

	s.Cancel(t, blocked)
	require.Equal(t, "CANCELLED", s.Finished(t, blocked, time.Minute).State)
	_, err := os.Stat(filepath.Join(dir, "blocked.out"))
	require.ErrorIs(t, err, os.ErrNotExist, "the cancelled job never ran")

	require.Eventually(t, func() bool { _, err := os.Stat(started); return err == nil }, time.Minute, 50*time.Millisecond,
		"the running job started its script")
	require.NoError(t, exec.Command("pgrep", "-f", sleep).Run(), "the running job's process runs")
	s.Cancel(t, hog)
	require.Equal(t, "CANCELLED", s.Finished(t, hog, time.Minute).State)
	require.Eventually(t, func() bool { return exec.Command("pgrep", "-f", sleep).Run() != nil }, time.Minute, 50*time.Millisecond,
		"the cancelled job's process is gone")
}

// A job submitted by a normal account runs as that account and is accounted to it.
func TestSlurmJobRunsAsTheSubmittingUser(t *testing.T) {
	t.Parallel()
	s := NeedSlurm(t)
	dir := outputDir(t, s)
	out := filepath.Join(dir, "whoami.out")
	id := sbatch(t, s, []string{"runuser", "-u", s.User.Username, "--"}, "--output", out, "--wrap", "id -un; id -u")

	require.Equal(t, Accounting{State: "COMPLETED", ExitCode: "0:0", User: s.User.Username}, s.Finished(t, id, time.Minute))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, s.User.Username+"\n"+s.User.Uid+"\n", string(b))
	fi, err := os.Stat(out)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	require.Equal(t, s.User.Uid+":"+s.User.Gid, fmt.Sprintf("%d:%d", st.Uid, st.Gid), "the job's output belongs to the submitter")
}
