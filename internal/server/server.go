// Package server is atlas-server: it parses the command line, then starts the store, blob store,
// executor, job service, scheduler, searcher and HTTP API in dependency order, and stops them in
// reverse.
//
// It is the only package that knows every other one; it holds no logic of its own beyond wiring
// and lifecycle.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/atlasgo/atlas/internal/api"
	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/atomicfile"
	"github.com/atlasgo/atlas/internal/blob"
	"github.com/atlasgo/atlas/internal/blob/local"
	"github.com/atlasgo/atlas/internal/blob/s3"
	"github.com/atlasgo/atlas/internal/bundle"
	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/executor/docker"
	"github.com/atlasgo/atlas/internal/executor/process"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/internal/logs"
	"github.com/atlasgo/atlas/internal/scheduler"
	"github.com/atlasgo/atlas/internal/search"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/internal/store/postgres"
	"github.com/atlasgo/atlas/internal/store/sqlite"
	"github.com/atlasgo/atlas/internal/telemetry"
	"github.com/atlasgo/atlas/internal/unixsock"
	"github.com/atlasgo/atlas/internal/version"
	"github.com/atlasgo/atlas/python"
	"github.com/atlasgo/atlas/web"
)

// Main runs atlas-server with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == process.ShimArg {
		return process.Shim(args[1:])
	}
	root := &cobra.Command{
		Use:           "atlas-server",
		Short:         "Atlas server: job scheduler, experiment tracker and GUI",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(startCommand(stdout, stderr), stopCommand(stdout), userCommand(stdout), tokenCommand(stdout), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(stdout, "atlas-server %s\n", version.Get())
		},
	})
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "Error: %s\n", strings.Join(strings.Fields(err.Error()), " "))
		return 1
	}
	return 0
}

