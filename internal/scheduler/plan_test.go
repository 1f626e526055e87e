package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fresh := now.Add(-time.Minute)
	old := now.Add(-2 * time.Hour)
	job := func(id string, gpus int, at time.Time) Candidate {
		return Candidate{ID: id, NumGPUs: gpus, QueuedAt: at}
	}
	tests := []struct {
		name     string
		queue    []Candidate
		free     Free
		starts   []Start
		waiting  map[string]string
		fairness time.Duration
	}{
		{
			name:   "EmptyQueue",
			free:   Free{Slots: 2, TotalSlot: 2},
			starts: nil,
		},
		{
			name:    "FillsFreeSlotsInQueueOrder",
			queue:   []Candidate{job("a", 0, fresh), job("b", 0, fresh), job("c", 0, fresh)},
			free:    Free{Slots: 2, TotalSlot: 2},
			starts:  []Start{{JobID: "a", GPUIDs: []string{}}, {JobID: "b", GPUIDs: []string{}}},
			waiting: map[string]string{"c": "waiting for a free worker (2 of 2 busy)"},
		},
		{
			name:    "NoFreeSlot",
			queue:   []Candidate{job("a", 0, fresh)},
			free:    Free{Slots: 0, TotalSlot: 1},
			waiting: map[string]string{"a": "waiting for a free worker (1 of 1 busy)"},
		},
		{
			name:   "GPUsHandedOutInOrder",
			queue:  []Candidate{job("a", 2, fresh), job("b", 1, fresh)},
			free:   Free{Slots: 4, TotalSlot: 4, GPUs: []string{"0", "1", "2"}, TotalGPUs: 3},
			starts: []Start{{JobID: "a", GPUIDs: []string{"0", "1"}}, {JobID: "b", GPUIDs: []string{"2"}}},
		},
		{
			name:    "BigJobDoesNotBlockSmallerOnesBehindIt",
			queue:   []Candidate{job("big", 4, fresh), job("small", 1, fresh), job("cpu", 0, fresh)},
			free:    Free{Slots: 4, TotalSlot: 4, GPUs: []string{"0", "1"}, TotalGPUs: 4},
			starts:  []Start{{JobID: "small", GPUIDs: []string{"0"}}, {JobID: "cpu", GPUIDs: []string{}}},
			waiting: map[string]string{"big": "waiting for 4 GPUs (2 of 4 free)"},
		},
		{
			name:     "StarvedJobReservesWhatItNeeds",
			queue:    []Candidate{job("big", 2, old), job("small", 1, fresh), job("cpu", 0, fresh)},
			free:     Free{Slots: 3, TotalSlot: 4, GPUs: []string{"0"}, TotalGPUs: 2},
			fairness: time.Hour,
			// The one free GPU is held for "big"; the CPU job may still use a spare slot.
			starts: []Start{{JobID: "cpu", GPUIDs: []string{}}},
			waiting: map[string]string{
				"big":   "waiting for 2 GPUs (1 of 2 free)",
				"small": "waiting behind job big, which has waited longest and has resources held for it",
			},
		},
		{
			name:     "StarvedJobHoldsALastSlot",
			queue:    []Candidate{job("big", 1, old), job("cpu", 0, fresh)},
			free:     Free{Slots: 1, TotalSlot: 2, GPUs: []string{}, TotalGPUs: 1},
			fairness: time.Hour,
			waiting: map[string]string{
				"big": "waiting for 1 GPU (0 of 1 free)",
				"cpu": "waiting behind job big, which has waited longest and has resources held for it",
			},
		},
		{
			name:     "WithinFairnessBoundBackfillContinues",
			queue:    []Candidate{job("big", 2, fresh), job("small", 1, fresh)},
			free:     Free{Slots: 2, TotalSlot: 2, GPUs: []string{"0"}, TotalGPUs: 2},
			fairness: time.Hour,
			starts:   []Start{{JobID: "small", GPUIDs: []string{"0"}}},
			waiting:  map[string]string{"big": "waiting for 2 GPUs (1 of 2 free)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Decide(tt.queue, tt.free, now, tt.fairness)
			require.Equal(t, tt.starts, got.Start)
			if tt.waiting == nil {
				tt.waiting = map[string]string{}
			}
			require.Equal(t, tt.waiting, got.Waiting)
		})
	}
}

