package logs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLastLine(t *testing.T) {
	t.Parallel()
	tail := "epoch 1\nTraceback (most recent call last):\n  File \"main.py\", line 3\n\x1b[31mRuntimeError: the loss diverged\x1b[0m\n\n"
	require.Equal(t, "RuntimeError: the loss diverged", LastLine(tail))
	require.Equal(t, "done 100%", LastLine("progress 10%\rprogress 50%\rdone 100%\n"+strings.Repeat("=", 120)+"\n"))
	require.Equal(t, "", LastLine("\n \n"))
	require.Len(t, []rune(LastLine(strings.Repeat("é", 500))), 300)
}
