package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/sdk"
)

// showCommand makes cmd, a command of one <scheduler_config>, print what fetch gets from that
// scheduler: as JSON with --json (jsonWhat says what that is), else as show prints it for people.
func showCommand[T any](e *console, cmd *cobra.Command, jsonWhat string, fetch func(context.Context, *sdk.Client) (T, error),
	show func(w io.Writer, v T) error) *cobra.Command {
	var asJSON bool
	cmd.Args = positional("<scheduler_config>")
	cmd.ValidArgsFunction = completeEnv
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		client, _, err := e.client(args[0])
		if err != nil {
			return err
		}
		v, err := fetch(cmd.Context(), client)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(e, v)
		}
		return show(e.stdout, v)
	}
	jsonFlag(cmd, &asJSON, jsonWhat)
	return cmd
}

// table writes rows aligned in columns.
func table(w io.Writer, rows func(tw io.Writer)) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rows(tw)
	return tw.Flush()
}

func jobsCommand(e *console) *cobra.Command {
	var project, states string
	var limit int
	cmd := showCommand(e, &cobra.Command{
		Use:   "jobs <scheduler_config>",
		Short: "List jobs, newest first",
		Example: `  foundations get jobs scheduler
  foundations get jobs scheduler --project my_project --state running,queued
  foundations get jobs scheduler --limit 0 --json`,
	}, `{"jobs": [...], "total"}, as GET /api/v1/jobs answers`,
		func(ctx context.Context, client *sdk.Client) (*sdk.JobList, error) {
			o := sdk.ListOptions{Project: project, Limit: limit}
			if states != "" {
				o.States = strings.Split(states, ",")
			}
			return client.Jobs(ctx, o)
		},
		func(w io.Writer, list *sdk.JobList) error {
			err := table(w, func(tw io.Writer) {
				fmt.Fprintln(tw, "JOB ID\tNAME\tSTATE\tPROJECT\tUSER\tLAUNCHED\tDURATION")
				for _, j := range list.Jobs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, orDash(j.Name), j.State, j.Project, j.User, clock(j.CreatedAt), duration(j))
				}
			})
			if list.Total > len(list.Jobs) {
				fmt.Fprintf(e.stderr, "(%d of %d jobs; --limit 0 lists all)\n", len(list.Jobs), list.Total)
			}
			return err
		})
	cmd.Flags().StringVar(&project, "project", "", "only this project's jobs")
	cmd.Flags().StringVar(&states, "state", "", "only jobs in these states, e.g. running,queued")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many (0: all)")
	return cmd
}

func queueCommand(e *console) *cobra.Command {
	return showCommand(e, &cobra.Command{
		Use:   "queue <scheduler_config>",
		Short: "Show the queue: queued jobs in order with why each waits, and running jobs",
		Example: `  foundations get queue scheduler
  foundations get queue scheduler --json`,
	}, `{"queued", "queued_total", "running", "workers", "gpus", "executor"}, as GET /api/v1/queue answers`,
		func(ctx context.Context, c *sdk.Client) (*sdk.Queue, error) { return c.Queue(ctx) },
		func(w io.Writer, q *sdk.Queue) error {
			fmt.Fprintf(w, "%d running, %d queued; %d workers, %d GPUs, %s executor\n",
				len(q.Running), q.QueuedTotal, q.Workers, q.GPUs, q.Executor)
			return table(w, func(tw io.Writer) {
				if len(q.Running) > 0 {
					fmt.Fprintln(tw, "\nRUNNING\tNAME\tPROJECT\tUSER\tGPUS\tWORKER\tDURATION")
					for _, j := range q.Running {
						worker := j.WorkerID
						if j.State == "starting" && j.WaitingReason != "" {
							worker = "not running yet: " + j.WaitingReason // a cluster has not placed it
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, orDash(j.Name), j.Project, j.User, strings.Join(j.GPUIDs, ","), worker, duration(j))
					}
				}
				if len(q.Queued) > 0 {
					fmt.Fprintln(tw, "\n#\tQUEUED\tNAME\tPROJECT\tUSER\tGPUS\tWAITING FOR")
					for _, j := range q.Queued {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", j.QueuePosition, j.ID, orDash(j.Name), j.Project, j.User, j.NumGPUs, j.WaitingReason)
					}
				}
			})
		})
}

func projectsCommand(e *console) *cobra.Command {
	return showCommand(e, &cobra.Command{
		Use:   "projects <scheduler_config>",
		Short: "List projects with their jobs by state, most recently active first",
		Example: `  foundations get projects scheduler
  foundations get projects scheduler --json`,
	}, "the list GET /api/v1/projects answers",
		func(ctx context.Context, c *sdk.Client) ([]sdk.Project, error) { return c.Projects(ctx) },
		func(w io.Writer, ps []sdk.Project) error {
			return table(w, func(tw io.Writer) {
				fmt.Fprintln(tw, "PROJECT\tJOBS\tRUNNING\tQUEUED\tCOMPLETED\tFAILED\tLAST ACTIVITY")
				for _, p := range ps {
					c := p.Counts
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", p.Name, p.Jobs, c[sdk.StateRunning]+c[sdk.StateStarting]+c[sdk.StateStopping],
						c[sdk.StateQueued], c[sdk.StateCompleted], c[sdk.StateFailed], clock(p.LastActivity))
				}
			})
		})
}

func searchesCommand(e *console) *cobra.Command {
	var project string
	cmd := showCommand(e, &cobra.Command{
		Use:   "searches <scheduler_config>",
		Short: "List hyperparameter searches, newest first",
		Example: `  foundations get searches scheduler
  foundations get searches scheduler --project my_project --json`,
	}, "the list GET /api/v1/searches answers",
		func(ctx context.Context, client *sdk.Client) ([]*sdk.Search, error) {
			return client.Searches(ctx, project)
		},
		func(w io.Writer, list []*sdk.Search) error {
			return table(w, func(tw io.Writer) {
				fmt.Fprintln(tw, "SEARCH ID\tPROJECT\tSTATE\tMETHOD\tTRIALS\tBEST\tCREATED")
				for _, s := range list {
					best := "-"
					if s.Best != nil && s.Best.Value != nil {
						best = s.Config.Metric + " " + formatNumber(*s.Best.Value)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.ID, s.Project, s.State, s.Config.Method,
						s.TrialsSubmitted, s.TrialsPlanned, best, clock(s.CreatedAt))
				}
			})
		})
	cmd.Flags().StringVar(&project, "project", "", "only this project's searches")
	return cmd
}

func printJSON(e *console, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// orDash is s, or "-" for a column with nothing to show (a job stored before names existed).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func duration(j *sdk.Job) string {
	if j.DurationSeconds == nil {
		return "-"
	}
	return span(time.Duration(*j.DurationSeconds * float64(time.Second)))
}
