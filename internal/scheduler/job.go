// Running one job: preparing its working directory, starting it, watching it to the end, archiving what it leaves.

package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/jobs"
)

// ParamsFile is written into a job's working directory when it was submitted with params.
const ParamsFile = "foundations_job_parameters.json"

func (s *Scheduler) workDir(id string) string { return filepath.Join(s.cfg.WorkRoot, id) }

// start prepares and launches a claimed job, then watches it.
func (s *Scheduler) start(j *atlas.Job) {
	spec := &executor.Spec{Job: j, Env: s.env(j), SDKDir: s.cfg.SDKDir}
	if !s.remote() {
		spec.WorkDir, spec.LogPath, spec.SpoolDir = s.workDir(j.ID), s.cfg.Logs.Path(j.ID), s.cfg.Jobs.SpoolDir(j.ID)
		if err := s.prepare(j, spec.WorkDir); err != nil {
			s.failStart(j, "preparing the job failed: "+atlas.OneLine(err))
			return
		}
	}
	h, err := s.cfg.Executor.Start(s.ctx, spec)
	if err != nil {
		s.failStart(j, atlas.OneLine(err))
		return
	}
	// Record the job even if the server is shutting down, so that the next start re-attaches to
	// it instead of queueing it again. A job an engine has still to place stays starting.
	ctx := context.WithoutCancel(s.ctx)
	var j2 *atlas.Job
	if _, ok := h.(executor.Placer); ok {
		j2, err = s.cfg.Jobs.Handed(ctx, j.ID, h.RunInfo())
	} else {
		j2, err = s.cfg.Jobs.Started(ctx, j.ID, h.RunInfo())
	}
	if err != nil {
		s.cfg.Logger.Error("record job started", "job", j.ID, "err", err)
		_ = h.Stop(s.cfg.Jobs.StopGrace())
	} else {
		j = j2
	}
	s.mu.Lock()
	if r := s.running[j.ID]; r != nil {
		r.handle = h
	}
	s.mu.Unlock()
	// A stop asked for while the job was starting found no handle to signal.
	if cur, err := s.cfg.Store.JobGet(ctx, j.ID); err == nil && cur.State == atlas.StateStopping {
		_ = h.Stop(s.cfg.Jobs.StopGrace())
	}
	s.follow(j, h)
}

// follow watches a started job to its end. A job its engine has still to place stays starting
// until it runs; that it ran is recorded before how it ended.
func (s *Scheduler) follow(j *atlas.Job, h executor.Handle) {
	p, ok := h.(executor.Placer)
	if !ok || j.State != atlas.StateStarting {
		s.watch(j, h, nil)
		return
	}
	placed := make(chan struct{})
	s.wg.Go(func() {
		defer close(placed)
		select {
		case <-p.Placed(): // it runs, or it ended: then Since says whether it ever ran
			if since := p.Since(); !since.IsZero() {
				// Conflicts are expected: the job may have been asked to stop meanwhile.
				_, _ = s.cfg.Jobs.Placed(context.WithoutCancel(s.ctx), j.ID, since)
			}
		case <-s.ctx.Done():
		}
	})
	s.watch(j, h, placed)
}

// env is the job's environment: how to reach the server and record itself, its GPUs, and
// worker.environment.
func (s *Scheduler) env(j *atlas.Job) []string {
	env := []string{"FOUNDATIONS_JOB_ID=" + j.ID, "FOUNDATIONS_PROJECT_NAME=" + j.Project,
		"FOUNDATIONS_USER=" + j.User, "FOUNDATIONS_SCHEDULER_URL=" + s.cfg.SchedulerURL,
		"FOUNDATIONS_TOKEN=" + s.cfg.Jobs.JobToken(j.ID), "FOUNDATIONS_HOME=" + s.cfg.Home,
		"FOUNDATIONS_GPU_IDS=" + strings.Join(j.GPUIDs, ",")}
	if len(s.cfg.GPUs) > 0 {
		ids := strings.Join(j.GPUIDs, ",")
		env = append(env, "CUDA_VISIBLE_DEVICES="+ids, "NVIDIA_VISIBLE_DEVICES="+ids)
	}
	for _, k := range slices.Sorted(maps.Keys(j.Worker.Environment)) {
		env = append(env, k+"="+j.Worker.Environment[k])
	}
	return env
}

