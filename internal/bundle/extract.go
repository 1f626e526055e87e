// Extract: unpacking a bundle as hostile input.

package bundle

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Limits caps what Extract accepts.
type Limits struct {
	MaxBytes   int64 // total uncompressed bytes of regular files
	MaxEntries int
}

// DefaultLimits are generous for code folders and stop decompression bombs.
var DefaultLimits = Limits{MaxBytes: 20 << 30, MaxEntries: 1_000_000}

// Extract unpacks a gzip-compressed tar from r into dst, which must exist. It refuses, with an
// ErrInvalid error, anything that would write outside dst or leave a link there that leads out
// of it. Symlinks are created last, once every file and directory is in place, so no entry of
// the archive is ever written through a link. File modes are kept; directories are always
// readable, writable and searchable by their owner, so the tree can be deleted without root.
func Extract(r io.Reader, dst string, lim Limits) error {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	x := &extractor{root: root, lim: lim, realDirs: map[string]bool{}}
	return x.run(r)
}

// Decompressed bytes a bundle may hold beyond its file contents: tar headers, PAX records and
// padding. With them the decompression work is bounded whatever the archive holds, including
// data after the end of the tar stream, which a tar reader never looks at.
const (
	slackBytes    = 16 << 20
	perEntryBytes = 8 << 10
)

type extractor struct {
	root     *os.Root
	lim      Limits
	budget   *budgetReader
	realDirs map[string]bool // paths known to be directories, not links
	total    int64
	count    int
	links    []pendingLink
	dirs     []dirMeta
}

type pendingLink struct{ name, orig, target string }

type dirMeta struct {
	name string
	mode fs.FileMode
	t    time.Time
}

func (x *extractor) run(r io.Reader) error {
	zr, err := gzip.NewReader(bufio.NewReader(r))
	if err != nil {
		return atlas.Invalidf("bundle is not a gzip file: %s", atlas.EscapeControls(err.Error()))
	}
	x.budget = &budgetReader{r: zr, limit: -1}
	x.setBudget()
	tr := tar.NewReader(x.budget)
	for {
		start := x.budget.n
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// archive/tar also reports io.EOF when the stream just stops; a whole archive ends
			// with two zero blocks right after the last entry's padding.
			if x.budget.n != (start+blockSize-1)/blockSize*blockSize+2*blockSize || x.budget.zeros < 2*blockSize {
				return atlas.Invalidf("bundle is truncated or corrupt: the tar stream ends without its end-of-archive marker")
			}
			break
		}
		if err != nil {
			return x.readErr(err, "")
		}
		x.count++
		if x.lim.MaxEntries > 0 && x.count > x.lim.MaxEntries {
			return atlas.Invalidf("bundle has more than %d entries", x.lim.MaxEntries)
		}
		x.setBudget()
		if err := x.entry(tr, hdr); err != nil {
			return err
		}
	}
	// Read to the end of the gzip stream so its checksum is verified: a corrupted bundle whose
	// tar structure survived must not pass.
	if _, err := io.Copy(io.Discard, x.budget); err != nil {
		return x.readErr(err, "")
	}
	for _, l := range x.links {
		if err := x.symlink(l); err != nil {
			return err
		}
	}
	// Directory modes and times last: creating files inside them changed their times.
	sort.SliceStable(x.dirs, func(i, j int) bool { return len(x.dirs[i].name) > len(x.dirs[j].name) })
	for _, d := range x.dirs {
		if err := x.root.Chmod(d.name, d.mode|0o700); err != nil {
			return atlas.Invalidf("bundle entry %q: %s", d.name, atlas.EscapeControls(err.Error()))
		}
		_ = x.root.Chtimes(d.name, d.t, d.t)
	}
	return nil
}

func (x *extractor) setBudget() {
	if x.lim.MaxBytes > 0 {
		x.budget.limit = x.lim.MaxBytes + slackBytes + int64(x.count)*perEntryBytes
	}
}

// readErr turns an error reading the archive into a one-line ErrInvalid.
func (x *extractor) readErr(err error, name string) error {
	if x.budget.exceeded {
		return atlas.Invalidf("bundle expands to more than %d bytes", x.lim.MaxBytes)
	}
	if name != "" {
		return atlas.Invalidf("bundle is truncated or corrupt at %q: %s", name, atlas.EscapeControls(err.Error()))
	}
	return atlas.Invalidf("bundle is truncated or corrupt: %s", atlas.EscapeControls(err.Error()))
}

