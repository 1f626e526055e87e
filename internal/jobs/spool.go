// A job's spool: the tracked values its SDK could not deliver, stored when the job's end is recorded.

package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/sdk"
)

// DrainSpool stores what a job's SDK left undelivered in dir, its spool: for every writer
// directory, the batches in seq order, with artifact contents from the writer's blobs/. Each
// (writer, seq) is stored at most once, so values the SDK did deliver are not stored twice.
// A batch the server refuses is dropped with a log line, as the SDK would have been told.
func (s *Service) DrainSpool(ctx context.Context, jobID, dir string) error {
	writers, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, w := range writers {
		if !w.IsDir() {
			continue
		}
		wdir := filepath.Join(dir, w.Name())
		var meta struct {
			JobID string `json:"job_id"`
		}
		if data, err := os.ReadFile(filepath.Join(wdir, "meta.json")); err == nil && json.Unmarshal(data, &meta) == nil &&
			meta.JobID != "" && meta.JobID != jobID {
			continue // another job's spool
		}
		entries, err := os.ReadDir(wdir)
		if err != nil {
			return err
		}
		var names []string
		for _, e := range entries {
			if n := e.Name(); strings.HasSuffix(n, ".json") && n[0] >= '0' && n[0] <= '9' {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		applied := 0
		for _, n := range names {
			data, err := os.ReadFile(filepath.Join(wdir, n))
			if err != nil {
				return err
			}
			var b sdk.TrackBatch
			if err := sdk.DecodeTrackBatch(data, &b); err != nil {
				s.cfg.Logger.Warn("unreadable batch in a job's spool", "job", jobID, "file", filepath.Join(wdir, n), "err", err)
				continue
			}
			for _, a := range b.Artifacts {
				hexPart, _ := strings.CutPrefix(a.Digest, "sha256:")
				if _, _, err := blob.PutFile(ctx, s.cfg.Blobs, filepath.Join(wdir, "blobs", filepath.Base(hexPart))); err != nil {
					s.cfg.Logger.Warn("artifact content missing from a job's spool", "job", jobID, "artifact", a.Key, "err", err)
				}
			}
			sb, err := s.trackBatch(ctx, jobID, &b)
			if err != nil {
				s.cfg.Logger.Warn("refused a batch left in a job's spool", "job", jobID, "err", err)
				continue
			}
			ok, err := s.cfg.Store.TrackBatch(ctx, sb)
			if errors.Is(err, atlas.ErrNotFound) {
				return nil // the job was deleted meanwhile
			}
			if err != nil {
				return err
			}
			if ok {
				applied++
			}
		}
		if applied > 0 {
			s.cfg.Logger.Info("stored tracked values a job left in its spool", "job", jobID, "batches", applied)
		}
		if err := os.RemoveAll(wdir); err != nil {
			return err
		}
	}
	return nil
}
