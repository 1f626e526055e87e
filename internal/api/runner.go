// What the in-job side of a job that runs where the server's files are not (a Kubernetes pod,
// a Slurm node) needs from the server: the SDK it runs, the job's bundle, and a way to report
// how the job's command ended. With the job's own token, like everything such a job does.

package api

import (
	"bytes"
	"net/http"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/python"
	"github.com/atlasgo/atlas/sdk"
)

// sdkArchive serves the foundations SDK as a tar.gz (python.Bootstrap fetches it).
func (s *Server) sdkArchive(w http.ResponseWriter, r *http.Request) error {
	data, digest, err := python.Archive()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("ETag", `"`+digest+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	return nil
}

// jobBundle serves a job's bundle: to the job itself, and to whoever may read its archive,
// which holds the same files. From an S3 bucket, a client that follows it is sent there.
func (s *Server) jobBundle(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	j, err := s.cfg.Jobs.Bundle(r.Context(), callerOf(r), id)
	if err != nil {
		return err
	}
	if j.BundleDigest == "" {
		return atlas.NotFoundf("job %s has no bundle", id)
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("ETag", `"`+j.BundleDigest+`"`)
	return s.serveBlob(w, r, j.BundleDigest, j.CreatedAt)
}

// reportExit records how a job's command ended, as the job's in-job side reports it.
func (s *Server) reportExit(w http.ResponseWriter, r *http.Request) error {
	var req sdk.ExitReport
	if err := decode(w, r, 1<<16, &req); err != nil {
		return err
	}
	if req.ExitCode == nil {
		return atlas.Invalidf("exit_code is missing")
	}
	j, err := s.cfg.Jobs.ReportExit(r.Context(), callerOf(r), r.PathValue("id"), *req.ExitCode, req.ArchiveDigest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWire(j))
	return nil
}
