package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/atlasgo/atlas/sdk"
)

// The track route end to end in one process (HTTP, decoding, checks, the SQLite store), for a
// batch of 100,000 float points over 4 keys with their times, in JSON and with packed columns:
//
//	go test -run X -bench Track -benchtime 30x -cpuprofile cpu.pprof ./internal/api
const benchKeys, benchPoints = 4, 25000

// jsonBatch is a batch in JSON, times as seconds with an exponent ("<ns>e-9").
func jsonBatch(seq int64) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"writer":"w","seq":%d,"metrics":{`, seq)
	t := time.Now().UnixNano()
	for k := range benchKeys {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"metric_%d":{"values":[`, k)
		for i := range benchPoints {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatFloat(float64(i*benchKeys+k)*0.001, 'g', -1, 64))
		}
		b.WriteString(`],"times":[`)
		for i := range benchPoints {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(t+int64(i), 10) + "e-9")
		}
		b.WriteString("]}")
	}
	b.WriteString("}}")
	return b.Bytes()
}

// packedBatch is the same batch with packed columns (values_f64, times_ns).
func packedBatch(seq int64) []byte {
	b := sdk.TrackBatch{Writer: "w", Seq: seq, Metrics: map[string]sdk.MetricBatch{}}
	t := time.Now().UnixNano()
	for k := range benchKeys {
		vals, times := make([]byte, 0, 8*benchPoints), make([]byte, 0, 8*benchPoints)
		for i := range benchPoints {
			vals = binary.LittleEndian.AppendUint64(vals, math.Float64bits(float64(i*benchKeys+k)*0.001))
			times = binary.LittleEndian.AppendUint64(times, uint64(t+int64(i)))
		}
		b.Metrics[fmt.Sprintf("metric_%d", k)] = sdk.MetricBatch{ValuesF64: vals, TimesNs: times}
	}
	data, err := json.Marshal(b)
	if err != nil {
		panic(err)
	}
	return data
}

func benchTrack(b *testing.B, body func(seq int64) []byte) {
	srv := newTestServer(b, Config{})
	newJob(b, srv, "bench")
	var seq int64
	for b.Loop() {
		seq++
		b.StopTimer()
		data := body(seq)
		b.StartTimer()
		resp, err := http.Post(srv.URL+"/api/v1/jobs/bench/track", "application/json", bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		var r sdk.TrackResult
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || !r.Applied {
			b.Fatal(resp.Status, err)
		}
		resp.Body.Close()
	}
	b.ReportMetric(float64(benchKeys*benchPoints*b.N)/b.Elapsed().Seconds(), "points/s")
}

func BenchmarkTrackJSON(b *testing.B)   { benchTrack(b, jsonBatch) }
func BenchmarkTrackPacked(b *testing.B) { benchTrack(b, packedBatch) }
