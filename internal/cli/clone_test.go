package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseParams(t *testing.T) {
	got, err := parseParams([]string{"lr=0.01", "epochs=3", "opt=adam", "layers=[64, 32]", "flag=true", "quoted=\"7\"",
		"expr=a=b", "empty=", "lr=0.5"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"lr": 0.5, "epochs": 3.0, "opt": "adam", "layers": []any{64.0, 32.0}, "flag": true,
		"quoted": "7", "expr": "a=b", "empty": ""}, got, "JSON when it is JSON, else the string; the last one wins")
	for _, bad := range []string{"lr", "=0.1"} {
		_, err := parseParams([]string{bad})
		require.ErrorContains(t, err, "want key=value", bad)
	}
}
