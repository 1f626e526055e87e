// The bundle check at submit, and archives stored against their bundle.

package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/bundle"
)

// checkBundle refuses, at submit time, a bundle that would not unpack: links or paths out of
// the job's folder, device files, a decompression bomb, a truncated or corrupt archive. It
// unpacks it once into scratch space with the same code and limits the worker uses. A digest
// is checked once: what it passed or failed with is remembered, so resubmitting a refused
// bundle does not unpack it again.
func (s *Service) checkBundle(ctx context.Context, digest string) error {
	if v, ok := s.checked.Load(digest); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	f, err := s.cfg.Blobs.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer f.Close()
	dir, err := os.MkdirTemp(s.cfg.ScratchDir, "check-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := bundle.Extract(f, dir, s.cfg.BundleLimits); err != nil {
		if !errors.Is(err, atlas.ErrInvalid) {
			return err // the server's trouble (a full disk), not the bundle's: check again next time
		}
		refused := atlas.Invalidf("bundle %.19s… cannot be used: %s", digest, fmt.Sprint(err))
		s.checked.Store(digest, refused)
		return refused
	}
	s.checked.Store(digest, nil)
	return nil
}

// OpenArchive opens the whole archive of job j. An archive stored as what the job changed in
// its bundle (bundle.CreateDelta) is rebuilt against that bundle as it is read, and rebuilt is
// true; any other archive is the blob itself. An archive that names another bundle than the
// job's own is refused: its uploader could otherwise read any bundle it knows the digest of.
func OpenArchive(ctx context.Context, blobs blob.Store, j *atlas.Job) (rc io.ReadCloser, rebuilt bool, err error) {
	f, err := blobs.Open(ctx, j.ArchiveDigest)
	if err != nil {
		return nil, false, err
	}
	base, err := bundle.DeltaBase(f)
	if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		f.Close()
		return nil, false, serr
	}
	if err != nil || base == "" {
		return f, false, nil // a whole archive (or not one at all): served as it was stored
	}
	if base != j.BundleDigest {
		f.Close()
		return nil, false, atlas.Invalidf("the archive of job %s was made against %s, not the job's bundle", j.ID, base)
	}
	b, err := blobs.Open(ctx, base)
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("the bundle the archive of job %s was made against: %w", j.ID, err)
	}
	pr, pw := io.Pipe()
	go func() {
		err := bundle.Rebuild(b, f, pw)
		b.Close()
		f.Close()
		pw.CloseWithError(err)
	}()
	return pr, true, nil
}
