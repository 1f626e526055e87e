package config

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ServerConfigFile is the optional server config under $FOUNDATIONS_HOME/config.
const ServerConfigFile = "server.config.yaml"

// Server is the configuration of atlas-server. Command-line flags override the file.
type Server struct {
	Home     string // $FOUNDATIONS_HOME: database, blobs, logs, work dirs
	Host     string
	Port     int
	Workers  int
	Executor string // auto, process or docker
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
	// HeartbeatTimeout: an execution-mode job whose script has not been heard from for this long
	// is marked failed.
	HeartbeatTimeout time.Duration
	// WorkerImage is the Docker image of jobs that name none.
	WorkerImage string
	// Auth requires an API token on every request (users are managed with `atlas-server user`).
	Auth bool
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
}

// executors are the accepted values of executor.
var executors = []string{"auto", "process", "docker"}

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
	}
}

// LoadServer applies $home/config/server.config.yaml, if present, over s.
func LoadServer(s *Server) ([]string, error) {
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
		bad := "" // what the value should have been, if it is out of range
		switch k {
		case "host":
			s.Host, err = p.str(v, k)
		case "port":
			if s.Port, err = p.integer(v, k); err == nil && (s.Port < 0 || s.Port > 65535) {
				bad = "want a port from 1 to 65535 (0 picks a free one)"
			}
		case "workers":
			if s.Workers, err = p.integer(v, k); err == nil && s.Workers < 1 {
				bad = "want 1 or more"
			}
		case "executor":
			if s.Executor, err = p.str(v, k); err == nil && !slices.Contains(executors, s.Executor) {
				bad = "want one of " + strings.Join(executors, ", ")
			}
		case "gpus":
			s.GPUs, err = p.strList(v, k)
		case "python":
			if s.Python, err = p.str(v, k); err == nil && s.Python == "" {
				bad = "want the Python interpreter to run jobs with, e.g. python3"
			}
		case "database":
			s.Database, err = p.str(v, k)
		case "worker_image":
			if s.WorkerImage, err = p.str(v, k); err == nil && s.WorkerImage == "" {
				bad = "want a Docker image name"
			}
		case "auth":
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
				return nil, p.errf(v, k, "want true or false, got %s", describe(v))
			}
			s.Auth = v.Value == "true" || v.Value == "True" || v.Value == "TRUE" || v.Value == "yes" || v.Value == "on"
		case "tls_cert":
			s.TLSCert, err = p.str(v, k)
		case "tls_key":
			s.TLSKey, err = p.str(v, k)
		case "allowed_volume_roots":
			if s.AllowedVolumeRoots, err = p.strList(v, k); err == nil {
				for _, r := range s.AllowedVolumeRoots {
					if !filepath.IsAbs(r) {
						bad = "want absolute host paths"
					}
				}
			}
		case "allowed_hosts":
			if s.AllowedHosts, err = p.strList(v, k); err == nil {
				for _, h := range s.AllowedHosts {
					if !ValidHostPattern(h) {
						return nil, p.errf(v, k, "want host names such as atlas.example.org or *.example.org, got %q", h)
					}
				}
			}
		case "max_keys_per_job", "max_keys_per_batch":
			var n int
			if n, err = p.integer(v, k); err == nil && n <= 0 {
				bad = "want a number of keys greater than 0"
			}
			if k == "max_keys_per_job" {
				s.MaxKeysPerJob = n
			} else {
				s.MaxKeysPerBatch = n
			}
		case "max_bundle_files":
			if s.MaxBundleFiles, err = p.integer(v, k); err == nil && s.MaxBundleFiles <= 0 {
				bad = "want a number of files greater than 0"
			}
		case "max_bundle_bytes":
			var n int
			if n, err = p.integer(v, k); err == nil && n <= 0 {
				bad = "want a number of bytes greater than 0"
			}
			s.MaxBundleBytes = int64(n)
		case "stop_grace", "heartbeat_timeout":
			var d time.Duration
			if v.Kind != yaml.ScalarNode || isNull(v) {
				return nil, p.errf(v, k, "want a duration like 10s, got %s", describe(v))
			}
			if d, err = time.ParseDuration(v.Value); err != nil {
				return nil, p.errf(v, k, "want a duration like 10s, got %q", v.Value)
			}
			if k == "stop_grace" {
				s.StopGrace = d
				if d < 0 {
					bad = "want a duration of 0s or more"
				}
			} else {
				s.HeartbeatTimeout = d
				if d <= 0 {
					bad = "want a duration greater than 0s"
				}
			}
		default:
			p.warnf(kv[0], k)
		}
		if err != nil {
			return nil, err
		}
		if bad != "" {
			got := describe(v)
			if v.ShortTag() == "!!str" {
				got = strconv.Quote(v.Value) // the type is right, only the value is not
			}
			return nil, p.errf(v, k, "%s, got %s", bad, got)
		}
	}
	return p.warnings, nil
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
