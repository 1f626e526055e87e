// Package docker runs jobs in Docker containers, through the Docker Engine API
// (github.com/moby/moby/client). It is the only package that talks to Docker.
//
// A job's container mounts its working directory (/job/job_source), the Python SDK
// (read-only, /atlas/sdk), the job's log file (/atlas/job.log), the directory holding the
// server's unix socket (/atlas/run: jobs reach the API without the server listening on a
// network address) and, when the job has a requirements.txt, the environment cached for that
// (image, requirements) pair (/atlas/env), and the job's spool (/atlas/spool). The container's first process is the SDK's
// prelude: it appends all output to the log file, installs requirements once per cache, and
// runs the command. Like process jobs, containers keep running and logging while the server
// restarts; the server finds them again by label and reads their exit status from Docker.
package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// DefaultImage is the worker image jobs run in unless job.config.yaml names another.
const DefaultImage = "atlas-ce/worker:latest"

// Labels on every container this executor creates.
const (
	LabelJob  = "atlas.job"
	LabelHome = "atlas.home"
)

// Paths inside the container.
const (
	workPath   = "/job/job_source"
	sdkPath    = "/atlas/sdk"
	logPath    = "/atlas/job.log"
	runPath    = "/atlas/run"
	envPath    = "/atlas/env"
	spoolPath  = "/atlas/spool"
	socketName = "api.sock"
)

// Config configures the executor.
type Config struct {
	// Image is the default worker image.
	Image string
	// SocketDir is the host directory holding the server's unix socket (SocketName in it).
	SocketDir string
	// EnvsDir holds the cached requirements environments.
	EnvsDir string
	// Home identifies this server's containers (several servers may share one Docker engine).
	Home string
	// GPUDevices asks Docker for the job's GPUs (needs the NVIDIA container runtime); without
	// it jobs only get NVIDIA_VISIBLE_DEVICES.
	GPUDevices bool
}

// Executor is the Docker executor.
type Executor struct {
	cfg     Config
	cli     *client.Client
	label   string
	version string
}

var (
	_ executor.Executor = (*Executor)(nil)
	_ executor.Cleaner  = (*Executor)(nil)
)

// New connects to the Docker engine named by DOCKER_HOST (default: the local socket) and
// checks that it answers.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(pctx, client.ServerVersionOptions{})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker engine reachable at %s: %w", cli.DaemonHost(), err)
	}
	for _, d := range []string{cfg.SocketDir, cfg.EnvsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256([]byte(cfg.Home))
	return &Executor{cfg: cfg, cli: cli, label: hex.EncodeToString(sum[:8]), version: v.Version}, nil
}

// Name implements executor.Executor.
func (e *Executor) Name() string { return "docker" }

// Describe says which engine and default image the executor uses, and whether the image is there.
func (e *Executor) Describe(ctx context.Context) string {
	desc := fmt.Sprintf("Docker %s at %s, worker image %s", e.version, e.cli.DaemonHost(), e.cfg.Image)
	if _, err := e.cli.ImageInspect(ctx, e.cfg.Image); err != nil {
		desc += " (not found: build it with `make worker-image`)"
	}
	return desc
}

// Close releases the client.
func (e *Executor) Close() error { return e.cli.Close() }

type runInfo struct {
	executor.Worker
	ContainerID string `json:"container_id"`
}

// ensureImage returns the image's config, pulling the image if it is not there.
func (e *Executor) ensureImage(ctx context.Context, ref string) (*client.ImageInspectResult, error) {
	img, err := e.cli.ImageInspect(ctx, ref)
	if err == nil {
		return &img, nil
	}
	if !cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	resp, err := e.cli.ImagePull(pctx, ref, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(pctx)
		resp.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("image %s is not on this machine and could not be pulled: %s", ref, firstLine(err.Error()))
	}
	img, err = e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return &img, nil
}

