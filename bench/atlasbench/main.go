// Command atlasbench measures atlas-server end to end: it starts the real binary with a fresh
// FOUNDATIONS_HOME and drives it through the HTTP API, as users do.
//
//	atlasbench latency  [-n 200]           submit → running of a trivial job on an idle server
//	atlasbench drain    [-n 1000] [-w 2] [-depths 100,3000]  jobs/s draining a queue, next to xargs -P and task-spooler
//	atlasbench queue    [-n 10000]         the queue's page, a queued job and /metrics with a long queue
//	atlasbench gen      -home DIR [-jobs 10000 -params 20 -metrics 20]
//	atlasbench listing  [-jobs 10000]      first page of a big project sorted by a metric
//	atlasbench blobs    [-mb 200] [-s3 URL] a large artifact's upload and download, local and S3
//	atlasbench kubernetes [-n 20] [-drain 200] [-w 10]  jobs on a cluster, next to kubectl apply
//	atlasbench slurm [-n 20] [-drain 200] [-w 10]  jobs on a Slurm cluster, next to a bare sbatch
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/sqlite"
	"github.com/atlasgo/atlas/sdk"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: atlasbench latency|drain|queue|gen|listing|blobs|kubernetes|slurm [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "latency":
		err = latency(os.Args[2:])
	case "drain":
		err = drain(os.Args[2:])
	case "queue":
		err = queueBench(os.Args[2:])
	case "gen":
		err = gen(os.Args[2:])
	case "listing":
		err = listing(os.Args[2:])
	case "blobs":
		err = blobs(os.Args[2:])
	case "kubernetes":
		err = kube(os.Args[2:])
	case "slurm":
		err = slurmBench(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "atlasbench:", err)
		os.Exit(1)
	}
}

// server is a running atlas-server.
type server struct {
	cmd  *exec.Cmd
	url  string
	home string
}

func serverBin() string {
	if b := os.Getenv("ATLAS_SERVER_BIN"); b != "" {
		return b
	}
	return "bin/atlas-server"
}

func startServer(home string, args ...string) (*server, error) {
	return startServerEnv(home, nil, args...)
}

