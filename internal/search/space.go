// The points of a search space: the n-th point of a grid, and the n-th random point of a seed.

package search

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/atlasgo/atlas/internal/config"
)

// leaves lists the parameters of a space that take values, in a fixed order: the fields of a
// mapping by name, the items of a list in order, depth first.
func leaves(p *config.Param, out []*config.Param) []*config.Param {
	switch p.Type {
	case "dict":
		for _, k := range sortedKeys(p.Fields) {
			out = leaves(p.Fields[k], out)
		}
	case "list":
		for _, it := range p.Items {
			out = leaves(it, out)
		}
	default:
		out = append(out, p)
	}
	return out
}

// build makes the params of one point from the values of the leaves, in leaves' order.
func build(p *config.Param, values []any) (any, []any) {
	switch p.Type {
	case "dict":
		m := make(map[string]any, len(p.Fields))
		for _, k := range sortedKeys(p.Fields) {
			m[k], values = build(p.Fields[k], values)
		}
		return m, values
	case "list":
		l := make([]any, len(p.Items))
		for i, it := range p.Items {
			l[i], values = build(it, values)
		}
		return l, values
	}
	return values[0], values[1:]
}

// gridValues are the values a parameter takes in a grid.
func gridValues(p *config.Param) []any {
	switch p.Type {
	case "categorical":
		return p.Values
	case "const":
		return []any{p.Value}
	case "int":
		lo, hi := int64(*p.Min), int64(*p.Max)
		if p.Count == 0 {
			out := make([]any, 0, hi-lo+1)
			for v := lo; v <= hi; v++ {
				out = append(out, v)
			}
			return out
		}
		out := make([]any, p.Count)
		for i := range out {
			out[i] = lo + int64(math.Round(spaced(0, float64(hi-lo), i, p.Count)))
		}
		return out
	case "uniform":
		out := make([]any, p.Count)
		for i := range out {
			out[i] = tidy(spaced(*p.Min, *p.Max, i, p.Count))
		}
		return out
	case "log_uniform":
		out := make([]any, p.Count)
		lo, hi := math.Log(*p.Min), math.Log(*p.Max)
		for i := range out {
			out[i] = tidy(clamp(math.Exp(spaced(lo, hi, i, p.Count)), *p.Min, *p.Max))
		}
		return out
	}
	return nil
}

// spaced is the i-th of n evenly spaced points from lo to hi (both included; lo when n is 1).
func spaced(lo, hi float64, i, n int) float64 {
	if n <= 1 {
		return lo
	}
	if i == n-1 {
		return hi
	}
	return lo + (hi-lo)*float64(i)/float64(n-1)
}

func clamp(v, lo, hi float64) float64 { return math.Min(hi, math.Max(lo, v)) }

// tidy rounds a grid value to 12 significant digits, so that 10^-2 is 0.01 and not
// 0.010000000000000002.
func tidy(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return f
}

// GridPoint is the n-th point of the space's grid (0 ≤ n < config.GridSize): the grid in the
// order of nested loops over the parameters in leaves' order, the last one varying fastest.
func GridPoint(space *config.Param, n int) map[string]any {
	ls := leaves(space, nil)
	values := make([]any, len(ls))
	for i := len(ls) - 1; i >= 0; i-- {
		vs := gridValues(ls[i])
		values[i] = vs[n%len(vs)]
		n /= len(vs)
	}
	m, _ := build(space, values)
	return m.(map[string]any)
}

// RandomPoint is the n-th random point of the space for a seed: a function of (seed, n)
// alone, so trial n of a search is the same whenever it is drawn, before or after a restart.
func RandomPoint(space *config.Param, seed int64, n int) map[string]any {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(n)))
	ls := leaves(space, nil)
	values := make([]any, len(ls))
	for i, p := range ls {
		switch p.Type {
		case "uniform":
			values[i] = clamp(*p.Min+rng.Float64()*(*p.Max-*p.Min), *p.Min, *p.Max)
		case "log_uniform":
			lo, hi := math.Log(*p.Min), math.Log(*p.Max)
			values[i] = clamp(math.Exp(lo+rng.Float64()*(hi-lo)), *p.Min, *p.Max)
		case "int":
			lo, hi := int64(*p.Min), int64(*p.Max)
			values[i] = lo + rng.Int64N(hi-lo+1)
		case "categorical":
			values[i] = p.Values[rng.IntN(len(p.Values))]
		case "const":
			values[i] = p.Value
		}
	}
	m, _ := build(space, values)
	return m.(map[string]any)
}

// Point is the params of trial n of a search: its point of the space over the job's own params
// (the trial's win, key by key at the top level).
func Point(cfg *config.Search, base map[string]any, n int) map[string]any {
	var pt map[string]any
	if cfg.Method == "grid" {
		pt = GridPoint(cfg.Params, n)
	} else {
		pt = RandomPoint(cfg.Params, *cfg.Seed, n)
	}
	out := make(map[string]any, len(base)+len(pt))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range pt {
		out[k] = v
	}
	return out
}

// decodeConfig reads a search's stored config; numbers in values stay as written.
func decodeConfig(data []byte) (*config.Search, error) {
	var c config.Search
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
