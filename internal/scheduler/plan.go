package scheduler

import (
	"fmt"
	"time"
)

// Candidate is a queued job as the planner sees it.
type Candidate struct {
	ID       string
	NumGPUs  int
	QueuedAt time.Time
}

// Free is what is available right now.
type Free struct {
	Slots     int      // worker slots not in use
	TotalSlot int      // all worker slots
	GPUs      []string // free GPU ids, in the order they are handed out
	TotalGPUs int
}

// Start says a job starts now with these GPUs.
type Start struct {
	JobID  string
	GPUIDs []string
}

// Plan is the decision for one round.
type Plan struct {
	Start []Start
	// Waiting says, for every job that does not start, why.
	Waiting map[string]string
}

// Decide picks the jobs to start now. queue is in queue order (priority, then submit order).
//
// A job that does not fit does not block the jobs behind it (backfill), unless it has waited
// longer than fairness: then it reserves what it needs, and jobs behind it may only use what is
// left over, so a big job is not starved by a stream of small ones. Decide is pure: same input,
// same plan.
func Decide(queue []Candidate, free Free, now time.Time, fairness time.Duration) Plan {
	pl := newPlanner(free, now, fairness)
	for _, c := range queue {
		pl.add(c)
	}
	return pl.plan
}

// DecideHead is Decide's Start for a queue read from its head: read returns the first limit
// jobs of the queue (fewer when the queue is shorter). It reads only as far as a job could
// still start, so its cost does not grow with the queue unless jobs that do not fit fill its
// head. It says nothing of why jobs wait: Plan.Waiting covers only the jobs it read.
func DecideHead(read func(limit int) ([]Candidate, error), free Free, now time.Time, fairness time.Duration) (Plan, error) {
	for limit := 4*free.Slots + 16; ; limit *= 4 {
		queue, err := read(limit)
		if err != nil {
			return Plan{}, err
		}
		pl := newPlanner(free, now, fairness)
		for _, c := range queue {
			if pl.full() {
				break
			}
			pl.add(c)
		}
		if pl.full() || len(queue) < limit {
			return pl.plan, nil
		}
	}
}

// WaitingOf is Decide's Waiting for one job of the queue (job: as the queue holds it; "" when
// it would start now or is not queued), from a queue read from its head as DecideHead reads
// it. Once no job further back can start, nothing that decides why a job waits changes any
// more (free slots and GPUs, the job resources are held for), so it reads only as far as the
// job or the last job that could start, whichever comes first: nothing at all while every
// worker is busy.
func WaitingOf(read func(limit int) ([]Candidate, error), job Candidate, free Free, now time.Time, fairness time.Duration) (string, error) {
	if pl := newPlanner(free, now, fairness); pl.full() {
		pl.add(job)
		return pl.plan.Waiting[job.ID], nil
	}
	for limit := 4*free.Slots + 16; ; limit *= 4 {
		queue, err := read(limit)
		if err != nil {
			return "", err
		}
		pl := newPlanner(free, now, fairness)
		for _, c := range queue {
			if pl.full() {
				break
			}
			pl.add(c)
			if c.ID == job.ID {
				return pl.plan.Waiting[c.ID], nil
			}
		}
		if pl.full() {
			pl.add(job) // behind the head: its reason depends only on what it needs
			return pl.plan.Waiting[job.ID], nil
		}
		if len(queue) < limit {
			return "", nil // not in the queue (any more)
		}
	}
}

// planner is Decide one candidate at a time, so that the queue can be read from its head only
// as far as it matters: once full, no job further back can start.
type planner struct {
	plan          Plan
	free          Free
	now           time.Time
	fairness      time.Duration
	slots         int
	gpus          []string
	reservedSlots int
	reservedGPUs  int
	reservedFor   string
}

func newPlanner(free Free, now time.Time, fairness time.Duration) *planner {
	return &planner{plan: Plan{Waiting: map[string]string{}}, free: free, now: now, fairness: fairness,
		slots: free.Slots, gpus: append([]string(nil), free.GPUs...)}
}

// full says that no job further back in the queue can start: every slot is taken or held.
func (p *planner) full() bool { return p.slots-p.reservedSlots <= 0 }

// add decides the next job of the queue.
func (p *planner) add(c Candidate) {
	availSlots := p.slots - p.reservedSlots
	availGPUs := len(p.gpus) - p.reservedGPUs
	if availSlots > 0 && c.NumGPUs <= availGPUs {
		p.plan.Start = append(p.plan.Start, Start{JobID: c.ID, GPUIDs: append([]string{}, p.gpus[:c.NumGPUs]...)})
		p.gpus = p.gpus[c.NumGPUs:]
		p.slots--
		return
	}
	switch {
	case p.reservedFor != "" && (p.slots > 0 && c.NumGPUs <= len(p.gpus)):
		p.plan.Waiting[c.ID] = fmt.Sprintf("waiting behind job %s, which has waited longest and has resources held for it", p.reservedFor)
	case p.slots <= 0:
		p.plan.Waiting[c.ID] = fmt.Sprintf("waiting for a free worker (%d of %d busy)", p.free.TotalSlot-p.slots, p.free.TotalSlot)
	default:
		p.plan.Waiting[c.ID] = fmt.Sprintf("waiting for %d GPU%s (%d of %d free)", c.NumGPUs, plural(c.NumGPUs), len(p.gpus), p.free.TotalGPUs)
	}
	if p.fairness > 0 && p.now.Sub(c.QueuedAt) > p.fairness && p.reservedFor == "" {
		p.reservedFor = c.ID
		p.reservedSlots = 1
		p.reservedGPUs = min(c.NumGPUs, len(p.gpus))
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
