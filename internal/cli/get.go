package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/sdk"
)

func getCommand(e *console) *cobra.Command {
	get := &cobra.Command{
		Use:   "get",
		Short: "Get a job's logs or its archive, list jobs, projects, searches and the queue, or show a search",
		Example: `  foundations get logs scheduler 45540b52
  foundations get job scheduler 45540b52
  foundations get jobs scheduler --project my_project`,
	}
	var follow bool
	logs := &cobra.Command{
		Use:   "logs <scheduler_config> <job_id>",
		Short: "Print a job's output so far (works while it runs)",
		Long: `Print a job's output so far (works while it runs), as raw text. The job id may be any
unique prefix of it of at least 4 characters, such as the 8 the GUI shows.`,
		Example: `  foundations get logs scheduler 45540b52
  foundations get logs scheduler 45540b52 -f     # keep printing until the job ends`,
		Args:              positional("<scheduler_config>", "<job_id>"),
		ValidArgsFunction: completeEnvAndJobs(e, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			job, err := client.Job(ctx, args[1])
			if err != nil {
				return err
			}
			if job.State == sdk.StateQueued && !follow {
				e.info("Job '%s' is queued and has not produced any logs yet.", job.ID)
				return nil
			}
			if follow {
				_, err := e.follow(ctx, client, job.ID, false)
				return err
			}
			rc, err := client.Logs(ctx, job.ID, 0, false)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(e.stdout, rc)
			return err
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the job ends")

	var saveDir string
	var asJSON bool
	job := &cobra.Command{
		Use:   "job <scheduler_config> <job_id>",
		Short: "Download a finished job's working directory into ./<job_id> (or --save_dir)",
		Long: `Download a finished job's working directory (its archive: the folder as the job left it,
with the files it wrote) and extract it into ./<job_id>, or --save_dir. The job id may be any
unique prefix of it; the folder is named after the whole id. "foundations describe job" shows
the job's state, params and metrics instead.`,
		Example: `  foundations get job scheduler 45540b52
  foundations get job scheduler 45540b52 --save_dir results/`,
		Args:              positional("<scheduler_config>", "<job_id>"),
		ValidArgsFunction: completeEnvAndJobs(e, false, sdk.StateCompleted, sdk.StateFailed, sdk.StateStopped),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, sub, err := e.client(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			j, err := client.Job(ctx, args[1])
			if sdk.IsNotFound(err) {
				return fmt.Errorf("job `%s` does not exist for environment `%s`", args[1], sub.Name)
			} else if err != nil {
				return err
			}
			id := j.ID
			dst := saveDir
			if dst == "" {
				dst = id
			}
			if entries, err := os.ReadDir(dst); err == nil && len(entries) > 0 {
				return fmt.Errorf("%s already exists and is not empty; remove it or choose another folder with --save_dir", dst)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			rc, err := client.Archive(ctx, id)
			if err != nil {
				return err
			}
			defer rc.Close()
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			if err := bundle.Extract(rc, dst, bundle.DefaultLimits); err != nil {
				return fmt.Errorf("extract the archive of job %s: %w", id, err)
			}
			abs, _ := filepath.Abs(dst)
			if asJSON {
				return printJSON(e, map[string]string{"id": id, "dir": abs})
			}
			fmt.Fprintf(e.stdout, "Successfully retrieved Job %s from archive store into %s\n", id, abs)
			return nil
		},
	}
	job.Flags().StringVar(&saveDir, "save_dir", "", "folder to extract into (default: ./<job_id>)")
	job.Flags().StringVar(&saveDir, "save-dir", "", "same as --save_dir")
	_ = job.Flags().MarkHidden("save-dir")
	jsonFlag(job, &asJSON, `{"id", "dir"}: the job's whole id and the folder it was extracted into`)
	get.AddCommand(logs, job, jobsCommand(e), queueCommand(e), getSearchCommand(e), projectsCommand(e), searchesCommand(e))
	return get
}

// jsonFlag adds --json to a command that prints data: what it prints instead.
func jsonFlag(cmd *cobra.Command, asJSON *bool, what string) {
	cmd.Flags().BoolVar(asJSON, "json", false, "print JSON on stdout: "+what)
}

// jobResult is what stop and delete say of each job, and print with --json.
type jobResult struct {
	ID     string `json:"id"`
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// jobResults collects what a command did to each of several jobs: a job that fails is
// reported on one "Error:" line at once, the others are still done, and the command exits 1.
// With one job, its error is the command's error, as for any other command.
type jobResults struct {
	e    *console
	many bool
	list []*jobResult
	err  error
}

func (e *console) jobResults(ids []string) *jobResults {
	return &jobResults{e: e, many: len(ids) > 1}
}

func (rs *jobResults) add(r *jobResult) *jobResult {
	rs.list = append(rs.list, r)
	return r
}

// fail records that r's job failed with err.
func (rs *jobResults) fail(r *jobResult, err error) {
	msg := oneLine(err)
	if !strings.Contains(msg, r.ID) {
		msg = "job " + r.ID + ": " + msg
	}
	r.Error = msg
	if rs.many {
		fmt.Fprintf(rs.e.stderr, "Error: %s\n", msg)
	} else {
		rs.err = err
	}
}

// done prints the results with --json, and returns the command's error.
func (rs *jobResults) done(asJSON bool) error {
	if asJSON {
		if err := printJSON(rs.e, rs.list); err != nil {
			return err
		}
	}
	if rs.err != nil {
		return rs.err
	}
	for _, r := range rs.list {
		if r.Error != "" {
			return &exitError{code: 1}
		}
	}
	return nil
}

// result prints a line of a command's result on stdout, unless it prints JSON instead.
func (e *console) result(asJSON bool, format string, args ...any) {
	if !asJSON {
		fmt.Fprintf(e.stdout, format+"\n", args...)
	}
}

func stopCommand(e *console) *cobra.Command {
	var noWait, asJSON bool
	ids := positional("<scheduler_config>", "<job_id>...")
	cmd := &cobra.Command{
		Use:   "stop [job] <scheduler_config> <job_id>...",
		Short: "Stop running jobs, or take queued jobs out of the queue",
		Long: `Stop running jobs: each gets SIGTERM, then SIGKILL if it has not exited after the grace
period, and its directory is archived. The command waits until all of that is done and says how
each job ended; with --no-wait it returns at once, while the jobs are still stopping. A queued
job leaves the queue and never runs. Job ids may be any unique prefix (at least 4 characters);
a job that cannot be stopped is reported and the others are still stopped (exit code 1).`,
		Example: `  foundations stop job scheduler 45540b52
  foundations stop scheduler 45540b52 9c0e11aa 77d3b2f0
  foundations stop job scheduler 45540b52 --no-wait`,
		Args: func(cmd *cobra.Command, args []string) error {
			return ids(cmd, trimJob(args))
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 && strings.HasPrefix("job", toComplete) {
				envs, d := completeEnvAndJobs(e, true)(cmd, args, toComplete)
				return append([]cobra.Completion{"job"}, envs...), d
			}
			return completeEnvAndJobs(e, true, sdk.StateQueued, sdk.StateStarting, sdk.StateRunning, sdk.StateStopping)(cmd, trimJob(args), toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			args = trimJob(args)
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rs := e.jobResults(args[1:])
			// Every job is asked to stop first, so that they stop side by side; then the
			// command waits for each.
			var stopping []*jobResult
			for _, id := range args[1:] {
				r := rs.add(&jobResult{ID: id})
				before, err := client.Job(ctx, id)
				var j *sdk.Job
				if err == nil {
					r.ID = before.ID
					j, err = client.StopJob(ctx, before.ID)
				}
				if err != nil {
					rs.fail(r, err)
					continue
				}
				r.State, r.Reason = j.State, j.Reason
				switch {
				case before.State == sdk.StateQueued && j.State == sdk.StateStopped:
					e.result(asJSON, "Removed queued job %s from the queue", j.ID)
				case j.State != sdk.StateStopping:
					e.result(asJSON, "Stopped job %s%s", j.ID, reasonSuffix(j))
				case noWait:
					e.result(asJSON, "Stopping job %s (SIGTERM sent; it is archived once it has exited)", j.ID)
				default:
					e.info("Stopping job %s: SIGTERM sent; waiting for it to exit and be archived. Ctrl-C stops waiting, not the stop.", j.ID)
					stopping = append(stopping, r)
				}
			}
			ctx, stopWaiting := signal.NotifyContext(ctx, os.Interrupt)
			defer stopWaiting()
			for _, r := range stopping {
				j, err := waitWhile(ctx, client, r.ID, sdk.StateStopping)
				switch {
				case ctx.Err() != nil:
					e.result(asJSON, "Stopping job %s (still stopping; no longer waiting)", r.ID)
				case err != nil:
					rs.fail(r, err)
				default:
					r.State, r.Reason = j.State, j.Reason
					e.result(asJSON, "Stopped job %s%s", j.ID, reasonSuffix(j))
				}
			}
			return rs.done(asJSON)
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once while the jobs are still stopping")
	jsonFlag(cmd, &asJSON, `a list of {"id", "state", "reason", "error"}, one per job`)
	cmd.AddCommand(stopSearchCommand(e))
	return cmd
}

// trimJob drops the "job" of "stop job <scheduler_config> ...".
func trimJob(args []string) []string {
	if len(args) > 0 && args[0] == "job" {
		return args[1:]
	}
	return args
}

// reasonSuffix is ": <reason>" of a job, when it has one.
func reasonSuffix(j *sdk.Job) string {
	if j.Reason == "" {
		return ""
	}
	return ": " + j.Reason
}

// waitWhile waits, on the server's long poll, until a job's state is none of states.
func waitWhile(ctx context.Context, client *sdk.Client, id string, states ...string) (*sdk.Job, error) {
	for {
		j, err := client.WaitJob(ctx, id, time.Minute, states...)
		if err != nil || !slices.Contains(states, j.State) {
			return j, err
		}
	}
}

func clearQueueCommand(e *console) *cobra.Command {
	var project string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "clear-queue <scheduler_config>",
		Short: "Remove queued jobs (of every project, or of --project)",
		Example: `  foundations clear-queue scheduler
  foundations clear-queue scheduler --project my_project`,
		Args:              positional("<scheduler_config>"),
		ValidArgsFunction: completeEnv,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			res, err := client.ClearQueue(cmd.Context(), project)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e, res)
			}
			fmt.Fprintf(e.stdout, "Removed %d job(s) from queue\n", res.Removed)
			if res.Stopped > 0 {
				fmt.Fprintf(e.stdout, "Stopping %d job(s) that had not started running: %s\n", res.Stopped, strings.Join(res.StoppedIDs, " "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "only this project's queued jobs")
	jsonFlag(cmd, &asJSON, `{"removed", "ids", "stopped", "stopped_ids"}, as POST /api/v1/queue/clear answers`)
	return cmd
}

func deleteCommand(e *console) *cobra.Command {
	del := &cobra.Command{
		Use:     "delete",
		Short:   "Delete finished jobs",
		Example: "  foundations delete job scheduler 45540b52 9c0e11aa",
	}
	var asJSON bool
	job := &cobra.Command{
		Use:   "job <scheduler_config> <job_id>...",
		Short: "Delete completed, failed or stopped jobs: their records, logs, archives and artifacts",
		Long: `Delete completed, failed or stopped jobs: their records, logs, archives and artifacts. A job
that is stopping is deleted once it has stopped. Job ids may be any unique prefix (at least 4
characters); a job that cannot be deleted is reported and the others are still deleted (exit
code 1).`,
		Example: `  foundations delete job scheduler 45540b52
  foundations delete job scheduler 45540b52 9c0e11aa 77d3b2f0`,
		Args:              positional("<scheduler_config>", "<job_id>..."),
		ValidArgsFunction: completeEnvAndJobs(e, true, sdk.StateCompleted, sdk.StateFailed, sdk.StateStopped, sdk.StateStopping),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rs := e.jobResults(args[1:])
			for _, id := range args[1:] {
				r := rs.add(&jobResult{ID: id})
				if err := e.deleteJob(ctx, client, r); err != nil {
					rs.fail(r, err)
					continue
				}
				e.result(asJSON, "Job %s successfully deleted", r.ID)
			}
			return rs.done(asJSON)
		},
	}
	jsonFlag(job, &asJSON, `a list of {"id", "state", "error"}, one per job ("deleted" when it was)`)
	del.AddCommand(job)
	return del
}

// deleteJob deletes the job r names (an id or a prefix of one) and fills in r.
func (e *console) deleteJob(ctx context.Context, client *sdk.Client, r *jobResult) error {
	j, err := client.Job(ctx, r.ID)
	if err != nil {
		return err
	}
	r.ID = j.ID
	err = client.DeleteJob(ctx, j.ID)
	if sdk.IsConflict(err) {
		// A job whose stop was asked for is deleted once it has stopped.
		if j, jerr := client.Job(ctx, j.ID); jerr == nil && j.State == sdk.StateStopping {
			e.info("Job %s is stopping; it is deleted once it has stopped.", j.ID)
			if _, err = waitWhile(ctx, client, j.ID, sdk.StateStopping); err != nil {
				return err
			}
			err = client.DeleteJob(ctx, j.ID)
		}
	}
	if err != nil {
		return err
	}
	r.State = "deleted"
	return nil
}
