package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/sdk"
)

func describeCommand(e *console) *cobra.Command {
	describe := &cobra.Command{
		Use:     "describe",
		Short:   "Show a job: state, times, params, metrics, tags, artifacts",
		Example: "  foundations describe job scheduler 45540b52",
	}
	var asJSON bool
	job := &cobra.Command{
		Use:   "job <scheduler_config> <job_id>",
		Short: "Show a job: state and reason, times, params, metrics (last, min, max), tags, artifacts, worker",
		Long: `Show a job: its name, its state and why it is in it, when it was submitted, started and ended and how long
it waited and ran, its command and worker, its params, the last, min and max of each metric, its
tags and artifacts. The job id may be any unique prefix of it (at least 4 characters).
With --json it prints the job as the API's GET /api/v1/jobs/{id} answers it (see docs/openapi.yaml).`,
		Example: `  foundations describe job scheduler 45540b52
  foundations describe job scheduler 45540b52 --json | jq '.metrics[] | {key, last}'`,
		Args:              positional("<scheduler_config>", "<job_id>"),
		ValidArgsFunction: completeEnvAndJobs(e, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			j, err := client.Job(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e, j)
			}
			printJob(e.stdout, j, time.Now())
			return nil
		},
	}
	jsonFlag(job, &asJSON, "the job object of the API (GET /api/v1/jobs/{id})")
	describe.AddCommand(job)
	return describe
}

// printJob describes a job for people; now is the time running jobs' durations run to.
func printJob(w io.Writer, j *sdk.Job, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Job %s\n", j.ID)
	field := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "  %s:\t"+format+"\n", append([]any{name}, args...)...)
	}
	if j.Name != "" {
		field("name", "%s", j.Name)
	}
	field("project", "%s", j.Project)
	if j.User != "" {
		field("user", "%s", j.User)
	}
	field("state", "%s", j.State)
	if j.Reason != "" {
		field("reason", "%s", j.Reason)
	}
	if j.ExitCode != nil {
		field("exit code", "%d", *j.ExitCode)
	}
	if j.State == sdk.StateQueued && j.QueuePosition > 0 {
		field("queue", "position %d%s", j.QueuePosition, prefixed(": ", j.WaitingReason))
	}
	field("submitted", "%s", clock(j.CreatedAt))
	if j.StartedAt != nil {
		field("started", "%s (after %s in the queue)", clock(*j.StartedAt), span(j.StartedAt.Sub(j.CreatedAt)))
	}
	switch {
	case j.FinishedAt != nil && j.StartedAt != nil:
		field("ended", "%s (ran %s)", clock(*j.FinishedAt), span(j.FinishedAt.Sub(*j.StartedAt)))
	case j.FinishedAt != nil:
		field("ended", "%s (never ran)", clock(*j.FinishedAt))
	case j.StartedAt != nil:
		field("running for", "%s", span(now.Sub(*j.StartedAt)))
	}
	field("command", "%s", strings.Join(append(slices.Clone(j.Entrypoint), j.Command...), " "))
	worker := j.WorkerID
	if j.Executor != "" {
		worker = strings.TrimSpace(worker + " (" + j.Executor + " executor)")
	}
	if worker != "" {
		field("worker", "%s", worker)
	}
	if j.Worker.Image != "" {
		field("image", "%s", j.Worker.Image)
	}
	if len(j.GPUIDs) > 0 || j.NumGPUs > 0 {
		field("gpus", "%d%s", j.NumGPUs, prefixed(" (ids ", strings.Join(j.GPUIDs, ","), ")"))
	}
	if j.SearchID != "" {
		field("search", "%s, trial %d", j.SearchID, j.SearchTrial)
	}
	if j.ParentID != "" {
		field("submitted by", "job %s", j.ParentID)
	}

	params, what := j.Params, "Params"
	if len(params) == 0 && len(j.SubmittedParams) > 0 {
		params, what = j.SubmittedParams, "Params (submitted; the job has not logged them)"
	}
	if len(params) > 0 {
		fmt.Fprintf(tw, "\n%s\n", what)
		for _, kv := range flatParams(params) {
			fmt.Fprintf(tw, "  %s\t%s\n", kv[0], kv[1])
		}
	}
	if len(j.Metrics) > 0 {
		fmt.Fprintf(tw, "\nMetrics\tLAST\tMIN\tMAX\tSTEP\tCOUNT\n")
		for _, m := range j.Metrics {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\n", m.Key, formatValue(m.Last), formatOptional(m.Min), formatOptional(m.Max), m.LastStep, m.Count)
		}
	}
	if len(j.Tags) > 0 {
		fmt.Fprintf(tw, "\nTags\n")
		for _, k := range slices.Sorted(maps.Keys(j.Tags)) {
			fmt.Fprintf(tw, "  %s\t%s\n", k, j.Tags[k])
		}
	}
	if len(j.Artifacts) > 0 {
		fmt.Fprintf(tw, "\nArtifacts\tFILE\tSIZE\n")
		for _, a := range j.Artifacts {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Key, a.Filename, humanSize(a.Size))
		}
	}
	_ = tw.Flush()
}

func formatValue(v any) string {
	if f, ok := v.(float64); ok {
		return formatNumber(f)
	}
	return fmt.Sprint(v)
}

func formatOptional(f *float64) string {
	if f == nil {
		return "-"
	}
	return formatNumber(*f)
}

// prefixed is before+s+after, or "" when s is empty.
func prefixed(before, s string, after ...string) string {
	if s == "" {
		return ""
	}
	return before + s + strings.Join(after, "")
}

func clock(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

// span is a duration as people read it: 1.2s, 3m4s, 2h5m.
func span(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
