package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/jobs"
)

// Who may call a route when authentication is on.
type access int

const (
	// accessAny: any user token, or a job's own token (the handler checks which jobs).
	accessAny access = iota
	// accessUser: user tokens only; a job's token may not stop, delete or edit projects.
	accessUser
	// accessPublic: no token needed (health, login).
	accessPublic
)

type callerKey struct{}

// callerOf is who makes the request, as authenticate found.
func callerOf(r *http.Request) *jobs.Caller {
	if c, ok := r.Context().Value(callerKey{}).(*jobs.Caller); ok {
		return c
	}
	return &jobs.Caller{}
}

// CookieName holds the GUI's token once it logged in.
const CookieName = "atlas_token"

// NewToken returns a new random user token.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "atl_" + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is how tokens are stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func requestToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// isLocal reports whether a request comes from this machine (loopback or the unix socket).
func isLocal(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr == "@" || r.RemoteAddr == "" // unix socket peers have no address
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticate finds who makes the request and refuses it when authentication is on and the
// route needs a token it does not carry.
func (s *Server) authenticate(r *http.Request, need access) (*http.Request, error) {
	p := &jobs.Caller{Local: isLocal(r)}
	if tok := requestToken(r); tok != "" {
		jc, isJob, err := s.cfg.Jobs.JobCaller(r.Context(), tok)
		switch {
		case err != nil:
			return nil, err
		case isJob:
			jc.Local = p.Local
			p = jc
		case s.cfg.Auth:
			u, err := s.cfg.Store.TokenUser(r.Context(), HashToken(tok))
			switch {
			case errors.Is(err, atlas.ErrNotFound) && need == accessPublic:
				// A stale cookie must not lock the browser out of logging in again.
			case errors.Is(err, atlas.ErrNotFound):
				return nil, &httpError{status: http.StatusUnauthorized, msg: "invalid or revoked token: log in again with `foundations login <url>`"}
			case err != nil:
				return nil, err
			default:
				p.User, p.Admin = u.Name, u.Admin
			}
		}
	}
	if s.cfg.Auth && need != accessPublic {
		switch {
		case p.User == "" && p.JobID == "":
			return nil, &httpError{status: http.StatusUnauthorized,
				msg: "authentication required: run `foundations login <scheduler_url>` or set FOUNDATIONS_TOKEN"}
		case need == accessUser && p.JobID != "":
			return nil, atlas.Deniedf("a job's token cannot do this; use a user's token")
		}
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, p)), nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Token string `json:"token"`
	}
	if err := decode(w, r, 1<<16, &body); err != nil {
		return err
	}
	who := map[string]any{"auth": s.cfg.Auth}
	if s.cfg.Auth {
		u, err := s.cfg.Store.TokenUser(r.Context(), HashToken(strings.TrimSpace(body.Token)))
		if errors.Is(err, atlas.ErrNotFound) {
			return &httpError{status: http.StatusUnauthorized, msg: "invalid or revoked token"}
		}
		if err != nil {
			return err
		}
		who["user"], who["admin"] = u.Name, u.Admin
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: strings.TrimSpace(body.Token), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, Expires: time.Now().Add(30 * 24 * time.Hour)})
	writeJSON(w, http.StatusOK, who)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	p := callerOf(r)
	out := map[string]any{"auth": s.cfg.Auth, "user": p.User, "admin": p.Admin || !s.cfg.Auth}
	if p.JobID != "" {
		out["job"] = p.JobID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
