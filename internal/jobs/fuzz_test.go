package jobs

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	localblob "github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/sdk"
)

// FuzzTrackBatch feeds arbitrary bodies to the metric-batch decoder and validator: it never
// panics, refuses with one line, and lets through only values the store can keep.
func FuzzTrackBatch(f *testing.F) {
	for _, seed := range []string{
		`{"writer":"w","seq":1,"params":{"lr":0.1,"opt":"adam"},"metrics":{"loss":{"values":[1,0.5],"steps":[0,1],"times":[1700000000.5,1700000001]}},"tags":{"best":""}}`,
		`{"metrics":{"acc":{"values":["text",1e308,-0]}}}`,
		`{"metrics":{"x":{"values":[1],"steps":[1,2]}}}`,
		`{"artifacts":[{"key":"m","filename":"../x","digest":"sha256:00"}]}`,
		`{"params":{"":1}}`,
		`{"metrics":{"λ":{"values":[1e400]}}}`,
		`[]`, `null`, `{"seq":-1,"writer":"w"}`,
		`{"writer":"w","seq":2,"metrics":{"loss":{"values_f64":"9a9999999999b93f000000000000f87f","steps_i64":"0100000000000000ffffffffffffff7f","times_ns":"15a05f8f047c9a1716a05f8f047c9a17"}}}`,
		`{"metrics":{"m":{"values_f64":"000000000000f07f","times_ns":"01"},"n":{"values":["a"],"steps_i64":"0100000000000000"}}}`,
	} {
		f.Add([]byte(seed))
	}
	blobs, err := localblob.New(filepath.Join(f.TempDir(), "blobs"))
	if err != nil {
		f.Fatal(err)
	}
	s := New(Config{Blobs: blobs})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b sdk.TrackBatch
		if sdk.DecodeTrackBatch(data, &b) != nil {
			return
		}
		out, err := s.trackBatch(t.Context(), "job", &b)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		for k, pts := range out.Metrics {
			if k == "" || !utf8.ValidString(k) || utf8.RuneCountInString(k) > maxKeyLen {
				t.Fatalf("accepted bad metric key %q", k)
			}
			for _, p := range pts {
				switch v := p.Value.(type) {
				case json.Number:
					if x, err := v.Float64(); err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
						t.Fatalf("accepted non-finite value %v", v)
					}
				case float64:
					if math.IsInf(v, 0) || math.IsNaN(v) {
						t.Fatalf("accepted non-finite value %v", v)
					}
				case string:
					if utf8.RuneCountInString(v) > maxStringValue {
						t.Fatalf("accepted a string of %d characters", utf8.RuneCountInString(v))
					}
				default:
					t.Fatalf("accepted a value of type %T", v)
				}
			}
		}
		for k := range out.Params {
			if k == "" || utf8.RuneCountInString(k) > maxKeyLen {
				t.Fatalf("accepted bad param key %q", k)
			}
		}
		if len(out.Artifacts) > 0 {
			t.Fatalf("accepted an artifact whose blob was never uploaded")
		}
	})
}