func startCommand(stdout, stderr io.Writer) *cobra.Command {
	fl := config.DefaultServer() // what the flags say; only the flags given override the file
	var gpuFlag, insecure bool
	var gpus string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the server in the foreground (Ctrl-C stops it; running jobs keep running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Default → the file → the environment → the flags given, then one Validate.
			cfg := config.DefaultServer()
			warnings, err := config.ParseServer(&cfg)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(stderr, "Warning:", w)
			}
			if err := config.MergeServerEnv(&cfg, os.Getenv); err != nil {
				return err
			}
			flags := cmd.Flags()
			for _, f := range []struct {
				flag, key string
				apply     func()
			}{
				{"host", "host", func() { cfg.Host = fl.Host }}, {"port", "port", func() { cfg.Port = fl.Port }},
				{"workers", "workers", func() { cfg.Workers = fl.Workers }},
				{"executor", "executor", func() { cfg.Executor = fl.Executor }},
				{"python", "python", func() { cfg.Python = fl.Python }},
				{"worker-image", "worker_image", func() { cfg.WorkerImage = fl.WorkerImage }},
				{"auth", "auth", func() { cfg.Auth = fl.Auth }},
				{"tls-cert", "tls_cert", func() { cfg.TLSCert = fl.TLSCert }},
				{"tls-key", "tls_key", func() { cfg.TLSKey = fl.TLSKey }},
				{"allowed-hosts", "allowed_hosts", func() { cfg.AllowedHosts = fl.AllowedHosts }},
				{"pprof", "pprof", func() { cfg.Pprof = fl.Pprof }},
			} {
				if flags.Changed(f.flag) {
					f.apply()
					cfg.Set(f.key, f.flag)
				}
			}
			if gpus != "" {
				cfg.GPUs = strings.Split(gpus, ",")
			}
			if gpuFlag {
				ids, err := discoverGPUs()
				if err != nil {
					return err
				}
				cfg.GPUs, cfg.GPUDevices = ids, true
				if !flags.Changed("workers") && len(ids) > cfg.Workers {
					cfg.Workers = len(ids)
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if !isLoopback(cfg.Host) && !cfg.Auth {
				if !insecure {
					return fmt.Errorf("refusing to listen on %s without authentication: anyone who can reach it could run code here. "+
						"Create a user and a token (atlas-server user add NAME; atlas-server token create NAME) and start with --auth, "+
						"or pass --insecure if this network is trusted", cfg.Host)
				}
				fmt.Fprintf(stderr, "WARNING: listening on %s without authentication (--insecure): anyone who can reach this address can run jobs as %s.\n",
					cfg.Host, currentUserName())
			}
			return serve(cmd.Context(), cfg, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.Host, "host", fl.Host, "address to listen on (not loopback: needs --auth or --insecure)")
	f.IntVarP(&fl.Port, "port", "p", fl.Port, "port of the API and GUI (0 picks a free one)")
	f.IntVarP(&fl.Workers, "workers", "w", fl.Workers, "jobs that run at the same time (default: $NUM_WORKERS, or 1)")
	f.StringVar(&fl.Executor, "executor", fl.Executor, "where jobs run: auto, docker, process, kubernetes or slurm (default: $ATLAS_EXECUTOR, or auto)")
	f.BoolVarP(&gpuFlag, "enable-gpu", "g", false, "find GPUs with nvidia-smi and give them to jobs that ask for num_gpus")
	f.StringVar(&gpus, "gpus", "", "comma-separated GPU ids jobs may use (instead of -g)")
	f.StringVar(&fl.Python, "python", fl.Python, "Python interpreter for the process executor")
	f.StringVar(&fl.WorkerImage, "worker-image", fl.WorkerImage, "default Docker image of jobs")
	f.BoolVar(&fl.Auth, "auth", false, "require an API token on every request (see `atlas-server user` and `token`)")
	f.BoolVar(&insecure, "insecure", false, "allow listening on a non-loopback address without --auth")
	f.StringVar(&fl.TLSCert, "tls-cert", "", "serve HTTPS with this certificate file (PEM)")
	f.StringVar(&fl.TLSKey, "tls-key", "", "the certificate's private key file (PEM)")
	f.BoolVar(&fl.Pprof, "pprof", false, "serve the server's own Go profiles at /api/v1/debug/pprof/ (to admins; without --auth, to this machine only)")
	f.StringSliceVar(&fl.AllowedHosts, "allowed-hosts", nil,
		"names browsers may reach the server by, besides localhost, IP addresses and --host (comma-separated; *.example.org for subdomains)")
	return cmd
}

// isLoopback reports whether host only accepts connections from this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func currentUserName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}

// paths is the layout of $FOUNDATIONS_HOME.
type paths struct{ home string }

func (p paths) db() string           { return filepath.Join(p.home, "atlas.db") }
func (p paths) blobs() string        { return filepath.Join(p.home, "blobs") }
func (p paths) scratch() string      { return filepath.Join(p.home, "scratch") }
func (p paths) logs() string         { return filepath.Join(p.home, "logs", "jobs") }
func (p paths) work() string         { return filepath.Join(p.home, "work") }
func (p paths) run() string          { return filepath.Join(p.home, "run") }
func (p paths) envs() string         { return filepath.Join(p.home, "envs") }
func (p paths) sdk() string          { return filepath.Join(p.home, "sdk") }
func (p paths) secret() string       { return filepath.Join(p.home, "secret") }
func (p paths) installation() string { return filepath.Join(p.home, "installation") }
func (p paths) pid() string          { return filepath.Join(p.home, "run", "atlas-server.pid") }
func (p paths) lock() string         { return filepath.Join(p.home, "run", "atlas-server.lock") }
func (p paths) sock() string         { return filepath.Join(p.home, "run", "sock") }

// openDatabase opens the store that server.config.yaml's database: names: a postgres:// or
// postgresql:// URL is a PostgreSQL database; anything else is a SQLite file, by default
// <home>/atlas.db.
func openDatabase(ctx context.Context, database string, p paths) (store.Store, error) {
	if strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://") {
		return postgres.Open(ctx, database)
	}
	path := database
	if path == "" {
		path = p.db()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, path)
}

// openBlobs opens the blob store server.config.yaml's blobs: names: an s3:// URL is a bucket
// of an S3-compatible server; anything else a directory, by default <home>/blobs.
func openBlobs(ctx context.Context, cfg config.Server, p paths) (blob.Store, error) {
	if strings.HasPrefix(cfg.Blobs, "s3://") {
		c, err := s3.ParseURL(cfg.Blobs)
		if err != nil {
			return nil, err
		}
		c.AccessKeyID, c.SecretAccessKey = cfg.S3AccessKeyID, cfg.S3SecretAccessKey
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return s3.Open(ctx, c)
	}
	dir := cfg.Blobs
	if dir == "" {
		dir = p.blobs()
	}
	return local.New(dir)
}

// serve starts every component, serves until ctx ends, then stops them in reverse order.
func serve(ctx context.Context, cfg config.Server, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p := paths{home: cfg.Home}
	for _, d := range []string{p.home, p.run(), p.sdk()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	// Jobs that run as other accounts pass through the data folder to the SDK, the socket and
	// their own directories; they must not list it, nor read the database, secret, blobs and
	// logs, which are its owner's only.
	if err := os.Chmod(p.home, 0o711); err != nil {
		return err
	}
	lock, err := lockHome(p)
	if err != nil {
		return err
	}
	defer lock.Close()
	secret, err := loadSecret(p.secret())
	if err != nil {
		return err
	}
	st, err := openDatabase(ctx, cfg.Database, p)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Auth {
		users, err := st.UserList(ctx)
		if err != nil {
			return err
		}
		tokens := 0
		for _, u := range users {
			tokens += u.Tokens
		}
		if tokens == 0 {
			return errors.New("--auth: no user has a token yet, so nobody could log in: " +
				"atlas-server user add NAME --admin && atlas-server token create NAME")
		}
	}
	// Bundles are unpacked here to be checked: on the server's disk, wherever blobs are kept.
	// What a server cut short left is removed.
	if err := os.RemoveAll(p.scratch()); err != nil {
		return err
	}
	if err := os.MkdirAll(p.scratch(), 0o700); err != nil {
		return err
	}
	blobs, err := openBlobs(ctx, cfg, p)
	if err != nil {
		return err
	}
	// GET /metrics: every part below uses the store and the blobs through the telemetry.
	tel := telemetry.New(version.Get())
	st, blobs = tel.Store(st), tel.Blobs(blobs)
	logDir, err := logs.New(p.logs())
	if err != nil {
		return err
	}
	sdkDir, err := python.Extract(p.sdk())
	if err != nil {
		return fmt.Errorf("extract the Python SDK: %w", err)
	}
	exec, why, err := chooseExecutor(ctx, cfg, p)
	if err != nil {
		return err
	}
	if c, ok := exec.(io.Closer); ok {
		defer c.Close()
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	localURL := scheme + "://" + net.JoinHostPort(loopbackFor(cfg.Host), strconv.Itoa(port))

	// Jobs on this machine talk to the server over its unix socket: no TLS certificate or
	// network address to get right (Docker jobs see the socket's directory at /atlas/run).
	// Its path may be longer than a socket address holds; the SDK reaches it as unixsock does.
	sockPath := filepath.Join(p.sock(), "api.sock")
	socketURL := "http+unix://" + url.PathEscape(sockPath)
	svc := jobs.New(jobs.Config{Store: st, Blobs: blobs, Logs: logDir, Secret: secret, Auth: cfg.Auth,
		AllowedVolumeRoots: cfg.AllowedVolumeRoots, SpoolRoot: filepath.Join(p.home, "spool", "jobs"), ScratchDir: p.scratch(),
		BundleLimits: bundle.Limits{MaxBytes: cfg.MaxBundleBytes, MaxEntries: cfg.MaxBundleFiles},
		Capacity:     jobs.Capacity{GPUs: len(cfg.GPUs), MemoryGB: memoryGB()}, Admit: admission(exec),
		Limits:    jobs.Limits{KeysPerJob: cfg.MaxKeysPerJob, KeysPerBatch: cfg.MaxKeysPerBatch},
		StopGrace: cfg.StopGrace, HeartbeatTimeout: cfg.HeartbeatTimeout, Logger: logger})
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer svc.Stop()
	sched := scheduler.New(scheduler.Config{Jobs: svc, Store: st, Blobs: blobs, Logs: logDir, Executor: exec,
		Workers: cfg.Workers, GPUs: cfg.GPUs, WorkRoot: p.work(), SDKDir: sdkDir, SchedulerURL: socketURL, Home: p.home,
		Logger: logger})
	if err := sched.Start(ctx); err != nil {
		return err
	}
	defer sched.Stop()
	searches := search.New(search.Config{Jobs: svc, Store: st, Workers: cfg.Workers, Logger: logger})
	if err := searches.Start(ctx); err != nil {
		return err
	}
	defer searches.Stop()
	handler := api.New(api.Config{Jobs: svc, Searches: searches, Store: st, Blobs: blobs, Logs: logDir, Queue: sched, Version: version.Get(),
		MaxBundleBytes: cfg.MaxBundleBytes, Auth: cfg.Auth, Pprof: cfg.Pprof, AllowedHosts: serverNames(cfg), Web: web.FS(), Logger: logger,
		Telemetry: tel})
	baseCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return baseCtx }, ConnContext: api.ConnContext}
	// Jobs in containers reach the API through a unix socket in a directory mounted into them:
	// the server need not listen on an address containers can reach, and a restarted server's
	// new socket appears in running containers too.
	if err := os.MkdirAll(p.sock(), 0o755); err != nil {
		return err
	}
	os.Remove(sockPath)
	uln, err := unixsock.Listen(sockPath)
	if err != nil {
		return fmt.Errorf("the API's unix socket: %w", err)
	}
	defer uln.Close()
	if err := os.Chmod(sockPath, 0o666); err != nil {
		return err
	}
	serveErr := make(chan error, 2)
	ln = api.LimitPerAddress(ln, maxConnsPerAddress)
	if cfg.TLSCert != "" {
		go func() { serveErr <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey) }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	go func() { serveErr <- srv.Serve(uln) }() // jobs in containers: plain HTTP on a local socket

	if wrote, note, err := config.WriteDefaultSubmission(p.home, localURL); err != nil {
		logger.Warn("could not write the default submission config", "err", err)
	} else if wrote {
		logger.Info("wrote the default submission config", "path", filepath.Join(p.home, "config", "submission", "scheduler.config.yaml"))
	} else if note != "" {
		logger.Warn("the scheduler config does not point at this server", "note", note)
	}
	if err := os.WriteFile(p.pid(), []byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), localURL)), 0o644); err != nil {
		return err
	}
	defer os.Remove(p.pid())

	gpuInfo := "none"
	if len(cfg.GPUs) > 0 {
		gpuInfo = strings.Join(cfg.GPUs, ",")
	}
	fmt.Fprintf(stdout, "Atlas server %s\n", version.Get())
	fmt.Fprintf(stdout, "  data:     %s\n", p.home)
	fmt.Fprintf(stdout, "  executor: %s (%s)\n", exec.Name(), why)
	fmt.Fprintf(stdout, "  blobs:    %s\n", blobs)
	fmt.Fprintf(stdout, "  workers:  %d, GPUs: %s\n", cfg.Workers, gpuInfo)
	if cfg.Auth {
		fmt.Fprintf(stdout, "  auth:     on (API tokens; `foundations login %s`)\n", localURL)
	} else {
		fmt.Fprintf(stdout, "  auth:     off\n")
	}
	if !web.Built() {
		fmt.Fprintf(stdout, "  GUI:      not built (run `make build`); the API is available\n")
	}
	fmt.Fprintf(stdout, "Atlas server listening on %s (GUI and API). Ctrl-C to stop.\n", localURL)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(stdout, "Atlas server stopping; running jobs keep running and are picked up at the next start.")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cancelRequests() // ends log streams and long polls
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

