// Events: how the service tells the scheduler and clients that a job changed.

package jobs

import (
	"slices"
	"sync"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Change is one job state change, or (Tracked) new values tracked for a job, or a change of
// a search (JobID empty), as sent to subscribers.
type Change struct {
	JobID string `json:"id,omitempty"`
	// Name is the job's name (state changes and deletions only).
	Name    string      `json:"name,omitempty"`
	Project string      `json:"project"`
	State   atlas.State `json:"state,omitempty"`
	Deleted bool        `json:"deleted,omitempty"`
	// Search is the search the job is a trial of, or the search that changed.
	Search      string            `json:"search,omitempty"`
	SearchState atlas.SearchState `json:"search_state,omitempty"`
	Tracked     bool              `json:"-"`
}

// TrackInterval is the least time between two announcements of new values of one job.
const TrackInterval = time.Second

// Events fans job changes out. Subscribers (long polls, the GUI's event stream) get them on a
// channel; a slow subscriber misses changes rather than slowing the publisher, so subscribers
// re-read state instead of trusting the stream to be complete. Listeners (the scheduler) are
// called with every change, in the publisher's goroutine, and must not block.
type Events struct {
	mu        sync.Mutex
	subs      map[chan Change]struct{}
	listeners []*listener
	announced map[string]time.Time // job id -> last "tracked" announcement
	pending   map[string]bool      // job id -> an announcement is due at the end of the interval
}

// NewEvents returns events with no subscribers.
func NewEvents() *Events {
	return &Events{subs: map[chan Change]struct{}{}, announced: map[string]time.Time{}, pending: map[string]bool{}}
}

// Tracked announces that new values were tracked for a job: at once if the job was not
// announced within TrackInterval, else once at the end of that interval, so a job logging
// thousands of points a second costs one event a second and the last values are never left
// unannounced. search is the search the job is a trial of ("": none).
func (h *Events) Tracked(jobID, project, search string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	last := h.announced[jobID]
	if wait := TrackInterval - now.Sub(last); wait > 0 {
		if !h.pending[jobID] {
			h.pending[jobID] = true
			time.AfterFunc(wait, func() {
				h.mu.Lock()
				delete(h.pending, jobID)
				h.announced[jobID] = time.Now()
				h.mu.Unlock()
				h.Publish(Change{JobID: jobID, Project: project, Search: search, Tracked: true})
			})
		}
		return
	}
	if len(h.announced) > 10000 {
		for id, t := range h.announced {
			if now.Sub(t) > TrackInterval && !h.pending[id] {
				delete(h.announced, id)
			}
		}
	}
	h.announced[jobID] = now
	h.publishLocked(Change{JobID: jobID, Project: project, Search: search, Tracked: true})
}

// Publish sends a change to every subscriber that has room for it.
func (h *Events) Publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(c)
}

func (h *Events) publishLocked(c Change) {
	for _, l := range h.listeners {
		l.fn(c)
	}
	for ch := range h.subs {
		select {
		case ch <- c:
		default:
		}
	}
}

// JobChanged publishes a job's new state.
func (h *Events) JobChanged(j *atlas.Job) {
	h.Publish(Change{JobID: j.ID, Name: j.Name, Project: j.Project, State: j.State, Search: j.SearchID})
}

// SearchChanged publishes a change of a search: its state, or what it decided.
func (h *Events) SearchChanged(s *atlas.Search) {
	h.Publish(Change{Project: s.Project, Search: s.ID, SearchState: s.State})
}

// Listen calls fn with every change until the returned function is called. fn runs in the
// publisher's goroutine with the events' lock held: it must return at once and must not
// publish.
func (h *Events) Listen(fn func(Change)) (stop func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := &listener{fn: fn}
	h.listeners = append(h.listeners, l)
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.listeners = slices.DeleteFunc(h.listeners, func(x *listener) bool { return x == l })
	}
}

type listener struct{ fn func(Change) }

// Subscribe returns a channel of changes and a function that ends the subscription.
func (h *Events) Subscribe() (<-chan Change, func()) {
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
