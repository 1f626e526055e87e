package atlas

import (
	"path/filepath"
	"strings"
)

// UnderRoot says whether path, cleaned, is one of roots or below one: the rule of
// allowed_volume_roots. It reads no file system; a caller on the machine whose paths these are
// resolves symbolic links first.
func UnderRoot(path string, roots []string) bool {
	p := filepath.Clean(path)
	for _, root := range roots {
		root = filepath.Clean(root)
		if p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/") {
			return true
		}
	}
	return false
}
