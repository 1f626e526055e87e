package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/sdk"
)

// usageError is a command line that does not fit the command: the error is followed by the
// command's usage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// positional checks a command's arguments against names such as "<scheduler_config>" and
// "<job_id>...": every name is required, and a last name ending in "..." takes one or more.
// A missing argument is named ("missing the job id"), not mistaken for another.
func positional(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		many := strings.HasSuffix(names[len(names)-1], "...")
		if len(args) < len(names) {
			missing := make([]string, 0, len(names)-len(args))
			for _, n := range names[len(args):] {
				missing = append(missing, "the "+argWords(n))
			}
			return usagef("missing %s", strings.Join(missing, " and "))
		}
		if len(args) > len(names) && !many {
			return usagef("too many arguments: want %s, got %q", strings.Join(names, " "), args)
		}
		return nil
	}
}

// argWords is how an error names an argument: "<job_id>..." is "job id".
func argWords(name string) string {
	return strings.ReplaceAll(strings.Trim(name, "<>."), "_", " ")
}

// groupOnly annotates a command that only groups others.
const groupOnly = "group-only"

// withUsage makes the argument and flag errors of every command in the tree usage errors,
// and makes a command that only groups others refuse a subcommand it does not have.
func withUsage(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.Annotations = map[string]string{groupOnly: "true"}
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}",
		`{{if and .Runnable (not (index .Annotations "`+groupOnly+`"))}}`, 1))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					if _, ok := err.(*usageError); !ok {
						err = &usageError{err}
					}
					return err
				}
				return nil
			}
		}
		if c.HasSubCommands() && !c.Runnable() {
			// Runnable only to refuse what is not a subcommand: the usage shows the
			// subcommands alone.
			c.Annotations = map[string]string{groupOnly: "true"}
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return usagef("missing the command: one of %s", strings.Join(subcommandNames(cmd), ", "))
				}
				return unknownCommand(cmd, args[0])
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownCommand is the usage error of a subcommand cmd does not have.
func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return usagef("%s", msg)
}

func subcommandNames(c *cobra.Command) []string {
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return names
}

// completionTimeout bounds what a shell's completion waits for the server.
const completionTimeout = 3 * time.Second

// completeEnvAndJobs completes a command's <scheduler_config> (the submission configs) and, after
// it, job ids from that scheduler (one, or with many any number): those in one of states (any
// state when none), newest first.
func completeEnvAndJobs(e *console, many bool, states ...string) cobra.CompletionFunc {
	return completeEnvAndIDs(e, many, func(ctx context.Context, client *sdk.Client, prefix string) ([]cobra.Completion, error) {
		o := sdk.ListOptions{States: states, Limit: 200}
		if prefix != "" {
			o.Filters = []sdk.Filter{{Field: "id", Op: "contains", Values: []string{prefix}}}
		}
		list, err := client.Jobs(ctx, o)
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, j := range list.Jobs {
			if strings.HasPrefix(j.ID, prefix) {
				out = append(out, cobra.CompletionWithDesc(j.ID, j.Project+", "+j.State))
			}
		}
		return out, nil
	})
}

// completeEnvAndSearch completes a command's <scheduler_config> and <search_id>.
func completeEnvAndSearch(e *console) cobra.CompletionFunc {
	return completeEnvAndIDs(e, false, func(ctx context.Context, client *sdk.Client, prefix string) ([]cobra.Completion, error) {
		list, err := client.Searches(ctx, "")
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, s := range list {
			if strings.HasPrefix(s.ID, prefix) {
				out = append(out, cobra.CompletionWithDesc(s.ID, s.Project+", "+s.State))
			}
		}
		return out, nil
	})
}

// completeEnvAndIDs completes <scheduler_config>, then ids (one, or with many any number) that
// ids lists from that scheduler. Completion never fails: without a config or a server it
// offers nothing.
func completeEnvAndIDs(e *console, many bool, ids func(ctx context.Context, client *sdk.Client, prefix string) ([]cobra.Completion, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return completeEnvs(toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		if len(args) > 1 && !many {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		client, _, err := e.client(args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out, err := ids(ctx, client, toComplete)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeEnv completes a command's only argument, <scheduler_config>.
func completeEnv(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeEnvs(toComplete), cobra.ShellCompDirectiveNoFileComp
}

func completeEnvs(toComplete string) []cobra.Completion {
	cwd, err := os.Getwd()
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, env := range config.ListSubmissions(cwd) {
		if strings.HasPrefix(env.Name, toComplete) && env.Err == nil {
			out = append(out, cobra.CompletionWithDesc(env.Name, env.URL))
		}
	}
	return out
}

// completionExamples says, in the help of `foundations completion` and of each shell's
// command, how to load the script.
func completionExamples(root *cobra.Command) {
	examples := map[string]string{
		"bash":       "  source <(foundations completion bash)            # this shell\n  foundations completion bash > /etc/bash_completion.d/foundations",
		"zsh":        "  source <(foundations completion zsh)             # this shell\n  foundations completion zsh > \"${fpath[1]}/_foundations\"",
		"fish":       "  foundations completion fish | source\n  foundations completion fish > ~/.config/fish/completions/foundations.fish",
		"powershell": "  foundations completion powershell | Out-String | Invoke-Expression",
	}
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = examples["bash"] + "\n" + examples["zsh"] + "\n" + examples["fish"]
		for _, sh := range c.Commands() {
			sh.Example = examples[sh.Name()]
		}
	}
}

// completeSubmit completes the <scheduler_config> and the <job_directory> (folders) of submit
// and search; what follows is the job's command, completed as files.
func completeSubmit(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	_, pos, command := splitSubmitArgs(cmd.Flags(), args)
	switch {
	case len(command) > 0 || strings.HasPrefix(toComplete, "-"):
		return nil, cobra.ShellCompDirectiveDefault
	case len(pos) == 0:
		return completeEnvs(toComplete), cobra.ShellCompDirectiveNoFileComp
	case len(pos) == 1:
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	return nil, cobra.ShellCompDirectiveDefault
}
