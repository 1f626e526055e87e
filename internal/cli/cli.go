// Package cli is the `foundations` command. It talks to servers only through the Go client in
// sdk/ and never imports the server's packages (a test checks), so what the CLI can do, any
// client can do.
//
// Results go to stdout; progress and errors go to stderr, prefixed "Foundations INFO:" as Atlas
// did. Every failure is one line and a non-zero exit code.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

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

// env is what every command gets: writers and a way to reach a scheduler.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func (e *env) info(format string, args ...any) {
	fmt.Fprintf(e.stderr, "Foundations INFO: "+format+"\n", args...)
}

func (e *env) warn(format string, args ...any) {
	fmt.Fprintf(e.stderr, "Foundations WARNING: "+format+"\n", args...)
}

// client returns a client for the submission config called name.
func (e *env) client(name string) (*sdk.Client, *config.Submission, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, nil, err
	}
	sub, err := config.LoadSubmission(cwd, name)
	if err != nil {
		return nil, nil, err
	}
	return sdk.New(sub.SchedulerURL, token(sub)), sub, nil
}

// token picks the credential for a scheduler: FOUNDATIONS_TOKEN, then credentials.yaml, then
// the submission config.
func token(sub *config.Submission) string {
	if t := os.Getenv("FOUNDATIONS_TOKEN"); t != "" {
		return t
	}
	if t := config.CredentialFor(sub.SchedulerURL); t != "" {
		return t
	}
	return sub.Token
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
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "foundations",
		Short:         "Submit jobs to Atlas and get their logs and results",
		Version:       version.Get(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("Running Foundations version {{.Version}}\n")
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(initCommand(e), submitCommand(e), getCommand(e), stopCommand(e), clearQueueCommand(e),
		deleteCommand(e), infoCommand(e), loginCommand(e))
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
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

func oneLine(err error) string {
	var ue *sdk.UnreachableError
	if errors.As(err, &ue) {
		return ue.Error()
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