// maxConnsPerAddress is how many connections one remote address may hold at a time: a
// browser or CLI uses a handful.
const maxConnsPerAddress = 64

// chooseExecutor picks the executor and says why.
func chooseExecutor(ctx context.Context, cfg config.Server, p paths) (executor.Executor, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	shimNote := "" // a shim beside the server that cannot be used
	newProcess := func() (*process.Executor, error) {
		shim, err := process.FindShim(self)
		if err != nil {
			shimNote = "; " + err.Error()
		}
		return process.New(process.Config{Self: self, Shim: shim, RunDir: p.run(), EnvsDir: filepath.Join(p.envs(), "process"), Python: cfg.Python,
			Slots: cfg.Workers})
	}
	newDocker := func() (*docker.Executor, error) {
		return docker.New(ctx, docker.Config{Image: cfg.WorkerImage, SocketDir: p.sock(), EnvsDir: filepath.Join(p.envs(), "docker"),
			Home: p.home, GPUDevices: cfg.GPUDevices})
	}
	// With authentication, users run code the server must not trust: their jobs run as their
	// own local accounts (or nobody), which only a root server can arrange for local
	// processes; run as the server's user, they could read its secret and database.
	processWithAuth := errors.New("--auth with the process executor needs atlas-server to run as root, so that " +
		"jobs run as their users' accounts (or nobody) and cannot read the server's secret and database; " +
		"run it as root or use the Docker executor (--executor docker)")
	switch cfg.Executor {
	case "process":
		if cfg.Auth && os.Getuid() != 0 {
			return nil, "", processWithAuth
		}
		e, err := newProcess()
		if err == nil && cfg.Auth {
			err = reachableByOthers(e.Python(), p.home)
		}
		return e, "chosen with --executor process; jobs run as local processes" + shimNote, err
	case "docker":
		e, err := newDocker()
		if err != nil {
			return nil, "", fmt.Errorf("--executor docker: %w", err)
		}
		return e, "chosen with --executor docker; " + e.Describe(ctx), nil
	case "kubernetes":
		e, err := newKubernetes(ctx, cfg, p)
		if err != nil {
			return nil, "", fmt.Errorf("--executor kubernetes: %w", err)
		}
		return e, "chosen with --executor kubernetes; " + e.Describe(), nil
	case "slurm":
		e, err := newSlurm(ctx, cfg, p)
		if err != nil {
			return nil, "", fmt.Errorf("--executor slurm: %w", err)
		}
		return e, "chosen with --executor slurm; " + e.Describe(), nil
	case "auto", "":
		if e, derr := newDocker(); derr == nil {
			return e, "a Docker engine is reachable; " + e.Describe(ctx), nil
		} else if cfg.Auth && os.Getuid() != 0 {
			return nil, "", fmt.Errorf("%w (no Docker engine is reachable: %s)", processWithAuth, atlas.OneLine(derr))
		} else {
			pe, err := newProcess()
			if err == nil && cfg.Auth {
				err = reachableByOthers(pe.Python(), p.home)
			}
			return pe, "jobs run as local processes: " + atlas.OneLine(derr) + shimNote, err
		}
	}
	return nil, "", fmt.Errorf("--executor %q: want auto, docker, process, kubernetes or slurm", cfg.Executor)
}