// Decide does not change its input.
func TestDecide_DoesNotModifyFreeGPUs(t *testing.T) {
	t.Parallel()
	gpus := []string{"0", "1"}
	Decide([]Candidate{{ID: "a", NumGPUs: 1}}, Free{Slots: 1, TotalSlot: 1, GPUs: gpus, TotalGPUs: 2}, time.Now(), 0)
	require.Equal(t, []string{"0", "1"}, gpus)
}

// randomQueue is a queue of up to n jobs, some needing GPUs, some waiting for long, and what
// is free for them.
func randomQueue(r *rand.Rand, n int, now time.Time) ([]Candidate, Free, time.Duration) {
	queue := make([]Candidate, r.IntN(n))
	for i := range queue {
		queue[i] = Candidate{ID: fmt.Sprint("j", i), NumGPUs: max(0, r.IntN(6)-3), QueuedAt: now.Add(-time.Duration(r.IntN(120)) * time.Minute)}
	}
	gpus := []string{"0", "1", "2", "3"}[:r.IntN(5)]
	free := Free{Slots: r.IntN(5), TotalSlot: 4, GPUs: gpus, TotalGPUs: 4}
	return queue, free, []time.Duration{0, time.Hour}[r.IntN(2)]
}

// headOf reads the head of queue, counting the jobs read in read (when not nil).
func headOf(queue []Candidate, read *int) func(limit int) ([]Candidate, error) {
	return func(limit int) ([]Candidate, error) {
		n := min(limit, len(queue))
		if read != nil {
			*read += n
		}
		return queue[:n], nil
	}
}

// longQueue is 10,000 jobs queued at now.
func longQueue(now time.Time) []Candidate {
	queue := make([]Candidate, 10000)
	for i := range queue {
		queue[i] = Candidate{ID: fmt.Sprint("j", i), QueuedAt: now}
	}
	return queue
}

// DecideHead starts what Decide starts over the whole queue, reading only its head when the
// jobs there fit.
func TestDecideHeadStartsWhatDecideStarts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		queue, free, fairness := randomQueue(r, 200, now)
		got, err := DecideHead(headOf(queue, nil), free, now, fairness)
		require.NoError(t, err)
		require.Equal(t, Decide(queue, free, now, fairness).Start, got.Start, "round %d", round)
	}
	queue, read := longQueue(now), 0
	got, err := DecideHead(headOf(queue, &read), Free{Slots: 2, TotalSlot: 2}, now, time.Hour)
	require.NoError(t, err)
	require.Equal(t, []Start{{JobID: "j0", GPUIDs: []string{}}, {JobID: "j1", GPUIDs: []string{}}}, got.Start)
	require.Less(t, read, 100, "only the head of a long queue is read")
}

// WaitingOf says for one job what Decide says for it over the whole queue, reading only the
// queue's head: nothing while every worker is busy.
func TestWaitingOfSaysWhatDecideSays(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		queue, free, fairness := randomQueue(r, 120, now)
		want := Decide(queue, free, now, fairness).Waiting
		for _, c := range queue {
			got, err := WaitingOf(headOf(queue, nil), c, free, now, fairness)
			require.NoError(t, err)
			require.Equal(t, want[c.ID], got, "round %d, job %s", round, c.ID)
		}
	}

	queue, read := longQueue(now), 0
	head := headOf(queue, &read)
	why, err := WaitingOf(head, queue[9999], Free{Slots: 0, TotalSlot: 2}, now, time.Hour)
	require.NoError(t, err)
	require.Equal(t, "waiting for a free worker (2 of 2 busy)", why)
	require.Zero(t, read, "nothing is read while every worker is busy")
	why, err = WaitingOf(head, queue[9999], Free{Slots: 1, TotalSlot: 2}, now, time.Hour)
	require.NoError(t, err)
	require.Equal(t, "waiting for a free worker (2 of 2 busy)", why)
	require.Less(t, read, 100, "only the head of a long queue is read")
	why, err = WaitingOf(func(int) ([]Candidate, error) { return queue[:2], nil }, Candidate{ID: "gone"}, Free{Slots: 3, TotalSlot: 3}, now, time.Hour)
	require.NoError(t, err)
	require.Empty(t, why, "a job that left the queue does not wait")
}
