// Package api is the HTTP API of atlas-server (/api/v1, documented in docs/openapi.yaml) and
// the handler that serves the GUI.
//
// Handlers are small: authenticate, decode, call the job service (internal/jobs) or read the
// store, encode. Who may do what to which job is the service's rule; this package only finds
// out who is asking. Errors are returned to one place (writeError) that maps them to status
// codes; a 5xx never shows internals.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/search"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/telemetry"
)

// Queue is what the API shows of the scheduler.
type Queue interface {
	// Waiting says why each job of the head of the queue (the first queued jobs, in queue
	// order) waits, and why each job handed to an engine waits there.
	Waiting(head []*atlas.Job) map[string]string
	// WaitingFor says why one queued or starting job waits ("": it does not), reading no
	// more of the queue than its head.
	WaitingFor(ctx context.Context, j *atlas.Job) (string, error)
	Workers() int
	TotalGPUs() int
	ExecutorName() string
}

// Config wires the API.
type Config struct {
	Jobs *jobs.Service
	// Searches runs hyperparameter searches.
	Searches *search.Searcher
	// Store, Blobs and Logs are read for what the API shows; every change goes through Jobs.
	Store   store.Store
	Blobs   blob.Store
	Logs    *logs.Dir
	Queue   Queue
	Version string
	// MaxBundleBytes caps an upload.
	MaxBundleBytes int64
	// Auth requires a token on every request but health and login.
	Auth bool
	// AllowedHosts are names, besides loopback names and IP addresses, that requests from
	// browsers may address the server by (Host); "*.example.org" allows its subdomains.
	AllowedHosts []string
	// BodyTimeout is how long a request body may go without sending anything (0:
	// DefaultBodyTimeout).
	BodyTimeout time.Duration
	// Pprof serves the Go runtime's profiles under /api/v1/debug/pprof/ (to admins, or without
	// Auth to this machine only).
	Pprof bool
	// Telemetry receives the time and status of every request and serves GET /metrics (nil:
	// the API's own).
	Telemetry *telemetry.Telemetry
	// Web is the GUI's static files (index.html at the root); nil serves nothing.
	Web    fs.FS
	Logger *slog.Logger
}

// Server serves the API.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler // mux behind the browser checks (guard.go)
}

// New returns the API handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.Telemetry == nil {
		cfg.Telemetry = telemetry.New(cfg.Version)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.routes()
	s.handler = newGuard(cfg.AllowedHosts).handler(s.mux, s.writeError)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// First of all: a refused request's unread body is still read before the answer goes out.
	s.watchBody(w, r)
	s.handler.ServeHTTP(w, r)
}

// httpError carries a status for errors that are not domain errors.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func statusOf(err error) int {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.As(err, &mbe), errors.Is(err, atlas.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, atlas.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, atlas.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, atlas.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, atlas.ErrAuth):
		return http.StatusUnauthorized
	case errors.Is(err, atlas.ErrDenied):
		return http.StatusForbidden
	case diskFull(err):
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// diskFull reports whether err comes from a full disk (the file system, or SQLite).
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), "database or disk is full")
}

// writeError is the one place errors become responses.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	msg := err.Error()
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		msg = "request body is larger than the limit of " + humanBytes(mbe.Limit)
	}
	if status == http.StatusInsufficientStorage {
		s.cfg.Logger.Error("disk full", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "the server's disk is full: nothing was stored; free space in its FOUNDATIONS_HOME"
	}
	if status == http.StatusInternalServerError {
		if r.Context().Err() != nil {
			return // the client went away
		}
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal server error"
	}
	msg = strings.Join(strings.Fields(msg), " ")
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decode reads a JSON body of at most limit bytes into v. The body must say it is JSON: a
// page of another site can send text/plain, form or multipart bodies without asking first,
// never application/json.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if err := checkJSON(r); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.UseNumber()
	return bodyError(dec.Decode(v))
}

// readJSON reads a JSON body of at most limit bytes whole into buf (grown if need be), for a
// route that decodes it itself; the body must say it is JSON, as for decode.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, buf []byte) ([]byte, error) {
	if err := checkJSON(r); err != nil {
		return nil, err
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n > 0 && n <= limit { // one buffer of the right size
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		data := buf[:n]
		_, err := io.ReadFull(body, data)
		return data, bodyError(err)
	}
	data, err := io.ReadAll(body)
	return data, bodyError(err)
}

func checkJSON(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		got := "none"
		if ct != "" {
			got = atlas.Shorten(ct)
		}
		return &httpError{status: http.StatusUnsupportedMediaType,
			msg: "the request body must be JSON, sent with Content-Type: application/json (got " + got + ")"}
	}
	return nil
}

// bodyError is the error of reading or decoding a request body: a body over the limit as it
// is (413), anything else an invalid body (400).
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if err == nil || errors.As(err, &mbe) {
		return err
	}
	return atlas.Invalidf("invalid JSON body: %v", err)
}

// isJSON reports whether a Content-Type header is application/json (parameters such as
// charset allowed).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return formatFloat(float64(n)/(1<<30)) + " GiB"
	case n >= 1<<20:
		return formatFloat(float64(n)/(1<<20)) + " MiB"
	case n >= 1<<10:
		return formatFloat(float64(n)/(1<<10)) + " KiB"
	}
	return formatFloat(float64(n)) + " bytes"
}
