package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/atlasgo/atlas/internal/atlas"
)

// What a browser may do with the server, checked before any route runs.
//
// Without --auth the API runs code as the server's user for anyone who reaches it, and a
// browser reaches it on behalf of every page the user opens. So:
//
//   - Host must name this server (guard.hostAllowed): a page whose name an attacker re-points
//     at 127.0.0.1 (DNS rebinding) would otherwise be same-origin with the API.
//   - A state-changing request from another origin is refused (Sec-Fetch-Site, or Origin
//     against Host: http.CrossOriginProtection): a cross-site form or no-cors fetch needs no
//     CORS preflight, and carries the GUI's cookie when the sites are the same (another port
//     of localhost is the same site).
//   - JSON bodies must say application/json (decode): a body a page may send without a
//     preflight is text/plain, form-encoded or multipart.
//
// Responses of /api/ never run as a page of this origin (apiPolicy), whatever a job stored
// in its artifacts or printed to its log; the GUI itself runs under webPolicy.

// apiPolicy is the Content-Security-Policy of every API response: opened in a tab (an
// artifact, a log), it is a sandboxed document with an opaque origin that runs no script and
// loads nothing from elsewhere; images and media still show, and SVG keeps its inline styles.
const apiPolicy = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"

// webPolicy is the Content-Security-Policy of the GUI: scripts and styles only from its own
// files (no inline script, no eval), data only from this server, never framed.
const webPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// guard holds the checks; the zero value allows loopback names and IP addresses only.
type guard struct {
	names    map[string]bool // exact host names, lower case
	suffixes []string        // from "*.example.org": ".example.org"
	origins  http.CrossOriginProtection
}

// newGuard returns the checks for a server reachable by the given names (besides loopback
// names and IP addresses). A name "*.example.org" allows every subdomain of example.org.
func newGuard(names []string) *guard {
	g := &guard{names: map[string]bool{}}
	for _, n := range names {
		n = normalHost(n)
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			g.suffixes = append(g.suffixes, "."+rest)
		} else if n != "" {
			g.names[n] = true
		}
	}
	return g
}

// normalHost is a Host header or configured name without port, brackets, trailing dot and case.
func normalHost(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
}

// hostAllowed reports whether a request's Host names this server. An IP address is always
// allowed: rebinding needs a name the attacker controls, and a page at an address is the
// server's own origin. A request without Host (HTTP/1.0) does not come from a browser.
func (g *guard) hostAllowed(host string) bool {
	h := normalHost(host)
	if h == "" || h == "localhost" || strings.HasSuffix(h, ".localhost") || g.names[h] {
		return true // browsers resolve *.localhost to loopback themselves, never through DNS
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// viaSocket reports whether a request came over the server's unix socket.
func viaSocket(r *http.Request) bool {
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		_, unix := c.(*net.UnixConn)
		return unix
	}
	return r.RemoteAddr == "@"
}

// check refuses what a browser must not do; nil lets the request through.
func (g *guard) check(r *http.Request) error {
	// No browser can open the unix socket: what connects there is a local process (a job, the
	// CLI, the SDK) that could do anything the API does by other means, and its Host header is
	// whatever its HTTP library puts there. The checks below are about browsers only.
	if viaSocket(r) {
		return nil
	}
	if !g.hostAllowed(r.Host) {
		return &httpError{status: http.StatusForbidden, msg: "refused: " + quoteHost(r.Host) + " is not a name of this server. " +
			"Use localhost or its address, or add the name to allowed_hosts in server.config.yaml (or --allowed-hosts)"}
	}
	if err := g.origins.Check(r); err != nil {
		return &httpError{status: http.StatusForbidden, msg: "refused: a page of another site (" + quoteHost(r.Header.Get("Origin")) +
			") may not change anything on this server; use the Atlas GUI, the CLI or the SDK"}
	}
	return nil
}

func quoteHost(h string) string {
	if h == "" {
		return "an unknown origin"
	}
	return atlas.Shorten(h)
}

// handler wraps next with the checks and the API's response headers.
func (g *guard) handler(next http.Handler, fail func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Content-Security-Policy", apiPolicy)
		}
		if err := g.check(r); err != nil {
			fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
