// What the handles of cluster executors share: where the engine is with placing a job, and
// requests to an engine that may be away for a while.

package executor

import (
	"sync"
	"sync/atomic"
	"time"
)

// Placement implements Placer for a handle that embeds it: the engine's reason a job waits,
// when it began to run, and a channel closed once it runs or has ended. Its methods are safe
// for concurrent use.
type Placement struct {
	created time.Time
	once    sync.Once
	placed  chan struct{}
	pending atomic.Value // string
	since   atomic.Value // time.Time
}

// NewPlacement returns the placement of a job handed to its engine at created (zero: by an
// earlier server process), waiting for the reason given.
func NewPlacement(created time.Time, pending string) *Placement {
	p := &Placement{created: created, placed: make(chan struct{})}
	p.pending.Store(pending)
	return p
}

// Placed implements Placer.
func (p *Placement) Placed() <-chan struct{} { return p.placed }

// Pending implements Placer.
func (p *Placement) Pending() string {
	s, _ := p.pending.Load().(string)
	return s
}

// Since implements Placer. Engines keep whole seconds: a job that began within the second it
// was handed over is taken to have begun then.
func (p *Placement) Since() time.Time {
	t, _ := p.since.Load().(time.Time)
	if !t.IsZero() && t.Before(p.created) {
		return p.created
	}
	return t
}

// Waiting records the engine's reason the job does not run yet.
func (p *Placement) Waiting(why string) { p.pending.Store(why) }

// Began records when the job began to run, as the engine says (the first time only; a zero
// time says nothing).
func (p *Placement) Began(at time.Time) {
	if !at.IsZero() {
		p.since.CompareAndSwap(nil, at)
	}
}

// Running records that the job runs, since at.
func (p *Placement) Running(at time.Time) {
	p.Began(at)
	p.pending.Store("")
	p.Done()
}

// Done closes Placed: the job runs, or has ended.
func (p *Placement) Done() { p.once.Do(func() { close(p.placed) }) }

// IsPlaced reports whether Placed is closed.
func (p *Placement) IsPlaced() bool {
	select {
	case <-p.placed:
		return true
	default:
		return false
	}
}

// Persist calls do until it succeeds, again every interval while it fails (failed hears each
// failure), and gives up once ended (the job ended) or closed (the executor closed) is closed:
// for a request, such as a stop, that must reach an engine that may be away for a while. It
// blocks; run it in a goroutine.
func Persist(interval time.Duration, do func() error, failed func(error), ended, closed <-chan struct{}) {
	for {
		err := do()
		if err == nil {
			return
		}
		failed(err)
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-ended:
			t.Stop()
			return
		case <-closed:
			t.Stop()
			return
		}
	}
}
