// Package slurm runs each Atlas job as a Slurm batch job, through Slurm's command-line tools
// (sbatch, squeue, sacct, scancel), which every cluster has. Its jobs need nothing but HTTP:
// the batch script runs python.Bootstrap, whose in-job side fetches the bundle, ships the
// output, uploads the archive and reports how the command ended over the API
// (executor.Remote). A compute node needs Python 3 and a route to the server, nothing else.
//
// One poller follows every job with one squeue call per round for all of them, and one sacct
// call for those squeue no longer shows or says were cancelled (sacct says by whom), so a
// cluster is never asked once per job. A job Slurm has not started shows Slurm's pending reason as its "why pending";
// OUT_OF_MEMORY, TIMEOUT, NODE_FAIL, PREEMPTED and a cancellation by someone else become the
// failure reason. Stop sends SIGTERM to the batch script's process (the in-job side, which
// passes it on to the command) and kills the job when the grace is over. Jobs are named after
// the installation and carry "atlas:<installation>:<job id>" as their comment: after a restart
// they are found again by their Slurm job id, and this installation's jobs that no Atlas job
// owns are cancelled. A root server submits each job as its user's account (or run_as), never
// as root. No other package runs Slurm's commands.
package slurm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// Config is where and how jobs run.
type Config struct {
	// Partition, Account and QOS are passed to sbatch when set ("": the cluster's defaults).
	Partition, Account, QOS string
	// TimeLimit is every job's time limit (0: the partition's), in whole minutes.
	TimeLimit time.Duration
	// Sbatch holds extra options, each written into the batch script as an #SBATCH line.
	Sbatch []string
	// Python runs the in-job side, and the job's command (default python3); Setup is shell
	// run before it on the node (module loads, a conda activate).
	Python, Setup string
	// ScratchDir is a directory on the compute nodes, writable by every job's account (like
	// /tmp), that holds each job's working directory and its Slurm output file (default /tmp).
	// On a filesystem the server sees too, what a job printed before it could report is kept.
	ScratchDir string
	// EnvCacheDir, on a filesystem the nodes share, caches requirements environments across
	// jobs, one folder per account ("": each job installs its own).
	EnvCacheDir string
	// SchedulerURL is how compute nodes reach the server's API.
	SchedulerURL string
	// Installation tells this Atlas installation's Slurm jobs from others': it is their name.
	Installation string
	// RunAs is the account that jobs run as when the server runs as root and the job's own
	// account is root or unknown (default nobody). Jobs never run as root.
	RunAs string
	// GPUGres, when set (e.g. "gpu:a100"), asks for a job's GPUs as --gres=<GPUGres>:<n>
	// instead of --gpus=<n>.
	GPUGres string
	// PollInterval is how often squeue is asked about the jobs (default 1s).
	PollInterval time.Duration
	Logger       *slog.Logger
	// Run runs Slurm's commands (nil: for real).
	Run Runner
}

// Executor runs jobs as Slurm batch jobs.
type Executor struct {
	cfg   Config
	runAs *account // the account of jobs of root, when the server is root
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{} // closed when the poller returns (nil: none runs)

	mu      sync.Mutex
	handles map[string]*handle // by Slurm job id
}

var (
	_ executor.Cluster = (*Executor)(nil)
	_ executor.Cleaner = (*Executor)(nil)
)

// New checks that the cluster answers (and has the partition), and starts the poller.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	e := newExecutor(cfg)
	if os.Getuid() == 0 {
		a, err := lookupAccount(e.cfg.RunAs)
		if err != nil {
			return nil, fmt.Errorf("slurm.run_as: %w", err)
		}
		if a.UID == 0 {
			return nil, fmt.Errorf("slurm.run_as: %s is root; jobs never run as root", e.cfg.RunAs)
		}
		e.runAs = a
	}
	check, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := e.cfg.Run(check, Command{Name: "sinfo", Args: []string{"--noheader", "--format=%R"}})
	if err != nil {
		return nil, fmt.Errorf("slurm: cannot reach the cluster: %w", err)
	}
	if cfg.Partition != "" {
		parts := strings.Fields(out)
		if !slices.Contains(parts, cfg.Partition) {
			return nil, fmt.Errorf("slurm.partition: the cluster has no partition %s (it has %s)", cfg.Partition,
				strings.Join(parts, ", "))
		}
	}
	e.done = make(chan struct{})
	go e.poller()
	return e, nil
}

