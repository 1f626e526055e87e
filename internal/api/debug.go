package api

import (
	"net/http"
	"net/http/pprof"

	"github.com/atlasgo/atlas/internal/atlas"
)

// profile serves the Go runtime's profiles (as net/http/pprof does) when the server was
// started with pprof on: to admins when authentication is on, and otherwise only to this
// machine (loopback or the unix socket).
func (s *Server) profile(w http.ResponseWriter, r *http.Request) error {
	c := callerOf(r)
	switch {
	case !s.cfg.Pprof:
		return atlas.NotFoundf("profiling is off: start the server with --pprof (or pprof: true in server.config.yaml)")
	case s.cfg.Auth && !c.Admin:
		return atlas.Deniedf("profiles are for admins")
	case !s.cfg.Auth && !c.Local:
		return atlas.Deniedf("without --auth, profiles are served to this machine only (loopback or the unix socket)")
	}
	switch name := r.PathValue("name"); name {
	case "":
		pprof.Index(w, r)
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
	return nil
}
