package api

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store/sqlite"
)

func newTestServer(t testing.TB, cfg Config) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "atlas.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	blobs, err := local.New(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	lg, err := logs.New(filepath.Join(dir, "logs"))
	require.NoError(t, err)
	cfg.Store, cfg.Blobs, cfg.Logs = st, blobs, lg
	cfg.Jobs = jobs.New(jobs.Config{Store: st, Blobs: blobs, Logs: lg, Secret: []byte("0123456789abcdef0123456789abcdef")})
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(srv.Close)
	return srv
}

// A client that starts a body and stops sending does not hold its connection forever, whether
// the request is refused before any route reads the body, or a route waits for it.
func TestStalledBodyEndsTheRequest(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Config{BodyTimeout: 200 * time.Millisecond})
	addr := srv.Listener.Addr().String()
	for host, want := range map[string]int{addr: http.StatusBadRequest, "attacker.example": http.StatusForbidden} {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("POST /api/v1/jobs HTTP/1.1\r\nHost: " + host +
			"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"id\":"))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute))) // a bound for a broken build only
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
			require.Equal(t, want, resp.StatusCode, host)
		} else {
			require.False(t, isTimeout(err), "the server held the stalled connection (Host %s): %v", host, err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// fakeListener hands out connections from remote addresses of the test's choosing.
type fakeListener struct {
	conns chan net.Conn
}

func (l *fakeListener) Accept() (net.Conn, error) { return <-l.conns, nil }
func (l *fakeListener) Close() error              { return nil }
func (l *fakeListener) Addr() net.Addr            { return &net.TCPAddr{} }

type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (c *remoteConn) RemoteAddr() net.Addr { return c.addr }

// One remote address gets a bounded number of connections at a time; loopback is not limited.
func TestConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	fl := &fakeListener{conns: make(chan net.Conn, 16)}
	ln := LimitPerAddress(fl, 2)
	dial := func(ip string) (net.Conn, net.Conn) {
		server, client := net.Pipe()
		fl.conns <- &remoteConn{Conn: server, addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}}
		return server, client
	}
	var accepted []net.Conn
	for range 2 {
		dial("192.0.2.1")
		c, err := ln.Accept()
		require.NoError(t, err)
		accepted = append(accepted, c)
	}
	_, refusedClient := dial("192.0.2.1") // a third from the same address: closed at once
	dial("192.0.2.2")
	c, err := ln.Accept()
	require.NoError(t, err)
	require.Equal(t, "192.0.2.2:1", c.RemoteAddr().String(), "the third was not handed out; the next address's was")
	_, err = refusedClient.Read(make([]byte, 1))
	require.Error(t, err, "the third connection was closed")
	require.NoError(t, accepted[0].Close())
	dial("192.0.2.1")
	_, err = ln.Accept()
	require.NoError(t, err, "a closed connection frees its place")
	for range 5 {
		dial("127.0.0.1")
		_, err := ln.Accept()
		require.NoError(t, err)
	}
}
