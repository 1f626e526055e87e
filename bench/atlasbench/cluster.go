package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/atlasgo/atlas/sdk"
)

// clusterRun is what the benchmarks of cluster executors share: a server with their config,
// and a trivial job to submit to it again and again.
type clusterRun struct {
	srv     *server
	c       *sdk.Client
	project string
	digest  string
}

// startCluster starts a server in home with cfg as its server.config.yaml, on port, handing
// workers jobs to the cluster at once, and uploads the bundle of a job that runs `pass`.
func startCluster(ctx context.Context, home, cfg string, port, workers int, project string) (*clusterRun, error) {
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	srv, err := startServer(home, "--port", fmt.Sprint(port), "--workers", fmt.Sprint(workers))
	if err != nil {
		return nil, err
	}
	r := &clusterRun{srv: srv, c: sdk.New(srv.url, ""), project: project}
	digest, path, err := trivialFolder(filepath.Join(home, "job"), "pass\n")
	if err == nil {
		_, err = r.c.UploadFile(ctx, digest, path)
	}
	if err != nil {
		srv.stop()
		return nil, err
	}
	r.digest = digest
	return r, nil
}

// submit queues the trivial job.
func (r *clusterRun) submit(ctx context.Context) (string, error) {
	res, err := r.c.Submit(ctx, &sdk.JobSpec{Project: r.project, Command: []string{"main.py"}, BundleDigest: r.digest})
	if err != nil {
		return "", err
	}
	return res.Job.ID, nil
}

// oneAtATime submits n trivial jobs one after another (and one before them, to warm up), each
// once the last completed, and prints submit → running and submit → completed, median and p99:
// as the server recorded them (engineTimes: the engine's start time, and the end), or as a
// client waiting on the job's state sees them. It returns those durations.
func (r *clusterRun) oneAtATime(ctx context.Context, n int, where string, engineTimes bool) (running, completed []time.Duration, err error) {
	for i := -1; i < n; i++ {
		t0 := time.Now()
		id, err := r.submit(ctx)
		if err != nil {
			return nil, nil, err
		}
		if _, err := r.c.WaitJob(ctx, id, 2*time.Minute, sdk.StateQueued, sdk.StateStarting); err != nil {
			return nil, nil, err
		}
		t1 := time.Now()
		j, err := r.c.WaitJob(ctx, id, 2*time.Minute, sdk.StateRunning)
		if err != nil {
			return nil, nil, err
		}
		if j.State != sdk.StateCompleted || j.StartedAt == nil || j.FinishedAt == nil {
			return nil, nil, fmt.Errorf("job %s ended %s: %s", j.ID, j.State, j.Reason)
		}
		if i < 0 {
			continue
		}
		if engineTimes {
			running, completed = append(running, j.StartedAt.Sub(t0)), append(completed, j.FinishedAt.Sub(t0))
		} else {
			running, completed = append(running, t1.Sub(t0)), append(completed, time.Since(t0))
		}
	}
	fmt.Printf("%d trivial jobs one at a time on %s: submit→running median %.0f ms, p99 %.0f ms; submit→completed median %.0f ms, p99 %.0f ms\n",
		n, where, ms(percentile(running, 0.5)), ms(percentile(running, 0.99)), ms(percentile(completed, 0.5)), ms(percentile(completed, 0.99)))
	return running, completed, nil
}

// drain queues n trivial jobs at once, waits until none is left, checks that every job of the
// run completed (before of them ran earlier), and prints the rate.
func (r *clusterRun) drain(ctx context.Context, n, before, workers int, where string) error {
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if _, err := r.submit(ctx); err != nil {
			return err
		}
	}
	queued := time.Since(t0)
	for {
		left, err := r.c.Jobs(ctx, sdk.ListOptions{Project: r.project, States: []string{sdk.StateQueued, sdk.StateStarting, sdk.StateRunning}, Limit: 1})
		if err != nil {
			return err
		}
		if left.Total == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	drained := time.Since(t0)
	done, err := r.c.Jobs(ctx, sdk.ListOptions{Project: r.project, States: []string{sdk.StateCompleted}, Limit: 1})
	if err != nil {
		return err
	}
	if want := before + n; done.Total != want {
		others, err := r.c.Jobs(ctx, sdk.ListOptions{Project: r.project, States: []string{sdk.StateFailed, sdk.StateStopped}, Limit: 5})
		if err != nil {
			return err
		}
		var how []string
		for _, j := range others.Jobs {
			how = append(how, fmt.Sprintf("%s %s: %s", j.ID, j.State, j.Reason))
		}
		return fmt.Errorf("%d of %d jobs completed; %s", done.Total, want, strings.Join(how, "; "))
	}
	fmt.Printf("drain %d queued trivial jobs, %d at a time on %s: %.1f jobs/s (%.1f s; queueing them took %.1f s)\n",
		n, workers, where, float64(n)/drained.Seconds(), drained.Seconds(), queued.Seconds())
	return nil
}
