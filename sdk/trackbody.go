package sdk

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
)

// DecodeTrackBatch reads the JSON body of a track request into b (a zero TrackBatch first),
// numbers kept as json.Number, as a json.Decoder with UseNumber reads it (the first JSON value;
// trailing bytes ignored).
//
// The packed columns of its metrics (MetricBatch's ValuesF64, StepsI64 and TimesNs: strings of
// hexadecimal digits, nearly all the bytes of a large batch) are cut out of the JSON first and
// decoded on their own: encoding/json reads a string byte by byte, several times slower than
// hex decodes it. Bodies it cannot cut with certainty (a "metrics" or column name escaped or spelt
// in other case, a column that is not a string) are read whole by encoding/json.
func DecodeTrackBatch(data []byte, b *TrackBatch) error {
	reduced, cut := cutPackedColumns(data)
	dec := json.NewDecoder(bytes.NewReader(reduced))
	dec.UseNumber()
	*b = TrackBatch{}
	err := dec.Decode(b)
	var syntax *json.SyntaxError
	if cut == nil || errors.As(err, &syntax) {
		return err
	}
	// Every column is decoded, also one a later duplicate key replaced, as encoding/json does.
	cols := make([]Packed, len(cut))
	for i, tok := range cut {
		col, colErr := decodeColumn(tok)
		if colErr != nil {
			return colErr
		}
		cols[i] = col
	}
	if err != nil {
		return err
	}
	for k, m := range b.Metrics {
		for _, f := range []*Packed{&m.ValuesF64, &m.StepsI64, &m.TimesNs} {
			if *f == nil {
				continue
			}
			if len(*f) != 4 || int(binary.LittleEndian.Uint32(*f)) >= len(cols) {
				return errors.New("a packed column was not cut as it should have been") // cannot happen
			}
			*f = cols[binary.LittleEndian.Uint32(*f)]
		}
		b.Metrics[k] = m
	}
	return nil
}

// decodeColumn decodes a packed column's JSON string (quotes included) as Packed's
// UnmarshalJSON does.
func decodeColumn(tok []byte) (Packed, error) {
	var p Packed
	for _, c := range tok[1 : len(tok)-1] {
		if c < 0x20 || c == '\\' || c >= 0x80 { // escapes, controls, UTF-8: as encoding/json reads them
			return p, json.Unmarshal(tok, &p)
		}
	}
	return p, p.setHex(tok[1 : len(tok)-1])
}

// cutPackedColumns returns data with each packed column's string replaced by a reference (its
// index, 4 bytes little-endian, in hex) and the strings cut out, in order; or data and nil when
// there is nothing to cut, or it cannot be cut with certainty. Only strings are
// replaced by strings, so the result is valid JSON exactly when data is.
func cutPackedColumns(data []byte) ([]byte, [][]byte) {
	if !bytes.Contains(data, []byte(`_f64"`)) && !bytes.Contains(data, []byte(`_i64"`)) &&
		!bytes.Contains(data, []byte(`_ns"`)) {
		return data, nil
	}
	type frame struct {
		object bool
		key    []byte // the last key read in this object, quoted
	}
	var (
		stack     []frame
		expectKey bool
		spans     [][2]int // of the strings to cut
	)
	// packedValue says whether the next value is a packed column: {"metrics": {k: {column: here}}}.
	packedValue := func() bool {
		return len(stack) == 3 && !expectKey && stack[0].object && stack[1].object && stack[2].object &&
			string(stack[0].key) == `"metrics"` && isPackedColumn(stack[2].key)
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '"':
			end := stringEnd(data, i)
			if end < 0 {
				return data, nil
			}
			tok := data[i : end+1]
			top := len(stack) - 1
			switch {
			case top >= 0 && stack[top].object && expectKey:
				if (top == 0 || top == 2 && string(stack[0].key) == `"metrics"`) && !plainName(tok, top) {
					return data, nil
				}
				stack[top].key = tok
			case packedValue():
				spans = append(spans, [2]int{i, end + 1})
			}
			i = end
		case '{', '[':
			if packedValue() {
				return data, nil
			}
			stack = append(stack, frame{object: c == '{'})
			expectKey = c == '{'
		case '}', ']':
			if len(stack) == 0 {
				return data, nil
			}
			stack = stack[:len(stack)-1]
			expectKey = false
		case ':':
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
		case ' ', '\t', '\n', '\r':
		default:
			if packedValue() { // null, a number...: encoding/json says what it makes of it
				return data, nil
			}
		}
	}
	if len(spans) == 0 {
		return data, nil
	}
	const refLen = 10 // 8 digits and the quotes
	size := len(data)
	for _, s := range spans {
		size += refLen - (s[1] - s[0])
	}
	out := make([]byte, 0, size)
	cols := make([][]byte, len(spans))
	last := 0
	var ref [4]byte
	for i, s := range spans {
		cols[i] = data[s[0]:s[1]]
		binary.LittleEndian.PutUint32(ref[:], uint32(i))
		out = append(out, data[last:s[0]]...)
		out = append(out, '"')
		out = hex.AppendEncode(out, ref[:])
		out = append(out, '"')
		last = s[1]
	}
	return append(out, data[last:]...), cols
}

// plainName says whether a key of the batch (depth 0) or of a metric (depth 2) is one this
// compares exactly as encoding/json would match it: not escaped, and not another spelling of
// a field's name (encoding/json matches names without regard to case).
func plainName(tok []byte, depth int) bool {
	if bytes.IndexByte(tok, '\\') >= 0 {
		return false
	}
	names := []string{"metrics"}
	if depth == 2 {
		names = []string{"values_f64", "steps_i64", "times_ns"}
	}
	name := tok[1 : len(tok)-1]
	for _, n := range names {
		if bytes.EqualFold(name, []byte(n)) && string(name) != n {
			return false
		}
	}
	return true
}

func isPackedColumn(key []byte) bool {
	switch string(key) {
	case `"values_f64"`, `"steps_i64"`, `"times_ns"`:
		return true
	}
	return false
}

// stringEnd returns the index of the quote that ends the JSON string starting at data[start],
// or -1.
func stringEnd(data []byte, start int) int {
	for j := start + 1; ; j++ {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		escapes := 0
		for p := j - 1; p > start && data[p] == '\\'; p-- {
			escapes++
		}
		if escapes%2 == 0 {
			return j
		}
	}
}
