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
	var showEnv, asJSON bool
	cmd := &cobra.Command{
		Use:   "info --env",
		Short: "List the scheduler configs (environments) you can submit to",
		Example: `  foundations info --env
  foundations info --env --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !showEnv {
				return cmd.Help()
			}
			cwd, err := os.Getwd()
			if err != nil {
				return err
			}
			envs := config.ListSubmissions(cwd)
			if asJSON {
				type env struct {
					Name         string `json:"name"`
					SchedulerURL string `json:"scheduler_url,omitempty"`
					Path         string `json:"path"`
					Error        string `json:"error,omitempty"`
				}
				out := []env{}
				for _, v := range envs {
					x := env{Name: v.Name, SchedulerURL: v.URL, Path: v.Path}
					if v.Err != nil {
						x.Error = oneLine(v.Err)
					}
					out = append(out, x)
				}
				return printJSON(e, out)
			}
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
	jsonFlag(cmd, &asJSON, `with --env, a list of {"name", "scheduler_url", "path", "error"}`)
	return cmd
}

func loginCommand(e *console) *cobra.Command {
	var tok string
	cmd := &cobra.Command{
		Use:   "login <scheduler_url>",
		Short: "Check an API token against a scheduler and store it in $FOUNDATIONS_HOME/credentials.yaml",
		Long: `Check an API token against a scheduler and store it in $FOUNDATIONS_HOME/credentials.yaml
(readable by you only). The server's admin creates tokens with ` + "`atlas-server token create USER`" + `.
FOUNDATIONS_TOKEN, when set, is used instead of stored tokens. A server that does not require
authentication needs no token: login says so, and stores nothing.`,
		Example: `  foundations login https://atlas.example.org:5555
  foundations login https://atlas.example.org:5555 --token "$(cat token.txt)"`,
		Args: positional("<scheduler_url>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := strings.TrimRight(args[0], "/")
			if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
				return fmt.Errorf("invalid scheduler URL %q: want http://host:port or https://host:port", args[0])
			}
			// A server without authentication takes no token: say so rather than store one
			// it ignores.
			h, err := e.newClient(url, "").Health(cmd.Context())
			if err != nil {
				return fmt.Errorf("Login Failed! %s", oneLine(err))
			}
			if !h.Auth {
				fmt.Fprintf(e.stdout, "The server at %s needs no token: it does not require authentication, so every command works without logging in. Nothing was stored.\n", url)
				return nil
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
			fmt.Fprintf(e.stdout, "Login Succeeded! Logged in to %s as %s. Token stored in %s\n", url, who.User, path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&tok, "token", "t", "", "API token (prompted for when not given)")
	return cmd
}
