package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ServerConfigFile is the optional server config under $FOUNDATIONS_HOME/config.
const ServerConfigFile = "server.config.yaml"

// Server is the configuration of atlas-server. Command-line flags override the file.
type Server struct {
	Home     string // $FOUNDATIONS_HOME: database, blobs, logs, work dirs
	Host     string
	Port     int
	Workers  int
	Executor string // auto, process, docker, kubernetes or slurm
	// GPUs are the ids of the GPUs jobs may use; a job asking for N gets N of them.
	GPUs []string
	// GPUDevices says the GPUs are real (found by nvidia-smi): Docker is asked for them.
	GPUDevices bool `json:"-"`
	// Python is the interpreter the process executor runs jobs with.
	Python string
	// StopGrace is how long a stopped job has between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// MaxBundleBytes caps uploads and the unpacked size of a bundle.
	MaxBundleBytes int64
	// MaxBundleFiles caps the entries of a bundle.
	MaxBundleFiles int
	// Database is a SQLite file path (default <home>/atlas.db), or a PostgreSQL database URL
	// (postgres://user:pass@host:port/db?sslmode=disable).
	Database string
	// Blobs is where bundles, archives and artifacts are kept: a directory (default
	// <home>/blobs), or a bucket of an S3-compatible server,
	// s3://bucket/prefix?endpoint=http://host:port&region=....
	Blobs string
	// S3AccessKeyID and S3SecretAccessKey are the credentials for s3:// blobs; without them
	// they come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
	S3AccessKeyID     string `json:"-"`
	S3SecretAccessKey string `json:"-"`
	// HeartbeatTimeout: an execution-mode job whose script has not been heard from for this long
	// is marked failed.
	HeartbeatTimeout time.Duration
	// WorkerImage is the Docker image of jobs that name none.
	WorkerImage string
	// Auth requires an API token on every request (users are managed with `atlas-server user`).
	Auth bool
	// Pprof serves the server's own CPU and memory profiles at /api/v1/debug/pprof/ (to
	// admins; without Auth, to this machine only).
	Pprof bool
	// TLSCert and TLSKey, both set, make the server speak HTTPS.
	TLSCert, TLSKey string
	// AllowedVolumeRoots are the host paths under which jobs submitted from other machines (or
	// by non-admin users when Auth is on) may mount worker.volumes.
	AllowedVolumeRoots []string
	// AllowedHosts are names, besides localhost, IP addresses and the name the server listens
	// on, that browsers may address it by; "*.example.org" allows subdomains. Requests naming
	// any other host are refused, so that no web page can reach the server by re-pointing its
	// own name at it (DNS rebinding).
	AllowedHosts []string
	// MaxKeysPerJob caps the distinct params, metrics and tags of a job (each); MaxKeysPerBatch
	// the keys of one tracking request.
	MaxKeysPerJob, MaxKeysPerBatch int

	// Kubernetes says where and how jobs run with executor: kubernetes.
	Kubernetes Kubernetes
	// Slurm says where and how jobs run with executor: slurm.
	Slurm Slurm

	// sources says where each key's value came from, when not from DefaultServer.
	sources map[string]*Error
}

// executors are the accepted values of executor.
var executors = []string{"auto", "process", "docker", "kubernetes", "slurm"}

// DefaultServer returns the embedded defaults.
func DefaultServer() Server {
	return Server{
		Home:             Home(),
		Host:             "127.0.0.1",
		Port:             5555,
		Workers:          1,
		Executor:         "auto",
		Python:           "python3",
		StopGrace:        10 * time.Second,
		MaxBundleBytes:   2 << 30,
		MaxBundleFiles:   1_000_000,
		HeartbeatTimeout: 5 * time.Minute,
		WorkerImage:      "atlas-ce/worker:latest",
		MaxKeysPerJob:    10_000,
		MaxKeysPerBatch:  10_000,
		Kubernetes:       Kubernetes{Namespace: "default", JobTTL: 24 * time.Hour},
		Slurm:            DefaultSlurm(),
	}
}

