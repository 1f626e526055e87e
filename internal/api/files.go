package api

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/jobs"
)

func (s *Server) headBlob(w http.ResponseWriter, r *http.Request) error {
	ok, size, err := s.cfg.Blobs.Has(r.Context(), r.PathValue("digest"))
	if err != nil {
		return err
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	// The client will now use it instead of uploading it: unused blobs are collected only
	// when they have not been asked about for a while.
	_ = s.cfg.Blobs.Touch(r.Context(), r.PathValue("digest"))
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) error {
	digest := r.PathValue("digest")
	if _, err := blob.ParseDigest(digest); err != nil {
		return err
	}
	if r.ContentLength > s.cfg.MaxBundleBytes {
		return &httpError{status: http.StatusRequestEntityTooLarge,
			msg: "upload of " + humanBytes(r.ContentLength) + " is larger than the server's limit of " + humanBytes(s.cfg.MaxBundleBytes)}
	}
	if ok, _, err := s.cfg.Blobs.Has(r.Context(), digest); err == nil && ok {
		_ = s.cfg.Blobs.Touch(r.Context(), digest)
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// Streamed into the store as it arrives (in parts, to an object store), and kept only if
	// it hashes to the digest.
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBundleBytes)
	if _, _, err := s.cfg.Blobs.Put(r.Context(), body, digest); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{status: http.StatusRequestEntityTooLarge, msg: "upload is larger than the server's limit of " + humanBytes(s.cfg.MaxBundleBytes)}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return atlas.Invalidf("upload was truncated")
		}
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.cfg.Jobs.Job(r.Context(), callerOf(r), id); err != nil {
		return err
	}
	q := r.URL.Query()
	var offset int64
	if v := q.Get("offset"); v != "" {
		var err error
		if offset, err = strconv.ParseInt(v, 10, 64); err != nil || offset < 0 {
			return atlas.Invalidf("invalid offset %q", v)
		}
	}
	if size := s.cfg.Logs.Size(id); offset > size {
		return atlas.Invalidf("offset %d is past the end of the log of job %s (%d bytes)", offset, id, size)
	}
	if v := q.Get("tail_bytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return atlas.Invalidf("invalid tail_bytes %q", v)
		}
		if size := s.cfg.Logs.Size(id); size > n {
			offset = s.cfg.Logs.LineStart(id, size-n)
		}
		w.Header().Set("X-Log-Offset", strconv.FormatInt(offset, 10))
	}
	var length int64 = -1
	if v := q.Get("length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return atlas.Invalidf("invalid length %q", v)
		}
		length = n
	}
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	flush := func() { _ = rc.Flush() }
	if follow {
		flush() // headers now: the client knows the job exists before any output
	}
	if length >= 0 && !follow {
		lw := &limitWriter{w: w, left: length}
		err := s.cfg.Logs.Stream(ctx, id, offset, false, nil, lw, flush)
		if errors.Is(err, errLimit) {
			return nil
		}
		return err
	}
	var done <-chan struct{}
	if follow {
		done = s.whenFinished(ctx, id)
	}
	return s.cfg.Logs.Stream(ctx, id, offset, follow, done, w, flush)
}

// whenFinished returns a channel that is closed once the job has finished (or is gone, or ctx
// ends). It follows the job's events, so a follower asks the database nothing while the job
// runs, and looks again every few seconds in case an event was dropped.
func (s *Server) whenFinished(ctx context.Context, id string) <-chan struct{} {
	done := make(chan struct{})
	changes, unsubscribe := s.cfg.Jobs.Events().Subscribe()
	go func() {
		defer close(done)
		defer unsubscribe()
		recheck := time.NewTicker(5 * time.Second)
		defer recheck.Stop()
		for {
			if j, err := s.cfg.Store.JobGet(ctx, id); err != nil || j.State.Finished() {
				return
			}
			nextChange(ctx, changes, recheck.C, func(c jobs.Change) bool { return c.JobID == id && !c.Tracked })
			if ctx.Err() != nil {
				return
			}
		}
	}()
	return done
}

var errLimit = errors.New("length reached")

// limitWriter passes at most left bytes, then stops the copy.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		n, err := l.w.Write(p[:l.left])
		l.left -= int64(n)
		if err == nil {
			err = errLimit
		}
		return n, err
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}

