package jobs

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	localblob "github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlite"
)

func TestDrainSpool(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "atlas.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	blobs, err := localblob.New(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	s := New(Config{Store: st, Blobs: blobs})
	require.NoError(t, st.JobInsert(ctx, &atlas.Job{ID: "j", Project: "p", State: atlas.StateQueued, Mode: atlas.ModeScheduled}))

	// The SDK delivered batch 1 before the server went away, and spooled batches 1-3.
	_, err = st.TrackBatch(ctx, &store.TrackBatch{JobID: "j", Writer: "w1", Seq: 1,
		Metrics: map[string][]atlas.MetricPoint{"loss": {{Step: 0, Value: 1.0}}}})
	require.NoError(t, err)
	spool := filepath.Join(dir, "spool")
	w := filepath.Join(spool, "w1")
	require.NoError(t, os.MkdirAll(filepath.Join(w, "blobs"), 0o755))
	content := []byte("model bytes")
	sum := sha256.Sum256(content)
	hexSum := fmt.Sprintf("%x", sum)
	require.NoError(t, os.WriteFile(filepath.Join(w, "blobs", hexSum), content, 0o644))
	files := map[string]string{
		"meta.json":                 `{"job_id": "j", "pid": 1}`,
		"00000000000000000001.json": `{"writer":"w1","seq":1,"metrics":{"loss":{"values":[1.0],"steps":[0]}}}`,
		"00000000000000000002.json": `{"writer":"w1","seq":2,"metrics":{"loss":{"values":[0.5,0.25],"steps":[1,2]}},"params":{"lr":0.1}}`,
		"00000000000000000003.json": `{"writer":"w1","seq":3,"artifacts":[{"key":"model","filename":"m.bin","digest":"sha256:` + hexSum + `"}]}`,
		"00000000000000000004.json": `{"writer":"w1","seq":4,"metrics":{"":{"values":[1]}}}`, // refused: empty key
	}
	for n, c := range files {
		require.NoError(t, os.WriteFile(filepath.Join(w, n), []byte(c), 0o644))
	}
	// Another job's writer in the same directory is left alone.
	other := filepath.Join(spool, "w2")
	require.NoError(t, os.MkdirAll(other, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, "meta.json"), []byte(`{"job_id": "other"}`), 0o644))

	require.NoError(t, s.DrainSpool(ctx, "j", spool))

	series, err := st.MetricSeries(ctx, "j", "loss")
	require.NoError(t, err)
	require.Len(t, series, 3, "batch 1 is not stored twice")
	params, err := st.Params(ctx, []string{"j"})
	require.NoError(t, err)
	require.Equal(t, 0.1, params["j"]["lr"])
	arts, err := st.Artifacts(ctx, "j")
	require.NoError(t, err)
	require.Len(t, arts, 1)
	ok, _, err := blobs.Has(t.Context(), "sha256:"+hexSum)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = os.Stat(w)
	require.True(t, os.IsNotExist(err), "the writer's spool is removed once stored")
	_, err = os.Stat(other)
	require.NoError(t, err)

	require.NoError(t, s.DrainSpool(ctx, "j", filepath.Join(dir, "missing")), "no spool is fine")
}
