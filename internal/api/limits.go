// Connection limits: a request body must keep arriving, and one remote address may hold only
// so many connections, so slow or numerous connections cannot tie the server up.

package api

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultBodyTimeout is how long a request body may go without sending anything.
const DefaultBodyTimeout = 30 * time.Second

// progressBody makes reading a request body fail when the client sends nothing for timeout,
// however long the whole body takes (a large upload at a steady pace is fine).
type progressBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		_ = b.rc.SetReadDeadline(time.Time{}) // the body is in: streaming responses may run on
	case n > 0:
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	return n, err
}

// watchBody puts the body timeout on a request with a body.
func (s *Server) watchBody(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)); err != nil {
		return // not a connection that has deadlines (a test's recorder)
	}
	r.Body = &progressBody{ReadCloser: r.Body, rc: rc, timeout: s.cfg.BodyTimeout}
}

// LimitPerAddress wraps a listener so that one remote address holds at most max connections
// at a time; further ones are closed at once. Loopback is not limited: the machine's own
// users and jobs are.
func LimitPerAddress(ln net.Listener, max int) net.Listener {
	return &perAddress{Listener: ln, max: max, open: map[string]int{}}
}

type perAddress struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[string]int
}

func (l *perAddress) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, err := net.SplitHostPort(c.RemoteAddr().String())
		ip := net.ParseIP(host)
		if err != nil || ip == nil || ip.IsLoopback() {
			return c, nil
		}
		key := ip.String()
		l.mu.Lock()
		if l.open[key] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open[key]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.open[key]--; l.open[key] <= 0 {
				delete(l.open, key)
			}
		}}, nil
	}
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
