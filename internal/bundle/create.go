// Create: a deterministic tar.gz of a folder, with the ignore rules applied.

package bundle

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/atlasgo/atlas/internal/atlas"
)

// IgnoreFile is the name of the optional file, in the root of a job folder, that lists
// gitignore-style patterns of paths to leave out of the bundle.
const IgnoreFile = ".atlasignore"

// DefaultIgnore is always applied when bundling a job folder: what a job never needs, and the
// well-known places of credentials, which a job's bundle and archive (readable by the job's
// user and admins) must not carry when a folder such as a home directory is bundled. A
// .atlasignore line "!.env" brings one back.
var DefaultIgnore = []string{".git/", "__pycache__/", "*.pyc", ".ipynb_checkpoints/",
	".ssh/", ".aws/", ".gnupg/", ".kube/", ".azure/", ".docker/", ".config/gcloud/", ".netrc", ".pypirc", ".git-credentials", ".env"}

// Options controls what Create includes.
type Options struct {
	// Ignore lists gitignore-style patterns. Create adds the patterns of IgnoreFile when
	// UseIgnoreFile is set.
	Ignore        []string
	UseIgnoreFile bool
}

// JobFolder is the option set for bundling a user's job folder.
var JobFolder = Options{Ignore: DefaultIgnore, UseIgnoreFile: true}

// Stats describes what Create wrote or Estimate would write.
type Stats struct {
	Files int
	Bytes int64 // sum of regular file sizes
	// Skipped lists entries left out because they cannot be bundled safely (links that point
	// outside the folder, sockets, devices).
	Skipped []string
}

type entry struct {
	rel  string // slash-separated, relative to the root
	info fs.FileInfo
	link string
}

// walk lists what a bundle of dir contains, in a stable order.
func walk(dir string, opts Options) ([]entry, Stats, error) {
	var st Stats
	// WalkDir does not descend into a root that is a symlink; bundle what it points to.
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, st, err
	}
	if !fi.IsDir() {
		return nil, st, atlas.Invalidf("%s is not a directory", dir)
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, st, err
	}
	matcher, err := newMatcher(dir, opts)
	if err != nil {
		return nil, st, err
	}
	var out []entry
	dirs := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if matcher.ignored(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{rel: rel, info: info}
		switch mode := info.Mode(); {
		case mode.IsRegular():
			st.Files++
			st.Bytes += info.Size()
		case mode.IsDir():
			dirs[rel] = true
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.link = target
		default:
			st.Skipped = append(st.Skipped, fmt.Sprintf("%s (%s is not a regular file)", rel, mode.Type()))
			return nil
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, st, err
	}
	// Links are checked against the directories the bundle holds, as Extract will check them.
	kept := out[:0]
	for _, e := range out {
		if e.link != "" && !linkStaysInside(e.rel, e.link, func(p string) bool { return dirs[p] }) {
			st.Skipped = append(st.Skipped, fmt.Sprintf("%s -> %s (link points outside the folder)", e.rel, e.link))
			continue
		}
		kept = append(kept, e)
	}
	return kept, st, nil
}

// Estimate returns the size of a bundle of dir before compression, without writing it.
func Estimate(dir string, opts Options) (Stats, error) {
	_, st, err := walk(dir, opts)
	return st, err
}

// Create writes a deterministic gzip-compressed tar of dir to w. File modes and modification
// times are kept; owners, access times and the gzip header time are not.
func Create(dir string, w io.Writer, opts Options) (Stats, error) {
	entries, st, err := walk(dir, opts)
	if err != nil {
		return st, fmt.Errorf("bundle %s: %w", dir, err)
	}
	tw := newWriter(w)
	for _, e := range entries {
		hdr := entryHeader(e)
		if err := tw.WriteHeader(hdr); err != nil {
			return st, fmt.Errorf("bundle %s: %w", e.rel, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(tw, filepath.Join(dir, filepath.FromSlash(e.rel)), hdr.Size); err != nil {
				return st, fmt.Errorf("bundle %s: %w", e.rel, err)
			}
		}
	}
	return st, tw.Close()
}

func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("file shrank while bundling (%d of %d bytes)", n, size)
	}
	return nil
}
