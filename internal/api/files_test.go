package api

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// A download is sent to a blob store on loopback only when the client is on this machine and
// came over TCP: a job in a container asks through the unix socket, from another network.
func TestReachable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		remote, url string
		want        bool
	}{
		{"127.0.0.1:5000", "http://127.0.0.1:9000/b/k?sig", true},
		{"[::1]:5000", "http://localhost:9000/b/k?sig", true},
		{"10.0.0.7:5000", "http://127.0.0.1:9000/b/k?sig", false},
		{"10.0.0.7:5000", "http://[::1]:9000/b/k?sig", false},
		{"@", "http://127.0.0.1:9000/b/k?sig", false}, // the unix socket
		{"", "http://localhost:9000/b/k?sig", false},
		{"10.0.0.7:5000", "https://s3.example.org/b/k?sig", true},
		{"@", "http://10.0.0.2:9000/b/k?sig", true},
		{"10.0.0.7:5000", "::not a url", false},
	} {
		r := httptest.NewRequest("GET", "/api/v1/jobs/j/archive", nil)
		r.RemoteAddr = c.remote
		require.Equal(t, c.want, reachable(r, c.url), "%s from %q", c.url, c.remote)
	}
}