// startServerEnv is startServer with more environment.
func startServerEnv(home string, env []string, args ...string) (*server, error) {
	cmd := exec.Command(serverBin(), append([]string{"start", "--port", "0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "FOUNDATIONS_HOME="+home), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if _, rest, ok := strings.Cut(line, "listening on "); ok {
			go io.Copy(io.Discard, out)
			return &server{cmd: cmd, url: strings.Fields(rest)[0], home: home}, nil
		}
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("atlas-server exited before serving")
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
}

// trivialFolder writes a job folder whose main.py does nothing, and its bundle.
func trivialFolder(dir, script string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.py"), []byte(script), 0o644); err != nil {
		return "", "", err
	}
	var buf bytes.Buffer
	if _, err := bundle.Create(dir, &buf, bundle.JobFolder); err != nil {
		return "", "", err
	}
	path := dir + ".tar.gz"
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(buf.Bytes())), path, nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func latency(args []string) error {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	n := fs.Int("n", 200, "jobs")
	executor := fs.String("executor", "process", "process or docker")
	requirements := fs.Bool("requirements", false, "give the job a requirements.txt (after a first job has cached it)")
	fs.Parse(args)
	home, _ := os.MkdirTemp("", "atlasbench-")
	defer os.RemoveAll(home)
	srv, err := startServer(home, "--executor", *executor)
	if err != nil {
		return err
	}
	defer srv.stop()
	dir := filepath.Join(home, "job")
	if *requirements {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// No package index is reachable: an empty requirements file still builds and caches an environment.
		if err := os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("# cached environment\n"), 0o644); err != nil {
			return err
		}
	}
	digest, path, err := trivialFolder(dir, "pass\n")
	if err != nil {
		return err
	}
	c := sdk.New(srv.url, "")
	ctx := context.Background()
	if _, err := c.UploadFile(ctx, digest, path); err != nil {
		return err
	}
	// The floor, interleaved with the jobs: fork/exec of the same command, start to exit.
	python, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return err
	}
	var lat, total, forkExec []time.Duration
	for i := -1; i < *n; i++ { // job -1 warms up (and builds the requirements environment)
		if *executor == "process" && !*requirements {
			fe := exec.Command(strings.TrimSpace(string(python)), "main.py")
			fe.Dir = dir
			t := time.Now()
			if out, err := fe.CombinedOutput(); err != nil {
				return fmt.Errorf("python main.py: %v: %s", err, out)
			}
			if i >= 0 {
				forkExec = append(forkExec, time.Since(t))
			}
		}
		t0 := time.Now()
		res, err := c.Submit(ctx, &sdk.JobSpec{Project: "latency", Command: []string{"main.py"}, BundleDigest: digest})
		if err != nil {
			return err
		}
		j, err := c.WaitJob(ctx, res.Job.ID, 30*time.Second, sdk.StateQueued, sdk.StateStarting, sdk.StateRunning)
		if err != nil {
			return err
		}
		if j.StartedAt == nil || j.State != sdk.StateCompleted {
			return fmt.Errorf("job %s ended %s: %s", j.ID, j.State, j.Reason)
		}
		if i >= 0 {
			lat, total = append(lat, j.StartedAt.Sub(t0)), append(total, j.FinishedAt.Sub(t0))
		}
		// Once a job's end is recorded, the process executor starts the shim the next job will
		// use: a pause keeps that start out of the next fork/exec's time, as the previous job's
		// end is out of the next job's.
		time.Sleep(200 * time.Millisecond)
	}
	what := "trivial jobs"
	if *requirements {
		what += " with a cached requirements.txt"
	}
	fmt.Printf("%d %s one at a time (%s executor): submit→running median %.1f ms, p99 %.1f ms; submit→completed median %.1f ms, p99 %.1f ms\n",
		*n, what, *executor, ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)), ms(percentile(total, 0.5)), ms(percentile(total, 0.99)))
	if len(forkExec) > 0 {
		// Each job paired with the fork/exec just before it, which saw about the same load: the
		// difference is Atlas's own part, steadier than either on a busy machine.
		own := make([]time.Duration, len(total))
		for i := range total {
			own[i] = total[i] - forkExec[i]
		}
		fmt.Printf("floor, interleaved: fork/exec of `python main.py`, start→exit median %.1f ms, p99 %.1f ms; Atlas submit→completed is %.2f× that; each job less the fork/exec before it: median %.1f ms\n",
			ms(percentile(forkExec, 0.5)), ms(percentile(forkExec, 0.99)), float64(percentile(total, 0.5))/float64(percentile(forkExec, 0.5)), ms(percentile(own, 0.5)))
	}
	if *executor == "docker" {
		var plain []time.Duration
		for i := 0; i < *n; i++ {
			t := time.Now()
			if out, err := exec.Command("docker", "run", "--rm", "atlas-ce/worker:latest", "python3", "-c", "pass").CombinedOutput(); err != nil {
				return fmt.Errorf("docker run: %v: %s", err, out)
			}
			plain = append(plain, time.Since(t))
		}
		fmt.Printf("plain `docker run --rm atlas-ce/worker:latest python3 -c pass`: median %.1f ms, p99 %.1f ms; Atlas submit→completed is %.2f× that\n",
			ms(percentile(plain, 0.5)), ms(percentile(plain, 0.99)), float64(percentile(total, 0.5))/float64(percentile(plain, 0.5)))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func drain(args []string) error {
	fs := flag.NewFlagSet("drain", flag.ExitOnError)
	n := fs.Int("n", 1000, "jobs")
	workers := fs.Int("w", 2, "workers")
	rounds := fs.Int("rounds", 1, "measure the ceiling, task-spooler and Atlas this many times, interleaved, and report each round's ratios and their medians")
	depths := fs.String("depths", "", "also drain queues of these depths (comma-separated), for server CPU per job against queue depth")
	profile := fs.String("profile", "", "write the server's CPU profiles during each Atlas drain into this directory (atlas-<depth>-<k>.pprof, 10 s each; merge with go tool pprof)")
	fs.Parse(args)
	home, _ := os.MkdirTemp("", "atlasbench-")
	defer os.RemoveAll(home)

	dir := filepath.Join(home, "plain")
	if _, _, err := trivialFolder(dir, "pass\n"); err != nil {
		return err
	}
	// The same interpreter the server resolves (not a pyenv-style wrapper script).
	out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return err
	}
	python := strings.TrimSpace(string(out))
	_, haveTsp := exec.LookPath("tsp")
	if haveTsp != nil {
		fmt.Println("peer: task-spooler skipped: no tsp on PATH (Debian: apt-get install task-spooler)")
	}

	// The machine's speed changes by the minute on a shared VM: each round measures the
	// ceiling, the peer and Atlas one after the other, and the ratios are taken within a round.
	var toCeiling, toTsp []float64
	var xargs *drainRun
	for round := 1; round <= max(1, *rounds); round++ {
		// The ceiling: xargs running the same command n times, w at once.
		if xargs, err = xargsDrain(dir, python, *n, *workers); err != nil {
			return err
		}
		fmt.Printf("ceiling: `xargs -P%d` running `python main.py` %d times: %.1f jobs/s (%.1f s), %.1f ms CPU per job (the command itself), machine CPU per job %.1f ms\n",
			*workers, *n, float64(*n)/xargs.wall.Seconds(), xargs.wall.Seconds(), ms(xargs.cpu)/float64(*n), ms(xargs.machineCPU)/float64(*n))
		var tsp *drainRun
		if haveTsp == nil {
			if tsp, err = tspDrain(home, dir, python, *n, *workers); err != nil {
				return fmt.Errorf("task-spooler: %w", err)
			}
			fmt.Printf("peer: task-spooler, %d slots, %d queued `python main.py`: %.1f jobs/s (%.1f s); %.2f× the ceiling\n",
				*workers, *n, float64(*n)/tsp.wall.Seconds(), tsp.wall.Seconds(), xargs.wall.Seconds()/tsp.wall.Seconds())
		}
		r, err := atlasDrain(home, fmt.Sprint("atlas-r", round), *n, *workers, *profile)
		if err != nil {
			return err
		}
		rate, ceiling := float64(*n)/r.wall.Seconds(), float64(*n)/xargs.wall.Seconds()
		toCeiling = append(toCeiling, rate/ceiling)
		line := fmt.Sprintf("Atlas: %d queued trivial jobs, %d workers: %.1f jobs/s (%.1f s), %.2f× the ceiling", *n, *workers, rate, r.wall.Seconds(), rate/ceiling)
		if tsp != nil {
			toTsp = append(toTsp, rate/(float64(*n)/tsp.wall.Seconds()))
			line += fmt.Sprintf(", %.2f× task-spooler", toTsp[len(toTsp)-1])
		}
		fmt.Println(line + fmt.Sprintf("; server CPU per job %.1f ms; machine CPU per job %.1f ms, %.2f× the ceiling's",
			ms(r.cpu)/float64(*n), ms(r.machineCPU)/float64(*n), float64(r.machineCPU)/float64(xargs.machineCPU)))
	}
	if *rounds > 1 {
		line := fmt.Sprintf("median of %d rounds: Atlas %.2f× the ceiling", *rounds, median(toCeiling))
		if len(toTsp) > 0 {
			line += fmt.Sprintf(", %.2f× task-spooler", median(toTsp))
		}
		fmt.Println(line)
	}

	var sizes []int
	for _, d := range strings.Split(*depths, ",") {
		var k int
		if _, err := fmt.Sscan(d, &k); err == nil && k > 0 && k != *n {
			sizes = append(sizes, k)
		}
	}
	var base *drainRun
	if len(sizes) > 0 {
		sizes = append([]int{*n}, sizes...)
	}
	for i, size := range sizes {
		r, err := atlasDrain(home, fmt.Sprint("atlas", i), size, *workers, *profile)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("Atlas: %d queued trivial jobs, %d workers: %.1f jobs/s (%.1f s); server CPU per job %.1f ms",
			size, *workers, float64(size)/r.wall.Seconds(), r.wall.Seconds(), ms(r.cpu)/float64(size))
		if i == 0 {
			base = r
		} else {
			line += fmt.Sprintf(", %.2f× that at %d queued", (float64(r.cpu)/float64(size))/(float64(base.cpu)/float64(*n)), *n)
		}
		fmt.Println(line)
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// machineCPU is the time all processors have spent on anything but waiting, from /proc/stat.
func machineCPU() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		if i < len(f) {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			busy += v
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// drainRun is one drain's wall time and CPU time.
type drainRun struct {
	wall       time.Duration
	cpu        time.Duration // the server's own (Atlas) or everything run (xargs)
	machineCPU time.Duration // every processor's, from the start to the end of the drain
}

// xargsDrain runs `python main.py` n times in dir, w at once, with xargs.
func xargsDrain(dir, python string, n, w int) (*drainRun, error) {
	c := exec.Command("xargs", "-P", fmt.Sprint(w), "-I{}", python, "main.py")
	c.Dir = dir
	c.Stdin = strings.NewReader(strings.Repeat("x\n", n))
	t0, m0 := time.Now(), machineCPU()
	if out, err := c.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("xargs: %v: %s", err, out)
	}
	// xargs waits for every command, so its rusage holds theirs.
	return &drainRun{wall: time.Since(t0), machineCPU: machineCPU() - m0, cpu: c.ProcessState.UserTime() + c.ProcessState.SystemTime()}, nil
}

// tspDrain queues n `python main.py` behind w blockers in a private task-spooler with w
// slots, releases the blockers and times until every job has finished.
func tspDrain(home, dir, python string, n, w int) (*drainRun, error) {
	env := append(os.Environ(), "TS_SOCKET="+filepath.Join(home, "tsp.socket"), "TMPDIR="+dir, "TS_MAXFINISHED="+fmt.Sprint(n+w+10))
	tsp := func(args ...string) (string, error) {
		c := exec.Command("tsp", args...)
		c.Dir, c.Env = dir, env
		out, err := c.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("tsp %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	defer tsp("-K")
	if _, err := tsp("-S", fmt.Sprint(w)); err != nil {
		return nil, err
	}
	goFile := filepath.Join(dir, "tsp-go")
	for i := 0; i < w; i++ {
		if _, err := tsp("sh", "-c", "while [ ! -e "+goFile+" ]; do sleep 0.01; done"); err != nil {
			return nil, err
		}
	}
	for i := 0; i < n; i++ {
		if _, err := tsp(python, filepath.Join(dir, "main.py")); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		return nil, err
	}
	for {
		list, err := tsp("-l")
		if err != nil {
			return nil, err
		}
		done, failed := 0, 0
		for _, l := range strings.Split(list, "\n") { // ID State Output E-Level Times Command
			if f := strings.Fields(l); len(f) > 3 && f[1] == "finished" {
				done++
				if f[3] != "0" {
					failed++
				}
			}
		}
		if failed > 0 {
			return nil, fmt.Errorf("%d jobs failed: %s", failed, list)
		}
		if done >= n+w {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &drainRun{wall: time.Since(t0)}, nil
}

// atlasDrain fills a fresh server's queue with n trivial jobs behind w blockers, releases the
// blockers and times until every job has ended, reading the server's CPU from /proc. With a
// profile directory, it also records the server's CPU profile while the queue drains.
func atlasDrain(home, name string, n, workers int, profile string) (*drainRun, error) {
	home = filepath.Join(home, name)
	args := []string{"--workers", fmt.Sprint(workers), "--executor", "process"}
	if profile != "" {
		args = append(args, "--pprof")
	}
	srv, err := startServer(home, args...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	c := sdk.New(srv.url, "")
	ctx := context.Background()
	goFile, _, err := fillQueue(ctx, c, home, n, workers)
	if err != nil {
		return nil, err
	}
	// Watch the jobs end on the server's event stream: one short message per change, so
	// watching costs the server the same per job whatever the queue's depth (counting the jobs
	// left, as a listing does, reads every one of them each time).
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	ended, err := watchEnds(wctx, srv.url, "drain")
	if err != nil {
		return nil, err
	}
	pid := srv.cmd.Process.Pid
	cpu0, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	t0, m0 := time.Now(), machineCPU()
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		return nil, err
	}
	if profile != "" {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			profileUntil(srv.url, filepath.Join(profile, fmt.Sprintf("atlas-%d", n)), stop)
		}()
		defer func() { close(stop); <-done }()
	}
	done := map[string]bool{}
	for len(done) < n+workers {
		select {
		case id, ok := <-ended:
			if !ok {
				return nil, fmt.Errorf("the server's event stream ended")
			}
			done[id] = true
			continue
		case <-time.After(2 * time.Second):
		}
		// Quiet for a while: the stream may have dropped changes (it does for slow readers).
		left, err := c.Jobs(ctx, sdk.ListOptions{Project: "drain", States: []string{sdk.StateQueued, sdk.StateStarting, sdk.StateRunning, sdk.StateStopping}, Limit: 1})
		if err != nil {
			return nil, err
		}
		if left.Total == 0 {
			break
		}
	}
	r := &drainRun{wall: time.Since(t0), machineCPU: machineCPU() - m0}
	cpu1, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	r.cpu = cpu1 - cpu0
	list, err := c.Jobs(ctx, sdk.ListOptions{Project: "drain", States: []string{sdk.StateCompleted}, Limit: 1})
	if err != nil {
		return nil, err
	}
	if list.Total != n+workers {
		return nil, fmt.Errorf("%d of %d jobs completed", list.Total, n+workers)
	}
	return r, nil
}

// watchEnds follows the server's event stream (GET /api/v1/events) and sends the id of every
// job of project that ends, from the moment it returns.
func watchEnds(ctx context.Context, url, project string) (<-chan string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET /api/v1/events: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() { // ": connected": subscribed
		resp.Body.Close()
		return nil, fmt.Errorf("GET /api/v1/events: no answer: %v", sc.Err())
	}
	out := make(chan string, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var c struct{ ID, Project, State string }
			if json.Unmarshal([]byte(data), &c) == nil && c.Project == project && sdk.Finished(c.State) {
				select {
				case out <- c.ID:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// fillQueue submits to project "drain" one blocker per worker, which holds it until the file
// goFile exists, then n trivial jobs, 8 at a time. It returns goFile and the trivial jobs' ids
// in the order their submissions returned.
func fillQueue(ctx context.Context, c *sdk.Client, home string, n, workers int) (string, []string, error) {
	block, bpath, err := trivialFolder(filepath.Join(home, "block"), "import os, time\nwhile not os.path.exists(os.environ['GO_FILE']): time.sleep(0.01)\n")
	if err != nil {
		return "", nil, err
	}
	digest, path, err := trivialFolder(filepath.Join(home, "job"), "pass\n")
	if err != nil {
		return "", nil, err
	}
	for _, u := range [][2]string{{block, bpath}, {digest, path}} {
		if _, err := c.UploadFile(ctx, u[0], u[1]); err != nil {
			return "", nil, err
		}
	}
	goFile := filepath.Join(home, "go")
	for i := 0; i < workers; i++ {
		if _, err := c.Submit(ctx, &sdk.JobSpec{Project: "drain", Command: []string{"main.py"}, BundleDigest: block,
			Worker: &sdk.Worker{Environment: map[string]string{"GO_FILE": goFile}}}); err != nil {
			return "", nil, err
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	var submitErr error
	sem := make(chan struct{}, 8)
	tFill := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := c.Submit(ctx, &sdk.JobSpec{Project: "drain", Command: []string{"main.py"}, BundleDigest: digest})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && submitErr == nil {
				submitErr = err
			} else if err == nil {
				ids = append(ids, res.ID)
			}
		}()
	}
	wg.Wait()
	if submitErr != nil {
		return "", nil, submitErr
	}
	fmt.Fprintf(os.Stderr, "atlasbench: %d jobs queued in %.1f s\n", n, time.Since(tFill).Seconds())
	return goFile, ids, nil
}

// queueBench times what people read of a long queue while every worker is busy: the queue's
// page (GET /api/v1/queue, its first 500 jobs), a job at the back of the queue
// (GET /api/v1/jobs/{id}: its place and why it waits) and /metrics, with the server's CPU per
// request.
func queueBench(args []string) error {
	fs := flag.NewFlagSet("queue", flag.ExitOnError)
	n := fs.Int("n", 10000, "queued jobs")
	rounds := fs.Int("rounds", 20, "requests of each")
	fs.Parse(args)
	home, _ := os.MkdirTemp("", "atlasbench-")
	defer os.RemoveAll(home)
	srv, err := startServer(home, "--workers", "1", "--executor", "process")
	if err != nil {
		return err
	}
	defer srv.stop()
	ctx := context.Background()
	c := sdk.New(srv.url, "")
	goFile, ids, err := fillQueue(ctx, c, home, *n, 1)
	if err != nil {
		return err
	}
	defer os.WriteFile(goFile, nil, 0o644) // the blocker ends, so that the server stops at once
	last, err := c.Job(ctx, ids[len(ids)-1])
	if err != nil {
		return err
	}
	fmt.Printf("%d queued, 1 worker busy; the last job submitted is at place %d: %q\n", *n, last.QueuePosition, last.WaitingReason)
	for _, path := range []string{"/api/v1/queue", "/api/v1/jobs/" + last.ID, "/metrics"} {
		var ds []time.Duration
		cpu0, err := procCPU(srv.cmd.Process.Pid)
		if err != nil {
			return err
		}
		for i := 0; i < *rounds; i++ {
			t := time.Now()
			resp, err := http.Get(srv.url + path)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
			}
			ds = append(ds, time.Since(t))
		}
		cpu1, err := procCPU(srv.cmd.Process.Pid)
		if err != nil {
			return err
		}
		fmt.Printf("GET %s: median %.1f ms, p99 %.1f ms; server CPU %.1f ms per request\n", path,
			ms(percentile(ds, 0.5)), ms(percentile(ds, 0.99)), ms(cpu1-cpu0)/float64(*rounds))
	}
	return nil
}

// profileUntil records the server's CPU profile, 10 s at a time, into prefix-<k>.pprof until
// stop is closed (the last one ends up to 10 s later).
func profileUntil(url, prefix string, stop <-chan struct{}) {
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "atlasbench: profile:", err)
		return
	}
	for k := 0; ; k++ {
		select {
		case <-stop:
			return
		default:
		}
		resp, err := http.Get(url + "/api/v1/debug/pprof/profile?seconds=10")
		if err != nil {
			fmt.Fprintln(os.Stderr, "atlasbench: profile:", err)
			return
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintf(os.Stderr, "atlasbench: profile: %v %s\n", err, resp.Status)
			return
		}
		if err := os.WriteFile(fmt.Sprintf("%s-%d.pprof", prefix, k), data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "atlasbench: profile:", err)
			return
		}
	}
}

// procCPU returns a process's own CPU time, from /proc/<pid>/stat (utime and stime, clock
// ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	var t [2]int64
	for i := range t {
		if _, err := fmt.Sscan(f[11+i], &t[i]); err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return time.Duration(t[0]+t[1]) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}

// gen fills a FOUNDATIONS_HOME with a project of many finished jobs, each with params and
// metric series, through the store (as the server would store them).
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	home := fs.String("home", "", "FOUNDATIONS_HOME to fill")
	jobs := fs.Int("jobs", 10000, "jobs")
	params := fs.Int("params", 20, "params per job")
	metrics := fs.Int("metrics", 20, "metrics per job")
	points := fs.Int("points", 10, "points per metric")
	project := fs.String("project", "big", "project name")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the generation to this file")
	fs.Parse(args)
	if *home == "" {
		return fmt.Errorf("-home is required")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	if err := generate(*home, *project, *jobs, *params, *metrics, *points); err != nil {
		return err
	}
	fmt.Printf("generated %d jobs × %d params × %d metrics × %d points in %.1f s\n", *jobs, *params, *metrics, *points, time.Since(t0).Seconds())
	return nil
}

func generate(home, project string, jobs, params, metrics, points int) error {
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(home, "atlas.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	const chunk = 25000 // jobs per transaction
	r := rand.New(rand.NewPCG(1, 2))
	start := time.Now().Add(-time.Duration(jobs) * time.Minute)
	batch := make([]store.ImportedJob, 0, chunk)
	for i := 0; i < jobs; i++ {
		created := start.Add(time.Duration(i) * time.Minute)
		started, finished := created.Add(20*time.Second), created.Add(40*time.Second)
		state, code := atlas.StateCompleted, 0
		if i%10 == 0 {
			state, code = atlas.StateFailed, 1
		}
		j := &atlas.Job{ID: uuid.NewString(), Project: project, User: []string{"alice", "bob", "carol"}[i%3],
			State: state, Mode: atlas.ModeScheduled, Command: []string{"main.py"}, CreatedAt: created,
			StartedAt: &started, FinishedAt: &finished, ExitCode: &code}
		b := &store.TrackBatch{Params: map[string]any{}, Metrics: map[string][]atlas.MetricPoint{}, Tags: map[string]string{}}
		for p := 0; p < params; p++ {
			if p%4 == 3 {
				b.Params[fmt.Sprintf("p%02d", p)] = []string{"adam", "sgd", "rmsprop"}[r.IntN(3)]
			} else {
				b.Params[fmt.Sprintf("p%02d", p)] = r.Float64()
			}
		}
		for m := 0; m < metrics; m++ {
			pts := make([]atlas.MetricPoint, points)
			for s := range pts {
				pts[s] = atlas.MetricPoint{Step: int64(s), Value: r.Float64(), Time: float64(created.Unix() + int64(s))}
			}
			b.Metrics[fmt.Sprintf("m%02d", m)] = pts
		}
		if i%50 == 0 {
			b.Tags["best"] = ""
		}
		batch = append(batch, store.ImportedJob{Job: j, Track: b})
		if len(batch) == chunk || i == jobs-1 {
			if err := st.JobsImport(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

func listing(args []string) error {
	fs := flag.NewFlagSet("listing", flag.ExitOnError)
	jobs := fs.Int("jobs", 10000, "jobs")
	rounds := fs.Int("n", 50, "requests")
	home := fs.String("home", "", "serve this FOUNDATIONS_HOME, filled by atlasbench gen, instead of generating one")
	fs.Parse(args)
	if *home == "" {
		dir, err := os.MkdirTemp("", "atlasbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		t0 := time.Now()
		if err := generate(dir, "big", *jobs, 20, 20, 10); err != nil {
			return err
		}
		fmt.Printf("generated %d jobs × 20 params × 20 metrics × 10 points in %.1f s\n", *jobs, time.Since(t0).Seconds())
		*home = dir
	}
	srv, err := startServer(*home, "--executor", "process")
	if err != nil {
		return err
	}
	defer func() {
		fmt.Printf("server memory: %s resident, %s at its peak\n", procStatus(srv.cmd.Process.Pid, "VmRSS"),
			procStatus(srv.cmd.Process.Pid, "VmHWM"))
		srv.stop()
	}()
	for _, q := range []string{
		"project=big&sort=metric:m07&desc=true&limit=100",
		"project=big&sort=metric:m07&desc=true&limit=50",
		"project=big&sort=param:p05&limit=50",
		"project=big&limit=50",
		`project=big&sort=metric:m03&limit=50&filters=[{"field":"param:p01","op":"range","min":0.2,"max":0.6}]`,
	} {
		var ds []time.Duration
		for i := 0; i < *rounds; i++ {
			t := time.Now()
			resp, err := http.Get(srv.url + "/api/v1/jobs?" + strings.ReplaceAll(q, `"`, "%22"))
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s: %s", q, body)
			}
			ds = append(ds, time.Since(t))
		}
		fmt.Printf("GET /api/v1/jobs?%s: median %.1f ms, p99 %.1f ms\n", q, ms(percentile(ds, 0.5)), ms(percentile(ds, 0.99)))
	}
	return nil
}
