// The bundle check at submit.

package jobs

import (
	"fmt"
	"os"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/bundle"
)

// checkBundle refuses, at submit time, a bundle that would not unpack: links or paths out of
// the job's folder, device files, a decompression bomb, a truncated or corrupt archive. It
// unpacks it once into scratch space with the same code and limits the worker uses; a digest
// that passed is not checked again.
func (s *Service) checkBundle(digest string) error {
	if _, ok := s.checked.Load(digest); ok {
		return nil
	}
	f, err := s.cfg.Blobs.Open(digest)
	if err != nil {
		return err
	}
	defer f.Close()
	dir, err := os.MkdirTemp(s.cfg.Blobs.TempDir(), "check-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := bundle.Extract(f, dir, s.cfg.BundleLimits); err != nil {
		return atlas.Invalidf("bundle %.19s… cannot be used: %s", digest, fmt.Sprint(err))
	}
	s.checked.Store(digest, true)
	return nil
}
