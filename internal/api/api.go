// Package api is the HTTP API of atlas-server (/api/v1, documented in docs/openapi.yaml) and
// the handler that serves the GUI.
//
// Handlers are small: decode, validate, call the store or scheduler, encode. Errors are returned
// to one place (writeError) that maps them to status codes; a 5xx never shows internals.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/store"
)

// Scheduler is what the API needs from the scheduler.
type Scheduler interface {
	Validate(j *atlas.Job) error
	StopJob(ctx context.Context, id string) (*atlas.Job, error)
	Wake()
	Waiting() map[string]string
	Workers() int
	TotalGPUs() int
	ExecutorName() string
}

// Config wires the API.
type Config struct {
	Store          store.Store
	Blobs          *blob.Store
	Logs           *logs.Dir
	Scheduler      Scheduler
	Hub            *Hub
	Version        string
	MaxBundleBytes int64
	// Secret signs per-job tokens.
	Secret []byte
	// Auth requires a token on every request but health and login.
	Auth bool
	// MaxBundleEntries caps the files in a bundle (0: bundle.DefaultLimits).
	MaxBundleEntries int
	// AllowedVolumeRoots are the host paths under which worker.volumes of untrusted submitters
	// (remote, or any non-admin when Auth is on) must lie.
	AllowedVolumeRoots []string
	// Web is the GUI's static files (index.html at the root); nil serves nothing.
	Web    fs.FS
	Logger *slog.Logger
}

// Server serves the API.
type Server struct {
	cfg Config
	mux *http.ServeMux
	// blobMu orders "does the bundle exist, then insert a job using it" against "nothing uses
	// this blob, delete it", so garbage collection never removes a blob a new job needs.
	blobMu sync.RWMutex
	// checked remembers bundles that unpacked cleanly, so each is checked once.
	checked sync.Map
	// projects remembers the project of jobs that track values (job id -> project).
	projects sync.Map
}

// New returns the API handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hub == nil {
		cfg.Hub = NewHub()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
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

// decode reads a JSON body of at most limit bytes into v.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return atlas.Invalidf("invalid JSON body: %v", err)
	}
	return nil
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
