// Deltas: a job's archive stored as what changed relative to its bundle.

package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// A delta is a tar.gz whose first entry is a PAX global header naming its base (paxBase: the
// digest of the bundle it was made against). The entries that follow, in the order Create
// writes them, are those of the folder that differ from the base's (added or changed: content,
// mode, modification time, type or link target), and, for each entry of the base the folder no
// longer has, an empty entry marked paxDeleted. A delta is never unpacked as it is: Rebuild
// turns it back into the whole archive, byte for byte what Create writes for the folder.
const (
	paxBase    = "ATLAS.base"
	paxDeleted = "ATLAS.deleted"
)

// header is the tar header Create writes for an entry: name (slash-separated, relative), its
// mode bits, modification time (whole seconds), type, link target and size.
func header(name string, typ byte, mode int64, mod time.Time, link string, size int64) *tar.Header {
	h := &tar.Header{Name: name, Mode: mode, ModTime: mod.Truncate(time.Second), Typeflag: typ, Format: tar.FormatPAX}
	switch typ {
	case tar.TypeDir:
		h.Name += "/"
	case tar.TypeSymlink:
		h.Linkname = link
	default:
		h.Size = size
	}
	return h
}

// entryHeader is the header of a walked entry.
func entryHeader(e entry) *tar.Header {
	switch {
	case e.info.IsDir():
		return header(e.rel, tar.TypeDir, int64(e.info.Mode().Perm()), e.info.ModTime(), "", 0)
	case e.link != "":
		return header(e.rel, tar.TypeSymlink, int64(e.info.Mode().Perm()), e.info.ModTime(), e.link, 0)
	default:
		return header(e.rel, tar.TypeReg, int64(e.info.Mode().Perm()), e.info.ModTime(), "", e.info.Size())
	}
}

// archiveWriter is the tar writer, over its compressor, that every archive is written with, so
// that a rebuilt archive has the bytes Create would have written.
type archiveWriter struct {
	*tar.Writer
	zw *gzip.Writer
}

// compressors keeps compressors for reuse: each new one allocates and clears about a
// megabyte, most of what archiving a small job's folder cost.
var compressors = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

func newWriter(w io.Writer) *archiveWriter {
	zw := compressors.Get().(*gzip.Writer)
	zw.Reset(w) // as new: the same bytes as a compressor of its own would write
	return &archiveWriter{Writer: tar.NewWriter(zw), zw: zw}
}

// Close ends the archive and its compression, and gives the compressor back.
func (a *archiveWriter) Close() error {
	err := a.Writer.Close()
	if err == nil {
		err = a.zw.Close()
	}
	a.zw.Reset(io.Discard)
	compressors.Put(a.zw)
	return err
}

// relOf is an entry's path without the trailing slash of a directory.
func relOf(h *tar.Header) string { return strings.TrimSuffix(h.Name, "/") }

// walkCompare orders paths as Create writes them: a directory before its contents, and the
// names within one directory in byte order ("a", "a/b", "a.b").
func walkCompare(a, b string) int {
	for {
		ai, bi := strings.IndexByte(a, '/'), strings.IndexByte(b, '/')
		ac, bc := a, b
		if ai >= 0 {
			ac = a[:ai]
		}
		if bi >= 0 {
			bc = b[:bi]
		}
		if c := strings.Compare(ac, bc); c != 0 {
			return c
		}
		switch {
		case ai < 0 && bi < 0:
			return 0
		case ai < 0:
			return -1
		case bi < 0:
			return 1
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}

// baseEntry is what CreateDelta compares a folder's entry with.
type baseEntry struct {
	hdr *tar.Header
	sum [sha256.Size]byte // of a regular file's content
}

// Index is what CreateDelta compares a folder with: a bundle's entries by path, with the
// digests of their contents. It is only read once made, so one index serves the deltas of
// every job of its bundle, at once if need be (IndexCache).
type Index struct {
	entries map[string]baseEntry
}

// Len is the number of entries of the bundle.
func (x *Index) Len() int { return len(x.entries) }

// ReadIndex reads a bundle (a tar.gz as Create writes it) into its index.
func ReadIndex(r io.Reader) (*Index, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	out := map[string]baseEntry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return &Index{entries: out}, nil
		}
		if err != nil {
			return nil, err
		}
		b := baseEntry{hdr: h}
		if h.Typeflag == tar.TypeReg {
			d := sha256.New()
			if _, err := io.Copy(d, tr); err != nil {
				return nil, err
			}
			d.Sum(b.sum[:0])
		}
		out[relOf(h)] = b
	}
}

