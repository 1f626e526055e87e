package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/sdk"
)

// Bundle sizes above which submit warns, largest first.
var bundleWarnings = []int64{500 << 20, 100 << 20, 50 << 20}

type submitFlags struct {
	entrypoint  string
	project     string
	name        string
	numGPUs     int
	ram         float64
	priority    int
	streamLogs  string
	noStreaming bool
	json        bool // --json: the job as JSON on stdout; its logs on stderr
}

func submitCommand(e *console) *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   "submit [flags] <scheduler_config> <job_directory> [command...]",
		Short: "Bundle a folder, queue it as a job, and stream its logs",
		Long: `Bundle <job_directory>, queue it on the scheduler named by <scheduler_config> (usually
"scheduler"), and stream the job's logs until it ends. The command is what the worker runs,
after the entrypoint (python by default): "main.py --epochs 5" runs "python main.py --epochs 5".
Flags go anywhere before the command; everything from the command on is the job's, untouched.
"--" ends the flags (for a command that starts with a dash).
Ctrl-C while streaming stops streaming only; the job keeps running.
With --json, stdout carries only the job as JSON (as GET /api/v1/jobs/{id} answers it: when it
has ended, or at once with --stream-job-logs False); the job's logs go to stderr.`,
		Example: `  foundations submit scheduler . main.py
  foundations submit scheduler . main.py --epochs 5 --lr 0.01
  foundations submit --project-name vision --num-gpus 1 scheduler ./train main.py
  foundations submit --stream-job-logs False --json scheduler . main.py | jq -r .id`,
		// The job's command may hold flags of its own, so submit parses its flags itself.
		DisableFlagParsing: true,
		ValidArgsFunction:  completeSubmit,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			cmd.InheritedFlags() // adds --debug and the other global flags to fl
			flags, pos, command := splitSubmitArgs(fl, args)
			if err := fl.Parse(flags); err != nil {
				if len(pos) == 2 {
					return usagef("%v (flags after the command belong to the job; put \"--\" before a command that starts with a dash)", err)
				}
				return &usageError{err}
			}
			e.describe(cmd)
			if help, _ := fl.GetBool("help"); help {
				return cmd.Help()
			}
			if len(pos) < 2 {
				return positional("<scheduler_config>", "<job_directory>")(cmd, pos)
			}
			e.debugf("submit flags %q, scheduler config %q, job directory %q, command %q", flags, pos[0], pos[1], command)
			return e.submit(cmd, &f, pos[0], pos[1], command)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.entrypoint, "entrypoint", "", "what runs the command (default: python)")
	fl.StringVar(&f.project, "project-name", "", "project (default: project_name in job.config.yaml, else the folder's name)")
	fl.StringVar(&f.name, "name", "", "the job's name, shown beside its id (default: a made-up one such as brave-otter)")
	fl.IntVar(&f.numGPUs, "num-gpus", 0, "GPUs the job needs (default: num_gpus in job.config.yaml, else 0)")
	fl.Float64Var(&f.ram, "ram", 0, "memory limit in GB (default: ram in job.config.yaml, else none)")
	fl.IntVar(&f.priority, "priority", 0, "queue priority; higher runs first")
	fl.StringVar(&f.streamLogs, "stream-job-logs", "True", "stream the job's logs until it ends (True or False)")
	jsonFlag(cmd, &f.json, "the job (when it has ended, or once queued without streaming); its logs go to stderr")
	return cmd
}

// splitSubmitArgs sorts submit's arguments as Atlas's argparse did: flags anywhere before the
// command, the scheduler config and the job directory, then the command, which is everything
// from the third argument that is not a flag on, untouched. "--" ends the flags: what follows
// fills the arguments still missing, then the command.
func splitSubmitArgs(fl *pflag.FlagSet, args []string) (flags, positional, command []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			rest := args[i+1:]
			n := min(2-len(positional), len(rest))
			return flags, append(positional, rest[:n]...), rest[n:]
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			if takesValue(fl, a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		case len(positional) < 2:
			positional = append(positional, a)
		default:
			return flags, positional, args[i:]
		}
	}
	return flags, positional, nil
}

// takesValue reports whether a flag argument (without "=value") is followed by its value.
func takesValue(fl *pflag.FlagSet, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	var f *pflag.Flag
	switch {
	case strings.HasPrefix(arg, "--"):
		f = fl.Lookup(arg[2:])
	case len(arg) == 2:
		f = fl.ShorthandLookup(arg[1:])
	}
	return f != nil && f.NoOptDefVal == ""
}

