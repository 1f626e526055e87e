package sdk

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// stdDecode is what DecodeTrackBatch must match: encoding/json over the whole body.
func stdDecode(data []byte) (TrackBatch, error) {
	var b TrackBatch
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := dec.Decode(&b)
	return b, err
}

// sameAsStd checks that DecodeTrackBatch reads data as encoding/json does: the same batch, or
// an error both times. It reports whether packed columns were cut out (the quick path).
func sameAsStd(t *testing.T, data []byte) bool {
	t.Helper()
	want, wantErr := stdDecode(data)
	var got TrackBatch
	err := DecodeTrackBatch(data, &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json says %v", data, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\ngot  %#v\nwant %#v", data, got, want)
	}
	_, cols := cutPackedColumns(data)
	return cols != nil
}

var packedSeeds = []string{
	`{"writer":"w","seq":1,"metrics":{"loss":{"values_f64":"9a9999999999b93f00000000000004c0","times_ns":"15a05f8f047c9a1716a05f8f047c9a17"}}}`,
	`{"metrics":{"a":{"values_f64":"000000000000f03f","steps_i64":"0700000000000000"},"b":{"values":["x",1],"times_ns":"01000000000000000200000000000000"}}}`,
	`{"params":{"values_f64":"000000000000f03f","m":{"values_f64":"kept as text"}},"metrics":{"m":{"values_f64":"000000000000f03f"}}}`,
	` { "metrics" : { "\u00e9\"q" : { "times_ns" : "" , "values_f64" : "000000000000F03F" } } } trailing`,
	`{"metrics":{"m":{"values_f64":"000000000000f03f"},"m":{"values_f64":"0000000000000040"}}}`,
	`{"metrics":{"m":{"values_f64":"000000000000f03f"}},"metrics":{"n":{"steps_i64":"0100000000000000"}}}`,
	`{"metrics":{"m":{"values_f64":"0000\u0030000000f03f"}}}`,
	`{"metrics":{"m":{"values_f64":"not hex!"}}}`,
	`{"metrics":{"m":{"values_f64":"0000` + "\n" + `000000f03f"}}}`,
	`{"metrics":{"m":{"values_f64":"0000` + "\xff" + `000000f03f"}}}`,
	`{"metrics":{"m":{"values_f64":[0,0,0,0]}}}`,
	`{"metrics":{"m":{"values_f64":null,"times_ns":"0100000000000000"}}}`,
	`{"metrics":{"m":{"values_f64":5}}}`,
	`{"metr\u0069cs":{"m":{"values_f64":"000000000000f03f"}}}`,
	`{"metrics":{"m":{"values\u005ff64":"AAAAAAAA8D8="}}}`,
	`{"metrics":{"m":{"values_f64":"000000000000f03f"}}`,
	`{"metrics":{"m":{"values_f64":"000000000000f03"}}}`,
	`{"metrics":{"m":{"values_f64":"0"},"m":{}}}`,
	`{"metrics":{"":{"steps_i64":"","times_nS":""}}}`,
	`{"Metrics":{"m":{"values_f64":"000000000000f03f"}}}`,
	`{"metrics":{"m":{"values_f64":"000000000000f03f}}}`,
	`{"metrics":{"m":{"values_f64":"000000000000f03f" "x"}}}`,
	`{"metrics":[{"values_f64":"000000000000f03f"}]}`,
	`[{"metrics":{"m":{"values_f64":"000000000000f03f"}}}]`,
	`{"metrics":{"m":{"values":[1,2],"steps":[0,1],"times":[1.5,2]}}}`,
}

// The quick path reads packed columns, and everything around them, as encoding/json does:
// valid and broken bodies, escaped names (read whole), duplicate keys (the last wins), columns
// that are not strings, names of columns elsewhere (params are kept as they are).
func TestDecodeTrackBatchMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	cut := 0
	for _, s := range packedSeeds {
		if sameAsStd(t, []byte(s)) {
			cut++
		}
	}
	if cut < 10 {
		t.Fatalf("only %d of the bodies took the quick path", cut)
	}
	var b TrackBatch
	data := packedSeeds[0]
	if err := DecodeTrackBatch([]byte(data), &b); err != nil {
		t.Fatal(err)
	}
	if got := len(b.Metrics["loss"].ValuesF64); got != 16 {
		t.Fatalf("values_f64 of %d bytes, want 16", got)
	}
	err := DecodeTrackBatch([]byte(packedSeeds[7]), &b)
	if err == nil || !strings.Contains(err.Error(), "not hexadecimal") {
		t.Fatalf("not hex: %v", err)
	}
}

// FuzzDecodeTrackBatch: for any body, DecodeTrackBatch gives what encoding/json gives.
func FuzzDecodeTrackBatch(f *testing.F) {
	for _, s := range packedSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsStd(t, data)
	})
}
