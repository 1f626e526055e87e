package search

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

// decide runs values through a rule in arrival order and returns which arrivals were stopped.
func decide(rule Rule, values []float64) []bool {
	var out []bool
	for i, v := range values {
		out = append(out, !rule(values[:i], v))
	}
	return out
}

func TestASHAKeepsTheTopThirdOfEachRung(t *testing.T) {
	t.Parallel()
	// The first at a rung goes on; after that about one in eta: a trial goes on when fewer than
	// max(1, ⌊n/3⌋) of the n values are better than its own.
	loss := []float64{5, 3, 8, 1, 9, 2, 7, 4, 6}
	require.Equal(t, []bool{false, false, true, false, true, false, true, true, true}, decide(ASHA(3, true), loss))
	// Larger is better: the same ranks, mirrored.
	acc := []float64{-5, -3, -8, -1, -9, -2, -7, -4, -6}
	require.Equal(t, decide(ASHA(3, true), loss), decide(ASHA(3, false), acc))
	// The second-best of five is stopped (one kept of five), of six it goes on (two kept).
	require.Equal(t, []bool{false, true, true, true, true}, decide(ASHA(3, true), []float64{1, 2, 3, 4, 1.5}))
	require.Equal(t, []bool{false, true, true, true, true, false}, decide(ASHA(3, true), []float64{1, 2, 3, 4, 5, 1.5}))
	// A tie is not better: the newcomer goes on.
	require.Equal(t, []bool{false, false}, decide(ASHA(2, true), []float64{1, 1}))
	// eta 2 keeps half.
	require.Equal(t, []bool{false, true, false, true, false}, decide(ASHA(2, true), []float64{4, 5, 3, 6, 1}))
}

func TestMedianStopsWhatIsWorseThanTheMedianBefore(t *testing.T) {
	t.Parallel()
	// Nothing is stopped until MedianMinTrials values are in; then worse than their median is.
	require.Equal(t, []bool{false, false, false, true, false, true}, decide(Median(true), []float64{5, 9, 1, 6, 4, 7}))
	require.Equal(t, []bool{false, false, false, false, true}, decide(Median(false), []float64{5, 9, 1, 6, 4}))
}

func TestTheValueAtARung(t *testing.T) {
	t.Parallel()
	pts := []atlas.MetricPoint{{Step: 0, Value: 9.0}, {Step: 2, Value: "nan-ish"}, {Step: 2, Value: 7.0}, {Step: 5, Value: 4.0}}
	v, ok := ValueAt(pts, 1, "step")
	require.True(t, ok)
	require.Equal(t, 7.0, v, "the first numeric value logged at the rung's step or later")
	v, ok = ValueAt(pts, 5, "step")
	require.True(t, ok)
	require.Equal(t, 4.0, v)
	_, ok = ValueAt(pts, 6, "step")
	require.False(t, ok, "not there yet")
	v, ok = ValueAt(pts, 2, "count")
	require.True(t, ok)
	require.Equal(t, 7.0, v, "the second numeric value logged")
	_, ok = ValueAt(pts, 4, "count")
	require.False(t, ok)
}