func (e *console) submit(cmd *cobra.Command, f *submitFlags, envName, dir string, command []string) error {
	client, _, err := e.client(envName)
	if err != nil {
		return err
	}
	stream, err := parseBool(f.streamLogs)
	if err != nil {
		return fmt.Errorf("--stream-job-logs: %v", err)
	}
	if v := os.Getenv("DISABLE_LOG_STREAMING"); v != "" && !strings.EqualFold(v, "false") {
		stream = false
	}
	// Ctrl-C during submission cancels it; during streaming it only stops streaming.
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()

	e.info("Job submission started. Ctrl-C to cancel.")
	spec, err := e.jobSpec(ctx, cmd, f, client, dir, command)
	if err != nil {
		return err
	}
	res, err := client.Submit(ctx, spec)
	if err != nil {
		return cancelled(ctx, err)
	}
	// res.Warnings repeats what the local parse of job.config.yaml already printed.
	id := res.Job.ID
	e.submitted(res.Job)
	if !stream {
		if f.json {
			return printJSON(e, res.Job)
		}
		return nil
	}
	out := e.stdout
	if f.json {
		// stdout carries the job as JSON only: the job's output goes to stderr.
		e.stdout = e.stderr
		defer func() { e.stdout = out }()
	}
	// From here on Ctrl-C stops streaming only.
	e.info("Job queued. Ctrl-C to stop streaming - job will not be interrupted or cancelled.")
	job, err := e.follow(ctx, client, id, true)
	if ctx.Err() != nil {
		e.info("Stopped streaming. Job '%s' keeps running; `foundations get logs %s %s` shows its output.", id, envName, id)
		return nil
	}
	if err != nil {
		return err
	}
	if f.json {
		e.stdout = out
		if err := printJSON(e, job); err != nil {
			return err
		}
	}
	return jobOutcome(e, job)
}

// submitted says which job a submission queued: its id (in Atlas's words) and its name.
func (e *console) submitted(j *sdk.Job) {
	e.info("Job submitted with ID '%s'.", j.ID)
	e.info("Job %s queued in project '%s'.", jobLabel(j), j.Project)
}

// jobLabel is a job's id and name as the CLI shows them: 'id' (name).
func jobLabel(j *sdk.Job) string {
	if j.Name == "" {
		return "'" + j.ID + "'"
	}
	return fmt.Sprintf("'%s' (%s)", j.ID, j.Name)
}

// jobSpec reads a job folder's job.config.yaml, bundles the folder, uploads the bundle unless
// the server has it, and returns the job's spec (submit's flags applied).
func (e *console) jobSpec(ctx context.Context, cmd *cobra.Command, f *submitFlags, client *sdk.Client, dir string, command []string) (*sdk.JobSpec, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("job directory %s does not exist or is not a directory", abs)
	}
	jobCfg, raw, err := config.LoadJob(abs)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		e.debugf("no %s in %s", config.JobConfigFile, abs)
	} else {
		e.debugf("read %s (%d bytes)", filepath.Join(abs, config.JobConfigFile), len(raw))
	}
	for _, w := range jobCfg.Warnings {
		e.warn("%s", w)
	}
	if err := config.ValidateJobName(f.name); err != nil {
		return nil, fmt.Errorf("--name: %w", err)
	}
	spec := &sdk.JobSpec{ID: uuid.NewString(), Name: f.name, Project: f.project, User: currentUser(), Command: command,
		JobConfig: string(raw)}
	if spec.Project == "" && jobCfg.ProjectName == "" {
		spec.Project = filepath.Base(abs)
	}
	if f.entrypoint != "" {
		spec.Entrypoint = strings.Fields(f.entrypoint)
	}
	fl := cmd.Flags()
	if fl.Changed("num-gpus") {
		if f.numGPUs < 0 {
			return nil, fmt.Errorf("--num-gpus must be 0 or more, got %d", f.numGPUs)
		}
		spec.NumGPUs = &f.numGPUs
	}
	if fl.Changed("ram") {
		if f.ram <= 0 {
			return nil, fmt.Errorf("--ram must be a number of GB greater than 0, got %v", f.ram)
		}
		spec.RAMGB = &f.ram
	}
	if fl.Changed("priority") {
		spec.Priority = &f.priority
	}
	if len(command) == 0 && len(jobCfg.Worker.Command) == 0 {
		e.warn("No command was specified.")
	} else if len(command) > 0 && spec.Entrypoint == nil && len(jobCfg.Entrypoint) == 0 && len(jobCfg.Worker.Entrypoint) == 0 {
		if _, err := os.Stat(filepath.Join(abs, command[0])); err != nil {
			e.warn("%s is not a file in %s; the job runs `python %s`.", command[0], abs, command[0])
		}
	}

	e.info("Preparing to bundle contents of %s for execution. Estimating bundle size.", abs)
	st, err := bundle.Estimate(abs, bundle.JobFolder)
	if err != nil {
		return nil, err
	}
	for _, limit := range bundleWarnings {
		if st.Bytes > limit {
			e.warn("The job folder holds %s in %d files (over %s). Everything in it is uploaded and archived with "+
				"every job: keep large data out of it (list it in %s, or mount it with worker.volumes in job.config.yaml). "+
				"Ctrl-C to cancel.", humanSize(st.Bytes), st.Files, humanSize(limit), bundle.IgnoreFile)
			break
		}
	}
	for _, s := range st.Skipped {
		e.warn("Not bundled: %s", s)
	}
	e.info("Bundling job contents.")
	var digest, path string
	if err := e.timed("bundling", func() (err error) { digest, path, err = makeBundle(abs); return err }); err != nil {
		return nil, err
	}
	defer os.Remove(path)
	if fi, err := os.Stat(path); err == nil {
		e.debugf("bundle %s: %d files, %d bytes, %s compressed", digest, st.Files, st.Bytes, humanSize(fi.Size()))
	}
	if ctx.Err() != nil {
		return nil, &exitError{code: 130, msg: "Foundations INFO: Submission cancelled."}
	}
	var uploaded bool
	var progress func(sent, total int64)
	if fi, err := os.Stat(path); err == nil {
		if p := newUploadProgress(e.stderr, fi.Size()); p != nil {
			progress = p.update
			defer p.done()
		}
	}
	if err := e.timed("uploading the bundle", func() (err error) {
		uploaded, err = client.UploadFileProgress(ctx, digest, path, progress)
		return err
	}); err != nil {
		return nil, cancelled(ctx, err)
	}
	if !uploaded {
		e.debugf("the server already has bundle %s: not uploaded again", digest)
	}
	spec.BundleDigest = digest
	return spec, nil
}

