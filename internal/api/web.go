package api

import (
	"io/fs"
	"net/http"
	"strings"
)

// webHandler serves the GUI: files from cfg.Web, and index.html for every other path so the
// single-page app can route. Everything it serves runs under webPolicy (guard.go).
func (s *Server) webHandler() http.Handler {
	if s.cfg.Web == nil {
		return http.NotFoundHandler()
	}
	files := http.FileServerFS(s.cfg.Web)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", webPolicy)
		p := strings.TrimPrefix(r.URL.Path, "/")
		if p != "" {
			if fi, err := fs.Stat(s.cfg.Web, p); err == nil && !fi.IsDir() {
				if strings.HasPrefix(p, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
		}
		index, err := fs.ReadFile(s.cfg.Web, "index.html")
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index)
	})
}