// CreateDelta writes to w an archive of dir (everything in it, as Create with no options) that
// holds only what differs from base, the index of the bundle whose blob digest is baseDigest.
// Rebuild with the same bundle turns it into exactly what Create would have written.
func CreateDelta(dir string, base *Index, baseDigest string, w io.Writer) (Stats, error) {
	entries, st, err := walk(dir, Options{})
	if err != nil {
		return st, fmt.Errorf("archive %s: %w", dir, err)
	}
	seen := make(map[string]bool, len(base.entries))
	type item struct {
		rel string
		hdr *tar.Header
		src string // the file whose content follows the header
	}
	var out []item
	for _, e := range entries {
		h := entryHeader(e)
		p := filepath.Join(dir, filepath.FromSlash(e.rel))
		if b, ok := base.entries[e.rel]; ok {
			seen[e.rel] = true
			same, err := unchanged(h, b, p)
			if err != nil {
				return st, fmt.Errorf("archive %s: %w", e.rel, err)
			}
			if same {
				continue
			}
		}
		it := item{rel: e.rel, hdr: h}
		if h.Typeflag == tar.TypeReg {
			it.src = p
		}
		out = append(out, it)
	}
	for rel := range base.entries {
		if seen[rel] {
			continue
		}
		out = append(out, item{rel: rel, hdr: &tar.Header{Name: rel, Typeflag: tar.TypeReg, Format: tar.FormatPAX,
			PAXRecords: map[string]string{paxDeleted: "1"}}})
	}
	slices.SortFunc(out, func(a, b item) int { return walkCompare(a.rel, b.rel) })

	tw := newWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Format: tar.FormatPAX,
		PAXRecords: map[string]string{paxBase: baseDigest}}); err != nil {
		return st, err
	}
	for _, it := range out {
		if err := tw.WriteHeader(it.hdr); err != nil {
			return st, fmt.Errorf("archive %s: %w", it.rel, err)
		}
		if it.src != "" {
			if err := copyFile(tw, it.src, it.hdr.Size); err != nil {
				return st, fmt.Errorf("archive %s: %w", it.rel, err)
			}
		}
	}
	return st, tw.Close()
}

// unchanged reports whether the entry with header h, at p, is the base's entry b.
func unchanged(h *tar.Header, b baseEntry, p string) (bool, error) {
	o := b.hdr
	if h.Typeflag != o.Typeflag || h.Mode != o.Mode || !h.ModTime.Equal(o.ModTime) || h.Linkname != o.Linkname || h.Size != o.Size {
		return false, nil
	}
	if h.Typeflag != tar.TypeReg {
		return true, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, io.LimitReader(f, h.Size)); err != nil {
		return false, err
	}
	return bytes.Equal(d.Sum(nil), b.sum[:]), nil
}

// DeltaBase returns the digest of the bundle the archive r was made against by CreateDelta, or
// "" when r is a whole archive.
func DeltaBase(r io.Reader) (string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	h, err := tar.NewReader(zr).Next()
	if errors.Is(err, io.EOF) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("archive: %w", err)
	}
	if h.Typeflag == tar.TypeXGlobalHeader {
		return h.PAXRecords[paxBase], nil
	}
	return "", nil
}

// Rebuild writes to w the whole archive that the delta stands for: the entries of base, less
// those the delta deletes or replaces, and the delta's own, in Create's order, written as
// Create writes them.
func Rebuild(base, delta io.Reader, w io.Writer) error {
	bz, err := gzip.NewReader(base)
	if err != nil {
		return fmt.Errorf("archive's bundle: %w", err)
	}
	dz, err := gzip.NewReader(delta)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	br, dr := tar.NewReader(bz), tar.NewReader(dz)
	next := func(r *tar.Reader) (*tar.Header, error) {
		for {
			h, err := r.Next()
			if errors.Is(err, io.EOF) {
				return nil, nil
			}
			if err != nil || h.Typeflag != tar.TypeXGlobalHeader {
				return h, err
			}
		}
	}
	bh, err := next(br)
	if err != nil {
		return fmt.Errorf("archive's bundle: %w", err)
	}
	dh, err := next(dr)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	tw := newWriter(w)
	// emit copies the entry h, whose content r is at, as Create would write it.
	emit := func(h *tar.Header, r io.Reader) error {
		if err := tw.WriteHeader(header(relOf(h), h.Typeflag, h.Mode, h.ModTime, h.Linkname, h.Size)); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			_, err := io.Copy(tw, r)
			return err
		}
		return nil
	}
	for bh != nil || dh != nil {
		c := 1 // which comes first: <0 the base's entry, >0 the delta's, 0 the delta's over the base's
		if bh != nil && dh != nil {
			c = walkCompare(relOf(bh), relOf(dh))
		} else if bh != nil {
			c = -1
		}
		if c <= 0 {
			if c < 0 {
				if err := emit(bh, br); err != nil {
					return err
				}
			}
			if bh, err = next(br); err != nil {
				return fmt.Errorf("archive's bundle: %w", err)
			}
		}
		if c >= 0 {
			if dh.PAXRecords[paxDeleted] == "" {
				if err := emit(dh, dr); err != nil {
					return err
				}
			}
			if dh, err = next(dr); err != nil {
				return fmt.Errorf("archive: %w", err)
			}
		}
	}
	return tw.Close()
}
