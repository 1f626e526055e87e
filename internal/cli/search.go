package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/sdk"
)

type searchFlags struct {
	submitFlags
	config string
	follow bool
}

func searchCommand(e *console) *cobra.Command {
	var f searchFlags
	cmd := &cobra.Command{
		Use:   "search [flags] <scheduler_config> <job_directory> [command...]",
		Short: "Start a hyperparameter search: trials of a job with params the search picks",
		Long: `Bundle <job_directory> once and start a hyperparameter search on the scheduler named by
<scheduler_config>: each trial is an ordinary job running the command with params the search
picks (read them with foundations.load_parameters()). The search is the search: section of the
folder's job.config.yaml, or the file given with --config. It prints the search's id and returns;
with --follow it prints the search's progress until it ends (Ctrl-C stops following only).
--config and --follow may come after the command too; arguments from "--" on are the job's.
"foundations get search" shows it, "foundations stop search" stops it and its trials.
With --json, stdout carries only the search as JSON (as GET /api/v1/searches/{id} answers it).`,
		Example: `  foundations search scheduler . main.py
  foundations search scheduler . main.py --config sweep.yaml --follow
  foundations search --json scheduler . main.py | jq -r .id`,
		DisableFlagParsing: true,
		ValidArgsFunction:  completeSubmit,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			cmd.InheritedFlags()
			flags, pos, command := splitSubmitArgs(fl, args)
			command, own := searchFlagsIn(command)
			if err := fl.Parse(append(flags, own...)); err != nil {
				return &usageError{err}
			}
			e.describe(cmd)
			if help, _ := fl.GetBool("help"); help {
				return cmd.Help()
			}
			if len(pos) < 2 {
				return positional("<scheduler_config>", "<job_directory>")(cmd, pos)
			}
			return e.search(cmd, &f, pos[0], pos[1], command)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "the search, in a file of its own (default: the search: section of job.config.yaml)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "print the search's progress until it ends")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "what runs the command (default: python)")
	fl.StringVar(&f.project, "project-name", "", "project (default: project_name in job.config.yaml, else the folder's name)")
	fl.IntVar(&f.numGPUs, "num-gpus", 0, "GPUs each trial needs (default: num_gpus in job.config.yaml, else 0)")
	fl.Float64Var(&f.ram, "ram", 0, "memory limit of each trial in GB (default: ram in job.config.yaml, else none)")
	fl.IntVar(&f.priority, "priority", 0, "queue priority of the trials; higher runs first")
	jsonFlag(cmd, &f.json, "the search (when it has ended with --follow, else once submitted)")
	return cmd
}

// searchFlagsIn takes the search's own flags (--config FILE, --follow) out of the command,
// where they may come too: `foundations search scheduler . main.py --follow`. Arguments from
// "--" on are the job's.
func searchFlagsIn(command []string) (rest, own []string) {
	for i := 0; i < len(command); i++ {
		a := command[i]
		switch {
		case a == "--":
			return append(rest, command[i:]...), own
		case a == "--follow" || strings.HasPrefix(a, "--config="):
			own = append(own, a)
		case a == "--config" && i+1 < len(command):
			own = append(own, a, command[i+1])
			i++
		default:
			rest = append(rest, a)
		}
	}
	return rest, own
}

func (e *console) search(cmd *cobra.Command, f *searchFlags, envName, dir string, command []string) error {
	client, sub, err := e.client(envName)
	if err != nil {
		return err
	}
	// The search is checked here first, so that a mistake costs no upload; the server checks
	// it again.
	spec := &sdk.SearchSpec{ID: uuid.NewString()}
	if f.config != "" {
		data, err := os.ReadFile(f.config)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		spec.Config, spec.ConfigName = string(data), filepath.Base(f.config)
		if _, err := parseSearchWarn(e, f.config, data); err != nil {
			return err
		}
	} else {
		abs, _ := filepath.Abs(dir)
		path := filepath.Join(abs, config.JobConfigFile)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("no search given: add a search: section to %s, or give the search in a file of its own (--config FILE)", path)
		}
		if _, err := parseSearchWarn(e, path, data); err != nil {
			return err
		}
	}
	// Ctrl-C during submission cancels it; while following, it stops following only.
	ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	e.info("Search submission started. Ctrl-C to cancel.")
	job, err := e.jobSpec(ctx, cmd, &f.submitFlags, client, dir, command)
	if err != nil {
		return err
	}
	job.ID = ""
	spec.Job = *job
	res, err := client.SubmitSearch(ctx, spec)
	if err != nil {
		return cancelled(ctx, err)
	}
	s := res.Search
	e.info("Search submitted with ID '%s'.", s.ID)
	e.info("%s", describeSearch(s))
	if !f.follow {
		e.info("`foundations get search %s %s` shows its trials; %s/searches/%s shows them in the GUI.", sub.Name, s.ID, client.BaseURL(), s.ID)
		if f.json {
			return printJSON(e, s)
		}
		return nil
	}
	e.info("Following the search. Ctrl-C to stop following - the search will not be interrupted.")
	s, err = e.followSearch(ctx, client, s)
	if ctx.Err() != nil {
		e.info("Stopped following. Search '%s' goes on; `foundations get search %s %s` shows it.", spec.ID, sub.Name, spec.ID)
		return nil
	}
	if err != nil {
		return err
	}
	if f.json {
		err = printJSON(e, s)
	} else {
		printSearch(e.stdout, s)
	}
	if err != nil {
		return err
	}
	return searchOutcome(s)
}

