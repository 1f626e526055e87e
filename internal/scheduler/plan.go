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
	p := Plan{Waiting: map[string]string{}}
	slots := free.Slots
	gpus := append([]string(nil), free.GPUs...)
	reservedSlots, reservedGPUs := 0, 0
	reservedFor := ""
	for _, c := range queue {
		availSlots := slots - reservedSlots
		availGPUs := len(gpus) - reservedGPUs
		fits := availSlots > 0 && c.NumGPUs <= availGPUs
		if fits {
			p.Start = append(p.Start, Start{JobID: c.ID, GPUIDs: append([]string{}, gpus[:c.NumGPUs]...)})
			gpus = gpus[c.NumGPUs:]
			slots--
			continue
		}
		switch {
		case reservedFor != "" && (slots > 0 && c.NumGPUs <= len(gpus)):
			p.Waiting[c.ID] = fmt.Sprintf("waiting behind job %s, which has waited longest and has resources held for it", reservedFor)
		case slots <= 0:
			p.Waiting[c.ID] = fmt.Sprintf("waiting for a free worker (%d of %d busy)", free.TotalSlot-slots, free.TotalSlot)
		default:
			p.Waiting[c.ID] = fmt.Sprintf("waiting for %d GPU%s (%d of %d free)", c.NumGPUs, plural(c.NumGPUs), len(gpus), free.TotalGPUs)
		}
		if fairness > 0 && now.Sub(c.QueuedAt) > fairness && reservedFor == "" {
			reservedFor = c.ID
			reservedSlots = 1
			reservedGPUs = min(c.NumGPUs, len(gpus))
		}
	}
	return p
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
