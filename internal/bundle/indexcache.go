package bundle

import (
	"container/list"
	"io"
	"sync"
)

// IndexCache keeps the indexes of the bundles jobs were archived against lately, by the
// bundles' digests, so that each job's end does not unpack and hash its bundle again: a
// bundle's blob never changes, its name being its digest. It holds at most a number of
// entries in all, dropping the least recently used indexes first; a larger index is not kept.
type IndexCache struct {
	max int

	mu       sync.Mutex
	n        int // entries of the indexes kept
	byDigest map[string]*list.Element
	lru      *list.List // of *cachedIndex, most recently used first
}

type cachedIndex struct {
	digest string
	x      *Index
}

// NewIndexCache returns a cache of at most maxEntries entries of indexes in all.
func NewIndexCache(maxEntries int) *IndexCache {
	return &IndexCache{max: maxEntries, byDigest: map[string]*list.Element{}, lru: list.New()}
}

// Index returns the index of the bundle whose digest is given, reading the bundle from open
// when the index is not kept.
func (c *IndexCache) Index(digest string, open func() (io.ReadCloser, error)) (*Index, error) {
	c.mu.Lock()
	if e, ok := c.byDigest[digest]; ok {
		c.lru.MoveToFront(e)
		c.mu.Unlock()
		return e.Value.(*cachedIndex).x, nil
	}
	c.mu.Unlock()
	r, err := open()
	if err != nil {
		return nil, err
	}
	x, err := ReadIndex(r)
	r.Close()
	if err != nil {
		return nil, err
	}
	c.add(digest, x)
	return x, nil
}

func (c *IndexCache) add(digest string, x *Index) {
	if x.Len() > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byDigest[digest]; ok { // read meanwhile by another job's end
		return
	}
	c.byDigest[digest] = c.lru.PushFront(&cachedIndex{digest: digest, x: x})
	c.n += x.Len()
	for c.n > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cachedIndex)
		delete(c.byDigest, old.digest)
		c.n -= old.x.Len()
	}
}