// parseSearchWarn parses a search config as the server will, and prints its warnings.
func parseSearchWarn(e *console, path string, data []byte) (*config.Search, error) {
	s, err := config.ParseSearch(path, data)
	if err != nil {
		return nil, err
	}
	for _, w := range s.Warnings {
		e.warn("%s", w)
	}
	return s, nil
}

// describeSearch says in one line what a search does.
func describeSearch(s *sdk.Search) string {
	c := s.Config
	dir := "smaller is better"
	if !c.SmallerIsBetter {
		dir = "larger is better"
	}
	out := fmt.Sprintf("%s search of %s (%s): %d trial(s)", c.Method, c.Metric, dir, s.TrialsPlanned)
	if c.MaxConcurrentTrials > 0 {
		out += fmt.Sprintf(", at most %d at a time", c.MaxConcurrentTrials)
	}
	if c.Seed != nil && c.Method != "grid" {
		out += fmt.Sprintf(", seed %d", *c.Seed)
	}
	if len(s.Rungs) > 0 {
		steps := make([]string, len(s.Rungs))
		for i, r := range s.Rungs {
			steps[i] = strconv.FormatInt(r, 10)
		}
		out += ", rungs at steps " + strings.Join(steps, ", ")
	}
	return out + "."
}

// followSearch prints a line for every trial that starts or ends, and for every new best,
// until the search ends; it returns the search as it ended.
func (e *console) followSearch(ctx context.Context, client *sdk.Client, s *sdk.Search) (*sdk.Search, error) {
	seen := map[int]string{}
	warned := map[string]bool{}
	best := -1
	lost := reconnects{what: "search"}
	for {
		for _, t := range s.Trials {
			if seen[t.Trial] == t.State {
				continue
			}
			seen[t.Trial] = t.State
			switch {
			case t.State == sdk.StateRunning:
				e.info("Trial %d (job %s) running: %s", t.Trial, t.JobID, formatParams(t.Params))
			case sdk.Finished(t.State):
				line := fmt.Sprintf("Trial %d (job %s) %s", t.Trial, t.JobID, t.State)
				if t.Value != nil {
					line += fmt.Sprintf(": %s %s", s.Config.Metric, formatNumber(*t.Value))
				}
				if t.Reason != "" {
					line += " - " + t.Reason
				}
				e.info("%s", line)
			}
		}
		if s.Best != nil && s.Best.Trial != best {
			best = s.Best.Trial
			e.info("Best so far: trial %d, %s %s (%s)", best, s.Config.Metric, formatNumber(*s.Best.Value), formatParams(s.Best.Params))
		}
		for _, w := range s.Warnings {
			if !warned[w] {
				warned[w] = true
				e.warn("%s", w)
			}
		}
		if sdk.SearchFinished(s.State) {
			return s, nil
		}
		next, err := client.WaitSearch(ctx, s.ID, s.Version, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err := lost.retry(ctx, e, err); err != nil {
				return nil, err
			}
			continue
		}
		lost.failures = 0
		s = next
	}
}

// searchOutcome turns a search that did not complete into a non-zero exit.
func searchOutcome(s *sdk.Search) error {
	switch s.State {
	case sdk.SearchCompleted:
		return nil
	case sdk.SearchStopped:
		return &exitError{code: 1, msg: fmt.Sprintf("Foundations INFO: Search '%s' was stopped.", s.ID)}
	}
	return &exitError{code: 1, msg: fmt.Sprintf("Foundations ERROR: Search '%s' has failed: %s.", s.ID, strings.TrimSuffix(s.Reason, "."))}
}

