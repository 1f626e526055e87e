// Package local is the default blob store: a directory of files named by their digest
// (sha256/<ab>/<hex>). Writes go to a temporary file that is renamed into place only after
// the digest checks out. It has no download URLs: the server streams its files.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
)

// Store keeps blobs under a root directory.
type Store struct {
	root string
}

var _ blob.Store = (*Store)(nil)

// New returns a store rooted at dir, creating it if needed. Whatever an earlier process left
// in its scratch space (uploads cut short by a crash) is removed: one server uses a store at a
// time.
func New(dir string) (*Store, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("clean the blob dir's scratch space: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	// Archives and artifacts of every job: the server's to read, and no job's.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	return &Store{root: dir}, nil
}

// String implements blob.Store.
func (s *Store) String() string { return "local (" + s.root + ")" }

// Path returns where the blob lives on disk (it may not exist).
func (s *Store) Path(digest string) (string, error) {
	h, err := blob.ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, "sha256", h[:2], h), nil
}

// Has implements blob.Store.
func (s *Store) Has(_ context.Context, digest string) (bool, int64, error) {
	p, err := s.Path(digest)
	if err != nil {
		return false, 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	return true, fi.Size(), nil
}

// Put implements blob.Store.
func (s *Store) Put(_ context.Context, r io.Reader, want string) (string, int64, error) {
	if want != "" {
		if _, err := blob.ParseDigest(want); err != nil {
			return "", 0, err
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	defer os.Remove(tmp.Name())
	hr := &blob.Hashing{R: r}
	if _, err := io.Copy(tmp, hr); err != nil {
		tmp.Close()
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	got, n := hr.Digest()
	if want != "" && got != want {
		return "", 0, blob.Mismatch(got, want)
	}
	dst, _ := s.Path(got)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	return got, n, nil
}

// Open implements blob.Store.
func (s *Store) Open(_ context.Context, digest string) (io.ReadSeekCloser, error) {
	p, err := s.Path(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, atlas.NotFoundf("blob %s not found", digest)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(_ context.Context, digest string) error {
	p, err := s.Path(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Walk implements blob.Store: the time is the file's modification time.
func (s *Store) Walk(ctx context.Context, fn func(digest string, stored time.Time) error) error {
	top := filepath.Join(s.root, "sha256")
	dirs, err := os.ReadDir(top)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(top, d.Name()))
		if err != nil {
			continue
		}
		for _, e := range entries {
			digest := "sha256:" + e.Name()
			if _, err := blob.ParseDigest(digest); err != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if err := fn(digest, fi.ModTime()); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Touch implements blob.Store by setting the file's modification time.
func (s *Store) Touch(_ context.Context, digest string) error {
	p, err := s.Path(digest)
	if err != nil {
		return err
	}
	now := time.Now()
	if err := os.Chtimes(p, now, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// DownloadURL implements blob.Store: a directory has none.
func (s *Store) DownloadURL(_ context.Context, digest string, _ blob.Download) (string, error) {
	_, err := blob.ParseDigest(digest)
	return "", err
}
