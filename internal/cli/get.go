package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/sdk"
)

func getCommand(e *env) *cobra.Command {
	get := &cobra.Command{
		Use:   "get",
		Short: "Get a job's logs or its archive, or list jobs and the queue",
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
	get.AddCommand(logs, job, jobsCommand(e), queueCommand(e))
	return get
}

func stopCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "stop [job] <scheduler_config> <job_id>",
		Short: "Stop a running job, or take a queued job out of the queue",
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
			before, err := client.Job(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			j, err := client.StopJob(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			if before.State == sdk.StateQueued {
				fmt.Fprintf(e.stdout, "Removed queued job %s from the queue\n", j.ID)
			} else {
				fmt.Fprintf(e.stdout, "Stopped running job %s\n", j.ID)
			}
			return nil
		},
	}
}

func clearQueueCommand(e *env) *cobra.Command {
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
			return nil
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "only this project's queued jobs")
	return cmd
}

func deleteCommand(e *env) *cobra.Command {
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
			if err := client.DeleteJob(cmd.Context(), args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Job %s successfully deleted\n", args[1])
			return nil
		},
	})
	return del
}
