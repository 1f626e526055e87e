package search

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/config"
)

func parse(t *testing.T, yaml string) *config.Search {
	t.Helper()
	s, err := config.ParseSearch("search.yaml", []byte(yaml))
	require.NoError(t, err)
	// As stored and read back.
	data, err := json.Marshal(s)
	require.NoError(t, err)
	s, err = decodeConfig(data)
	require.NoError(t, err)
	return s
}

func TestTheGridHasEveryPointOnce(t *testing.T) {
	t.Parallel()
	s := parse(t, `method: grid
metric: loss
smaller_is_better: true
params:
  lr: {type: log_uniform, min: 0.001, max: 0.1, count: 3}
  net:
    layers: {type: int, min: 1, max: 2}
    act: {type: categorical, values: [relu, tanh]}
  dropout: {type: uniform, min: 0, max: 0.5, count: 2}
  batch: 32
`)
	require.Equal(t, 24, s.Trials())
	seen := map[string]bool{}
	for n := range s.Trials() {
		p := GridPoint(s.Params, n)
		key := fmt.Sprint(p)
		require.False(t, seen[key], "point %d repeats %s", n, key)
		seen[key] = true
		require.Equal(t, json.Number("32"), p["batch"])
	}
	require.Len(t, seen, 24)
	// Nested loops over the parameters by name, the last varying fastest.
	require.Equal(t, map[string]any{"batch": json.Number("32"), "dropout": 0.0, "lr": 0.001,
		"net": map[string]any{"act": "relu", "layers": int64(1)}}, GridPoint(s.Params, 0))
	require.Equal(t, map[string]any{"batch": json.Number("32"), "dropout": 0.0, "lr": 0.001,
		"net": map[string]any{"act": "relu", "layers": int64(2)}}, GridPoint(s.Params, 1))
	require.Equal(t, map[string]any{"batch": json.Number("32"), "dropout": 0.0, "lr": 0.001,
		"net": map[string]any{"act": "tanh", "layers": int64(1)}}, GridPoint(s.Params, 2))
	last := GridPoint(s.Params, 23)
	require.Equal(t, 0.5, last["dropout"])
	require.Equal(t, 0.1, last["lr"])
	require.Equal(t, 0.01, GridPoint(s.Params, 4)["lr"], "log-spaced")
}

func TestGridIntWithCountIsEvenlySpaced(t *testing.T) {
	t.Parallel()
	s := parse(t, "method: grid\nmetric: m\nsmaller_is_better: true\nparams:\n  n: {type: int, min: 10, max: 20, count: 3}\n")
	var got []any
	for n := range s.Trials() {
		got = append(got, GridPoint(s.Params, n)["n"])
	}
	require.Equal(t, []any{int64(10), int64(15), int64(20)}, got)
	_, err := config.ParseSearch("s.yaml", []byte("method: grid\nmetric: m\nsmaller_is_better: true\nparams:\n  n: {type: int, min: 1, max: 3, count: 4}\n"))
	require.ErrorContains(t, err, "4 grid points is more than the 3 integers from 1 to 3")
}

func TestRandomPointsAreReproducibleFromTheSeed(t *testing.T) {
	t.Parallel()
	s := parse(t, `method: random
metric: loss
smaller_is_better: true
max_trials: 200
params:
  lr: {type: log_uniform, min: 1.0e-4, max: 0.1}
  dropout: {type: uniform, min: 0.1, max: 0.5}
  layers: {type: int, min: 1, max: 4}
  act: {type: categorical, values: [relu, tanh, {name: gelu, approx: true}]}
  hidden: [{type: int, min: 16, max: 32}, 8]
  opt:
    name: adam
    beta: {type: uniform, min: 0.8, max: 0.99}
`)
	layers, acts := map[int64]bool{}, map[string]bool{}
	for n := range 200 {
		p := RandomPoint(s.Params, 7, n)
		require.Equal(t, p, RandomPoint(s.Params, 7, n), "trial %d is the same whenever it is drawn", n)
		lr := p["lr"].(float64)
		require.True(t, lr >= 1e-4 && lr <= 0.1, "lr %v", lr)
		d := p["dropout"].(float64)
		require.True(t, d >= 0.1 && d <= 0.5)
		l := p["layers"].(int64)
		require.True(t, l >= 1 && l <= 4)
		layers[l] = true
		acts[fmt.Sprint(p["act"])] = true
		h := p["hidden"].([]any)
		require.Len(t, h, 2)
		require.True(t, h[0].(int64) >= 16 && h[0].(int64) <= 32)
		require.Equal(t, json.Number("8"), h[1])
		opt := p["opt"].(map[string]any)
		require.Equal(t, "adam", opt["name"])
		b := opt["beta"].(float64)
		require.True(t, b >= 0.8 && b <= 0.99)
	}
	require.Len(t, layers, 4, "every int from min to max is drawn")
	require.Len(t, acts, 3, "every value of a categorical is drawn")

	// The same seed draws the same trials; another seed others. The values are pinned, so
	// that a change of the generator, which would change every recorded search, is noticed.
	require.NotEqual(t, RandomPoint(s.Params, 7, 0), RandomPoint(s.Params, 8, 0))
	require.NotEqual(t, RandomPoint(s.Params, 7, 0), RandomPoint(s.Params, 7, 1))
	p := RandomPoint(parse(t, "method: random\nmetric: m\nsmaller_is_better: true\nmax_trials: 1\nparams:\n  x: {type: uniform, min: 0, max: 1}\n  k: {type: int, min: 0, max: 1000}\n").Params, 42, 3)
	require.Equal(t, "map[k:705 x:0.009848468868614901]", fmt.Sprint(p))
}

func TestATrialsParamsAreTheJobsWithItsPointOverThem(t *testing.T) {
	t.Parallel()
	s := parse(t, "method: random\nmetric: m\nsmaller_is_better: true\nmax_trials: 3\nseed: 1\nparams:\n  lr: {type: uniform, min: 0, max: 1}\n  epochs: 5\n")
	p := Point(s, map[string]any{"epochs": 100, "data": "mnist"}, 0)
	require.Equal(t, "mnist", p["data"])
	require.Equal(t, json.Number("5"), p["epochs"], "the search's value wins")
	require.Contains(t, p, "lr")
}