// printSearch prints a search and the table of its trials.
func printSearch(w io.Writer, s *sdk.Search) {
	fmt.Fprintf(w, "Search %s (project %s): %s\n", s.ID, s.Project, s.State)
	if s.Reason != "" {
		fmt.Fprintf(w, "  reason:  %s\n", s.Reason)
	}
	fmt.Fprintf(w, "  %s\n", describeSearch(s))
	var counts []string
	for _, st := range []string{sdk.StateQueued, sdk.StateStarting, sdk.StateRunning, sdk.StateStopping, sdk.StateCompleted, sdk.StateStopped, sdk.StateFailed} {
		if n := s.Counts[st]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, st))
		}
	}
	fmt.Fprintf(w, "  trials:  %d of %d submitted", s.TrialsSubmitted, s.TrialsPlanned)
	if len(counts) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(counts, ", "))
	}
	fmt.Fprintln(w)
	if s.Best != nil {
		fmt.Fprintf(w, "  best:    trial %d (job %s): %s %s with %s\n", s.Best.Trial, s.Best.JobID, s.Config.Metric,
			formatNumber(*s.Best.Value), formatParams(s.Best.Params))
	}
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if len(s.Trials) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TRIAL\tJOB ID\tSTATE\t%s\tSTEP\tPARAMS\tREASON\n", strings.ToUpper(s.Config.Metric))
	for _, t := range s.Trials {
		mark, value, step := "", "-", "-"
		if s.Best != nil && t.Trial == s.Best.Trial {
			mark = " *"
		}
		if t.Value != nil {
			value = formatNumber(*t.Value)
			step = strconv.FormatInt(t.LastStep, 10)
		}
		fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Trial, mark, t.JobID, t.State, value, step, formatParams(t.Params), t.Reason)
	}
	_ = tw.Flush()
}

// formatParams shows params on one line: "lr=0.01 net.layers=2", nested keys joined by dots.
func formatParams(p map[string]any) string {
	var parts []string
	for _, kv := range flatParams(p) {
		parts = append(parts, kv[0]+"="+kv[1])
	}
	return strings.Join(parts, " ")
}

// flatParams lists params as key and value, nested keys joined by dots, in key order.
func flatParams(p map[string]any) [][2]string {
	var out [][2]string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(joinDot(prefix, k), x[k])
			}
		case []any:
			for i, it := range x {
				walk(joinDot(prefix, strconv.Itoa(i)), it)
			}
		case float64:
			out = append(out, [2]string{prefix, formatNumber(x)})
		default:
			out = append(out, [2]string{prefix, fmt.Sprint(x)})
		}
	}
	walk("", p)
	return out
}

func joinDot(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// formatNumber shows a value with at most 6 significant digits.
func formatNumber(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

func getSearchCommand(e *console) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "search <scheduler_config> <search_id>",
		Short: "Show a search: its trials, their state, params and metric, and the best so far",
		Example: `  foundations get search scheduler 3b1f0c2e-5d6a-4c1e-9f7b-0a2d4e6f8a1c
  foundations get search scheduler 3b1f0c2e-5d6a-4c1e-9f7b-0a2d4e6f8a1c --json`,
		Args:              positional("<scheduler_config>", "<search_id>"),
		ValidArgsFunction: completeEnvAndSearch(e),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			s, err := client.Search(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(e, s)
			}
			printSearch(e.stdout, s)
			return nil
		},
	}
	jsonFlag(cmd, &asJSON, "the search with its trials, as GET /api/v1/searches/{id} answers")
	return cmd
}

func stopSearchCommand(e *console) *cobra.Command {
	var noWait, asJSON bool
	cmd := &cobra.Command{
		Use:   "search <scheduler_config> <search_id>",
		Short: "Stop a search: no more trials, and its queued and running trials are stopped",
		Long: `Stop a search: it submits no more trials, its queued trials leave the queue and its running
trials are stopped (SIGTERM, then SIGKILL after the grace period). The command waits until they
have all ended; with --no-wait it returns at once.`,
		Example: `  foundations stop search scheduler 3b1f0c2e-5d6a-4c1e-9f7b-0a2d4e6f8a1c
  foundations stop search scheduler 3b1f0c2e-5d6a-4c1e-9f7b-0a2d4e6f8a1c --no-wait`,
		Args:              positional("<scheduler_config>", "<search_id>"),
		ValidArgsFunction: completeEnvAndSearch(e),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := e.client(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := client.StopSearch(ctx, args[1])
			if err != nil {
				return err
			}
			if s.State == sdk.SearchStopping && !noWait {
				e.info("Stopping search %s: its running trials were sent SIGTERM; waiting for them to end. Ctrl-C stops waiting, not the stop.", s.ID)
				ctx, stopWaiting := signal.NotifyContext(ctx, os.Interrupt)
				defer stopWaiting()
				for s.State == sdk.SearchStopping {
					if s, err = client.WaitSearch(ctx, s.ID, s.Version, time.Minute); err != nil {
						if ctx.Err() != nil {
							e.result(asJSON, "Stopping search %s (still stopping; no longer waiting)", args[1])
							return nil
						}
						return err
					}
				}
			}
			if s.State == sdk.SearchStopping {
				e.result(asJSON, "Stopping search %s (its trials are being stopped)", s.ID)
			} else {
				e.result(asJSON, "Stopped search %s: %d of %d trials had been submitted", s.ID, s.TrialsSubmitted, s.TrialsPlanned)
			}
			if asJSON {
				return printJSON(e, s)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once while the trials are still stopping")
	jsonFlag(cmd, &asJSON, "the search as it ended (or as it is with --no-wait), as GET /api/v1/searches/{id} answers")
	return cmd
}
