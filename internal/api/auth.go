package api

import (
	"context"
	"crypto/hmac"
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

// Principal is who makes a request.
type Principal struct {
	User  string // the user; for a job token, the job's user
	Admin bool
	JobID string     // set when the request carries a job's own token
	Local bool       // the request comes from this machine (loopback or the unix socket)
	job   *atlas.Job // the job of a job token, as loaded to authenticate the request
}

type principalKey struct{}

func principalOf(r *http.Request) *Principal {
	if p, ok := r.Context().Value(principalKey{}).(*Principal); ok {
		return p
	}
	return &Principal{}
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

// JobToken returns the token a job uses to write to itself and submit child jobs. It names
// the job and is signed with the server's secret, so it need not be stored.
func JobToken(secret []byte, jobID string) string {
	return "job." + jobID + "." + jobMAC(secret, jobID)
}

func jobMAC(secret []byte, jobID string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("job:" + jobID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// jobOfToken returns the job a job token belongs to, if the token is genuine.
func (s *Server) jobOfToken(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, "job.")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", false
	}
	id, mac := rest[:i], rest[i+1:]
	return id, hmac.Equal([]byte(mac), []byte(jobMAC(s.cfg.Secret, id)))
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
	p := &Principal{Local: isLocal(r)}
	if tok := requestToken(r); tok != "" {
		if id, ok := s.jobOfToken(tok); ok {
			j, err := s.cfg.Store.JobGet(r.Context(), id)
			if err != nil && !errors.Is(err, atlas.ErrNotFound) {
				return nil, err
			}
			p.JobID, p.job = id, j
			if j != nil {
				p.User = j.User
			}
		} else if s.cfg.Auth {
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
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), nil
}

// canRead checks that the requester may see a job: anyone without authentication; with it, a
// job's token sees only jobs of its own user.
func (s *Server) canRead(r *http.Request, j *atlas.Job) error {
	p := principalOf(r)
	if !s.cfg.Auth || p.JobID == "" || p.User == j.User || p.JobID == j.ID {
		return nil
	}
	return atlas.NotFoundf("job %s not found", j.ID)
}

// canWrite checks that the requester may track values on or tag a job: a job's token only its
// own job; a user their own jobs (an admin any).
func (s *Server) canWrite(r *http.Request, j *atlas.Job) error {
	p := principalOf(r)
	switch {
	case !s.cfg.Auth && p.JobID == "":
		return nil
	case p.JobID != "":
		if p.JobID == j.ID {
			return nil
		}
		return atlas.Deniedf("a job's token can only write to its own job")
	case p.Admin || p.User == j.User:
		return nil
	}
	return atlas.Deniedf("job %s belongs to %s", j.ID, j.User)
}

// canControl checks that the requester may stop or delete a job: its user, or an admin.
func (s *Server) canControl(r *http.Request, j *atlas.Job) error {
	p := principalOf(r)
	if !s.cfg.Auth || p.Admin || (p.JobID == "" && p.User == j.User) {
		return nil
	}
	return atlas.Deniedf("job %s belongs to %s; only they or an admin can stop or delete it", j.ID, j.User)
}

// jobFor loads a job the requester may read.
func (s *Server) jobFor(r *http.Request, id string) (*atlas.Job, error) {
	j, err := s.cfg.Store.JobGet(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return j, s.canRead(r, j)
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
	p := principalOf(r)
	out := map[string]any{"auth": s.cfg.Auth, "user": p.User, "admin": p.Admin || !s.cfg.Auth}
	if p.JobID != "" {
		out["job"] = p.JobID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
