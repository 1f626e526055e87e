// Package bundle turns a folder into a deterministic tar.gz and back.
//
// Create writes the same bytes for the same folder content, so bundles can be content-addressed
// and a folder submitted many times is uploaded once. Extract treats every archive as hostile:
// no absolute paths, no "..", no links that lead out of the target, no device files, and hard
// caps on total size and entry count, so a malicious or broken bundle fails with a one-line
// error and never writes outside its target directory.
package bundle

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
)

// IgnoreFile is the name of the optional file, in the root of a job folder, that lists
// gitignore-style patterns of paths to leave out of the bundle.
const IgnoreFile = ".atlasignore"

// DefaultIgnore is always applied when bundling a job folder.
var DefaultIgnore = []string{".git/", "__pycache__/", "*.pyc", ".ipynb_checkpoints/"}

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
	matcher, err := newMatcher(dir, opts)
	if err != nil {
		return nil, st, err
	}
	var out []entry
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
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !linkStaysInside(rel, target) {
				st.Skipped = append(st.Skipped, fmt.Sprintf("%s -> %s (link points outside the folder)", rel, target))
				return nil
			}
			e.link = target
		default:
			st.Skipped = append(st.Skipped, fmt.Sprintf("%s (%s is not a regular file)", rel, mode.Type()))
			return nil
		}
		out = append(out, e)
		return nil
	})
	return out, st, err
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
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.rel,
			Mode:    int64(e.info.Mode().Perm()),
			ModTime: e.info.ModTime().Truncate(time.Second),
			Format:  tar.FormatPAX,
		}
		switch {
		case e.info.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case e.link != "":
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.link
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.info.Size()
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return st, fmt.Errorf("bundle %s: %w", e.rel, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(tw, filepath.Join(dir, filepath.FromSlash(e.rel)), hdr.Size); err != nil {
				return st, fmt.Errorf("bundle %s: %w", e.rel, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return st, err
	}
	return st, zw.Close()
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

// linkStaysInside reports whether a symlink at rel with the given target resolves, lexically,
// to a path inside the root.
func linkStaysInside(rel, target string) bool {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) {
		return false
	}
	joined := path.Join(path.Dir(rel), filepath.ToSlash(target))
	return joined != ".." && !strings.HasPrefix(joined, "../")
}

// Limits caps what Extract accepts.
type Limits struct {
	MaxBytes   int64 // total uncompressed bytes of regular files
	MaxEntries int
}

// DefaultLimits are generous for code folders and stop decompression bombs.
var DefaultLimits = Limits{MaxBytes: 20 << 30, MaxEntries: 1_000_000}

// Extract unpacks a gzip-compressed tar from r into dst, which must exist. It refuses, with an
// ErrInvalid error, anything that would write outside dst.
func Extract(r io.Reader, dst string, lim Limits) error {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return atlas.Invalidf("bundle is not a gzip file: %v", err)
	}
	tr := tar.NewReader(zr)
	var total int64
	var count int
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return atlas.Invalidf("bundle is truncated or corrupt: %v", err)
		}
		count++
		if lim.MaxEntries > 0 && count > lim.MaxEntries {
			return atlas.Invalidf("bundle has more than %d entries", lim.MaxEntries)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return atlas.Invalidf("bundle entry %q: %v", hdr.Name, err)
			}
			dirs = append(dirs, dirTime{name, hdr.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			total += hdr.Size
			if lim.MaxBytes > 0 && total > lim.MaxBytes {
				return atlas.Invalidf("bundle expands to more than %d bytes", lim.MaxBytes)
			}
			if err := writeEntry(root, name, mode, tr, hdr.Size); err != nil {
				return err
			}
			_ = root.Chtimes(name, hdr.ModTime, hdr.ModTime)
		case tar.TypeSymlink:
			if !linkStaysInside(name, hdr.Linkname) {
				return atlas.Invalidf("bundle entry %q is a link pointing outside the bundle (%s)", hdr.Name, hdr.Linkname)
			}
			if err := ensureParent(root, name); err != nil {
				return err
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return atlas.Invalidf("bundle entry %q: %v", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := cleanName(hdr.Linkname)
			if err != nil || target == "." {
				return atlas.Invalidf("bundle entry %q is a hard link pointing outside the bundle (%s)", hdr.Name, hdr.Linkname)
			}
			// A hard link becomes a copy of a file extracted before it; os.Root refuses a
			// source that escapes through a symlink.
			src, err := root.Open(target)
			if err != nil {
				return atlas.Invalidf("bundle entry %q links to %q, which is not in the bundle", hdr.Name, hdr.Linkname)
			}
			fi, err := src.Stat()
			if err != nil || !fi.Mode().IsRegular() {
				src.Close()
				return atlas.Invalidf("bundle entry %q links to %q, which is not a regular file", hdr.Name, hdr.Linkname)
			}
			total += fi.Size()
			if lim.MaxBytes > 0 && total > lim.MaxBytes {
				src.Close()
				return atlas.Invalidf("bundle expands to more than %d bytes", lim.MaxBytes)
			}
			err = writeEntry(root, name, fi.Mode().Perm(), src, fi.Size())
			src.Close()
			if err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
		default:
			return atlas.Invalidf("bundle entry %q has unsupported type %q (devices, fifos and sockets are refused)", hdr.Name, string(hdr.Typeflag))
		}
	}
	// Directory times last: creating files inside them changed them.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i].name) > len(dirs[j].name) })
	for _, d := range dirs {
		_ = root.Chtimes(d.name, d.t, d.t)
	}
	return nil
}

func ensureParent(root *os.Root, name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return atlas.Invalidf("bundle entry %q: %v", name, err)
		}
	}
	return nil
}

func writeEntry(root *os.Root, name string, mode fs.FileMode, r io.Reader, size int64) error {
	if err := ensureParent(root, name); err != nil {
		return err
	}
	_ = root.Remove(name) // a later entry replaces an earlier one, as tar does
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o200)
	if err != nil {
		return atlas.Invalidf("bundle entry %q: %v", name, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return atlas.Invalidf("bundle is truncated or corrupt at %q: %v", name, err)
	}
	if n != size {
		return atlas.Invalidf("bundle is truncated at %q", name)
	}
	return nil
}

// cleanName validates a tar entry name and returns it cleaned and relative.
func cleanName(name string) (string, error) {
	if name == "" {
		return "", atlas.Invalidf("bundle has an entry with an empty name")
	}
	if strings.ContainsRune(name, 0) {
		return "", atlas.Invalidf("bundle entry %q has a NUL byte in its name", name)
	}
	n := strings.ReplaceAll(name, "\\", "/")
	if path.IsAbs(n) || (len(n) > 1 && n[1] == ':') {
		return "", atlas.Invalidf("bundle entry %q has an absolute path", name)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", atlas.Invalidf("bundle entry %q has a \"..\" path component", name)
		}
	}
	return path.Clean(n), nil
}
