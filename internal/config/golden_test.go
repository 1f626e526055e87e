package config

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

var update = flag.Bool("update", false, "rewrite the .golden files and fuzz seeds under testdata/")

// Each testdata/<kind>/<name>.yaml is parsed and what comes out, the value or the error, is
// compared with <name>.golden. `go test ./internal/config -update` rewrites the golden files
// (read the diff before committing) and copies the inputs into the fuzz seed corpora.

func inputs(t *testing.T, kind string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", kind, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func checkGolden(t *testing.T, input, got string) {
	t.Helper()
	golden := strings.TrimSuffix(input, ".yaml") + ".golden"
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./internal/config -update")
	require.Equal(t, string(want), got, "%s differs: run go test ./internal/config -update and read the diff", golden)
}

func seedFuzz(t *testing.T, fuzzName, input string, data []byte) {
	t.Helper()
	if !*update {
		return
	}
	dir := filepath.Join("testdata", "fuzz", fuzzName)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	name := strings.TrimSuffix(filepath.Base(input), ".yaml")
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n[]byte("+strconv.Quote(string(data))+")\n"), 0o644))
}

func render(v any, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	b, jerr := json.MarshalIndent(v, "", "  ")
	if jerr != nil {
		return "cannot render: " + jerr.Error() + "\n"
	}
	return string(b) + "\n"
}

// requireConfigError checks the shape every config error must have: one line, ErrInvalid,
// starting with the file name and, when withLine, the line.
func requireConfigError(t *testing.T, err error, file string, withLine bool) {
	t.Helper()
	require.ErrorIs(t, err, atlas.ErrInvalid)
	var ce *Error
	require.True(t, errors.As(err, &ce), "%T is not a *config.Error", err)
	msg := err.Error()
	require.NotContains(t, msg, "\n")
	require.NotContains(t, msg, "\r")
	require.True(t, strings.HasPrefix(msg, file+":"), "%q does not start with the file name", msg)
	if withLine {
		require.Regexp(t, "^"+regexp.QuoteMeta(file)+`:\d+: `, msg)
		require.Positive(t, ce.Line)
	}
}

func TestParseJobGolden(t *testing.T) {
	t.Parallel()
	for _, in := range inputs(t, "job") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			name := filepath.Base(in)
			j, err := ParseJob(name, data)
			if err != nil {
				requireConfigError(t, err, name, true)
				require.Nil(t, j)
			} else {
				for _, w := range j.Warnings {
					require.NotContains(t, w, "\n")
					require.Regexp(t, "^"+regexp.QuoteMeta(name)+`:\d+: `, w)
				}
				_, jerr := json.Marshal(j.Params)
				require.NoError(t, jerr, "params must be storable as JSON")
			}
			checkGolden(t, in, render(j, err))
			seedFuzz(t, "FuzzParseJob", in, data)
		})
	}
}

func TestParseJobGoldenCoversTheBrief(t *testing.T) {
	t.Parallel()
	// Every kind of bad input the product promises a clear error for has a golden file.
	for _, name := range []string{
		"malformed-mapping-values", "malformed-line3", "num-gpus-string", "ram-string",
		"volumes-list", "environment-list", "params-list", "log-level-bad", "volumes-relative-host",
		"volumes-bad-mode", "unknown-keys",
	} {
		_, err := os.Stat(filepath.Join("testdata", "job", name+".golden"))
		require.NoError(t, err, name)
	}
}

func TestParseSubmissionGolden(t *testing.T) {
	t.Parallel()
	for _, in := range inputs(t, "submission") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			name := filepath.Base(in)
			s, err := ParseSubmission(strings.TrimSuffix(name, ".yaml"), name, data)
			if err != nil {
				requireConfigError(t, err, name, false)
				require.Nil(t, s)
			} else {
				require.NoError(t, validateURL(s.SchedulerURL))
				require.False(t, strings.HasSuffix(s.SchedulerURL, "/"))
			}
			checkGolden(t, in, render(s, err))
			seedFuzz(t, "FuzzParseSubmission", in, data)
		})
	}
}

func TestLoadServerGolden(t *testing.T) {
	t.Parallel()
	for _, in := range inputs(t, "server") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			home := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(home, "config", ServerConfigFile), data, 0o644))
			s := DefaultServer()
			s.Home = home
			warnings, err := LoadServer(&s)
			file := filepath.Join(home, "config", ServerConfigFile)
			if err != nil {
				requireConfigError(t, err, file, true)
			}
			out := render(struct {
				Server   Server
				Warnings []string
			}{s, warnings}, err)
			checkGolden(t, in, strings.ReplaceAll(out, home, "$FOUNDATIONS_HOME"))
		})
	}
}
