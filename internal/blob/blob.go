// Package blob defines the content-addressed store of bundles, archives and artifacts,
// whatever keeps the bytes.
//
// A blob is named by the sha256 of its bytes ("sha256:<hex>"), so the same folder submitted a
// thousand times is stored once. Every backend (internal/blob/local, a directory; internal/
// blob/s3, a bucket of an S3-compatible server) passes the conformance suite in
// internal/blob/blobtest and keeps these rules:
//   - a blob appears under its digest only once all of its bytes are stored and hash to it: a
//     reader never sees a partial or mislabelled blob, and a refused upload leaves nothing;
//   - a malformed digest is atlas.ErrInvalid before anything is touched, so no digest can
//     name anything but a blob;
//   - a missing blob is atlas.ErrNotFound (Open) or false (Has), and deleting one is no error.
//
// A store never decides which blobs are still needed: the job service does (BlobRefs), and
// calls Delete.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Store keeps blobs.
type Store interface {
	// Put stores the bytes read from r. If want is not empty the content must hash to it, or
	// nothing is stored and an atlas.ErrInvalid error is returned. It returns the digest and
	// size. Putting a blob that is stored already is not an error.
	Put(ctx context.Context, r io.Reader, want string) (digest string, size int64, err error)
	// Has reports whether the blob is stored, and its size.
	Has(ctx context.Context, digest string) (bool, int64, error)
	// Open opens a blob for reading. Seeking is cheap: a server answers a range of a blob
	// without reading what comes before it.
	Open(ctx context.Context, digest string) (io.ReadSeekCloser, error)
	// Delete removes a blob.
	Delete(ctx context.Context, digest string) error
	// Walk calls fn with every blob's digest and the time it was stored or last touched, in
	// no set order. A blob stored or deleted while Walk runs may or may not be seen.
	Walk(ctx context.Context, fn func(digest string, stored time.Time) error) error
	// Touch marks a blob as just stored, so that collection of unreferenced blobs, which
	// spares recent ones, leaves it to the client that asked about it.
	Touch(ctx context.Context, digest string) error
	// DownloadURL returns a URL from which anyone holding it may GET the blob for a while,
	// without the server, answered with the given headers; "" when the store has no such URLs.
	DownloadURL(ctx context.Context, digest string, h Download) (string, error)
	// String says what and where the store is, for the server's start-up lines. It holds no
	// secret.
	String() string
}

// Download is how a blob served from a DownloadURL is presented.
type Download struct {
	ContentType        string
	ContentDisposition string
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

// Mismatch is the error of content that does not hash to the digest it was sent under.
func Mismatch(got, want string) error {
	return atlas.Invalidf("content does not match digest: got %s, want %s (truncated or corrupted upload?)", got, want)
}

// PutFile stores a file's content. It hashes the file first, so that a store writes it
// straight under its digest.
func PutFile(ctx context.Context, s Store, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", 0, err
	}
	return s.Put(ctx, f, Digest(h.Sum(nil)))
}

// Hashing reads from R and hashes what it read.
type Hashing struct {
	R io.Reader
	h hash.Hash
	n int64
}

// Read implements io.Reader.
func (r *Hashing) Read(p []byte) (int, error) {
	if r.h == nil {
		r.h = sha256.New()
	}
	n, err := r.R.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	return n, err
}

// Digest is the digest of what was read so far, and its size.
func (r *Hashing) Digest() (string, int64) {
	if r.h == nil {
		r.h = sha256.New()
	}
	return Digest(r.h.Sum(nil)), r.n
}
