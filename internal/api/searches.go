package api

import (
	"context"
	"net/http"
	"time"

	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/sdk"
)

func (s *Server) submitSearch(w http.ResponseWriter, r *http.Request) error {
	var spec sdk.SearchSpec
	if err := decode(w, r, specLimit, &spec); err != nil {
		return err
	}
	res, err := s.cfg.Searches.Submit(r.Context(), s.submitter(r), &spec)
	if err != nil {
		return err
	}
	writeJSON(w, createdStatus(res.Existing), &sdk.SearchSubmitResult{Search: res.Search, Warnings: res.Warnings})
	return nil
}

func (s *Server) listSearches(w http.ResponseWriter, r *http.Request) error {
	list, err := s.cfg.Searches.List(r.Context(), callerOf(r), r.URL.Query().Get("project"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// getSearch answers a search with its trials; with wait_since=<version>, once its version is
// another (something shown changed), or at the timeout (max 60 s).
func (s *Server) getSearch(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	since := r.URL.Query().Get("wait_since")
	timeout, err := waitTimeout(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	var changes <-chan jobs.Change
	if since != "" {
		ch, unsubscribe := s.cfg.Jobs.Events().Subscribe()
		defer unsubscribe()
		changes = ch
	}
	recheck := time.NewTicker(time.Second) // the hub may drop changes for slow subscribers
	defer recheck.Stop()
	for {
		v, err := s.cfg.Searches.View(r.Context(), callerOf(r), id)
		if err != nil {
			return err
		}
		if since == "" || v.Version != since || ctx.Err() != nil {
			writeJSON(w, http.StatusOK, v)
			return nil
		}
		nextChange(ctx, changes, recheck.C, func(c jobs.Change) bool { return c.Search == id })
	}
}

func (s *Server) stopSearch(w http.ResponseWriter, r *http.Request) error {
	v, err := s.cfg.Searches.StopSearch(r.Context(), callerOf(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
