package jobs

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/sdk"
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

// Times in nanoseconds are stored as the JSON form of the same time ("<ns>e-9") is read, to the
// last bit: now, far times, the first second after 1970 (strconv's part), and times the float
// estimate gets one float wrong (found with exact fractions: the check must move them).
func TestNanosToSeconds(t *testing.T) {
	t.Parallel()
	cases := []int64{0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789, math.MaxInt64,
		4096009144182, 4096011097307, 4096013050432, 4096015003557, 4096016956682}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		cases = append(cases, 1_600_000_000_000_000_000+r.Int64N(1e18), r.Int64(), r.Int64N(1e13))
	}
	for _, ns := range cases {
		want, err := strconv.ParseFloat(strconv.FormatInt(ns, 10)+"e-9", 64)
		require.NoError(t, err)
		require.Equal(t, want, nanosToSeconds(ns), "ns %d", ns)
	}
}

// packedF64 and packedI64 are columns as the Python SDK packs them.
func packedF64(vs ...float64) []byte {
	b := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b
}

func packedI64(vs ...int64) []byte {
	b := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func TestMetricPointsPacked(t *testing.T) {
	t.Parallel()
	const now = 1.5
	t0 := int64(1_700_000_000_123_456_789)
	wantTimes := []float64{nanosToSeconds(t0), nanosToSeconds(t0 + 1), nanosToSeconds(t0 + 2)}
	// The JSON form of the same points as the packed forms below.
	want, err := metricPoints("m", &sdk.MetricBatch{Values: []any{json.Number("0.5"), json.Number("-3"), json.Number("1e300")},
		Steps: []int64{4, -1, 9}, Times: wantTimes}, now)
	require.NoError(t, err)
	for name, m := range map[string]sdk.MetricBatch{
		"all packed":    {ValuesF64: packedF64(0.5, -3, 1e300), StepsI64: packedI64(4, -1, 9), TimesNs: packedI64(t0, t0+1, t0+2)},
		"values packed": {ValuesF64: packedF64(0.5, -3, 1e300), Steps: []int64{4, -1, 9}, Times: wantTimes},
		"values JSON":   {Values: []any{0.5, -3.0, 1e300}, StepsI64: packedI64(4, -1, 9), TimesNs: packedI64(t0, t0+1, t0+2)},
	} {
		got, err := metricPoints("m", &m, now)
		require.NoError(t, err, name)
		require.Len(t, got, 3, name)
		for i := range got {
			f, ok := atlas.Number(want[i].Value)
			require.True(t, ok)
			require.Equal(t, f, got[i].Value, "%s: value %d", name, i)
			require.Equal(t, want[i].Step, got[i].Step, "%s: step %d", name, i)
			require.Equal(t, want[i].Time, got[i].Time, "%s: time %d", name, i)
		}
	}
	got, err := metricPoints("m", &sdk.MetricBatch{ValuesF64: packedF64(2)}, now)
	require.NoError(t, err)
	require.Equal(t, []atlas.MetricPoint{{Step: -1, Value: 2.0, Time: now}}, got, "no steps or times: the next step, now")

	for name, m := range map[string]sdk.MetricBatch{
		"NaN":                 {ValuesF64: packedF64(1, math.NaN())},
		"+inf":                {ValuesF64: packedF64(math.Inf(1))},
		"-inf":                {ValuesF64: packedF64(math.Inf(-1))},
		"odd length":          {ValuesF64: packedF64(1, 2)[:12]},
		"values twice":        {Values: []any{1.0}, ValuesF64: packedF64(1)},
		"steps twice":         {ValuesF64: packedF64(1), Steps: []int64{1}, StepsI64: packedI64(1)},
		"times twice":         {ValuesF64: packedF64(1), Times: []float64{1}, TimesNs: packedI64(1)},
		"too few steps":       {ValuesF64: packedF64(1, 2), StepsI64: packedI64(1)},
		"too many times":      {ValuesF64: packedF64(1), TimesNs: packedI64(1, 2)},
		"JSON steps, packed":  {ValuesF64: packedF64(1, 2), Steps: []int64{1}},
		"packed times, JSON ": {Values: []any{1.0}, TimesNs: packedI64(1, 2)},
	} {
		_, err := metricPoints("m", &m, now)
		require.ErrorIs(t, err, atlas.ErrInvalid, name)
		require.Less(t, len(err.Error()), 200, name)
	}
}
