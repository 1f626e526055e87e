package config

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SearchMethods are the ways a search picks and judges its trials: grid (every point of the
// space, in order), random (max_trials points drawn with the seed), asha and median (random
// points, and trials stopped early at their rungs).
var SearchMethods = []string{"grid", "random", "asha", "median"}

// ParamTypes are the kinds of search parameters (besides nested mappings and lists, whose
// leaves are parameters, and plain values, which are constants).
var ParamTypes = []string{"uniform", "log_uniform", "int", "categorical", "const"}

// MaxGridPoints bounds the size of a grid search.
const MaxGridPoints = 100_000

// Search is a parsed search definition: a `search:` section of job.config.yaml, or a file of
// its own. It is stored as JSON with the search (the field names are its keys), after the
// server has filled in what was left to it (the seed).
type Search struct {
	Method          string `json:"method"`
	Metric          string `json:"metric"`
	SmallerIsBetter bool   `json:"smaller_is_better"`
	// TimeAttribute says how far a trial is: "step" (the step its metric was logged at) or
	// "count" (how many values of the metric it logged).
	TimeAttribute string `json:"time_attribute"`
	// MaxTrials is how many trials run (a grid: at most; 0, every point of the grid).
	MaxTrials int `json:"max_trials"`
	// MaxConcurrentTrials is how many trials may be queued or running at a time (0: as many as
	// the server has worker slots).
	MaxConcurrentTrials int `json:"max_concurrent_trials"`
	// Seed makes random points reproducible (nil: the server draws one and records it).
	Seed *int64 `json:"seed,omitempty"`
	// ReductionFactor, MinSteps and MaxSteps place the rungs of asha and median: at steps
	// MinSteps·ReductionFactor^k below MaxSteps.
	ReductionFactor int   `json:"reduction_factor,omitempty"`
	MinSteps        int64 `json:"min_steps,omitempty"`
	MaxSteps        int64 `json:"max_steps,omitempty"`
	// Params is the space: a mapping (Type "dict") whose leaves are parameters.
	Params *Param `json:"params"`
	// Warnings lists keys that were not understood.
	Warnings []string `json:"-"`
}

// Param is one node of a search space: a parameter (uniform, log_uniform, int, categorical,
// const), or a mapping (dict) or list whose leaves are parameters.
type Param struct {
	Type string `json:"type"`
	// Min and Max bound uniform, log_uniform and int parameters (both included).
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Count is the number of grid points of a uniform, log_uniform or int parameter (an int
	// without one takes every integer from Min to Max).
	Count  int               `json:"count,omitempty"`
	Values []any             `json:"values,omitempty"` // categorical
	Value  any               `json:"value,omitempty"`  // const
	Fields map[string]*Param `json:"fields,omitempty"` // dict
	Items  []*Param          `json:"items,omitempty"`  // list
}

// Adaptive reports whether the method stops trials early at rungs.
func (s *Search) Adaptive() bool { return s.Method == "asha" || s.Method == "median" }

// Rungs are the steps at which asha and median judge trials: MinSteps·ReductionFactor^k, for
// every k that stays below MaxSteps (none for the other methods).
func (s *Search) Rungs() []int64 {
	if !s.Adaptive() || s.ReductionFactor < 2 || s.MinSteps < 1 {
		return nil
	}
	var out []int64
	for r := s.MinSteps; r < s.MaxSteps; r *= int64(s.ReductionFactor) {
		out = append(out, r)
		if r > math.MaxInt64/int64(s.ReductionFactor) {
			break
		}
	}
	return out
}

// Trials is how many trials the search runs: every point of a grid (at most MaxTrials when it
// is set), else MaxTrials.
func (s *Search) Trials() int {
	if s.Method == "grid" {
		n := GridSize(s.Params)
		if s.MaxTrials > 0 {
			n = min(n, s.MaxTrials)
		}
		return n
	}
	return s.MaxTrials
}

// GridSize is the number of points of a space's grid (MaxGridPoints+1 when there are more).
func GridSize(p *Param) int {
	mul := func(a, b int) int {
		if a > MaxGridPoints || b > MaxGridPoints || a*b > MaxGridPoints {
			return MaxGridPoints + 1
		}
		return a * b
	}
	switch p.Type {
	case "dict":
		n := 1
		for _, f := range p.Fields {
			n = mul(n, GridSize(f))
		}
		return n
	case "list":
		n := 1
		for _, it := range p.Items {
			n = mul(n, GridSize(it))
		}
		return n
	case "categorical":
		return len(p.Values)
	case "uniform", "log_uniform":
		return p.Count
	case "int":
		if p.Count > 0 {
			return p.Count
		}
		span := *p.Max - *p.Min + 1
		if span > MaxGridPoints {
			return MaxGridPoints + 1
		}
		return int(span)
	}
	return 1
}

// ParseSearch parses a search definition: the content of a file whose top level is the search
// (method, metric, params...) or holds it under `search:` — as a job.config.yaml does. name is
// used in error messages. JSON is YAML, so a search given as a JSON object parses too.
func ParseSearch(name string, data []byte) (*Search, error) {
	p := &parser{file: name}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &Error{File: name, Msg: "no search in it: want method, metric and params (or a search: section holding them)"}
	}
	kvs, err := p.entries(root, "")
	if err != nil {
		return nil, err
	}
	prefix := ""
	for _, kv := range kvs {
		if kv[0].Value == "search" {
			root, prefix = kv[1], "search"
			if isNull(root) || root.Kind != yaml.MappingNode {
				return nil, p.errf(root, "search", "want a mapping (method, metric, params, ...), got %s", describe(root))
			}
			if kvs, err = p.entries(root, prefix); err != nil {
				return nil, err
			}
			p.warnings = nil // the rest of a job.config.yaml is ParseJob's to check
			break
		}
	}
	if prefix == "" && !slices.ContainsFunc(kvs, func(kv [2]*yaml.Node) bool { return kv[0].Value == "method" }) {
		return nil, p.errf(root, "", "no search in it: want a search: section (method, metric, params, ...), or those keys at the top level")
	}
	return p.search(root, kvs, prefix)
}

func (p *parser) search(root *yaml.Node, kvs [][2]*yaml.Node, prefix string) (*Search, error) {
	s := &Search{TimeAttribute: "step"}
	nodes := map[string]*yaml.Node{}
	var err error
	for _, kv := range kvs {
		k, v := kv[0].Value, kv[1]
		key := joinKey(prefix, k)
		nodes[k] = v
		switch k {
		case "method":
			if s.Method, err = p.str(v, key); err != nil {
				return nil, err
			}
			if !slices.Contains(SearchMethods, s.Method) {
				return nil, p.errf(v, key, "unknown method %q: want %s", s.Method, orList(SearchMethods))
			}
		case "metric":
			if s.Metric, err = p.str(v, key); err != nil {
				return nil, err
			}
		case "smaller_is_better":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
				return nil, p.errf(v, key, "want true or false, got %s", describe(v))
			}
			_ = v.Decode(&s.SmallerIsBetter)
		case "time_attribute":
			if s.TimeAttribute, err = p.str(v, key); err != nil {
				return nil, err
			}
			if s.TimeAttribute != "step" && s.TimeAttribute != "count" {
				return nil, p.errf(v, key, "want step (the step a value was logged at) or count (how many values were logged), got %q", s.TimeAttribute)
			}
		case "max_trials", "max_concurrent_trials", "reduction_factor":
			n, err := p.integer(v, key)
			if err != nil {
				return nil, err
			}
			least := map[string]int{"max_trials": 1, "max_concurrent_trials": 1, "reduction_factor": 2}[k]
			if n < least {
				return nil, p.errf(v, key, "want %d or more, got %d", least, n)
			}
			switch k {
			case "max_trials":
				s.MaxTrials = n
			case "max_concurrent_trials":
				s.MaxConcurrentTrials = n
			default:
				s.ReductionFactor = n
			}
		case "min_steps", "max_steps":
			n, err := p.integer(v, key)
			if err != nil {
				return nil, err
			}
			if n < 1 {
				return nil, p.errf(v, key, "want 1 or more, got %d", n)
			}
			if k == "min_steps" {
				s.MinSteps = int64(n)
			} else {
				s.MaxSteps = int64(n)
			}
		case "seed":
			n, err := p.integer(v, key)
			if err != nil {
				return nil, err
			}
			seed := int64(n)
			s.Seed = &seed
		case "params", "parameters", "hyperparameters":
			if isNull(v) || v.Kind != yaml.MappingNode {
				return nil, p.errf(v, key, "want a mapping of parameter names to parameters, got %s", describe(v))
			}
			if s.Params, err = p.param(v, key, 0); err != nil {
				return nil, err
			}
		default:
			p.warnf(kv[0], key)
		}
	}
	missing := func(k, what string) error {
		return p.errf(root, joinKey(prefix, k), "missing: %s", what)
	}
	switch {
	case s.Method == "":
		return nil, missing("method", "want "+orList(SearchMethods))
	case s.Metric == "":
		return nil, missing("metric", "the name of the metric trials log with foundations.log_metric, which the search optimises")
	case nodes["smaller_is_better"] == nil:
		return nil, missing("smaller_is_better", fmt.Sprintf("say whether smaller values of %s are better (true: a loss) or larger ones (false: an accuracy)", s.Metric))
	case s.Params == nil || len(s.Params.Fields) == 0:
		return nil, missing("params", "no parameters to search")
	case s.Method != "grid" && s.MaxTrials == 0:
		return nil, missing("max_trials", "how many trials the "+s.Method+" search runs")
	}
	if s.Adaptive() {
		if s.ReductionFactor == 0 {
			s.ReductionFactor = 3
		}
		if s.MinSteps == 0 {
			s.MinSteps = 1
		}
		if s.MaxSteps == 0 {
			return nil, missing("max_steps", "the step trials end at; the rungs are at min_steps·reduction_factor^k below it")
		}
		if s.MaxSteps <= s.MinSteps {
			return nil, p.errf(nodes["max_steps"], joinKey(prefix, "max_steps"), "max_steps %d must be greater than min_steps %d", s.MaxSteps, s.MinSteps)
		}
	} else {
		for _, k := range []string{"reduction_factor", "min_steps", "max_steps"} {
			if n := nodes[k]; n != nil {
				p.warnings = append(p.warnings, fmt.Sprintf("%s:%d: %s applies to asha and median only (ignored by %s)", p.file, n.Line, joinKey(prefix, k), s.Method))
			}
		}
		s.ReductionFactor, s.MinSteps, s.MaxSteps = 0, 0, 0
	}
	if s.Method == "grid" {
		if err := p.gridReady(s.Params, nodes["params"], joinKey(prefix, "params")); err != nil {
			return nil, err
		}
		n := GridSize(s.Params)
		if n > MaxGridPoints {
			return nil, p.errf(nodes["params"], joinKey(prefix, "params"), "the grid has more than %d points", MaxGridPoints)
		}
		if s.MaxTrials > 0 && s.MaxTrials < n {
			return nil, p.errf(nodes["max_trials"], joinKey(prefix, "max_trials"),
				"%d is fewer than the grid's %d points: a grid runs every point (drop max_trials, or use method: random)", s.MaxTrials, n)
		}
	}
	s.Warnings = p.warnings
	return s, nil
}

