// Package config reads the YAML files users write: a project's job.config.yaml, the submission
// configs under $FOUNDATIONS_HOME/config/submission, and the server's own config.
//
// Every file goes Default → Parse → Validate. Errors name the file, the line and the key, in one
// line; keys we do not know are reported as warnings, never silently dropped and never fatal.
// This package does no network I/O and knows nothing of the server.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Home returns $FOUNDATIONS_HOME, or ~/.foundations.
func Home() string {
	if h := os.Getenv("FOUNDATIONS_HOME"); h != "" {
		if abs, err := filepath.Abs(h); err == nil {
			return abs // paths under it are handed to jobs and Docker, which need them absolute
		}
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".foundations")
	}
	return ".foundations"
}

// Error is a problem in a configuration, located by file, line and key, or by the variable or
// flag (Key) it came from.
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
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return atlas.EscapeControls(b.String())
}

// Unwrap lets callers test config errors with errors.Is(err, atlas.ErrInvalid).
func (e *Error) Unwrap() error { return atlas.ErrInvalid }

// maxSteps bounds the work aliases and merge keys can make a small document cause.
const maxSteps = 200_000

// parser walks a YAML document and collects warnings for unknown keys.
type parser struct {
	file     string
	warnings []string
	steps    int
	open     map[*yaml.Node]bool // collections being decoded, to catch aliases to themselves
}

func (p *parser) errf(n *yaml.Node, key, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) warnf(n *yaml.Node, key string) {
	p.warnings = append(p.warnings, atlas.EscapeControls(fmt.Sprintf("%s:%d: unknown key %q (ignored)", p.file, n.Line, key)))
}

// step counts one node visited; a document that needs too many is refused.
func (p *parser) step(n *yaml.Node, key string) error {
	p.steps++
	if p.steps > maxSteps {
		return p.errf(n, key, "too many values once aliases and merge keys are expanded (more than %d)", maxSteps)
	}
	return nil
}

// document parses data and returns its top-level mapping, or nil for an empty document.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, syntaxError(p.file, data, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := deref(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root, "", "want a mapping of keys to values at the top level, got %s", describe(root))
	}
	return root, nil
}

// The problems yaml.v3's parser (not its scanner) reports. It numbers their lines from 0, and
// leaves the number out for line 0.
var parserProblems = []string{
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// The problems yaml.v3's reader reports, about bytes that are not text YAML allows.
var readerProblems = []string{
	"control characters are not allowed",
	"invalid leading UTF-8 octet",
	"invalid trailing UTF-8 octet",
	"incomplete UTF-8 octet sequence",
	"invalid length of a UTF-8 sequence",
	"invalid Unicode character",
}

// syntaxError turns a yaml.v3 parse error into an Error with the line it is on.
func syntaxError(file string, data []byte, err error) *Error {
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
	switch {
	case slices.Contains(parserProblems, msg):
		line++
	case line > 0:
	case slices.Contains(readerProblems, msg):
		// The reader's problems carry no position: find the first bad byte.
		if i := firstBadByte(data); i >= 0 {
			line = lineAt(data, i)
		}
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		if i := bytes.Index(data, []byte("*"+name)); i >= 0 {
			line = lineAt(data, i)
		}
	default:
		line = 1 // the scanner leaves the number out for the first line
	}
	return &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

func lineAt(data []byte, offset int) int { return bytes.Count(data[:offset], []byte("\n")) + 1 }

// firstBadByte returns the offset of the first byte YAML does not allow: invalid UTF-8 or a
// control character other than tab, newline and carriage return, or -1.
func firstBadByte(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return i
		case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		case r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0xfffe || r == 0xffff:
			return i
		}
		i += size
	}
	return -1
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// entries returns the key/value pairs of a mapping node with aliases followed and "<<" merge
// keys expanded (keys of the mapping itself win over merged ones). A key given twice is
// reported as a warning; the last one is used, as PyYAML does.
func (p *parser) entries(n *yaml.Node, key string) ([][2]*yaml.Node, error) {
	return p.entriesOf(n, key, nil)
}

func (p *parser) entriesOf(n *yaml.Node, key string, path []*yaml.Node) ([][2]*yaml.Node, error) {
	if slices.Contains(path, n) {
		return nil, p.errf(n, key, "a merge key includes the mapping it is in")
	}
	path = append(path, n)
	var merged, own [][2]*yaml.Node
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if err := p.step(k, key); err != nil {
			return nil, err
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, src := range srcs {
				src = deref(src)
				if src.Kind != yaml.MappingNode {
					return nil, p.errf(src, joinKey(key, "<<"), "want a mapping or a list of mappings to merge, got %s", describe(src))
				}
				sub, err := p.entriesOf(src, key, path)
				if err != nil {
					return nil, err
				}
				merged = append(merged, lastOfEach(sub)...)
			}
			continue
		}
		if k.Kind == yaml.ScalarNode {
			if line, ok := first[k.Value]; ok {
				p.warnings = append(p.warnings, atlas.EscapeControls(fmt.Sprintf("%s:%d: key %q is given twice (first on line %d); the last one is used",
					p.file, k.Line, joinKey(key, k.Value), line)))
			} else {
				first[k.Value] = k.Line
			}
		}
		own = append(own, [2]*yaml.Node{k, v})
	}
	if len(merged) == 0 {
		return own, nil
	}
	// Of the merged keys, the first source that has one wins, and only if the mapping itself
	// does not set it.
	seen := map[string]bool{}
	for k := range first {
		seen[k] = true
	}
	var out [][2]*yaml.Node
	for _, kv := range merged {
		if kv[0].Kind == yaml.ScalarNode {
			if seen[kv[0].Value] {
				continue
			}
			seen[kv[0].Value] = true
		}
		out = append(out, kv)
	}
	return append(out, own...), nil
}

