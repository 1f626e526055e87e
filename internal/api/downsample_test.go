package api

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

func TestDownsample(t *testing.T) {
	t.Parallel()
	var pts []atlas.MetricPoint
	for i := 0; i < 100000; i++ {
		v := float64(i % 100)
		if i == 54321 {
			v = 1e6 // a spike must survive
		}
		pts = append(pts, atlas.MetricPoint{Step: int64(i), Value: v})
	}
	down := Downsample(pts, 2000)
	require.LessOrEqual(t, len(down), 2000)
	require.Equal(t, int64(0), down[0].Step)
	require.Equal(t, int64(99999), down[len(down)-1].Step)
	spike := false
	for i, p := range down {
		spike = spike || p.Value == 1e6
		if i > 0 {
			require.Less(t, down[i-1].Step, p.Step, "points stay in step order")
		}
	}
	require.True(t, spike)
	require.Len(t, Downsample(pts[:10], 2000), 10, "short series are untouched")
}
