package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/sdk"
)

func cloneCommand(e *console) *cobra.Command {
	clone := &cobra.Command{
		Use:     "clone",
		Short:   "Queue a job again, with some of its params changed",
		Example: "  foundations clone job scheduler 45540b52 --param lr=0.01",
	}
	var params []string
	var name string
	var asJSON bool
	job := &cobra.Command{
		Use:   "job <scheduler_config> <job_id> [--param key=value ...] [--name NAME]",
		Short: "Queue a copy of a job (in any state) with some of its params changed",
		Long: `Queue a copy of a job: the same project, folder, command and resources, and the params it
was submitted with, each --param replacing or adding one (foundations.load_parameters() in the
copy returns them). A value is read as JSON when it is JSON (0.01, 3, true, "a", [1, 2]),
else as a string: --param lr=0.01 --param optimizer=adam. The source may be in any state, and
its id may be any unique prefix of it (at least 4 characters). With --json, stdout carries the
new job as JSON.`,
		Example: `  foundations clone job scheduler 45540b52 --param lr=0.01
  foundations clone job scheduler 45540b52 --param layers='[64, 32]' --name wider
  foundations clone job scheduler 45540b52 --param lr=0.1 --json | jq -r .id`,
		Args:              positional("<scheduler_config>", "<job_id>"),
		ValidArgsFunction: completeEnvAndJobs(e, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec := &sdk.CloneSpec{ID: uuid.NewString(), Name: name}
			if err := config.ValidateJobName(name); err != nil {
				return fmt.Errorf("--name: %w", err)
			}
			var err error
			if spec.Params, err = parseParams(params); err != nil {
				return err
			}
			client, sub, err := e.client(args[0])
			if err != nil {
				return err
			}
			res, err := client.Clone(cmd.Context(), args[1], spec)
			if sdk.IsNotFound(err) {
				return fmt.Errorf("job `%s` does not exist for environment `%s`", args[1], sub.Name)
			} else if err != nil {
				return err
			}
			e.submitted(res.Job)
			if asJSON {
				return printJSON(e, res.Job)
			}
			return nil
		},
	}
	job.Flags().StringArrayVar(&params, "param", nil, "key=value: a param of the copy (repeat for more); the value is JSON or a string")
	job.Flags().StringVar(&name, "name", "", "the copy's name (default: a made-up one such as brave-otter)")
	jsonFlag(job, &asJSON, "the new job, as GET /api/v1/jobs/{id} answers it")
	clone.AddCommand(job)
	return clone
}

// parseParams reads key=value flags: values that are JSON are taken as such, anything else as
// a string.
func parseParams(flags []string) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want key=value", f)
		}
		var val any
		if err := json.Unmarshal([]byte(v), &val); err != nil {
			val = v
		}
		out[k] = val
	}
	return out, nil
}