// A server's configuration is made in four steps: DefaultServer, ParseServer (the file, if
// any), MergeServerEnv (NUM_WORKERS, ATLAS_EXECUTOR) and the command line's flags (Set), then
// one Validate. Parsing only checks types; Validate checks every value, whatever it came from,
// and names where the bad one came from: a file and line, a variable or a flag.

// LoadServer applies $home/config/server.config.yaml, if present, over s, and validates the
// result: ParseServer and Validate.
func LoadServer(s *Server) ([]string, error) {
	warnings, err := ParseServer(s)
	if err != nil {
		return nil, err
	}
	return warnings, s.Validate()
}

// ParseServer applies $home/config/server.config.yaml, if present, over s. It refuses what
// has the wrong type or shape; the values themselves are Validate's to check.
func ParseServer(s *Server) ([]string, error) {
	path := filepath.Join(s.Home, "config", ServerConfigFile)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p := &parser{file: path}
	root, err := p.document(data)
	if err != nil || root == nil {
		return nil, err
	}
	kvs, err := p.entries(root, "")
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		k, v := kv[0].Value, kv[1]
		switch k {
		case "host":
			s.Host, err = p.str(v, k)
		case "port":
			s.Port, err = p.integer(v, k)
		case "workers":
			s.Workers, err = p.integer(v, k)
		case "executor":
			s.Executor, err = p.str(v, k)
		case "gpus":
			s.GPUs, err = p.strList(v, k)
		case "python":
			s.Python, err = p.str(v, k)
		case "database":
			s.Database, err = p.str(v, k)
		case "blobs":
			s.Blobs, err = p.str(v, k)
		case "s3_access_key_id":
			s.S3AccessKeyID, err = p.str(v, k)
		case "s3_secret_access_key":
			s.S3SecretAccessKey, err = p.str(v, k)
		case "worker_image":
			s.WorkerImage, err = p.str(v, k)
		case "auth":
			s.Auth, err = p.boolean(v, k)
		case "pprof":
			s.Pprof, err = p.boolean(v, k)
		case "tls_cert":
			s.TLSCert, err = p.str(v, k)
		case "tls_key":
			s.TLSKey, err = p.str(v, k)
		case "allowed_volume_roots":
			s.AllowedVolumeRoots, err = p.strList(v, k)
		case "allowed_hosts":
			s.AllowedHosts, err = p.strList(v, k)
		case "kubernetes":
			s.Kubernetes, err = p.kubernetes(v, k)
		case "slurm":
			s.Slurm, err = p.slurm(v, k)
		case "max_keys_per_job":
			s.MaxKeysPerJob, err = p.integer(v, k)
		case "max_keys_per_batch":
			s.MaxKeysPerBatch, err = p.integer(v, k)
		case "max_bundle_files":
			s.MaxBundleFiles, err = p.integer(v, k)
		case "max_bundle_bytes":
			var n int
			n, err = p.integer(v, k)
			s.MaxBundleBytes = int64(n)
		case "stop_grace":
			s.StopGrace, err = p.duration(v, k, "10s")
		case "heartbeat_timeout":
			s.HeartbeatTimeout, err = p.duration(v, k, "10s")
		default:
			p.warnf(kv[0], k)
			continue
		}
		if err != nil {
			return nil, err
		}
		s.from(k, &Error{File: path, Line: v.Line, Key: k})
	}
	if fi, err := os.Stat(path); err == nil && s.S3SecretAccessKey != "" && fi.Mode().Perm()&0o077 != 0 {
		p.warnings = append(p.warnings, fmt.Sprintf("%s holds s3_secret_access_key and others may read it: chmod 600 %s", path, path))
	}
	return p.warnings, nil
}

