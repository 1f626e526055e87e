package jobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// New values are announced at once, then at most once per interval, and the last ones are
// never left unannounced.
func TestEventsTracked(t *testing.T) {
	t.Parallel()
	h := NewEvents()
	changes, done := h.Subscribe()
	defer done()
	h.Tracked("a", "p", "s1")
	first := <-changes
	require.Equal(t, Change{JobID: "a", Project: "p", Search: "s1", Tracked: true}, first, "a trial's values name its search")
	h.Tracked("a", "p", "") // within the interval: held back...
	h.Tracked("a", "p", "") // ...and merged with this one
	select {
	case c := <-changes:
		t.Fatalf("announced again within the interval: %+v", c)
	default:
	}
	select {
	case c := <-changes: // ...but announced at the end of the interval
		require.Equal(t, "a", c.JobID)
	case <-time.After(10 * TrackInterval):
		t.Fatal("values tracked within the interval were never announced")
	}
	select {
	case c := <-changes:
		t.Fatalf("one announcement for the held-back values, got another: %+v", c)
	default:
	}
}