// lastOfEach drops all but the last pair of each key, which is the one a mapping's reader uses.
func lastOfEach(kvs [][2]*yaml.Node) [][2]*yaml.Node {
	last := map[string]int{}
	for i, kv := range kvs {
		last[kv[0].Value] = i
	}
	var out [][2]*yaml.Node
	for i, kv := range kvs {
		if kv[0].Kind != yaml.ScalarNode || last[kv[0].Value] == i {
			out = append(out, kv)
		}
	}
	return out
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (p *parser) str(n *yaml.Node, key string) (string, error) {
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, key, "want a string, got %s", kindName(n))
	}
	return n.Value, nil
}

func (p *parser) boolean(n *yaml.Node, key string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, p.errf(n, key, "want true or false, got %s", describe(n))
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE" || n.Value == "yes" || n.Value == "on", nil
}

func (p *parser) integer(n *yaml.Node, key string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, p.errf(n, key, "want an integer, got %s", describe(n))
	}
	// Decode knows YAML's forms: 0x1F, 0o17, 1_000, +5.
	var v int
	if err := n.Decode(&v); err != nil {
		return 0, p.errf(n, key, "want an integer, got %q", n.Value)
	}
	return v, nil
}

// duration accepts Go's durations ("90s", "24h"); example is one, for the error.
func (p *parser) duration(n *yaml.Node, key, example string) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return 0, p.errf(n, key, "want a duration like %s, got %s", example, describe(n))
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, p.errf(n, key, "want a duration like %s, got %q", example, n.Value)
	}
	return d, nil
}

func (p *parser) number(n *yaml.Node, key string) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		return 0, p.errf(n, key, "want a number, got %s", describe(n))
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
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
			c = deref(c)
			if err := p.step(c, key); err != nil {
				return nil, err
			}
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
	kvs, err := p.entries(n, key)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k := joinKey(key, kv[0].Value)
		if kv[0].Kind != yaml.ScalarNode || kv[0].Value == "" {
			return nil, p.errf(kv[0], key, "want names as keys, got %s", describe(kv[0]))
		}
		if kv[1].Kind != yaml.ScalarNode {
			return nil, p.errf(kv[1], k, "want a string, number or boolean, got %s", kindName(kv[1]))
		}
		if isNull(kv[1]) {
			out[kv[0].Value] = ""
		} else {
			out[kv[0].Value] = kv[1].Value
		}
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

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return kindName(n)
	}
	switch n.ShortTag() {
	case "!!str":
		return "the string " + strconv.Quote(n.Value)
	case "!!null":
		return "nothing"
	case "!!bool", "!!int", "!!float":
		return n.Value
	}
	return strconv.Quote(n.Value)
}

// maxParamDepth bounds how deeply params nest: they are stored as JSON and shown in the GUI.
const maxParamDepth = 64

// params decodes a mapping of parameters into plain JSON-compatible Go values: maps with string
// keys, slices, strings, ints, finite floats, booleans and nil.
func (p *parser) params(n *yaml.Node, key string) (map[string]any, error) {
	v, err := p.value(n, key, 0)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func (p *parser) value(use *yaml.Node, key string, depth int) (any, error) {
	n := deref(use) // errors point at where an alias is used, not where its anchor is
	if err := p.step(use, key); err != nil {
		return nil, err
	}
	if depth > maxParamDepth {
		return nil, p.errf(use, key, "nested more than %d levels deep", maxParamDepth)
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if p.open[n] {
			return nil, p.errf(use, key, "an alias refers to a value that contains it")
		}
		if p.open == nil {
			p.open = map[*yaml.Node]bool{}
		}
		p.open[n] = true
		defer delete(p.open, n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		kvs, err := p.entries(n, key)
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(kvs))
		for _, kv := range kvs {
			if kv[0].Kind != yaml.ScalarNode {
				return nil, p.errf(kv[0], key, "want names as keys, got %s", kindName(kv[0]))
			}
			k := joinKey(key, kv[0].Value)
			v, err := p.value(kv[1], k, depth+1)
			if err != nil {
				return nil, err
			}
			out[kv[0].Value] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := p.value(c, fmt.Sprintf("%s[%d]", key, i), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		return p.scalar(n, key)
	}
	return nil, p.errf(n, key, "want a value, got %s", kindName(n))
}

func (p *parser) scalar(n *yaml.Node, key string) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, p.errf(n, key, "want true or false, got %q", n.Value)
		}
		return b, nil
	case "!!int":
		var i int
		if err := n.Decode(&i); err != nil {
			return nil, p.errf(n, key, "want an integer that fits in 64 bits, got %q", n.Value)
		}
		return i, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, p.errf(n, key, "want a finite number, got %q (params are stored as JSON)", n.Value)
		}
		return f, nil
	}
	// Strings, and what has no JSON form (timestamps, binary, custom tags), as written.
	return n.Value, nil
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
