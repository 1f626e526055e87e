// Package python embeds the foundations Python SDK (python/foundations) so that atlas-server
// can put it on every job's PYTHONPATH: jobs need nothing installed to `import foundations`.
package python

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
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

//go:embed bootstrap/bootstrap.py
var bootstrap string

// Bootstrap is a Python program, to run with `python3 -c`, that fetches the SDK from the
// server named by FOUNDATIONS_SCHEDULER_URL (GET /api/v1/sdk, with FOUNDATIONS_TOKEN) and runs
// the job's in-job side (foundations/_runner.py): the whole command of a job that runs where
// the server's files are not.
func Bootstrap() string { return bootstrap }

var archive struct {
	once   sync.Once
	data   []byte
	digest string
	err    error
}

// Archive returns the SDK as a gzip-compressed tar of foundations/*.py, and its digest, made
// once: what GET /api/v1/sdk serves to jobs that fetch it.
func Archive() ([]byte, string, error) {
	archive.once.Do(func() {
		files, err := fs.Glob(sdk, "foundations/*.py")
		if err != nil {
			archive.err = err
			return
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		if err := tw.WriteHeader(&tar.Header{Name: "foundations/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			archive.err = err
			return
		}
		for _, f := range files {
			data, _ := sdk.ReadFile(f)
			if err := tw.WriteHeader(&tar.Header{Name: f, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))}); err != nil {
				archive.err = err
				return
			}
			if _, err := tw.Write(data); err != nil {
				archive.err = err
				return
			}
		}
		if err := errors.Join(tw.Close(), zw.Close()); err != nil {
			archive.err = err
			return
		}
		sum := sha256.Sum256(buf.Bytes())
		archive.data, archive.digest = buf.Bytes(), "sha256:"+hex.EncodeToString(sum[:])
	})
	return archive.data, archive.digest, archive.err
}