// newExecutor is an executor with the configuration's defaults filled in, and no poller.
func newExecutor(cfg Config) *Executor {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Run == nil {
		cfg.Run = Exec
	}
	if cfg.Python == "" {
		cfg.Python = "python3"
	}
	if cfg.ScratchDir == "" {
		cfg.ScratchDir = "/tmp"
	}
	if cfg.RunAs == "" {
		cfg.RunAs = "nobody"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	return &Executor{cfg: cfg, wake: make(chan struct{}, 1), stop: make(chan struct{}),
		handles: map[string]*handle{}}
}

// Close stops the poller. Jobs keep running; a new executor finds them again.
func (e *Executor) Close() error {
	select {
	case <-e.stop:
	default:
		close(e.stop)
		if e.done != nil {
			<-e.done
		}
	}
	return nil
}

// Name implements executor.Executor.
func (e *Executor) Name() string { return "slurm" }

// Remote implements executor.Remote.
func (e *Executor) Remote() {}

// Describe says where jobs run.
func (e *Executor) Describe() string {
	where := "the default partition"
	if e.cfg.Partition != "" {
		where = "partition " + e.cfg.Partition
	}
	s := fmt.Sprintf("jobs run as Slurm batch jobs in %s; compute nodes reach the server at %s", where, e.cfg.SchedulerURL)
	if e.runAs != nil {
		s += "; jobs of root run as " + e.cfg.RunAs
	}
	return s
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Admit refuses, at submit, what a Slurm job cannot have: containers and what they mount.
func (e *Executor) Admit(j *atlas.Job) error {
	if j.Worker.Image != "" {
		return atlas.Invalidf("worker.image: jobs on Slurm run without containers, with the cluster's Python "+
			"(slurm.python in the server's config); remove worker.image (%s)", j.Worker.Image)
	}
	for host := range j.Worker.Volumes {
		return atlas.Invalidf("worker.volumes: %s: jobs on Slurm see the cluster's filesystems as they are, with nothing "+
			"mounted; read the path itself", host)
	}
	for k := range j.Worker.Environment {
		if !envName.MatchString(k) {
			return atlas.Invalidf("worker.environment: %q is not a variable name a Slurm batch script can set", k)
		}
	}
	return nil
}

// runInfo is what Recover needs: the Slurm job id.
type runInfo struct {
	executor.Worker
	SlurmJob string `json:"slurm_job"`
}

// Start implements executor.Executor: it submits the batch job and returns at once.
func (e *Executor) Start(ctx context.Context, spec *executor.Spec) (executor.Handle, error) {
	acct, err := e.account(spec.Job)
	if err != nil {
		return nil, err
	}
	cmd := e.submission(spec, acct)
	out, err := e.cfg.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("submit to Slurm: %w", err)
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out), ";") // "id;cluster" on a federation
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return nil, fmt.Errorf("sbatch --parsable printed %q, not a job id", atlas.OneLine(fmt.Errorf("%s", out)))
	}
	h := e.track(id, spec.Job, time.Now())
	e.poke()
	return h, nil
}

// Recover implements executor.Executor: it follows the Slurm job recorded in the job's
// RunInfo. Whether Slurm still knows it, and how it ended if it did while the server was
// down, is the poller's to find out.
func (e *Executor) Recover(_ context.Context, job *atlas.Job, _ string) (executor.Handle, error) {
	var ri runInfo
	if err := json.Unmarshal([]byte(job.RunInfo), &ri); err != nil || ri.SlurmJob == "" {
		return nil, fmt.Errorf("%w: no Slurm job recorded for job %s", executor.ErrGone, job.ID)
	}
	h := e.track(ri.SlurmJob, job, time.Time{})
	e.poke()
	return h, nil
}

// RemoveOrphans implements executor.Cleaner: it cancels this installation's Slurm jobs that
// no Atlas job owns.
func (e *Executor) RemoveOrphans(ctx context.Context, known func(jobID string) bool) ([]string, error) {
	out, err := e.cfg.Run(ctx, Command{Name: "squeue", Args: []string{"--noheader", "--name=" + e.cfg.Installation,
		"--Format=JobID:0|,Comment:0"}})
	if err != nil {
		return nil, err
	}
	var removed []string
	prefix := commentPrefix + e.cfg.Installation + ":"
	for _, line := range strings.Split(out, "\n") {
		id, comment, ok := strings.Cut(strings.TrimSpace(line), "|")
		if !ok || !strings.HasPrefix(comment, prefix) {
			continue
		}
		e.mu.Lock()
		_, tracked := e.handles[id]
		e.mu.Unlock()
		if tracked || known(strings.TrimPrefix(comment, prefix)) {
			continue
		}
		if _, err := e.cfg.Run(ctx, Command{Name: "scancel", Args: []string{id}}); err != nil {
			return removed, err
		}
		removed = append(removed, "Slurm job "+id+" ("+comment+")")
	}
	return removed, nil
}

// track registers a handle for a Slurm job, handed over at created (zero: by an earlier server
// process), so that the poller follows it.
func (e *Executor) track(id string, j *atlas.Job, created time.Time) *handle {
	e.mu.Lock()
	defer e.mu.Unlock()
	h := e.handles[id]
	if h == nil {
		h = &handle{Placement: executor.NewPlacement(created, "submitted to Slurm as job "+id), e: e, id: id,
			ramGB: j.RAMGB, ended: make(chan struct{})}
		e.handles[id] = h
	}
	return h
}

func (e *Executor) untrack(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.handles, id)
}

// poke asks the poller for a round now.
func (e *Executor) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// account is the local account a job is submitted as: the job's own when the server runs as
// root (run_as for jobs of root or of no known account), the server's otherwise (nil).
func (e *Executor) account(j *atlas.Job) (*account, error) {
	if e.runAs == nil {
		return nil, nil
	}
	if j.RunAs != "" {
		a, err := executor.ParseAccount(j.RunAs)
		if err != nil {
			return nil, err
		}
		if a.UID != 0 {
			if u, err := user.LookupId(strconv.Itoa(a.UID)); err == nil {
				return accountOf(u)
			}
		}
	}
	return e.runAs, nil
}
