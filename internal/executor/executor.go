// Package executor defines how the server runs a job: start it, wait for it, stop it with a
// grace period, and re-attach to it after a restart.
//
// Implementations live in subpackages named after the executor kind users choose
// (process, docker) and all pass the conformance suite in executortest. An executor never
// changes a job's state: it reports what happened and the scheduler records it.
package executor

import (
	"context"
	"encoding/json"
	"errors"
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
}

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

// Cleaner is implemented by executors that can find and remove leftovers of jobs the server
// no longer knows (orphans).
type Cleaner interface {
	RemoveOrphans(ctx context.Context, known func(jobID string) bool) ([]string, error)
}

// ErrGone means a job to recover no longer exists.
var ErrGone = errors.New("job process is gone")