// Start implements executor.Executor.
func (e *Executor) Start(ctx context.Context, spec *executor.Spec) (executor.Handle, error) {
	j := spec.Job
	ref := j.Worker.Image
	if ref == "" {
		ref = e.cfg.Image
	}
	img, err := e.ensureImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	var imgEntrypoint, imgCmd []string
	if img.Config != nil {
		imgEntrypoint, imgCmd = img.Config.Entrypoint, img.Config.Cmd
	}
	argv := commandLine(j, imgEntrypoint, imgCmd)

	acct := executor.Self()
	if j.RunAs != "" && os.Getuid() == 0 { // only a root server can hand files to another user
		if acct, err = executor.ParseAccount(j.RunAs); err != nil {
			return nil, err
		}
	}
	// The job writes its working directory and log as its user.
	if err := acct.Give(spec.WorkDir); err != nil {
		return nil, err
	}
	if f, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		f.Close()
	}
	if err := acct.Give(spec.LogPath); err != nil {
		return nil, err
	}
	binds := []string{
		spec.WorkDir + ":" + workPath + ":rw",
		spec.SDKDir + ":" + sdkPath + ":ro",
		spec.LogPath + ":" + logPath + ":rw",
		e.cfg.SocketDir + ":" + runPath + ":rw",
	}
	env := append([]string{}, spec.Env...)
	if spec.SpoolDir != "" {
		if err := acct.Give(spec.SpoolDir); err != nil {
			return nil, err
		}
		binds = append(binds, spec.SpoolDir+":"+spoolPath+":rw")
		env = append(env, "FOUNDATIONS_SPOOL_DIR="+spoolPath)
	}
	if data, err := os.ReadFile(filepath.Join(spec.WorkDir, "requirements.txt")); err == nil {
		sum := sha256.New()
		sum.Write([]byte(img.ID))
		sum.Write([]byte{0})
		sum.Write(data)
		key := hex.EncodeToString(sum.Sum(nil))[:32]
		// One cache per user: an environment another user's job could write to is not one to
		// run code from.
		dir, err := executor.EnvDir(e.cfg.EnvsDir, acct, key)
		if err != nil {
			return nil, err
		}
		binds = append(binds, dir+":"+envPath+":rw")
		env = append(env, "ATLAS_ENV_KEY="+key)
	}
	for host, v := range j.Worker.Volumes {
		mode := v.Mode
		if mode == "" {
			mode = "rw"
		}
		// Docker would create a missing host path as root; create it as the job's user.
		if _, err := os.Stat(host); os.IsNotExist(err) {
			if err := mkdirAllAs(host, acct.UID, acct.GID); err != nil {
				return nil, fmt.Errorf("worker.volumes: create %s: %w", host, err)
			}
		}
		binds = append(binds, host+":"+v.Bind+":"+mode)
	}
	// The SDK joins PYTHONPATH; it does not replace the image's or the user's.
	pythonPath := []string{sdkPath}
	if v, ok := j.Worker.Environment["PYTHONPATH"]; ok && v != "" {
		pythonPath = append([]string{v}, pythonPath...)
	}
	if img.Config != nil {
		for _, kv := range img.Config.Env {
			if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok && v != "" {
				pythonPath = append(pythonPath, v)
			}
		}
	}
	env = append(env,
		"FOUNDATIONS_SCHEDULER_URL=http+unix://"+url.PathEscape(runPath+"/"+socketName),
		"FOUNDATIONS_HOME=/tmp/foundations",
		"PYTHONUNBUFFERED=1",
		"ATLAS_LOG_FILE="+logPath,
	)
	if acct.UID != 0 {
		env = append(env, "HOME=/tmp")
	}
	for k, v := range j.Worker.Environment { // the user's settings win
		if k != "PYTHONPATH" {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "PYTHONPATH="+strings.Join(pythonPath, ":"))
	workDir := workPath
	if j.Worker.WorkingDir != "" {
		workDir = j.Worker.WorkingDir
	}
	init := true
	hc := &container.HostConfig{
		Binds:     binds,
		Init:      &init,
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m"}},
	}
	if j.RAMGB > 0 {
		hc.Resources.Memory = int64(j.RAMGB * (1 << 30))
		hc.Resources.MemorySwap = hc.Resources.Memory
	}
	if e.cfg.GPUDevices && len(j.GPUIDs) > 0 {
		hc.Resources.DeviceRequests = []container.DeviceRequest{{Driver: "nvidia", DeviceIDs: j.GPUIDs, Capabilities: [][]string{{"gpu"}}}}
	}
	name := "atlas-" + j.ID
	_, _ = e.cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true}) // a failed earlier attempt
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:      ref,
			Entrypoint: []string{"python3", sdkPath + "/foundations/_prelude.py", "--"},
			Cmd:        argv,
			Env:        env,
			WorkingDir: workDir,
			User:       acct.String(),
			Labels:     map[string]string{LabelJob: j.ID, LabelHome: e.label},
		},
		HostConfig: hc,
	})
	if err != nil {
		return nil, fmt.Errorf("create container: %s", firstLine(err.Error()))
	}
	h := &handle{e: e, id: created.ID, ramGB: j.RAMGB, logPath: spec.LogPath}
	if _, err := e.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		_, _ = e.cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true})
		msg := firstLine(err.Error())
		if strings.Contains(msg, "python3") && strings.Contains(msg, "not found") {
			msg = "image " + ref + " has no python3: Atlas workers need an image with Python 3 (" + msg + ")"
		}
		return nil, fmt.Errorf("start container: %s", msg)
	}
	return h, nil
}

// commandLine is the command the prelude runs: the entrypoint (the job's, else the
// image's, else python) followed by the job's command (else the image's CMD).
func commandLine(j *atlas.Job, imgEntrypoint, imgCmd []string) []string {
	entry := j.Entrypoint
	if len(entry) == 0 {
		entry = j.Worker.Entrypoint
	}
	if len(entry) == 0 {
		entry = imgEntrypoint
	}
	cmd := j.Command
	if len(cmd) == 0 {
		cmd = j.Worker.Command
	}
	if len(cmd) == 0 && len(entry) > 0 && len(j.Entrypoint) == 0 && len(j.Worker.Entrypoint) == 0 {
		cmd = imgCmd
	}
	if len(entry) == 0 {
		entry = []string{"python"}
	}
	return append(append([]string{}, entry...), cmd...)
}