// reachableByOthers checks what process jobs that run as their users' accounts need: to run
// the interpreter, and to pass through every folder above the data folder to their working
// directories, the SDK and the server's socket in it.
func reachableByOthers(python, home string) error {
	for dir := filepath.Dir(python); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("--auth: jobs run as their users' accounts, which cannot reach the Python interpreter %s "+
				"(%s is not searchable by others); name one they can run with --python, e.g. /usr/bin/python3", python, dir)
		}
		if dir == "/" {
			break
		}
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("--auth: jobs run as their users' accounts, which cannot reach FOUNDATIONS_HOME %s "+
				"(%s is not searchable by others); keep the data in a folder they can pass through, e.g. /var/lib/atlas", abs, dir)
		}
		if dir == "/" {
			return nil
		}
	}
}

// serverNames are the host names browsers may address the server by, besides localhost and IP
// addresses: the one it listens on, the machine's name when it listens on every address, and
// allowed_hosts.
func serverNames(cfg config.Server) []string {
	names := append([]string{cfg.Host}, cfg.AllowedHosts...)
	if loopbackFor(cfg.Host) != cfg.Host { // 0.0.0.0, ::
		if h, err := os.Hostname(); err == nil {
			names = append(names, h)
		}
	}
	return names
}

// loopbackFor returns the address jobs on this machine use to reach a server bound to host.
func loopbackFor(host string) string {
	switch host {
	case "", "0.0.0.0":
		return "127.0.0.1"
	case "::", "[::]":
		return "::1"
	}
	return host
}

func loadSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil && len(data) >= 32 {
		// Anyone who reads the secret can forge any job's token.
		return data, os.Chmod(path, 0o600)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return secret, atomicfile.Write(path, secret, 0o600, true)
}

// lockHome takes the exclusive lock on FOUNDATIONS_HOME that a server holds for as long as it
// runs (the kernel drops it when the process ends, however it ends), so two servers never
// share one database, queue and GPU pool. The lock file holds the holder's pid.
func lockHome(p paths) (*os.File, error) {
	f, err := os.OpenFile(p.lock(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock FOUNDATIONS_HOME: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := lockHolder(f)
			if holder == "" { // the kernel did not say: the pid the holder wrote, if it has yet
				data, _ := os.ReadFile(p.lock())
				if holder = strings.TrimSpace(string(data)); holder == "" {
					holder = "unknown"
				}
			}
			return nil, fmt.Errorf("atlas-server is already running with this FOUNDATIONS_HOME (%s): pid %s holds it; stop it first with `atlas-server stop`",
				p.home, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", p.lock(), err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// lockHolder returns the pid of the process that holds the flock on f, from /proc/locks, or
// "" when it is not listed there. The kernel knows the holder from the moment it takes the
// lock, before it writes its pid into the file.
func lockHolder(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return ""
	}
	// Lines such as "1: FLOCK  ADVISORY  WRITE 7952 08:01:1234 0 EOF": the device's major and
	// minor numbers in hex, then the inode.
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == want {
			return f[4]
		}
	}
	return ""
}

// runningPID returns the pid in the pid file if that process is alive.
func runningPID(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)[0])
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, false
	}
	// A stale file may name a pid the system gave to another program since.
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	self, serr := os.Executable()
	if err == nil && serr == nil && filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != filepath.Base(self) {
		return 0, false
	}
	return pid, true
}

func stopCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the server started with this FOUNDATIONS_HOME (jobs keep running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := paths{home: config.Home()}
			pid, ok := runningPID(p.pid())
			if !ok {
				return fmt.Errorf("atlas-server is not running (no live pid in %s)", p.pid())
			}
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				return fmt.Errorf("stop pid %d: %w", pid, err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if _, alive := runningPID(p.pid()); !alive {
					fmt.Fprintln(stdout, "Atlas server stopped.")
					return nil
				}
				time.Sleep(100 * time.Millisecond)
			}
			return fmt.Errorf("atlas-server (pid %d) did not stop within 30s", pid)
		},
	}
}

func execOutput(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).Output()
	return string(out), err
}