func (s *Server) jobArchive(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	j, err := s.cfg.Jobs.Archive(r.Context(), callerOf(r), id)
	if err != nil {
		return err
	}
	if j.ArchiveDigest == "" {
		if !j.State.Finished() {
			return atlas.NotFoundf("job %s is %s: its archive is made when it finishes", id, j.State)
		}
		return atlas.NotFoundf("job %s has no archive", id)
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": id + ".tar.gz"}))
	var mod time.Time
	if j.FinishedAt != nil {
		mod = *j.FinishedAt
	}
	rc, rebuilt, err := jobs.OpenArchive(r.Context(), s.cfg.Blobs, j)
	if err != nil {
		return err
	}
	if !rebuilt {
		rc.Close()
		return s.serveBlob(w, r, j.ArchiveDigest, mod)
	}
	defer rc.Close()
	// Rebuilt as it is sent: no length, ranges or redirect into the blob store.
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = io.Copy(w, rc)
	return err
}

// RedirectHeader is the request header with which a client of a download (an artifact, an
// archive, a bundle) says it follows a redirect into the blob store: "Atlas-Redirect:
// storage". It must not send its Atlas credentials there. Browsers never send it: the GUI's
// Content-Security-Policy allows only its own origin.
const RedirectHeader = "Atlas-Redirect"

// serveBlob answers the download of a blob whose Content-Type and Content-Disposition are set
// already. A client that follows redirects into the blob store is sent to a short-lived URL
// of the store, if it has them and the client can reach it; every other download is streamed
// from the store (ranges too), never held in memory whole.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, digest string, modtime time.Time) error {
	h := w.Header()
	if r.Method == http.MethodGet && r.Header.Get(RedirectHeader) == "storage" {
		u, err := s.cfg.Blobs.DownloadURL(r.Context(), digest,
			blob.Download{ContentType: h.Get("Content-Type"), ContentDisposition: h.Get("Content-Disposition")})
		if err != nil {
			return err
		}
		if u != "" && reachable(r, u) {
			h.Del("Content-Type")
			h.Del("Content-Disposition")
			h.Set("Location", u)
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return nil
		}
	}
	f, err := s.cfg.Blobs.Open(r.Context(), digest)
	if err != nil {
		return err
	}
	defer f.Close()
	http.ServeContent(w, r, "", modtime, f)
	return nil
}

// reachable reports whether the client of r can reach a URL of the blob store. A store on
// loopback is reachable from this machine over TCP only: not from other machines, nor from
// jobs in containers, which use the server's unix socket.
func reachable(r *http.Request, rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	if host := u.Hostname(); host != "localhost" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return true
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// inlineTypes are the types of artifacts a browser may show in a tab, by file extension (the
// GUI previews the same kinds): they hold no script.
var inlineTypes = map[string]string{
	".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
	".bmp": "image/bmp", ".avif": "image/avif", ".ico": "image/x-icon",
	".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
	".flac": "audio/flac", ".m4a": "audio/mp4", ".aac": "audio/aac",
	".mp4": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg", ".mov": "video/quicktime",
	".txt": "text/plain; charset=utf-8", ".log": "text/plain; charset=utf-8", ".csv": "text/csv; charset=utf-8",
	".tsv": "text/tab-separated-values; charset=utf-8", ".json": "application/json",
}

// artifactHeaders says how an artifact named filename is served. A job chooses an artifact's
// name and bytes, so nothing it stores may run in the GUI's origin. Besides apiPolicy: types
// that hold no script are shown inline; SVG keeps its type for the GUI's <img> (which ignores
// Content-Disposition) but is a download when opened; everything else is a download of opaque
// bytes. The opaque type also keeps a .js or .css artifact from being loaded by a page of the
// GUI as its own script or style: the GUI's policy allows its own origin, and nosniff refuses
// scripts and styles of any other type.
func artifactHeaders(h http.Header, filename string, download bool) {
	ext := strings.ToLower(path.Ext(filename))
	ctype, inline := inlineTypes[ext]
	switch {
	case ext == ".svg":
		ctype = "image/svg+xml"
	case !inline:
		ctype = "application/octet-stream"
	}
	disposition := "inline"
	if download || !inline {
		disposition = "attachment"
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": filename}))
}
