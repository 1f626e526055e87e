package cli

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/config"
)

func infoCommand(e *env) *cobra.Command {
	var showEnv bool
	cmd := &cobra.Command{
		Use:   "info --env",
		Short: "List the scheduler configs (environments) you can submit to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !showEnv {
				return cmd.Help()
			}
			cwd, err := os.Getwd()
			if err != nil {
				return err
			}
			envs := config.ListSubmissions(cwd)
			if len(envs) == 0 {
				fmt.Fprintf(e.stdout, "No environments available (looked in %s)\n", config.SubmissionDirs(cwd)[1])
				return nil
			}
			fmt.Fprintln(e.stdout, "submission configs:")
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "env_name\tscheduler_url\tenv_path")
			for _, env := range envs {
				url := env.URL
				if env.Err != nil {
					url = "(invalid: " + oneLine(env.Err) + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", env.Name, url, env.Path)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&showEnv, "env", false, "list the submission configs")
	return cmd
}

func loginCommand(e *env) *cobra.Command {
	var tok, name string
	cmd := &cobra.Command{
		Use:   "login <scheduler_url>",
		Short: "Store an API token for a scheduler in $FOUNDATIONS_HOME/credentials.yaml",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tok == "" {
				fmt.Fprint(e.stderr, "Token: ")
				if _, err := fmt.Fscanln(e.stdin, &tok); err != nil || tok == "" {
					return fmt.Errorf("no token given")
				}
			}
			path, err := config.SaveCredential(args[0], name, tok)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Login Succeeded! Token stored in %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&tok, "token", "t", "", "API token (prompted for when not given)")
	cmd.Flags().StringVarP(&name, "username", "u", "", "user name, for your reference")
	return cmd
}
