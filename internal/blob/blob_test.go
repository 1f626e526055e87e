package blob

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

func TestParseDigest(t *testing.T) {
	t.Parallel()
	good := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	h, err := ParseDigest(good)
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("0123456789abcdef", 4), h)

	hex64 := strings.Repeat("a", 64)
	for _, bad := range []string{
		"",
		"sha256:",
		hex64,                                  // no algorithm
		"sha512:" + hex64,                      // wrong algorithm
		"SHA256:" + hex64,                      // algorithm is lower case
		"sha256:" + strings.Repeat("A", 64),    // upper-case hex
		"sha256:" + hex64[:63],                 // short
		"sha256:" + hex64 + "a",                // long
		"sha256:" + hex64[:63] + "g",           // not hex
		"sha256:" + hex64[:62] + "/.",          // path characters
		" sha256:" + hex64,                     // leading space
		"sha256:" + hex64 + "\n",               // trailing newline
		"sha256:" + strings.Repeat("é", 32),    // 64 bytes, not hex
		"sha256:" + strings.Repeat("\x00", 64), // NUL bytes
	} {
		_, err := ParseDigest(bad)
		require.ErrorIs(t, err, atlas.ErrInvalid, "%q", bad)
		require.NotContains(t, err.Error(), "\n")
	}
}
