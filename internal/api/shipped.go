package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/sdk"
)

// shipLimit caps one piece of shipped output; senders cut their output into smaller pieces.
const shipLimit = 8 << 20

// appendLog takes a piece of output a job ships itself (POST /jobs/{id}/logs?offset=N, raw
// bytes). The answer's X-Log-Length, also on the 409 of a gap, tells the sender where the log
// ends.
func (s *Server) appendLog(w http.ResponseWriter, r *http.Request) error {
	offset, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		return atlas.Invalidf("invalid offset %q: want the byte offset of the body in the job's log", r.URL.Query().Get("offset"))
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/octet-stream" {
		return &httpError{status: http.StatusUnsupportedMediaType, msg: "shipped output must be sent as application/octet-stream"}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, shipLimit))
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	length, err := s.cfg.Jobs.AppendLog(r.Context(), callerOf(r), id, offset, data)
	var gap *logs.GapError
	if errors.As(err, &gap) {
		w.Header().Set(sdk.LogLengthHeader, strconv.FormatInt(gap.Length, 10))
		return atlas.Conflictf("job %s: %v", id, gap)
	}
	if err != nil {
		return err
	}
	w.Header().Set(sdk.LogLengthHeader, strconv.FormatInt(length, 10))
	writeJSON(w, http.StatusOK, map[string]int64{"length": length})
	return nil
}