// mkdirAllAs creates dir and its missing parents, owned by uid:gid.
func mkdirAllAs(dir string, uid, gid int) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAllAs(parent, uid, gid); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	if os.Getuid() == 0 {
		return os.Lchown(dir, uid, gid)
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// Recover implements executor.Executor.
func (e *Executor) Recover(ctx context.Context, job *atlas.Job, logPath string) (executor.Handle, error) {
	var ri runInfo
	if err := json.Unmarshal([]byte(job.RunInfo), &ri); err != nil || ri.ContainerID == "" {
		return nil, fmt.Errorf("%w: no container recorded for job %s", executor.ErrGone, job.ID)
	}
	if _, err := e.cli.ContainerInspect(ctx, ri.ContainerID, client.ContainerInspectOptions{}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: container %.12s of job %s no longer exists", executor.ErrGone, ri.ContainerID, job.ID)
		}
		return nil, err
	}
	return &handle{e: e, id: ri.ContainerID, ramGB: job.RAMGB, logPath: logPath}, nil
}

// RemoveOrphans implements executor.Cleaner: it removes this server's containers whose job
// it does not know as running.
func (e *Executor) RemoveOrphans(ctx context.Context, known func(jobID string) bool) ([]string, error) {
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", LabelHome+"="+e.label)})
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, c := range list.Items {
		id := c.Labels[LabelJob]
		if known(id) {
			continue
		}
		if _, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return removed, err
		}
		removed = append(removed, fmt.Sprintf("Docker container %.12s (job %s)", c.ID, id))
	}
	return removed, nil
}

type handle struct {
	e       *Executor
	id      string
	ramGB   float64
	logPath string

	once sync.Once
	res  executor.Result
	err  error
	// stopped is set once Stop asked the engine to stop the container.
	stopped atomic.Bool
}

// RunInfo implements executor.Handle.
func (h *handle) RunInfo() string {
	b, _ := json.Marshal(runInfo{Worker: executor.Worker{Worker: "container " + h.id[:min(12, len(h.id))]}, ContainerID: h.id})
	return string(b)
}

// Wait implements executor.Handle.
func (h *handle) Wait(ctx context.Context) (executor.Result, error) {
	for {
		wr := h.e.cli.ContainerWait(ctx, h.id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case <-ctx.Done():
			return executor.Result{}, ctx.Err()
		case err := <-wr.Error:
			if ctx.Err() != nil {
				return executor.Result{}, ctx.Err()
			}
			if cerrdefs.IsNotFound(err) {
				return executor.Result{ExitCode: -1, Lost: true, Reason: "the job's container was removed while it ran"}, nil
			}
			// The engine may have restarted: wait again.
			select {
			case <-ctx.Done():
				return executor.Result{}, ctx.Err()
			case <-time.After(time.Second):
			}
		case <-wr.Result:
			return h.result(ctx)
		}
	}
}

// result reads how the container ended, and copies anything it printed before the prelude
// took over its output (an image without Python, say) into the job's log.
func (h *handle) result(ctx context.Context) (executor.Result, error) {
	ins, err := h.e.cli.ContainerInspect(ctx, h.id, client.ContainerInspectOptions{})
	if err != nil {
		return executor.Result{}, err
	}
	st := ins.Container.State
	// The engine stops a container with SIGTERM, then SIGKILL (137) when the grace is over.
	res := executor.Result{ExitCode: st.ExitCode, Killed: h.stopped.Load() && st.ExitCode == 137 && !st.OOMKilled}
	if st.OOMKilled {
		res.Reason = fmt.Sprintf("killed: out of memory (the job's limit is ram: %g GB)", h.ramGB)
	} else if st.Error != "" {
		res.Reason = firstLine(st.Error)
	}
	var early bytes.Buffer // what the container printed before the prelude took over its output
	if logs, err := h.e.cli.ContainerLogs(ctx, h.id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
		_, _ = stdcopy.StdCopy(&early, &early, io.LimitReader(logs, 1<<20))
		logs.Close()
	}
	if early.Len() > 0 {
		if f, err := os.OpenFile(h.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			_, _ = f.Write(early.Bytes())
			f.Close()
		}
	}
	if st.ExitCode == 127 && res.Reason == "" && strings.Contains(early.String(), "python3") {
		image := ""
		if ins.Container.Config != nil {
			image = ins.Container.Config.Image
		}
		res.Reason = "image " + image + " has no python3: Atlas workers need an image with Python 3"
	}
	return res, nil
}

// Stop implements executor.Handle.
func (h *handle) Stop(grace time.Duration) error {
	secs := int((grace + time.Second - 1) / time.Second)
	h.stopped.Store(true)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace+time.Minute)
		defer cancel()
		_, _ = h.e.cli.ContainerStop(ctx, h.id, client.ContainerStopOptions{Timeout: &secs})
	}()
	return nil
}

// Release implements executor.Handle.
func (h *handle) Release() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := h.e.cli.ContainerRemove(ctx, h.id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}