// MergeServerEnv applies the environment variables atlas-server honours (NUM_WORKERS,
// ATLAS_EXECUTOR) over s.
func MergeServerEnv(s *Server, getenv func(string) string) error {
	if v := getenv("NUM_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return &Error{Key: "NUM_WORKERS", Msg: fmt.Sprintf("want a number of workers, got %q", v)}
		}
		s.Workers = n
		s.from("workers", &Error{Key: "NUM_WORKERS"})
	}
	if v := getenv("ATLAS_EXECUTOR"); v != "" {
		s.Executor = v
		s.from("executor", &Error{Key: "ATLAS_EXECUTOR"})
	}
	return nil
}

// Set records that a command-line flag set key's value (already in s), for Validate's messages.
func (s *Server) Set(key, flag string) {
	s.from(key, &Error{Key: "--" + flag})
}

// from records where key's value came from: an Error with no message yet.
func (s *Server) from(key string, where *Error) {
	if s.sources == nil {
		s.sources = map[string]*Error{}
	}
	s.sources[key] = where
}

// Validate checks every value of the configuration, and names where a bad one came from.
func (s *Server) Validate() error {
	at := func(key, msg string) error {
		e := Error{Key: key}
		if where := s.sources[key]; where != nil {
			e = *where
		}
		e.Msg = msg
		return &e
	}
	bad := func(key, want string, got any) error {
		if str, ok := got.(string); ok {
			got = strconv.Quote(str)
		}
		return at(key, fmt.Sprintf("%s, got %v", want, got))
	}
	switch {
	case s.Port < 0 || s.Port > 65535:
		return bad("port", "want a port from 1 to 65535 (0 picks a free one)", s.Port)
	case s.Workers < 1:
		return bad("workers", "want 1 or more", s.Workers)
	case !slices.Contains(executors, s.Executor):
		return bad("executor", "want one of "+strings.Join(executors, ", "), s.Executor)
	case s.Python == "":
		return bad("python", "want the Python interpreter to run jobs with, e.g. python3", s.Python)
	case s.WorkerImage == "":
		return bad("worker_image", "want a Docker image name", s.WorkerImage)
	case s.MaxKeysPerJob <= 0:
		return bad("max_keys_per_job", "want a number of keys greater than 0", s.MaxKeysPerJob)
	case s.MaxKeysPerBatch <= 0:
		return bad("max_keys_per_batch", "want a number of keys greater than 0", s.MaxKeysPerBatch)
	case s.MaxBundleFiles <= 0:
		return bad("max_bundle_files", "want a number of files greater than 0", s.MaxBundleFiles)
	case s.MaxBundleBytes <= 0:
		return bad("max_bundle_bytes", "want a number of bytes greater than 0", s.MaxBundleBytes)
	case s.StopGrace < 0:
		return bad("stop_grace", "want a duration of 0s or more", s.StopGrace.String())
	case s.HeartbeatTimeout <= 0:
		return bad("heartbeat_timeout", "want a duration greater than 0s", s.HeartbeatTimeout.String())
	case (s.TLSCert == "") != (s.TLSKey == ""):
		return bad("tls_cert", "want tls_cert and tls_key together", s.TLSCert)
	case strings.Contains(s.Blobs, "://") && !strings.HasPrefix(s.Blobs, "s3://"):
		// The value is not repeated: a URL of another kind might hold credentials.
		return at("blobs", "want a directory, or s3://bucket/prefix?endpoint=http://host:port&region=... for an S3-compatible server")
	}
	if s.Executor == "kubernetes" {
		if err := s.Kubernetes.validate(bad); err != nil {
			return err
		}
	}
	if s.Executor == "slurm" {
		if err := s.Slurm.validate(bad); err != nil {
			return err
		}
	}
	for _, r := range s.AllowedVolumeRoots {
		if !filepath.IsAbs(r) {
			return bad("allowed_volume_roots", "want absolute host paths", r)
		}
	}
	for _, h := range s.AllowedHosts {
		if !ValidHostPattern(h) {
			return bad("allowed_hosts", "want host names such as atlas.example.org or *.example.org", h)
		}
	}
	return nil
}

// ValidHostPattern reports whether h is a host name, or "*." and a host name.
func ValidHostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
