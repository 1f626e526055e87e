package bundle

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// pattern is one gitignore-style line: "name", "*.ext", "dir/", "/anchored", "a/**/b", "!negated".
type pattern struct {
	glob     string
	dirOnly  bool
	anchored bool // contains a slash: matched against the whole relative path
	negate   bool
}

type matcher struct{ patterns []pattern }

func newMatcher(dir string, opts Options) (*matcher, error) {
	lines := append([]string(nil), opts.Ignore...)
	if opts.UseIgnoreFile {
		f, err := os.Open(filepath.Join(dir, IgnoreFile))
		switch {
		case err == nil:
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			f.Close()
			if err := sc.Err(); err != nil {
				return nil, err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	m := &matcher{}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		var p pattern
		if strings.HasPrefix(l, "!") {
			p.negate = true
			l = l[1:]
		}
		if strings.HasSuffix(l, "/") {
			p.dirOnly = true
			l = strings.TrimSuffix(l, "/")
		}
		if strings.Contains(l, "/") {
			p.anchored = true
			l = strings.TrimPrefix(l, "/")
		}
		p.glob = l
		m.patterns = append(m.patterns, p)
	}
	return m, nil
}

// ignored reports whether rel (slash-separated) is excluded. The last matching pattern wins.
func (m *matcher) ignored(rel string, isDir bool) bool {
	out := false
	for _, p := range m.patterns {
		if p.dirOnly && !isDir {
			continue
		}
		var ok bool
		if p.anchored {
			ok = matchPath(p.glob, rel)
		} else {
			ok, _ = path.Match(p.glob, path.Base(rel))
		}
		if ok {
			out = !p.negate
		}
	}
	return out
}

// matchPath matches a slash pattern that may contain "**" (any number of directories).
func matchPath(glob, rel string) bool {
	gp := strings.Split(glob, "/")
	rp := strings.Split(rel, "/")
	var rec func(g, r []string) bool
	rec = func(g, r []string) bool {
		for len(g) > 0 {
			if g[0] == "**" {
				for i := 0; i <= len(r); i++ {
					if rec(g[1:], r[i:]) {
						return true
					}
				}
				return false
			}
			if len(r) == 0 {
				return false
			}
			if ok, _ := path.Match(g[0], r[0]); !ok {
				return false
			}
			g, r = g[1:], r[1:]
		}
		return len(r) == 0
	}
	return rec(gp, rp)
}
