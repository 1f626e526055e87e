package api

import (
	"net/http"
)

// route is one entry of the API table; the OpenAPI test compares this table with
// docs/openapi.yaml.
type route struct {
	pattern string
	handler func(*Server, http.ResponseWriter, *http.Request) error
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
	{"GET /api/v1/health", (*Server).health},
	{"HEAD /api/v1/blobs/{digest}", (*Server).headBlob},
	{"PUT /api/v1/blobs/{digest}", (*Server).putBlob},
	{"GET /api/v1/jobs", (*Server).listJobs},
	{"POST /api/v1/jobs", (*Server).submitJob},
	{"GET /api/v1/jobs/{id}", (*Server).getJob},
	{"DELETE /api/v1/jobs/{id}", (*Server).deleteJob},
	{"POST /api/v1/jobs/{id}/stop", (*Server).stopJob},
	{"GET /api/v1/jobs/{id}/logs", (*Server).jobLogs},
	{"GET /api/v1/jobs/{id}/archive", (*Server).jobArchive},
	{"POST /api/v1/jobs/{id}/track", (*Server).track},
	{"POST /api/v1/jobs/{id}/heartbeat", (*Server).heartbeat},
	{"POST /api/v1/jobs/{id}/finish", (*Server).finish},
	{"GET /api/v1/jobs/{id}/metrics/{key}", (*Server).metricSeries},
	{"GET /api/v1/jobs/{id}/artifacts/{key}", (*Server).artifact},
	{"PUT /api/v1/jobs/{id}/tags/{key}", (*Server).setTag},
	{"DELETE /api/v1/jobs/{id}/tags/{key}", (*Server).deleteTag},
	{"GET /api/v1/queue", (*Server).queue},
	{"POST /api/v1/queue/clear", (*Server).clearQueue},
	{"GET /api/v1/projects", (*Server).listProjects},
	{"GET /api/v1/projects/{name}", (*Server).getProject},
	{"GET /api/v1/projects/{name}/values", (*Server).values},
	{"PUT /api/v1/projects/{name}/description", (*Server).setDescription},
	{"GET /api/v1/projects/{name}/notes", (*Server).listNotes},
	{"POST /api/v1/projects/{name}/notes", (*Server).addNote},
	{"GET /api/v1/events", (*Server).events},
}

func (s *Server) routes() {
	for _, rt := range routeTable {
		h := rt.handler
		s.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := h(s, w, r); err != nil {
				s.writeError(w, r, err)
			}
		})
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &httpError{status: http.StatusNotFound, msg: "no such API endpoint: " + r.Method + " " + r.URL.Path})
	})
	s.mux.Handle("/", s.webHandler())
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": s.cfg.Version,
		"executor": s.cfg.Scheduler.ExecutorName(), "workers": s.cfg.Scheduler.Workers(), "gpus": s.cfg.Scheduler.TotalGPUs()})
	return nil
}
