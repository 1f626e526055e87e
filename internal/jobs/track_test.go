package jobs

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

func TestValidKey(t *testing.T) {
	t.Parallel()
	require.NoError(t, validKey("param", strings.Repeat("é", 1000)), "the limit counts characters, not bytes")
	err := validKey("param", strings.Repeat("é", 1001))
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.Contains(t, err.Error(), "1001 characters long")
	require.Less(t, len(err.Error()), 200, "the message does not repeat the whole key")
	require.ErrorIs(t, validKey("param", ""), atlas.ErrInvalid)
	require.ErrorIs(t, validKey("param", "a\x00b"), atlas.ErrInvalid)
	require.ErrorIs(t, validKey("param", "\xff"), atlas.ErrInvalid)
	require.NoError(t, validKey("metric", "loss/val: 日本"))
}

func TestMetricValue(t *testing.T) {
	t.Parallel()
	v, err := metricValue("k", strings.Repeat("é", 10000))
	require.NoError(t, err)
	require.NotNil(t, v)
	_, err = metricValue("k", strings.Repeat("é", 10001))
	require.ErrorIs(t, err, atlas.ErrInvalid)
	huge := json.Number("1" + strings.Repeat("0", 400))
	_, err = metricValue("k", huge)
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.Less(t, len(err.Error()), 200, "the message does not repeat a 400-digit number")
	_, err = metricValue("k", map[string]any{})
	require.ErrorIs(t, err, atlas.ErrInvalid)
	v, err = metricValue("k", true)
	require.NoError(t, err)
	require.Equal(t, json.Number("1"), v)
}
