// Package blob is the content-addressed file store for bundles, archives and artifacts.
//
// A blob is named by the sha256 of its bytes ("sha256:<hex>"), so the same folder submitted a
// thousand times is stored once. Writes go to a temporary file that is renamed into place only
// after the digest checks out: a reader never sees a partial or mislabelled blob.
package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Store keeps blobs under a root directory.
type Store struct {
	root string
}

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

// ParseDigest checks that d is "sha256:" followed by 64 lower-case hex digits and returns the hex.
func ParseDigest(d string) (string, error) {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return "", atlas.Invalidf("invalid digest %q: want sha256:<64 hex digits>", d)
	}
	for _, c := range hexPart {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", atlas.Invalidf("invalid digest %q: want sha256:<64 hex digits>", d)
		}
	}
	return hexPart, nil
}

// Digest formats a sha256 sum as a digest string.
func Digest(sum []byte) string { return "sha256:" + hex.EncodeToString(sum) }

// Path returns where the blob lives on disk (it may not exist).
func (s *Store) Path(digest string) (string, error) {
	h, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, "sha256", h[:2], h), nil
}

// Has reports whether the blob is stored, and its size.
func (s *Store) Has(digest string) (bool, int64, error) {
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

// Put stores the bytes read from r. If want is not empty the content must hash to it, or
// nothing is stored and an ErrInvalid error is returned. It returns the digest and size.
func (s *Store) Put(r io.Reader, want string) (string, int64, error) {
	if want != "" {
		if _, err := ParseDigest(want); err != nil {
			return "", 0, err
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("store blob: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
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
	got := Digest(h.Sum(nil))
	if want != "" && got != want {
		return "", 0, atlas.Invalidf("content does not match digest: got %s, want %s (truncated or corrupted upload?)", got, want)
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

// PutFile stores a file's content.
func (s *Store) PutFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return s.Put(f, "")
}

// TempDir is a directory on the same file system as the blobs, for scratch work.
func (s *Store) TempDir() string { return filepath.Join(s.root, "tmp") }

// Open opens a blob for reading.
func (s *Store) Open(digest string) (*os.File, error) {
	p, err := s.Path(digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, atlas.NotFoundf("blob %s not found", digest)
	}
	return f, err
}

// Delete removes a blob. Removing a missing blob is not an error.
func (s *Store) Delete(digest string) error {
	p, err := s.Path(digest)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Walk calls fn with every blob's digest and the time it was stored, in no set order. A blob
// deleted while Walk runs may or may not be seen.
func (s *Store) Walk(fn func(digest string, stored time.Time) error) error {
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
			if _, err := ParseDigest(digest); err != nil {
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
	}
	return nil
}

// Touch marks a blob as just stored, so that collection of unreferenced blobs, which spares
// recent ones, leaves it to the client that asked about it.
func (s *Store) Touch(digest string) error {
	p, err := s.Path(digest)
	if err != nil {
		return err
	}
	now := time.Now()
	return os.Chtimes(p, now, now)
}
