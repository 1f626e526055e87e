package api

import (
	"net/http"
)

// route is one entry of the API table; the OpenAPI test compares this table with
// docs/openapi.yaml.
type route struct {
	pattern string
	handler handler
	access  access
}

// Routes returns the API's method-and-path patterns, for the OpenAPI test.
func Routes() []string {
	var out []string
	for _, r := range routeTable {
		out = append(out, r.pattern)
	}
	return out
}

var routeTable = []route{
	{"GET /api/v1/health", (*Server).health, accessPublic},
	{"POST /api/v1/login", (*Server).login, accessPublic},
	{"POST /api/v1/logout", (*Server).logout, accessPublic},
	{"GET /api/v1/whoami", (*Server).whoami, accessAny},
	{"HEAD /api/v1/blobs/{digest}", (*Server).headBlob, accessAny},
	{"PUT /api/v1/blobs/{digest}", (*Server).putBlob, accessAny},
	{"GET /api/v1/jobs", (*Server).listJobs, accessAny},
	{"POST /api/v1/jobs", (*Server).submitJob, accessAny},
	{"GET /api/v1/jobs/{id}", byPrefix((*Server).getJob), accessAny},
	{"DELETE /api/v1/jobs/{id}", byPrefix((*Server).deleteJob), accessUser},
	{"POST /api/v1/jobs/{id}/stop", byPrefix((*Server).stopJob), accessUser},
	{"POST /api/v1/jobs/{id}/clone", byPrefix((*Server).cloneJob), accessAny},
	{"GET /api/v1/jobs/{id}/logs", byPrefix((*Server).jobLogs), accessAny},
	{"POST /api/v1/jobs/{id}/logs", (*Server).appendLog, accessAny},
	{"GET /api/v1/jobs/{id}/archive", byPrefix((*Server).jobArchive), accessAny},
	{"POST /api/v1/jobs/{id}/track", (*Server).track, accessAny},
	{"POST /api/v1/jobs/{id}/heartbeat", (*Server).heartbeat, accessAny},
	{"POST /api/v1/jobs/{id}/finish", (*Server).finish, accessAny},
	{"POST /api/v1/jobs/{id}/exit", (*Server).reportExit, accessAny},
	{"GET /api/v1/jobs/{id}/bundle", (*Server).jobBundle, accessAny},
	{"GET /api/v1/sdk", (*Server).sdkArchive, accessAny},
	{"GET /api/v1/jobs/{id}/metrics/{key}", byPrefix((*Server).metricSeries), accessAny},
	{"GET /api/v1/jobs/{id}/artifacts/{key}", byPrefix((*Server).artifact), accessAny},
	{"PUT /api/v1/jobs/{id}/tags/{key}", byPrefix((*Server).setTag), accessAny},
	{"DELETE /api/v1/jobs/{id}/tags/{key}", byPrefix((*Server).deleteTag), accessAny},
	{"GET /api/v1/searches", (*Server).listSearches, accessAny},
	{"POST /api/v1/searches", (*Server).submitSearch, accessAny},
	{"GET /api/v1/searches/{id}", (*Server).getSearch, accessAny},
	{"POST /api/v1/searches/{id}/stop", (*Server).stopSearch, accessUser},
	{"GET /api/v1/queue", (*Server).queue, accessAny},
	{"POST /api/v1/queue/clear", (*Server).clearQueue, accessUser},
	{"GET /api/v1/projects", (*Server).listProjects, accessAny},
	{"GET /api/v1/projects/{name}", (*Server).getProject, accessAny},
	{"GET /api/v1/projects/{name}/values", (*Server).values, accessAny},
	{"PUT /api/v1/projects/{name}/description", (*Server).setDescription, accessUser},
	{"GET /api/v1/projects/{name}/description/history", (*Server).descriptionHistory, accessAny},
	{"GET /api/v1/projects/{name}/notes", (*Server).listNotes, accessAny},
	{"POST /api/v1/projects/{name}/notes", (*Server).addNote, accessUser},
	{"GET /api/v1/events", (*Server).events, accessAny},
	{"GET /api/v1/debug/pprof/", (*Server).profile, accessUser},
	{"GET /api/v1/debug/pprof/{name}", (*Server).profile, accessUser},
	// Prometheus's scrape: with --auth, any user's token (no admin needed), not a job's.
	{"GET /metrics", (*Server).metrics, accessUser},
}

type handler = func(*Server, http.ResponseWriter, *http.Request) error

// byPrefix lets the {id} of h's route be any unique prefix of a job's id, as users copy it
// from the GUI or the CLI (jobs.Service.ResolveID): h sees the whole id. The routes of the
// in-job side take whole ids only.
func byPrefix(h handler) handler {
	return func(s *Server, w http.ResponseWriter, r *http.Request) error {
		id, err := s.cfg.Jobs.ResolveID(r.Context(), callerOf(r), r.PathValue("id"))
		if err != nil {
			return err
		}
		r.SetPathValue("id", id)
		return h(s, w, r)
	}
}

func (s *Server) routes() {
	for _, rt := range routeTable {
		h, need := rt.handler, rt.access
		s.mux.HandleFunc(rt.pattern, s.instrument(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			w, done := withGzip(w, r)
			defer done()
			r, err := s.authenticate(r, need)
			if err == nil {
				err = h(s, w, r)
			}
			if err != nil {
				s.writeError(w, r, err)
			}
		}))
	}
	s.mux.HandleFunc("/api/", s.instrument("unknown", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &httpError{status: http.StatusNotFound, msg: "no such API endpoint: " + r.Method + " " + r.URL.Path})
	}))
	s.mux.HandleFunc("/", s.instrument("GUI", s.webHandler().ServeHTTP))
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": s.cfg.Version, "auth": s.cfg.Auth,
		"executor": s.cfg.Queue.ExecutorName(), "workers": s.cfg.Queue.Workers(), "gpus": s.cfg.Queue.TotalGPUs()})
	return nil
}