// gridReady checks that every parameter of a grid has a finite number of points.
func (p *parser) gridReady(s *Param, n *yaml.Node, key string) error {
	switch s.Type {
	case "dict":
		for _, k := range sortedKeys(s.Fields) {
			if err := p.gridReady(s.Fields[k], n, key+"."+k); err != nil {
				return err
			}
		}
	case "list":
		for i, it := range s.Items {
			if err := p.gridReady(it, n, fmt.Sprintf("%s[%d]", key, i)); err != nil {
				return err
			}
		}
	case "uniform", "log_uniform":
		if s.Count == 0 {
			return p.errf(n, key, "a grid needs count (how many points between min and max) for a %s parameter", s.Type)
		}
	}
	return nil
}

// param parses one node of a search space.
func (p *parser) param(use *yaml.Node, key string, depth int) (*Param, error) {
	n := deref(use)
	if err := p.step(use, key); err != nil {
		return nil, err
	}
	if depth > maxParamDepth {
		return nil, p.errf(use, key, "nested more than %d levels deep", maxParamDepth)
	}
	switch n.Kind {
	case yaml.SequenceNode:
		out := &Param{Type: "list"}
		for i, c := range n.Content {
			it, err := p.param(c, fmt.Sprintf("%s[%d]", key, i), depth+1)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, it)
		}
		return out, nil
	case yaml.MappingNode:
		kvs, err := p.entries(n, key)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			if kv[0].Value == "type" {
				return p.typed(n, kvs, key)
			}
		}
		out := &Param{Type: "dict", Fields: map[string]*Param{}}
		for _, kv := range kvs {
			if kv[0].Kind != yaml.ScalarNode {
				return nil, p.errf(kv[0], key, "want names as keys, got %s", kindName(kv[0]))
			}
			f, err := p.param(kv[1], joinKey(key, kv[0].Value), depth+1)
			if err != nil {
				return nil, err
			}
			out.Fields[kv[0].Value] = f
		}
		return out, nil
	case yaml.ScalarNode:
		v, err := p.scalar(n, key)
		if err != nil {
			return nil, err
		}
		return &Param{Type: "const", Value: v}, nil
	}
	return nil, p.errf(n, key, "want a parameter, got %s", kindName(n))
}

