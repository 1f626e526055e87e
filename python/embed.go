// Package python embeds the foundations Python SDK (python/foundations) so that atlas-server
// can put it on every job's PYTHONPATH: jobs need nothing installed to `import foundations`.
package python

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed foundations/*.py
var sdk embed.FS

// Extract writes the SDK under dir/<content hash>/foundations, unless it is there already, and
// returns dir/<content hash>, the directory to put on PYTHONPATH.
func Extract(dir string) (string, error) {
	h := sha256.New()
	files, err := fs.Glob(sdk, "foundations/*.py")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := sdk.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write([]byte(f))
		h.Write(data)
	}
	root := filepath.Join(dir, hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(root, ".complete")); err == nil {
		return root, nil
	}
	tmp, err := os.MkdirTemp(dir, ".sdk-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "foundations"), 0o755); err != nil {
		return "", err
	}
	for _, f := range files {
		data, _ := sdk.ReadFile(f)
		if err := os.WriteFile(filepath.Join(tmp, f), data, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, root); err != nil {
		if _, statErr := os.Stat(filepath.Join(root, ".complete")); statErr == nil {
			return root, nil // another server process extracted it first
		}
		return "", err
	}
	return root, nil
}
