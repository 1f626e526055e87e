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
		Short: "Get a job's logs or its archive, list jobs and the queue, or show a search",
	}
	var follow bool
	logs := &cobra.Command{
		Use:   "logs <scheduler_config> <job_id>",
		Short: "Print a job's output so far (works while it runs)",
		Args:  cobra.ExactArgs(2),
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
	job := &cobra.Command{
		Use:   "job <scheduler_config> <job_id>",
		Short: "Download a finished job's working directory into ./<job_id> (or --save_dir)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, sub, err := e.client(args[0])
			if err != nil {
				return err
			}
			id := args[1]
			ctx := cmd.Context()
			if _, err := client.Job(ctx, id); sdk.IsNotFound(err) {
				return fmt.Errorf("job `%s` does not exist for environment `%s`", id, sub.Name)
			} else if err != nil {
				return err
			}
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
			fmt.Fprintf(e.stdout, "Successfully retrieved Job %s from archive store into %s\n", id, abs)
			return nil
		},
	}
	job.Flags().StringVar(&saveDir, "save_dir", "", "folder to extract into (default: ./<job_id>)")
	job.Flags().StringVar(&saveDir, "save-dir", "", "same as --save_dir")
	_ = job.Flags().MarkHidden("save-dir")
	get.AddCommand(logs, job, jobsCommand(e), queueCommand(e), getSearchCommand(e))
	return get
}

func stopCommand(e *console) *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "stop [job] <scheduler_config> <job_id>",
		Short: "Stop a running job, or take a queued job out of the queue",
		Long: `Stop a running job: it gets SIGTERM, then SIGKILL if it has not exited after the grace period,
and its directory is archived. The command waits until all of that is done and says how the job
ended; with --no-wait it returns at once, while the job is still stopping. A queued job leaves
the queue and never runs.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 3 && args[0] == "job" || len(args) == 2 {
				return nil
			}
			return errors.New("usage: foundations stop job <scheduler_config> <job_id>")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 3 {
				args = args[1:]
			}
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			before, err := client.Job(ctx, args[1])
			if err != nil {
				return err
			}
			j, err := client.StopJob(ctx, args[1])
			if err != nil {
				return err
			}
			switch {
			case before.State == sdk.StateQueued && j.State == sdk.StateStopped:
				fmt.Fprintf(e.stdout, "Removed queued job %s from the queue\n", j.ID)
				return nil
			case j.State != sdk.StateStopping:
				fmt.Fprintf(e.stdout, "Stopped job %s%s\n", j.ID, reasonSuffix(j))
				return nil
			case noWait:
				fmt.Fprintf(e.stdout, "Stopping job %s (SIGTERM sent; it is archived once it has exited)\n", j.ID)
				return nil
			}
			e.info("Stopping job %s: SIGTERM sent; waiting for it to exit and be archived. Ctrl-C stops waiting, not the stop.", j.ID)
			ctx, stopWaiting := signal.NotifyContext(ctx, os.Interrupt)
			defer stopWaiting()
			if j, err = waitWhile(ctx, client, j.ID, sdk.StateStopping); err != nil {
				if ctx.Err() != nil {
					fmt.Fprintf(e.stdout, "Stopping job %s (still stopping; no longer waiting)\n", args[1])
					return nil
				}
				return err
			}
			fmt.Fprintf(e.stdout, "Stopped job %s%s\n", j.ID, reasonSuffix(j))
			return nil
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once while the job is still stopping")
	cmd.AddCommand(stopSearchCommand(e))
	return cmd
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
	cmd := &cobra.Command{
		Use:   "clear-queue <scheduler_config>",
		Short: "Remove queued jobs (of every project, or of --project)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			res, err := client.ClearQueue(cmd.Context(), project)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Removed %d job(s) from queue\n", res.Removed)
			if res.Stopped > 0 {
				fmt.Fprintf(e.stdout, "Stopping %d job(s) that had not started running: %s\n", res.Stopped, strings.Join(res.StoppedIDs, " "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "only this project's queued jobs")
	return cmd
}

func deleteCommand(e *console) *cobra.Command {
	del := &cobra.Command{Use: "delete", Short: "Delete a finished job"}
	del.AddCommand(&cobra.Command{
		Use:   "job <scheduler_config> <job_id>",
		Short: "Delete a completed, failed or stopped job: its record, logs, archive and artifacts",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			err = client.DeleteJob(ctx, args[1])
			if sdk.IsConflict(err) {
				// A job whose stop was asked for is deleted once it has stopped.
				if j, jerr := client.Job(ctx, args[1]); jerr == nil && j.State == sdk.StateStopping {
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
			fmt.Fprintf(e.stdout, "Job %s successfully deleted\n", args[1])
			return nil
		},
	})
	return del
}
