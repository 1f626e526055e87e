// The batch job of an Atlas job: sbatch's options, its environment and the batch script.

package slurm

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/python"
)

// commentPrefix starts the comment of every Slurm job Atlas submits:
// "atlas:<installation>:<job id>".
const commentPrefix = "atlas:"

// cleanup, run before the bootstrap in the same interpreter, removes the job's folder in the
// scratch directory when the in-job side exits.
const cleanup = `import atexit, os, shutil
atexit.register(shutil.rmtree, os.environ["ATLAS_SCRATCH"], True)
`

// outputPath is where Slurm writes a job's output (%j: its job id).
func (e *Executor) outputPath(id string) string {
	return filepath.Join(e.cfg.ScratchDir, "atlas-"+id+".out")
}

// submission is the sbatch run that submits a job. Atlas's options are sbatch's arguments
// (they win over the configured #SBATCH lines); the job's token and environment are in the
// script, on sbatch's standard input, where no other user of the machine sees them.
func (e *Executor) submission(spec *executor.Spec, as *account) Command {
	j := spec.Job
	args := []string{"--parsable", "--job-name=" + e.cfg.Installation,
		"--comment=" + commentPrefix + e.cfg.Installation + ":" + j.ID,
		"--output=" + e.outputPath("%j"), "--chdir=" + e.cfg.ScratchDir,
		"--no-requeue", // a job runs once: Atlas's own queue gives it another go
		"--export=PATH,HOME,USER,LOGNAME"}
	for _, o := range []struct{ flag, v string }{{"partition", e.cfg.Partition}, {"account", e.cfg.Account}, {"qos", e.cfg.QOS}} {
		if o.v != "" {
			args = append(args, "--"+o.flag+"="+o.v)
		}
	}
	if e.cfg.TimeLimit > 0 {
		args = append(args, "--time="+strconv.Itoa(int(math.Ceil(e.cfg.TimeLimit.Minutes()))))
	}
	if j.RAMGB > 0 {
		args = append(args, fmt.Sprintf("--mem=%dM", int64(math.Ceil(j.RAMGB*1024))))
	}
	if j.NumGPUs > 0 {
		if e.cfg.GPUGres != "" {
			args = append(args, fmt.Sprintf("--gres=%s:%d", e.cfg.GPUGres, j.NumGPUs))
		} else {
			args = append(args, "--gpus="+strconv.Itoa(j.NumGPUs))
		}
	}
	return Command{Name: "sbatch", Args: args, Stdin: e.script(spec), As: as, Env: sbatchEnv(as)}
}

// sbatchEnv is sbatch's whole environment, which --export passes on in part: none of the
// server's own, but for how to find programs and Slurm's configuration.
func sbatchEnv(as *account) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "SLURM_UMASK=0077"} // output files are the job's account's alone
	if c := os.Getenv("SLURM_CONF"); c != "" {
		env = append(env, "SLURM_CONF="+c)
	}
	if as != nil {
		return append(env, "HOME="+as.Home, "USER="+as.Name, "LOGNAME="+as.Name)
	}
	for _, k := range []string{"HOME", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// script is the batch script: the configured #SBATCH lines and setup, the job's environment,
// a folder of its own in the scratch directory, and the in-job side.
func (e *Executor) script(spec *executor.Spec) string {
	j := spec.Job
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	for _, line := range e.cfg.Sbatch {
		b.WriteString("#SBATCH " + line + "\n")
	}
	fmt.Fprintf(&b, "# Atlas job %s of project %s, by %s\n", j.ID, oneLine(j.Project), oneLine(j.User))
	if e.cfg.Setup != "" {
		b.WriteString(strings.TrimRight(e.cfg.Setup, "\n") + "\n")
	}
	b.WriteString("export SLURM_EXPORT_ENV=ALL\n") // steps the job starts with srun get its whole environment
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "FOUNDATIONS_SCHEDULER_URL", k == "FOUNDATIONS_HOME":
			continue // the node reaches the server over the network, and has none of its files
		case !envName.MatchString(k):
			continue // Admit refuses these
		}
		b.WriteString("export " + k + "=" + quote(v) + "\n")
	}
	b.WriteString("export FOUNDATIONS_SCHEDULER_URL=" + quote(e.cfg.SchedulerURL) + " PYTHONUNBUFFERED=1\n")
	b.WriteString("ATLAS_SCRATCH=" + quote(e.cfg.ScratchDir) + "/atlas-$SLURM_JOB_ID\n")
	b.WriteString(`mkdir -m 700 "$ATLAS_SCRATCH" "$ATLAS_SCRATCH/tmp" || exit 1` + "\n")
	b.WriteString(`export ATLAS_SCRATCH ATLAS_WORK_DIR="$ATLAS_SCRATCH/work" ATLAS_SPOOL_DIR="$ATLAS_SCRATCH/spool" TMPDIR="$ATLAS_SCRATCH/tmp"` + "\n")
	if e.cfg.EnvCacheDir != "" {
		// One cache per account: an environment another account could write to is not one to
		// run code from.
		b.WriteString("ATLAS_ENV_DIR=" + quote(e.cfg.EnvCacheDir) + `/$(id -u)` + "\n")
		b.WriteString(`mkdir -p -m 700 "$ATLAS_ENV_DIR" && export ATLAS_ENV_DIR` + "\n")
	}
	b.WriteString(`cd "$ATLAS_SCRATCH" || exit 1` + "\n")
	// The in-job side is the batch script's process: Stop's SIGTERM reaches it, and it passes
	// it on to the command.
	b.WriteString("exec " + e.cfg.Python + " -c " + quote(cleanup+python.Bootstrap()) + "\n")
	return b.String()
}

// quote quotes s for the shell.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// oneLine keeps s on its comment line.
func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\r", " ").Replace(s) }

// timeLimit says a time limit as the configuration does.
func timeLimit(d time.Duration) string {
	if d <= 0 {
		return "the partition's"
	}
	return "slurm.time_limit: " + d.String()
}
