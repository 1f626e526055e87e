package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// run runs the CLI in-process and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("FOUNDATIONS_HOME", t.TempDir())
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestEveryCommandHasExamples(t *testing.T) {
	root := buildRoot(&console{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && !c.Hidden {
			require.NotEmpty(t, c.Example, "%q has no examples in its --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestAMissingJobIDIsNamed(t *testing.T) {
	for _, args := range [][]string{
		{"stop", "job", "scheduler"},
		{"stop", "scheduler"},
		{"delete", "job", "scheduler"},
		{"get", "logs", "scheduler"},
		{"get", "job", "scheduler"},
		{"describe", "job", "scheduler"},
	} {
		code, stdout, stderr := run(t, args...)
		require.Equal(t, 1, code, "%q", args)
		require.Empty(t, stdout)
		first, usage, _ := strings.Cut(stderr, "\n")
		require.Equal(t, "Error: missing the job id", first, "%q", args)
		require.Contains(t, usage, "Usage:\n  foundations "+args[0], "the usage follows the error")
		require.Contains(t, usage, "Examples:\n")
		require.NotContains(t, stderr, "submission configuration")
	}
	code, _, stderr := run(t, "stop", "job")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "Error: missing the scheduler config and the job id\n"), stderr)
	code, _, stderr = run(t, "get", "logs", "scheduler", "a", "b")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "Error: too many arguments"), stderr)
	code, _, stderr = run(t, "get", "jobs", "scheduler", "--nope")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "Error: unknown flag: --nope\n\nUsage:\n  foundations get jobs"), stderr)
	code, _, stderr = run(t, "get", "lgos")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "Error: unknown command \"lgos\" for \"foundations get\"\n\nUsage:"), stderr)
}
