package unixsock_test

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/atlasgo/atlas/internal/unixsock"
	"github.com/stretchr/testify/require"
)

// longDir returns a new folder whose path is at least n bytes long.
func longDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; len(dir) < n; i++ {
		dir = filepath.Join(dir, strings.Repeat(strconv.Itoa(i%10), 50))
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// roundTrip serves one line on ln back to its sender, dials path and checks the echo.
func roundTrip(t *testing.T, ln net.Listener, path string) {
	t.Helper()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("echo " + line))
	}()
	c, err := unixsock.Dial(t.Context(), path)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("hello\n"))
	require.NoError(t, err)
	got, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "echo hello\n", got)
}

// A socket whose path no socket address holds is at that path: listened on, dialled, a unix
// connection (what the API tells local peers by), and removed when the listener closes.
func TestLongPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(longDir(t, 250), "api.sock")
	require.Greater(t, len(path), unixsock.MaxPath)
	ln, err := unixsock.Listen(path)
	require.NoError(t, err)
	require.Equal(t, path, ln.Addr().String())
	fi, err := os.Stat(path)
	require.NoError(t, err, "the socket is at its own path")
	require.Equal(t, os.ModeSocket, fi.Mode().Type())

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := unixsock.Dial(t.Context(), path)
	require.NoError(t, err)
	defer c.Close()
	sc := <-accepted
	defer sc.Close()
	require.IsType(t, &net.UnixConn{}, sc, "the server still sees a unix connection")

	roundTrip(t, ln, path)
	require.NoError(t, ln.Close())
	require.NoFileExists(t, path, "closing the listener removes the socket")
	_, err = unixsock.Dial(t.Context(), path)
	require.Error(t, err)
}

// A short path is listened on and dialled as is.
func TestShortPath(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("/tmp", "us-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "api.sock")
	ln, err := unixsock.Listen(path)
	require.NoError(t, err)
	roundTrip(t, ln, path)
	require.NoError(t, ln.Close())
	require.NoFileExists(t, path)
}

// Errors name the socket's own path, not the name it was reached by.
func TestErrorsNameThePath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(longDir(t, 200), "api.sock")
	_, err := unixsock.Dial(t.Context(), path)
	require.Error(t, err)
	require.Contains(t, err.Error(), path)
	require.NotContains(t, err.Error(), "/proc/self/fd")

	ln, err := unixsock.Listen(path)
	require.NoError(t, err)
	defer ln.Close()
	_, err = unixsock.Listen(path)
	require.ErrorContains(t, err, path+": bind: address already in use")
}

// A name that is too long even when reached through its folder: a one-line error with the path,
// its length and the limit.
func TestTooLongEvenThroughItsFolder(t *testing.T) {
	t.Parallel()
	path := filepath.Join(longDir(t, 120), strings.Repeat("s", 100)+".sock")
	for _, err := range []error{
		func() error { _, err := unixsock.Listen(path); return err }(),
		func() error { _, err := unixsock.Dial(t.Context(), path); return err }(),
	} {
		require.Error(t, err)
		msg := err.Error()
		require.NotContains(t, msg, "\n")
		require.Contains(t, msg, path)
		require.Contains(t, msg, "is "+strconv.Itoa(len(path))+" bytes, over the limit of 107")
	}
	require.NoFileExists(t, path)
}
