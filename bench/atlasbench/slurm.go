package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// slurmBench measures jobs on a Slurm cluster: submit → running and submit → completed of a
// trivial job, one at a time, next to a bare `sbatch` of `python3 -c pass` (the floor); then a
// queue of jobs drained with a number of them handed to Slurm at once.
func slurmBench(args []string) error {
	fs := flag.NewFlagSet("slurm", flag.ExitOnError)
	partition := fs.String("partition", "", "the jobs' partition (default: the cluster's)")
	runAs := fs.String("run-as", "nobody", "the account jobs run as (the server is root)")
	poll := fs.Duration("poll", time.Second, "slurm.poll_interval")
	n := fs.Int("n", 20, "jobs one at a time, and as many bare sbatch runs")
	drainN := fs.Int("drain", 200, "jobs queued at once and drained")
	workers := fs.Int("w", 10, "jobs handed to Slurm at once")
	fs.Parse(args)
	if _, err := exec.LookPath("sbatch"); err != nil {
		return fmt.Errorf("no Slurm here: %v (scripts/slurm-cluster.sh up)", err)
	}
	ctx := context.Background()
	// The nodes' scratch directory, on this single-node cluster: every account may write to it.
	shared, err := os.MkdirTemp("", "atlasbench-slurm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(shared)
	if err := os.Chmod(shared, 0o1777); err != nil {
		return err
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	installation := "atlasbench-" + hex.EncodeToString(b)
	defer exec.Command("scancel", "--name="+installation).Run()

	home, _ := os.MkdirTemp("", "atlasbench-slurm-home-")
	defer os.RemoveAll(home)
	port, err := freePort()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf("executor: slurm\nslurm:\n  scheduler_url: http://127.0.0.1:%d\n  scratch_dir: %s\n  run_as: %s\n"+
		"  installation: %s\n  poll_interval: %s\n  python: /usr/bin/python3\n", port, shared, *runAs, installation, *poll)
	if *partition != "" {
		cfg += "  partition: " + *partition + "\n"
	}
	run, err := startCluster(ctx, home, cfg, port, *workers, "slurm")
	if err != nil {
		return err
	}
	defer run.srv.stop()
	_, total, err := run.oneAtATime(ctx, *n, fmt.Sprintf("Slurm (poll %s)", *poll), false)
	if err != nil {
		return err
	}

	floorRun, floorDone, err := sbatchFloor(ctx, shared, *partition, *runAs, *n)
	if err != nil {
		return err
	}
	fmt.Printf("bare `sbatch` of python3 -c pass, %d times: sbatch→running median %.0f ms, p99 %.0f ms; sbatch→completed median %.0f ms, p99 %.0f ms; Atlas submit→completed is %.2f× that\n",
		*n, ms(percentile(floorRun, 0.5)), ms(percentile(floorRun, 0.99)), ms(percentile(floorDone, 0.5)), ms(percentile(floorDone, 0.99)),
		float64(percentile(total, 0.5))/float64(percentile(floorDone, 0.5)))

	return run.drain(ctx, *drainN, *n+1, *workers, "Slurm")
}

// sbatchFloor submits `python3 -c pass` n times with a bare sbatch, one at a time, as runAs,
// and measures sbatch → running (the job writes the time it started) and sbatch → completed
// (squeue, asked every 20 ms).
func sbatchFloor(ctx context.Context, dir, partition, runAs string, n int) (running, completed []time.Duration, err error) {
	for i := 0; i < n; i++ {
		stamp := filepath.Join(dir, fmt.Sprintf("floor-%d", i))
		argv := []string{"-u", runAs, "--", "sbatch", "--parsable", "--output=/dev/null", "--wrap",
			"date +%s.%N > " + stamp + "; exec /usr/bin/python3 -c pass"}
		if partition != "" {
			argv = append(argv, "--partition="+partition)
		}
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, "runuser", argv...).CombinedOutput()
		if err != nil {
			return nil, nil, fmt.Errorf("sbatch: %v: %s", err, out)
		}
		id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
		for {
			out, err := exec.CommandContext(ctx, "squeue", "--noheader", "--states=all", "--jobs="+id, "--Format=State:0").Output()
			if err != nil {
				return nil, nil, fmt.Errorf("squeue: %v", err)
			}
			state := strings.TrimSpace(string(out))
			if state == "COMPLETED" {
				completed = append(completed, time.Since(t0))
				break
			}
			if state != "PENDING" && state != "CONFIGURING" && state != "RUNNING" && state != "COMPLETING" {
				return nil, nil, fmt.Errorf("floor job %s is %s", id, state)
			}
			time.Sleep(20 * time.Millisecond)
		}
		data, err := os.ReadFile(stamp)
		if err != nil {
			return nil, nil, err
		}
		secs, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
		if err != nil {
			return nil, nil, err
		}
		running = append(running, time.Unix(0, int64(secs*1e9)).Sub(t0))
	}
	return running, completed, nil
}
