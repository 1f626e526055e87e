package telemetry

import (
	"context"
	"io"

	"github.com/atlasgo/atlas/internal/blob"
)

// Blobs returns b with the bytes put into it and read out of it counted
// (atlas_blob_bytes_total). Downloads a client fetches from the store's own URLs (presigned S3
// URLs) go around the server and are not counted.
func (t *Telemetry) Blobs(b blob.Store) blob.Store { return &countedBlobs{Store: b, t: t} }

type countedBlobs struct {
	blob.Store
	t *Telemetry
}

func (c *countedBlobs) Put(ctx context.Context, r io.Reader, want string) (string, int64, error) {
	cr := &countingReader{r: r}
	digest, size, err := c.Store.Put(ctx, cr, want)
	c.t.blobBytes.add(uint64(cr.n), "in")
	return digest, size, err
}

func (c *countedBlobs) Open(ctx context.Context, digest string) (io.ReadSeekCloser, error) {
	f, err := c.Store.Open(ctx, digest)
	if err != nil {
		return nil, err
	}
	return &countedReadSeekCloser{ReadSeekCloser: f, t: c.t}, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countedReadSeekCloser struct {
	io.ReadSeekCloser
	t *Telemetry
}

func (c *countedReadSeekCloser) Read(p []byte) (int, error) {
	n, err := c.ReadSeekCloser.Read(p)
	c.t.blobBytes.add(uint64(n), "out")
	return n, err
}
