package api

import (
	"sync"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Change is one job state change, as sent to subscribers.
type Change struct {
	JobID   string      `json:"id"`
	Project string      `json:"project"`
	State   atlas.State `json:"state"`
	Deleted bool        `json:"deleted,omitempty"`
}

// Hub fans job changes out to subscribers (long polls, the GUI's event stream). A slow
// subscriber misses changes rather than slowing the publisher, so subscribers re-read state
// instead of trusting the stream to be complete.
type Hub struct {
	mu   sync.Mutex
	subs map[chan Change]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan Change]struct{}{}} }

// Publish sends a change to every subscriber that has room for it.
func (h *Hub) Publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- c:
		default:
		}
	}
}

// JobChanged publishes a job's new state.
func (h *Hub) JobChanged(j *atlas.Job) {
	h.Publish(Change{JobID: j.ID, Project: j.Project, State: j.State})
}

// Subscribe returns a channel of changes and a function that ends the subscription.
func (h *Hub) Subscribe() (<-chan Change, func()) {
	ch := make(chan Change, 256)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}
