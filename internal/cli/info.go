package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/config"
)

func infoCommand(e *console) *cobra.Command {
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

func loginCommand(e *console) *cobra.Command {
	var tok string
	cmd := &cobra.Command{
		Use:   "login <scheduler_url>",
		Short: "Check an API token against a scheduler and store it in $FOUNDATIONS_HOME/credentials.yaml",
		Long: `Check an API token against a scheduler and store it in $FOUNDATIONS_HOME/credentials.yaml
(readable by you only). The server's admin creates tokens with ` + "`atlas-server token create USER`" + `.
FOUNDATIONS_TOKEN, when set, is used instead of stored tokens.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := strings.TrimRight(args[0], "/")
			if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
				return fmt.Errorf("invalid scheduler URL %q: want http://host:port or https://host:port", args[0])
			}
			if tok == "" {
				fmt.Fprint(e.stderr, "Token: ")
				if _, err := fmt.Fscanln(e.stdin, &tok); err != nil || tok == "" {
					return fmt.Errorf("no token given")
				}
			}
			who, err := e.newClient(url, tok).Whoami(cmd.Context())
			if err != nil {
				return fmt.Errorf("Login Failed! %s", oneLine(err))
			}
			path, err := config.SaveCredential(url, who.User, tok)
			if err != nil {
				return err
			}
			switch {
			case !who.Auth:
				fmt.Fprintf(e.stdout, "Login Succeeded! (the server does not require tokens) Token stored in %s\n", path)
			default:
				fmt.Fprintf(e.stdout, "Login Succeeded! Logged in to %s as %s. Token stored in %s\n", url, who.User, path)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&tok, "token", "t", "", "API token (prompted for when not given)")
	return cmd
}