func cancelled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &exitError{code: 130, msg: "Foundations INFO: Submission cancelled."}
	}
	return err
}

// follow waits for a job to start, streams its logs until it ends, and returns the ended job.
// It reconnects, without repeating output, if the connection to the server breaks.
func (e *console) follow(ctx context.Context, client *sdk.Client, id string, announce bool) (*sdk.Job, error) {
	var offset int64
	announced := false
	lost := reconnects{what: "job"}
	for {
		job, err := client.WaitJob(ctx, id, 30*time.Second, sdk.StateQueued, sdk.StateStarting)
		if err == nil && job.State != sdk.StateQueued && job.State != sdk.StateStarting {
			if announce && !announced && job.StartedAt != nil {
				e.info("Job running, streaming logs.")
				announced = true
			}
			var rc io.ReadCloser
			rc, err = client.Logs(ctx, id, offset, true)
			if err == nil {
				var n int64
				n, err = io.Copy(e.stdout, rc)
				rc.Close()
				offset += n
				if err == nil {
					if job, err = client.Job(ctx, id); err == nil && sdk.Finished(job.State) {
						return job, nil
					}
				}
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			if err := lost.retry(ctx, e, err); err != nil {
				return nil, err
			}
			continue
		}
		lost.failures = 0
	}
}

// reconnects counts the requests of a follow that failed in a row: a lost connection is said
// once and retried every second, for about two minutes.
type reconnects struct {
	what     string // what the lost connection does not affect: "job", "search"
	failures int
}

// retry waits a second after a failed request and returns nil, or returns the error to give up
// with: one that is not a lost connection, the context's, or the 121st in a row.
func (r *reconnects) retry(ctx context.Context, e *console, err error) error {
	var ue *sdk.UnreachableError
	if !errors.As(err, &ue) && !errors.Is(err, io.ErrUnexpectedEOF) && !isConnReset(err) {
		return err
	}
	if r.failures++; r.failures == 1 {
		e.warn("Lost the connection to the scheduler; retrying (the %s is not affected).", r.what)
	}
	if r.failures > 120 {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
		return nil
	}
}

func isConnReset(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "unexpected EOF") || strings.Contains(s, "broken pipe")
}

// jobOutcome prints how a job ended and turns failure into a non-zero exit.
func jobOutcome(e *console, job *sdk.Job) error {
	switch job.State {
	case sdk.StateCompleted:
		e.info("Job '%s' has completed.", job.ID)
		return nil
	case sdk.StateStopped:
		return &exitError{code: 1, msg: fmt.Sprintf("Foundations INFO: Job '%s' was stopped.", job.ID)}
	}
	reason := job.Reason
	if reason == "" {
		reason = "unknown reason"
	}
	return &exitError{code: 1, msg: fmt.Sprintf("Foundations ERROR: Job '%s' has failed: %s.", job.ID, strings.TrimSuffix(reason, "."))}
}

// makeBundle writes the folder's bundle to a temporary file and returns its digest.
func makeBundle(dir string) (string, string, error) {
	tmp, err := os.CreateTemp("", "atlas-bundle-*.tar.gz")
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	_, err = bundle.Create(dir, io.MultiWriter(tmp, h), bundle.JobFolder)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", "", err
	}
	return fmt.Sprintf("sha256:%x", h.Sum(nil)), tmp.Name(), nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("want True or False, got %q", s)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KB"
	case n == 1:
		return "1 byte"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
