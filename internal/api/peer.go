package api

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

type connKey struct{}

// ConnContext keeps each connection in its requests' context, so a request from this machine
// can be traced to the user who made it. Set it as http.Server.ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// peerUser returns "uid:gid" of the local user who opened the request's connection: from the
// kernel for the unix socket (SO_PEERCRED), and from /proc/net/tcp for a loopback connection.
// It never trusts what the client claims.
func peerUser(r *http.Request) (string, bool) {
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	switch conn := c.(type) {
	case *net.UnixConn:
		raw, err := conn.SyscallConn()
		if err != nil {
			return "", false
		}
		var cred *unix.Ucred
		var serr error
		if err := raw.Control(func(fd uintptr) { cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil || serr != nil {
			return "", false
		}
		return fmt.Sprintf("%d:%d", cred.Uid, cred.Gid), true
	case *net.TCPConn:
		remote, ok1 := conn.RemoteAddr().(*net.TCPAddr)
		local, ok2 := conn.LocalAddr().(*net.TCPAddr)
		if !ok1 || !ok2 || !remote.IP.IsLoopback() {
			return "", false
		}
		uid, ok := loopbackUID(remote.Port, local.Port)
		if !ok {
			return "", false
		}
		gid := uid
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			if g, err := strconv.Atoi(u.Gid); err == nil {
				gid = g
			}
		}
		return fmt.Sprintf("%d:%d", uid, gid), true
	}
	return "", false
}

// loopbackUID finds the owner of the client end of a loopback TCP connection.
func loopbackUID(clientPort, serverPort int) (int, bool) {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 8 {
				continue
			}
			if portOf(fields[1]) == clientPort && portOf(fields[2]) == serverPort {
				uid, err := strconv.Atoi(fields[7])
				f.Close()
				return uid, err == nil
			}
		}
		f.Close()
	}
	return 0, false
}

func portOf(hexAddr string) int {
	i := strings.LastIndexByte(hexAddr, ':')
	if i < 0 {
		return -1
	}
	p, err := strconv.ParseUint(hexAddr[i+1:], 16, 32)
	if err != nil {
		return -1
	}
	return int(p)
}
