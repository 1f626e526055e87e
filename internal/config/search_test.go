package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSearchGolden(t *testing.T) {
	t.Parallel()
	for _, in := range inputs(t, "search") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			name := filepath.Base(in)
			s, err := ParseSearch(name, data)
			if err != nil {
				requireConfigError(t, err, name, true)
				require.Nil(t, s)
				checkGolden(t, in, render(nil, err))
			} else {
				for _, w := range s.Warnings {
					require.NotContains(t, w, "\n")
					require.Regexp(t, "^"+regexp.QuoteMeta(name)+`:\d+: `, w)
				}
				// What is stored is read back the same.
				data, jerr := json.Marshal(s)
				require.NoError(t, jerr)
				var back Search
				require.NoError(t, json.Unmarshal(data, &back))
				again, _ := json.Marshal(&back)
				require.JSONEq(t, string(data), string(again))
				checkGolden(t, in, render(struct {
					Search   *Search
					Warnings []string
					Rungs    []int64
					Trials   int
				}{s, s.Warnings, s.Rungs(), s.Trials()}, nil))
			}
			seedFuzz(t, "FuzzParseSearch", in, data)
		})
	}
}

func TestParseSearchGoldenCoversTheBrief(t *testing.T) {
	t.Parallel()
	// Every kind of bad input the product promises a clear error for has a golden file.
	for _, name := range []string{"unknown-method", "min-greater-than-max", "categorical-empty"} {
		data, err := os.ReadFile(filepath.Join("testdata", "search", name+".golden"))
		require.NoError(t, err, name)
		require.Regexp(t, `^error: `, string(data))
	}
}

// A job.config.yaml's search: section is not an unknown key of the job's config.
func TestParseJobLeavesTheSearchSection(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "search", "full.yaml"))
	require.NoError(t, err)
	j, err := ParseJob(JobConfigFile, data)
	require.NoError(t, err)
	require.Empty(t, j.Warnings)
	require.Equal(t, "mnist", j.ProjectName)
}

func TestSearchRungs(t *testing.T) {
	t.Parallel()
	s := &Search{Method: "asha", ReductionFactor: 3, MinSteps: 1, MaxSteps: 27}
	require.Equal(t, []int64{1, 3, 9}, s.Rungs())
	s = &Search{Method: "asha", ReductionFactor: 2, MinSteps: 5, MaxSteps: 41}
	require.Equal(t, []int64{5, 10, 20, 40}, s.Rungs())
	s.Method = "random"
	require.Nil(t, s.Rungs())
}
