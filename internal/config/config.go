// Package config reads the YAML files users write: a project's job.config.yaml, the submission
// configs under $FOUNDATIONS_HOME/config/submission, and the server's own config.
//
// Every file goes Default → Parse → Validate. Errors name the file, the line and the key, in one
// line; keys we do not know are reported as warnings, never silently dropped and never fatal.
// This package does no network I/O and knows nothing of the server.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Home returns $FOUNDATIONS_HOME, or ~/.foundations.
func Home() string {
	if h := os.Getenv("FOUNDATIONS_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".foundations")
	}
	return ".foundations"
}

// Error is a problem in a config file, located by file, line and key.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap lets callers test config errors with errors.Is(err, atlas.ErrInvalid).
func (e *Error) Unwrap() error { return atlas.ErrInvalid }

// parser walks a YAML document and collects warnings for unknown keys.
type parser struct {
	file     string
	warnings []string
}

func (p *parser) errf(n *yaml.Node, key, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) warnf(n *yaml.Node, key string) {
	p.warnings = append(p.warnings, fmt.Sprintf("%s:%d: unknown key %q (ignored)", p.file, n.Line, key))
}

// document parses data and returns its top-level mapping, or nil for an empty document.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, &Error{File: p.file, Msg: strings.Join(te.Errors, "; ")}
		}
		// yaml.v3 messages look like "yaml: line 3: mapping values are not allowed here".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if i := strings.Index(rest, ":"); i > 0 {
				if n, err := strconv.Atoi(rest[:i]); err == nil {
					line, msg = n, strings.TrimSpace(rest[i+1:])
				}
			}
		}
		return nil, &Error{File: p.file, Line: line, Msg: "invalid YAML: " + msg}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root, "", "want a mapping of keys to values at the top level")
	}
	return root, nil
}

// pairs iterates a mapping node's key/value pairs.
func pairs(n *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
	}
	return out
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func (p *parser) str(n *yaml.Node, key string) (string, error) {
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, key, "want a string, got %s", kindName(n))
	}
	return n.Value, nil
}

func (p *parser) integer(n *yaml.Node, key string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, p.errf(n, key, "want an integer, got %s", describe(n))
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return 0, p.errf(n, key, "want an integer, got %q", n.Value)
	}
	return v, nil
}

func (p *parser) number(n *yaml.Node, key string) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, p.errf(n, key, "want a number, got %s", describe(n))
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, p.errf(n, key, "want a finite number, got %q", n.Value)
	}
	return v, nil
}

// strList accepts a string (split like a shell would, on spaces) or a list of scalars.
func (p *parser) strList(n *yaml.Node, key string) ([]string, error) {
	switch {
	case isNull(n):
		return nil, nil
	case n.Kind == yaml.ScalarNode:
		return strings.Fields(n.Value), nil
	case n.Kind == yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, p.errf(c, key, "want a list of strings, got an item that is %s", kindName(c))
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, p.errf(n, key, "want a string or a list of strings, got %s", kindName(n))
}

func (p *parser) strMap(n *yaml.Node, key string) (map[string]string, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, key, "want a mapping of names to values, got %s", kindName(n))
	}
	out := map[string]string{}
	for _, kv := range pairs(n) {
		if kv[1].Kind != yaml.ScalarNode {
			return nil, p.errf(kv[1], key+"."+kv[0].Value, "want a string, number or boolean, got %s", kindName(kv[1]))
		}
		out[kv[0].Value] = kv[1].Value
	}
	return out, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a scalar"
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return strconv.Quote(n.Value)
	}
	return kindName(n)
}

// toAny decodes a node into plain Go values (maps with string keys, slices, scalars).
func (p *parser) toAny(n *yaml.Node, key string) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, p.errf(n, key, "%v", err)
	}
	return normalize(v), nil
}

func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalize(x)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[fmt.Sprint(k)] = normalize(x)
		}
		return m
	case []any:
		for i, x := range t {
			t[i] = normalize(x)
		}
		return t
	}
	return v
}

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, atlas.NotFoundf("%s: no such file", path)
	}
	return data, err
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