// prepare unpacks the bundle into a fresh working directory and writes the params file.
func (s *Scheduler) prepare(j *atlas.Job, workDir string) error {
	if err := os.RemoveAll(workDir); err != nil {
		return err
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	if d := s.cfg.Jobs.SpoolDir(j.ID); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if j.BundleDigest != "" {
		f, err := s.cfg.Blobs.Open(s.ctx, j.BundleDigest)
		if err != nil {
			return fmt.Errorf("bundle %s: %w", j.BundleDigest, err)
		}
		err = bundle.Extract(f, workDir, s.cfg.Jobs.BundleLimits())
		f.Close()
		if err != nil {
			return err
		}
	}
	if j.Params != nil {
		data, err := json.MarshalIndent(j.Params, "", "    ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(workDir, ParamsFile), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// watch waits for a running job to end and records how it ended, after what placed records
// (nil: nothing). If the server shuts down first, it returns without recording anything: the
// job goes on, and is recovered later.
func (s *Scheduler) watch(j *atlas.Job, h executor.Handle, placed <-chan struct{}) {
	res, err := h.Wait(s.ctx)
	if err != nil {
		return // server shutting down
	}
	if placed != nil {
		<-placed
	}
	if s.finish(j, res) {
		if err := h.Release(); err != nil {
			s.cfg.Logger.Warn("release job resources", "job", j.ID, "err", err)
		}
	}
}

// finish archives the working directory (a remote executor's job uploaded its own) and records
// how the job ended. It reports whether that was recorded.
func (s *Scheduler) finish(j *atlas.Job, res executor.Result) bool {
	defer s.release(j.ID)
	workDir, archive := s.workDir(j.ID), ""
	if !s.remote() {
		var err error
		if archive, err = s.archive(j, workDir); err != nil {
			s.cfg.Logger.Error("archive job", "job", j.ID, "err", err)
			_ = s.cfg.Logs.Append(j.ID, "Foundations ERROR: archiving the working directory failed: "+atlas.OneLine(err)+"\n")
		}
	}
	_, err := s.cfg.Jobs.Ended(s.ctx, j.ID, jobs.Outcome{ExitCode: res.ExitCode, Reason: res.Reason, Lost: res.Lost,
		Killed: res.Killed, ArchiveDigest: archive, Output: res.Output})
	if err != nil {
		s.cfg.Logger.Error("record job end", "job", j.ID, "err", err)
		return false
	}
	os.RemoveAll(workDir)
	return true
}

// remote reports whether jobs run where the server's files are not (executor.Remote).
func (s *Scheduler) remote() bool {
	_, ok := s.cfg.Executor.(executor.Remote)
	return ok
}

// archive stores the working directory as a blob: as what changed relative to the job's
// bundle when that is at hand (a search's thousand trials store their results, not a thousand
// copies of the folder), whole otherwise. Downloads rebuild the whole archive (jobs.OpenArchive).
func (s *Scheduler) archive(j *atlas.Job, workDir string) (string, error) {
	if _, err := os.Stat(workDir); os.IsNotExist(err) {
		return "", nil // nothing left to archive
	} else if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(s.cfg.WorkRoot, ".archive-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	// Hashed as it is written, so that the store writes it straight under its name.
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	if base := s.bundleIndex(j); base != nil {
		_, err = bundle.CreateDelta(workDir, base, j.BundleDigest, w)
	} else {
		_, err = bundle.Create(workDir, w, bundle.Options{})
	}
	if err != nil {
		return "", err
	}
	// Jobs of one bundle that change nothing in their folder, or change it alike, leave the
	// same archive: stored already, it needs no second copy (nor waiting for the disk to
	// write one), only to be marked as used, as an upload of a blob the server has is.
	d := blob.Digest(h.Sum(nil))
	if ok, _, err := s.cfg.Blobs.Has(s.ctx, d); err == nil && ok {
		if err := s.cfg.Blobs.Touch(s.ctx, d); err == nil {
			return d, nil
		}
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return "", err
	}
	d, _, err = s.cfg.Blobs.Put(s.ctx, tmp, d)
	return d, err
}

// bundleIndex returns the index of the job's bundle, kept from an earlier job of that bundle
// when there was one, or nil if it has none the store can open and read.
func (s *Scheduler) bundleIndex(j *atlas.Job) *bundle.Index {
	if j.BundleDigest == "" {
		return nil
	}
	x, err := s.indexes.Index(j.BundleDigest, func() (io.ReadCloser, error) { return s.cfg.Blobs.Open(s.ctx, j.BundleDigest) })
	if err != nil {
		s.cfg.Logger.Warn("archive job whole: its bundle cannot be read", "job", j.ID, "err", err)
		return nil
	}
	return x
}

// failStart records that a claimed job could not be started.
func (s *Scheduler) failStart(j *atlas.Job, reason string) {
	defer s.release(j.ID)
	if _, err := s.cfg.Jobs.FailStart(s.ctx, j.ID, reason); err != nil {
		s.cfg.Logger.Error("record job failure", "job", j.ID, "err", err)
		return
	}
	os.RemoveAll(s.workDir(j.ID))
}
