package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/sdk"
)

func TestSplitSubmitArgs(t *testing.T) {
	t.Parallel()
	fl := pflag.NewFlagSet("submit", pflag.ContinueOnError)
	fl.String("project-name", "", "")
	fl.Int("num-gpus", 0, "")
	fl.Bool("debug", false, "")
	fl.BoolP("help", "h", false, "")
	fl.StringP("entrypoint", "e", "", "")
	cases := []struct {
		args                       []string
		flags, positional, command []string
	}{
		{[]string{"scheduler", ".", "main.py"}, nil, []string{"scheduler", "."}, []string{"main.py"}},
		{[]string{"scheduler", "--project-name", "P", "dir", "main.py", "--project-name", "Q"},
			[]string{"--project-name", "P"}, []string{"scheduler", "dir"}, []string{"main.py", "--project-name", "Q"}},
		{[]string{"--debug", "scheduler", ".", "--num-gpus=2", "-e", "python3", "main.py", "-v", "--debug"},
			[]string{"--debug", "--num-gpus=2", "-e", "python3"}, []string{"scheduler", "."}, []string{"main.py", "-v", "--debug"}},
		{[]string{"scheduler", ".", "--", "-m", "pkg"}, nil, []string{"scheduler", "."}, []string{"-m", "pkg"}},
		{[]string{"--num-gpus", "1", "--", "scheduler", "-odd-dir", "main.py", "--", "x"},
			[]string{"--num-gpus", "1"}, []string{"scheduler", "-odd-dir"}, []string{"main.py", "--", "x"}},
		{[]string{"scheduler", ".", "--unknown", "main.py"}, []string{"--unknown"}, []string{"scheduler", "."}, []string{"main.py"}},
		{[]string{"scheduler", "--project-name"}, []string{"--project-name"}, []string{"scheduler"}, nil},
		{[]string{"-h"}, []string{"-h"}, nil, nil},
		{[]string{"scheduler", ".", "--"}, nil, []string{"scheduler", "."}, []string{}},
	}
	for _, c := range cases {
		flags, pos, cmd := splitSubmitArgs(fl, c.args)
		require.Equal(t, c.flags, flags, "flags of %q", c.args)
		require.Equal(t, c.positional, pos, "positional arguments of %q", c.args)
		require.Equal(t, c.command, cmd, "command of %q", c.args)
	}
}

func TestAFollowRetriesALostConnectionOnly(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	e := &console{stdout: io.Discard, stderr: &stderr}
	lost := reconnects{what: "search"}
	other := errors.New("search s not found")
	require.ErrorIs(t, lost.retry(t.Context(), e, other), other, "anything but a lost connection ends the follow")
	require.Empty(t, stderr.String())

	gone := &sdk.UnreachableError{URL: "http://127.0.0.1:1", Err: errors.New("connection refused")}
	require.NoError(t, lost.retry(t.Context(), e, gone))
	require.NoError(t, lost.retry(t.Context(), e, fmt.Errorf("read: %w", io.ErrUnexpectedEOF)))
	require.Equal(t, "Foundations WARNING: Lost the connection to the scheduler; retrying (the search is not affected).\n", stderr.String(),
		"said once")
	lost.failures = 120
	require.ErrorIs(t, lost.retry(t.Context(), e, gone), gone, "given up after two minutes")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	lost.failures = 0
	require.ErrorIs(t, lost.retry(ctx, e, gone), context.Canceled)
}
