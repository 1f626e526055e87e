package bundle

import (
	"container/list"
	"io"
	"sync"

	"golang.org/x/sync/singleflight"
)

// IndexCache keeps the indexes of the bundles jobs were archived against lately, by the
// bundles' digests, so that each job's end does not unpack and hash its bundle again: a
// bundle's blob never changes, its name being its digest. It holds at most a number of
// entries in all, dropping the least recently used indexes first; a larger index is not kept.
// Jobs of one bundle that end together (a search's trials) read it once.
type IndexCache struct {
	max     int
	reading singleflight.Group // by digest

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
	if x := c.kept(digest); x != nil {
		return x, nil
	}
	x, err, _ := c.reading.Do(digest, func() (any, error) {
		if x := c.kept(digest); x != nil { // read by a call that ended meanwhile
			return x, nil
		}
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
	})
	if err != nil {
		return nil, err
	}
	return x.(*Index), nil
}

// kept returns the index kept for digest, or nil.
func (c *IndexCache) kept(digest string) *Index {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byDigest[digest]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cachedIndex).x
	}
	return nil
}

func (c *IndexCache) add(digest string, x *Index) {
	if x.Len() > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byDigest[digest]; ok {
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