func (x *extractor) entry(tr *tar.Reader, hdr *tar.Header) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil
	}
	if err := x.checkParents(name, hdr.Name); err != nil {
		return err
	}
	mode := fs.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if fi, err := x.root.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return atlas.Invalidf("bundle entry %q is a directory where there is a link", hdr.Name)
		}
		if err := x.root.MkdirAll(name, 0o700); err != nil {
			return atlas.Invalidf("bundle entry %q: %s", hdr.Name, atlas.EscapeControls(err.Error()))
		}
		x.realDirs[name] = true
		x.dirs = append(x.dirs, dirMeta{name, mode, hdr.ModTime})
	case tar.TypeReg, tar.TypeRegA:
		if hdr.Size < 0 {
			return atlas.Invalidf("bundle entry %q has a negative size", hdr.Name)
		}
		if err := x.add(hdr.Size); err != nil {
			return err
		}
		if err := x.writeFile(name, hdr.Name, mode, tr, hdr.Size); err != nil {
			return err
		}
		_ = x.root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	case tar.TypeSymlink:
		// Refuse what is plainly outside now; the full check runs when the link is created.
		if !linkStaysInside(name, hdr.Linkname, nil) {
			return atlas.Invalidf("bundle entry %q is a link pointing outside the bundle (%q)", hdr.Name, hdr.Linkname)
		}
		x.links = append(x.links, pendingLink{name: name, orig: hdr.Name, target: hdr.Linkname})
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil || target == "." {
			return atlas.Invalidf("bundle entry %q is a hard link pointing outside the bundle (%q)", hdr.Name, hdr.Linkname)
		}
		// A hard link becomes a copy of a file extracted before it; os.Root refuses a
		// source that escapes through a symlink.
		fi, err := x.root.Stat(target)
		if err != nil {
			return atlas.Invalidf("bundle entry %q links to %q, which is not in the bundle", hdr.Name, hdr.Linkname)
		}
		if !fi.Mode().IsRegular() {
			return atlas.Invalidf("bundle entry %q links to %q, which is not a regular file", hdr.Name, hdr.Linkname)
		}
		if err := x.add(fi.Size()); err != nil {
			return err
		}
		src, err := x.root.Open(target)
		if err != nil {
			return atlas.Invalidf("bundle entry %q links to %q: %s", hdr.Name, hdr.Linkname, atlas.EscapeControls(err.Error()))
		}
		err = x.writeFile(name, hdr.Name, fi.Mode().Perm(), src, fi.Size())
		src.Close()
		if err != nil {
			return err
		}
	case tar.TypeXGlobalHeader:
	default:
		return atlas.Invalidf("bundle entry %q has unsupported type %q (devices, fifos and sockets are refused)", hdr.Name, string(hdr.Typeflag))
	}
	return nil
}

// add counts n more bytes of file content against the limit.
func (x *extractor) add(n int64) error {
	if x.lim.MaxBytes > 0 && n > x.lim.MaxBytes-x.total {
		return atlas.Invalidf("bundle expands to more than %d bytes", x.lim.MaxBytes)
	}
	x.total += n
	return nil
}

// checkParents refuses an entry whose parent directories include a link or a file: writing
// "through" a link is how archives escape their target.
func (x *extractor) checkParents(name, orig string) error {
	dir := path.Dir(name)
	if dir == "." || x.realDirs[dir] {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if x.realDirs[p] {
			continue
		}
		fi, err := x.root.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil // MkdirAll creates the rest as real directories
		case err != nil:
			return atlas.Invalidf("bundle entry %q: %s", orig, atlas.EscapeControls(err.Error()))
		case fi.Mode()&fs.ModeSymlink != 0:
			return atlas.Invalidf("bundle entry %q is inside %q, which is a link", orig, p)
		case !fi.IsDir():
			return atlas.Invalidf("bundle entry %q is inside %q, which is not a directory", orig, p)
		}
		x.realDirs[p] = true
	}
	return nil
}

func (x *extractor) symlink(l pendingLink) error {
	if err := x.checkParents(l.name, l.orig); err != nil {
		return err
	}
	isDir := func(p string) bool {
		fi, err := x.root.Lstat(p)
		return err == nil && fi.IsDir()
	}
	if !linkStaysInside(l.name, l.target, isDir) {
		return atlas.Invalidf("bundle entry %q is a link pointing outside the bundle (%q)", l.orig, l.target)
	}
	if err := x.ensureParent(l.name, l.orig); err != nil {
		return err
	}
	if _, err := x.root.Lstat(l.name); err == nil {
		return atlas.Invalidf("bundle entry %q is a link where the bundle already has a file or directory", l.orig)
	}
	if err := x.root.Symlink(l.target, l.name); err != nil {
		return atlas.Invalidf("bundle entry %q: %s", l.orig, atlas.EscapeControls(err.Error()))
	}
	return nil
}

func (x *extractor) ensureParent(name, orig string) error {
	if dir := path.Dir(name); dir != "." && !x.realDirs[dir] {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return atlas.Invalidf("bundle entry %q: %s", orig, atlas.EscapeControls(err.Error()))
		}
		x.realDirs[dir] = true
	}
	return nil
}

func (x *extractor) writeFile(name, orig string, mode fs.FileMode, r io.Reader, size int64) error {
	if err := x.ensureParent(name, orig); err != nil {
		return err
	}
	// A later entry replaces an earlier one, as tar does; a non-empty directory stays and
	// makes the create below fail.
	if err := x.root.Remove(name); err == nil {
		delete(x.realDirs, name)
	}
	f, err := x.root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return atlas.Invalidf("bundle entry %q: %s", orig, atlas.EscapeControls(err.Error()))
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		// Set explicitly: the mode given to open is reduced by the umask.
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return x.readErr(err, orig)
	}
	return nil
}

const blockSize = 512 // of a tar stream

// budgetReader fails once more than limit bytes were read (limit < 0: no limit). It also
// counts the zero bytes that end what was read so far.
type budgetReader struct {
	r        io.Reader
	n, limit int64
	zeros    int64
	exceeded bool
}

var errBudget = errors.New("bundle expands too much")

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.limit >= 0 {
		if b.n > b.limit {
			b.exceeded = true
			return 0, errBudget
		}
		if room := b.limit - b.n + 1; int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	i := n
	for i > 0 && p[i-1] == 0 {
		i--
	}
	if i > 0 {
		b.zeros = 0
	}
	b.zeros += int64(n - i)
	return n, err
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
