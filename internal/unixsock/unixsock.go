// Package unixsock listens on and dials unix sockets whatever the length of their path.
//
// A socket's address holds at most MaxPath bytes of path on Linux, and the server's socket is
// in its data folder, whose path may be longer. A longer path is bound and reached through its
// folder, opened for the call, as /proc/self/fd/<fd>/<name>: the socket is still at its path
// for everything else (a container's bind mount of its folder, chmod, unlink, other dialers).
package unixsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// MaxPath is the longest path a unix socket's address holds on Linux (sun_path is 108 bytes,
// with the terminating NUL).
const MaxPath = 107

// Listen listens on the unix socket at path. Closing the listener removes the socket.
func Listen(path string) (net.Listener, error) {
	if len(path) <= MaxPath {
		return net.Listen("unix", path)
	}
	var ln *net.UnixListener
	err := viaFolder(path, func(short string) (err error) {
		ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: short, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, renamed(err, path)
	}
	// Closing unlinks by path: the bound name only meant something while the folder was open.
	ln.SetUnlinkOnClose(false)
	return &listener{UnixListener: ln, path: path}, nil
}

// Dial connects to the unix socket at path.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	if len(path) <= MaxPath {
		return d.DialContext(ctx, "unix", path)
	}
	var c net.Conn
	err := viaFolder(path, func(short string) (err error) {
		c, err = d.DialContext(ctx, "unix", short)
		return err
	})
	if err != nil {
		return nil, renamed(err, path)
	}
	return c, nil
}

// viaFolder opens path's folder and calls do with a name of path short enough for a socket
// address, valid during the call.
func viaFolder(path string, do func(short string) error) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	short := proc + "/" + name
	if len(short) > MaxPath {
		return tooLong(path, fmt.Errorf("its name alone (%d bytes) is too long to be reached through its folder", len(name)))
	}
	if _, err := os.Stat(proc); err != nil {
		return tooLong(path, fmt.Errorf("it is reached through its folder as %s, which needs /proc: %w", proc, err))
	}
	return do(short)
}

// tooLong is the error of a socket path no address holds, even through its folder.
func tooLong(path string, why error) error {
	return fmt.Errorf("unix socket %s: its path is %d bytes, over the limit of %d, and %w", path, len(path), MaxPath, why)
}

// renamed puts the socket's own path in a listen or dial error in place of its short name.
func renamed(err error, path string) error {
	var op *net.OpError
	if errors.As(err, &op) {
		c := *op
		c.Source, c.Addr = nil, &net.UnixAddr{Name: path, Net: "unix"}
		return &c
	}
	return err
}

// listener is a listener on a socket bound through its folder.
type listener struct {
	*net.UnixListener
	path   string
	remove sync.Once
}

func (l *listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *listener) Close() error {
	err := l.UnixListener.Close()
	l.remove.Do(func() {
		if rerr := os.Remove(l.path); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	})
	return err
}
