// Package bundle turns a folder into a deterministic tar.gz and back.
//
// Create writes the same bytes for the same folder content, so bundles can be content-addressed
// and a folder submitted many times is uploaded once. Extract treats every archive as hostile:
// no absolute paths, no "..", no links that lead out of the target, no device files, and hard
// caps on total size and entry count, so a malicious or broken bundle fails with a one-line
// error and never writes outside its target directory.
package bundle

import (
	"path"
	"path/filepath"
	"strings"
)

// linkStaysInside reports whether a symlink at name (slash-separated, relative to the root)
// with the given target resolves to a path inside the root. The link's own parent directories
// must be real directories, which the callers ensure. isDir reports whether a path relative to
// the root is a real directory (not a link): a ".." may only step back out of one of those,
// because ".." after a link leads to the parent of wherever the link points. With isDir nil
// the check is lexical only, which is enough to refuse a link early but not to accept it.
func linkStaysInside(name, target string, isDir func(string) bool) bool {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) || strings.ContainsRune(target, 0) {
		return false
	}
	var stack []string
	if d := path.Dir(name); d != "." {
		stack = strings.Split(d, "/")
	}
	parents := len(stack) // stack[:parents] are the link's own, real, parent directories
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(stack) == 0 {
				return false
			}
			if len(stack) > parents {
				if isDir != nil && !isDir(strings.Join(stack, "/")) {
					return false
				}
			} else {
				parents--
			}
			stack = stack[:len(stack)-1]
		default:
			stack = append(stack, c)
		}
	}
	return true
}
