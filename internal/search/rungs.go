// Deciding at rungs: which trials go on, as pure functions of the values recorded before.

package search

import (
	"slices"

	"github.com/atlasgo/atlas/internal/atlas"
)

// MedianMinTrials is how many values median stopping needs at a rung before it stops anything.
const MedianMinTrials = 3

// Rule decides whether a trial whose metric value at a rung is v goes on, given the values
// that trials recorded at that rung before it, in the order they were recorded.
type Rule func(earlier []float64, v float64) bool

// ASHA is asynchronous successive halving in its stopping form: a trial goes on when fewer than
// max(1, ⌊n/eta⌋) of the n values at the rung (its own included) are strictly better than its
// own, so the first trial at a rung always goes on, and about one in eta after it.
func ASHA(eta int, smallerIsBetter bool) Rule {
	return func(earlier []float64, v float64) bool {
		keep := max(1, (len(earlier)+1)/eta)
		better := 0
		for _, e := range earlier {
			if beats(e, v, smallerIsBetter) {
				better++
			}
		}
		return better < keep
	}
}

// Median stops a trial whose value at a rung is worse than the median of the values recorded
// there before it, once there are MedianMinTrials of them.
func Median(smallerIsBetter bool) Rule {
	return func(earlier []float64, v float64) bool {
		if len(earlier) < MedianMinTrials {
			return true
		}
		s := slices.Clone(earlier)
		slices.Sort(s)
		med := s[len(s)/2]
		if len(s)%2 == 0 {
			med = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		return !beats(med, v, smallerIsBetter)
	}
}

// beats reports whether a is strictly better than b.
func beats(a, b float64, smallerIsBetter bool) bool {
	if smallerIsBetter {
		return a < b
	}
	return a > b
}

// ValueAt is a trial's value at a rung: for time attribute "step", the value of the first
// point logged at that step or later; for "count", the rung-th numeric value logged. ok is
// false when the trial has not got that far.
func ValueAt(points []atlas.MetricPoint, rung int64, attr string) (v float64, ok bool) {
	n := int64(0)
	for _, p := range points {
		f, isNum := atlas.Number(p.Value)
		if !isNum {
			continue
		}
		n++
		if (attr == "count" && n >= rung) || (attr != "count" && p.Step >= rung) {
			return f, true
		}
	}
	return 0, false
}

// Progress is how far a trial got, from its metric's summary: its last step, or how many values
// it logged.
func Progress(m *atlas.MetricSummary, attr string) int64 {
	if attr == "count" {
		return m.Count
	}
	return m.LastStep
}
