package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/sdk"
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

// The e2e tests cover the missing job id; these are the other command lines that do not fit.
func TestUsageErrorsShowTheUsage(t *testing.T) {
	code, stdout, stderr := run(t, "stop", "job")
	require.Equal(t, 1, code)
	require.Empty(t, stdout)
	require.True(t, strings.HasPrefix(stderr, "Error: missing the scheduler config and the job id\n\nUsage:\n  foundations stop"), stderr)
	code, _, stderr = run(t, "get", "logs", "scheduler", "a", "b")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, `Error: too many arguments: want <scheduler_config> <job_id>, got ["scheduler" "a" "b"]`), stderr)
	code, _, stderr = run(t, "get", "lgos")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "Error: unknown command \"lgos\" for \"foundations get\"\n\nUsage:"), stderr)
	code, _, stderr = run(t, "get")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "Error: missing the command: one of "), stderr)
	code, _, stderr = run(t, "frobnicate")
	require.Equal(t, 1, code)
	require.True(t, strings.HasPrefix(stderr, "Error: unknown command \"frobnicate\" for \"foundations\"\n\nUsage:"), stderr)
}

// Durations read the same in every command: get jobs and describe job.
func TestDurations(t *testing.T) {
	for secs, want := range map[float64]string{0.04: "0s", 1.23: "1.2s", 184.6: "3m5s", 3723.4: "1h2m"} {
		require.Equal(t, want, duration(&sdk.Job{DurationSeconds: &secs}), "%v s", secs)
		require.Equal(t, want, span(time.Duration(secs*float64(time.Second))), "%v s", secs)
	}
	require.Equal(t, "-", duration(&sdk.Job{}))
}
