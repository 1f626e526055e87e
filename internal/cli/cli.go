// Package cli is the `foundations` command. It talks to servers only through the Go client in
// sdk/ and never imports the server's packages (a test checks), so what the CLI can do, any
// client can do.
//
// Results go to stdout; progress and errors go to stderr, prefixed "Foundations INFO:" as Atlas
// did. Every failure is one line and a non-zero exit code. --debug, on every command, adds
// diagnostics on stderr: the config files read, every HTTP call, timings.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/internal/version"
	"github.com/atlasgo/atlas/sdk"
)

// exitError carries an exit code other than 1 (or a silent exit).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// console is what every command gets: its input and output streams, --debug, and a way to
// reach a scheduler (a submission config, which users call an "env")
type console struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	debug          bool // --debug
}

func (e *console) info(format string, args ...any) {
	fmt.Fprintf(e.stderr, "Foundations INFO: "+format+"\n", args...)
}

func (e *console) warn(format string, args ...any) {
	fmt.Fprintf(e.stderr, "Foundations WARNING: "+format+"\n", args...)
}

// debugf prints a diagnostic line with --debug.
func (e *console) debugf(format string, args ...any) {
	if e.debug {
		fmt.Fprintf(e.stderr, "Foundations DEBUG: "+format+"\n", args...)
	}
}

// describe says, with --debug, which command runs where.
func (e *console) describe(cmd *cobra.Command) {
	cwd, _ := os.Getwd()
	e.debugf("foundations %s: %s; FOUNDATIONS_HOME=%s; working directory %s", version.Get(), cmd.CommandPath(), config.Home(), cwd)
}

// timed runs step and, with --debug, says how long it took.
func (e *console) timed(what string, step func() error) error {
	start := time.Now()
	err := step()
	e.debugf("%s took %s", what, time.Since(start).Round(time.Millisecond))
	return err
}

// newClient returns a client for url that, with --debug, describes its HTTP calls.
func (e *console) newClient(url, token string) *sdk.Client {
	c := sdk.New(url, token)
	if e.debug {
		c.SetDebug(e.stderr)
	}
	return c
}

// client returns a client for the submission config called name.
func (e *console) client(name string) (*sdk.Client, *config.Submission, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, nil, err
	}
	if e.debug {
		for _, dir := range config.SubmissionDirs(cwd) {
			e.debugf("looking for %s", filepath.Join(dir, name+".config.yaml"))
		}
	}
	sub, err := config.LoadSubmission(cwd, name)
	if err != nil {
		return nil, nil, err
	}
	tok, from := token(sub)
	e.debugf("read submission config %s: scheduler_url %s, token from %s", sub.Path, sub.SchedulerURL, from)
	return e.newClient(sub.SchedulerURL, tok), sub, nil
}

// token picks the credential for a scheduler: FOUNDATIONS_TOKEN, then credentials.yaml, then
// the submission config. It also says where the token came from (never the token itself).
func token(sub *config.Submission) (string, string) {
	if t := os.Getenv("FOUNDATIONS_TOKEN"); t != "" {
		return t, "FOUNDATIONS_TOKEN"
	}
	if t := config.CredentialFor(sub.SchedulerURL); t != "" {
		return t, filepath.Join(config.Home(), config.CredentialsFile)
	}
	if sub.Token != "" {
		return sub.Token, sub.Path
	}
	return "", "nowhere (none set)"
}

func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// Main runs the CLI with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	start := time.Now()
	e := &console{stdin: stdin, stdout: stdout, stderr: stderr}
	code := execute(ctx, e, args)
	e.debugf("exit code %d after %s", code, time.Since(start).Round(time.Millisecond))
	return code
}

// buildRoot builds the command tree.
func buildRoot(e *console) *cobra.Command {
	stdin, stdout, stderr := e.stdin, e.stdout, e.stderr
	root := &cobra.Command{
		Use:   "foundations",
		Short: "Submit jobs to Atlas and get their logs and results",
		Example: `  foundations init my_project && cd my_project
  foundations submit scheduler . main.py
  foundations describe job scheduler 45540b52
  foundations get logs scheduler 45540b52
  foundations get job scheduler 45540b52`,
		Version:       version.Get(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("Running Foundations version {{.Version}}\n")
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVar(&e.debug, "debug", false, "print diagnostics on stderr: config files read, HTTP calls, timings")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { e.describe(cmd) }
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		return unknownCommand(cmd, args[0])
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	root.AddCommand(initCommand(e), submitCommand(e), searchCommand(e), getCommand(e), describeCommand(e), stopCommand(e),
		clearQueueCommand(e), deleteCommand(e), infoCommand(e), loginCommand(e), cloneCommand(e))
	root.InitDefaultCompletionCmd()
	completionExamples(root)
	withUsage(root)
	return root
}

// execute builds the command tree and runs the command args name.
func execute(ctx context.Context, e *console, args []string) int {
	stderr := e.stderr
	root := buildRoot(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if e.debug {
		for u := err; u != nil; u = errors.Unwrap(u) {
			e.debugf("error %T: %v", u, u)
		}
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "Error: %s\n\n%s", oneLine(err), cmd.UsageString())
		return 1
	}
	var xe *exitError
	if errors.As(err, &xe) {
		if xe.msg != "" {
			fmt.Fprintln(stderr, xe.msg)
		}
		return xe.code
	}
	fmt.Fprintf(stderr, "Error: %s\n", oneLine(err))
	return 1
}

// oneLine is an error as users see it: an unreachable server's own message (not the
// wrapped network error), anything else on one line.
func oneLine(err error) string {
	var ue *sdk.UnreachableError
	if errors.As(err, &ue) {
		return ue.Error()
	}
	return atlas.OneLine(err)
}
