// Package executor defines how the server runs a job: start it, wait for it, stop it with a
// grace period, and re-attach to it after a restart.
//
// Implementations live in subpackages named after the executor kind users choose
// (process, docker, kubernetes, slurm) and all pass the conformance suite in executortest. An executor never
// changes a job's state: it reports what happened and the scheduler records it.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Spec is everything an executor needs to start one job.
type Spec struct {
	Job *atlas.Job
	// WorkDir is the host directory holding the unpacked bundle; the job runs in it and
	// whatever it leaves there is archived.
	WorkDir string
	// Env holds KEY=VALUE pairs for the job (FOUNDATIONS_*, GPU ids, worker.environment).
	Env []string
	// LogPath is the job's log file; the job's stdout and stderr are appended to it.
	LogPath string
	// SDKDir is a directory holding the `foundations` Python package, to put on PYTHONPATH.
	SDKDir string
	// SpoolDir is the job's own spool directory (FOUNDATIONS_SPOOL_DIR for the SDK): tracked
	// values the SDK could not deliver before the job ended are left there, and the server
	// stores them when it records the job's end.
	SpoolDir string
}

// Result is how a job ended.
type Result struct {
	ExitCode int
	// Reason explains an abnormal end in one line ("killed by signal 9", "image not found").
	Reason string
	// Lost is set when the job's fate cannot be known (it vanished while the server was down).
	Lost bool
	// Killed is set when Stop had to kill the job because it did not exit within the grace
	// period.
	Killed bool
	// Output is what the engine kept of a remote job's output (the end of a crashed pod's
	// log): it is stored when the job's in-job side never reported, so that a crash before it
	// started its work still leaves its message. Engines keep at most the last OutputLines
	// lines and OutputBytes bytes of it.
	Output string
}

// The most of a remote job's output an engine keeps in Result.Output.
const (
	OutputLines = 100
	OutputBytes = 16 << 10
)

// Worker is the field every executor keeps in a job's RunInfo, besides its own: what runs
// the job, for people ("pid 1234", "container 0123456789ab").
type Worker struct {
	Worker string `json:"worker,omitempty"`
}

// WorkerID reads what runs a job from its RunInfo ("" if it does not say).
func WorkerID(runInfo string) string {
	var w Worker
	if runInfo == "" || json.Unmarshal([]byte(runInfo), &w) != nil {
		return ""
	}
	return w.Worker
}

// Handle controls one started job.
type Handle interface {
	// RunInfo is what Recover needs to find the job again, as JSON with the Worker field; the
	// scheduler stores it.
	RunInfo() string
	// Wait blocks until the job ends or ctx is done.
	Wait(ctx context.Context) (Result, error)
	// Stop asks the job to end (SIGTERM), and kills it after grace. It returns at once.
	Stop(grace time.Duration) error
	// Release removes what the executor kept to recover the job (exit status files, the
	// stopped container). The scheduler calls it once the job's end is recorded.
	Release() error
}

// Executor starts jobs.
type Executor interface {
	// Name is the executor kind, as users write it: "process" or "docker".
	Name() string
	// Start launches the job and returns once it is running.
	Start(ctx context.Context, spec *Spec) (Handle, error)
	// Recover re-attaches to a job started by an earlier server process, from its RunInfo.
	// It returns ErrGone when the job cannot be found any more.
	Recover(ctx context.Context, job *atlas.Job, logPath string) (Handle, error)
}

// Remote is implemented by executors whose jobs run where the server's files are not (a
// Kubernetes pod, a Slurm node). Their jobs' in-job side (python.Bootstrap) does over the API
// what local executors leave to the server: it fetches the bundle, ships the output, uploads the
// archive and reports how the command ended. So the scheduler neither prepares a working
// directory for them nor archives one, and their Spec has no WorkDir or LogPath.
type Remote interface {
	Executor
	// Remote marks the executor; it does nothing.
	Remote()
}

// Cluster is implemented by remote executors whose engine places jobs on its own nodes and
// counts their resources (Kubernetes, Slurm). The scheduler hands such an engine at most its
// workers' number of jobs at once, without GPU ids of its own, and the engine's Admit replaces
// the server's capacity and volume checks at submit.
type Cluster interface {
	Remote
	// Admit refuses, at submit, a job the engine could never run (a volume it cannot mount).
	Admit(j *atlas.Job) error
}

// Placer is implemented by handles of jobs that an engine still has to place on a node (a
// Kubernetes pod, a Slurm job). Until it does, the job stays starting and its "why pending" is
// the engine's own reason.
type Placer interface {
	// Placed is closed once the job runs, or has ended.
	Placed() <-chan struct{}
	// Pending is the engine's reason the job does not run yet ("" once it runs).
	Pending() string
	// Since is when the job began to run, as the engine saw it (zero if unknown).
	Since() time.Time
}

// Cleaner is implemented by executors that can find and remove leftovers of jobs the server
// no longer knows (orphans).
type Cleaner interface {
	RemoveOrphans(ctx context.Context, known func(jobID string) bool) ([]string, error)
}

// Account is the local account a job runs as: a job.RunAs of "uid:gid".
type Account struct{ UID, GID int }

// ParseAccount parses "uid:gid".
func ParseAccount(s string) (Account, error) {
	u, g, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return Account{}, fmt.Errorf("invalid user %q: want uid:gid", s)
	}
	return Account{uid, gid}, nil
}

// String is "uid:gid".
func (a Account) String() string { return fmt.Sprintf("%d:%d", a.UID, a.GID) }

// Self is the account the server runs as.
func Self() Account { return Account{os.Getuid(), os.Getgid()} }

// Give hands the tree at root to the account, and makes its top readable by the account only.
// Only a root server can give files away; for any other it does nothing (the files are the
// server's, and so are its jobs).
func (a Account) Give(root string) error {
	if os.Getuid() != 0 || a == Self() {
		return nil
	}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, a.UID, a.GID)
	})
	if err != nil {
		return fmt.Errorf("hand %s to %s: %w", root, a, err)
	}
	if fi, err := os.Lstat(root); err == nil && fi.IsDir() {
		return os.Chmod(root, 0o700)
	}
	return nil
}

// EnvDir returns the directory of the cached environment key of an account's jobs, under
// root, creating it owned by the account: each account has its own cache, since an
// environment another account's job could write to is not one to run code from.
func EnvDir(root string, a Account, key string) (string, error) {
	own := filepath.Join(root, strconv.Itoa(a.UID))
	dir := filepath.Join(own, key)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	for _, d := range []string{own, dir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		if os.Getuid() == 0 && a != Self() {
			if err := os.Lchown(d, a.UID, a.GID); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

// ErrGone means a job to recover no longer exists.
var ErrGone = errors.New("job process is gone")