// typed parses a parameter given as a mapping with a type.
func (p *parser) typed(n *yaml.Node, kvs [][2]*yaml.Node, key string) (*Param, error) {
	out := &Param{}
	fields := map[string]*yaml.Node{}
	for _, kv := range kvs {
		fields[kv[0].Value] = kv[1]
	}
	t := fields["type"]
	if t.Kind != yaml.ScalarNode || !slices.Contains(ParamTypes, t.Value) {
		got := describe(t)
		if t.Kind == yaml.ScalarNode {
			got = fmt.Sprintf("%q", t.Value)
		}
		return nil, p.errf(t, key+".type", "unknown parameter type %s: want %s (a nested mapping with a key named type is written {type: const, value: {...}})",
			got, orList(ParamTypes))
	}
	out.Type = t.Value
	known := map[string][]string{"uniform": {"min", "max", "count"}, "log_uniform": {"min", "max", "count"},
		"int": {"min", "max", "count"}, "categorical": {"values"}, "const": {"value"}}[out.Type]
	for _, kv := range kvs {
		if k := kv[0].Value; k != "type" && !slices.Contains(known, k) {
			p.warnings = append(p.warnings, fmt.Sprintf("%s:%d: unknown key %q of a %s parameter (ignored; it takes %s)",
				p.file, kv[0].Line, key+"."+k, out.Type, strings.Join(known, ", ")))
		}
	}
	var err error
	switch out.Type {
	case "uniform", "log_uniform", "int":
		for _, b := range []string{"min", "max"} {
			v := fields[b]
			if v == nil {
				return nil, p.errf(n, key+"."+b, "missing: a %s parameter needs min and max", out.Type)
			}
			var f float64
			if out.Type == "int" {
				i, err := p.integer(v, key+"."+b)
				if err != nil {
					return nil, err
				}
				f = float64(i)
			} else if f, err = p.number(v, key+"."+b); err != nil {
				return nil, err
			}
			if b == "min" {
				out.Min = &f
			} else {
				out.Max = &f
			}
		}
		if *out.Min > *out.Max {
			return nil, p.errf(fields["min"], key, "min %v is greater than max %v", *out.Min, *out.Max)
		}
		if out.Type == "log_uniform" && *out.Min <= 0 {
			return nil, p.errf(fields["min"], key+".min", "a log_uniform parameter needs min greater than 0, got %v", *out.Min)
		}
		if c := fields["count"]; c != nil {
			if out.Count, err = p.integer(c, key+".count"); err != nil {
				return nil, err
			}
			if out.Count < 1 {
				return nil, p.errf(c, key+".count", "want 1 or more grid points, got %d", out.Count)
			}
			if span := *out.Max - *out.Min + 1; out.Type == "int" && float64(out.Count) > span {
				return nil, p.errf(c, key+".count", "%d grid points is more than the %v integers from %v to %v", out.Count, span, *out.Min, *out.Max)
			}
		}
	case "categorical":
		v := fields["values"]
		if v == nil || isNull(v) || (v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
			return nil, p.errf(n, key+".values", "a categorical parameter needs at least one value")
		}
		if v.Kind != yaml.SequenceNode {
			return nil, p.errf(v, key+".values", "want a list of values, got %s", describe(v))
		}
		list, err := p.value(v, key+".values", 1)
		if err != nil {
			return nil, err
		}
		out.Values = list.([]any)
	case "const":
		v := fields["value"]
		if v == nil {
			return nil, p.errf(n, key+".value", "missing: a const parameter needs its value")
		}
		if out.Value, err = p.value(v, key+".value", 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// orList is "a, b or c".
func orList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}
