// The server config's slurm: section, for executor: slurm.

package config

import (
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Slurm says where and how jobs run on a Slurm cluster.
type Slurm struct {
	// Partition, Account and QOS are given to sbatch ("": the cluster's defaults).
	Partition, Account, QOS string
	// TimeLimit is every job's time limit, in whole minutes (0: the partition's).
	TimeLimit time.Duration
	// Sbatch holds extra options for sbatch, each written as an #SBATCH line of the batch
	// script (--constraint=a100, --nodes=1...).
	Sbatch []string
	// Python is the interpreter jobs run with on the compute nodes (default python3); Setup is
	// shell run before it, such as `module load python/3.11`.
	Python, Setup string
	// ScratchDir is a directory on the compute nodes, writable by every job's account, for the
	// jobs' working directories and Slurm output files (default /tmp).
	ScratchDir string
	// EnvCacheDir is a directory the compute nodes share, writable by every job's account,
	// that caches requirements environments across jobs ("": each job installs its own).
	EnvCacheDir string
	// SchedulerURL is how compute nodes reach the server's API (http:// or https://).
	SchedulerURL string
	// RunAs is the account jobs run as when the server runs as root and a job's own account
	// is root or unknown (default nobody).
	RunAs string
	// GPUGres, when set (gpu, gpu:a100), asks for GPUs as --gres=<gpu_gres>:<n> rather than
	// --gpus=<n>.
	GPUGres string
	// PollInterval is how often Slurm is asked about the jobs (default 1s).
	PollInterval time.Duration
	// Installation tells this Atlas installation's Slurm jobs from others': it is their job
	// name ("": the one kept in the data folder's installation file).
	Installation string
}

// DefaultSlurm is the slurm: section's defaults (the Slurm executor fills in the same ones
// for a Config built by hand).
func DefaultSlurm() Slurm {
	return Slurm{Python: "python3", ScratchDir: "/tmp", RunAs: "nobody", PollInterval: time.Second}
}

var (
	slurmName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	gresName  = regexp.MustCompile(`^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$`)
)

func (p *parser) slurm(n *yaml.Node, key string) (Slurm, error) {
	s := DefaultSlurm()
	if isNull(n) {
		return s, nil
	}
	if n.Kind != yaml.MappingNode {
		return s, p.errf(n, key, "want a mapping (partition, scheduler_url, time_limit...), got %s", kindName(n))
	}
	kvs, err := p.entries(n, key)
	if err != nil {
		return s, err
	}
	for _, kv := range kvs {
		name, v := kv[0].Value, kv[1]
		full := joinKey(key, name)
		switch name {
		case "partition":
			s.Partition, err = p.str(v, full)
		case "account":
			s.Account, err = p.str(v, full)
		case "qos":
			s.QOS, err = p.str(v, full)
		case "time_limit":
			s.TimeLimit, err = p.duration(v, full, "24h")
		case "sbatch":
			s.Sbatch, err = p.strList(v, full)
		case "python":
			s.Python, err = p.str(v, full)
		case "setup":
			s.Setup, err = p.str(v, full)
		case "scratch_dir":
			s.ScratchDir, err = p.str(v, full)
		case "env_cache_dir":
			s.EnvCacheDir, err = p.str(v, full)
		case "scheduler_url":
			s.SchedulerURL, err = p.str(v, full)
		case "run_as":
			s.RunAs, err = p.str(v, full)
		case "gpu_gres":
			s.GPUGres, err = p.str(v, full)
		case "poll_interval":
			s.PollInterval, err = p.duration(v, full, "1s")
		case "installation":
			s.Installation, err = p.str(v, full)
		default:
			p.warnf(kv[0], full)
			continue
		}
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// validate checks the section when jobs run on Slurm.
func (s Slurm) validate(bad func(key, want string, got any) error) error {
	if u, err := url.Parse(s.SchedulerURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("slurm", "want slurm.scheduler_url: how compute nodes reach this server, e.g. http://login1.cluster:5555",
			s.SchedulerURL)
	}
	for _, f := range []struct{ key, v string }{{"partition", s.Partition}, {"account", s.Account}, {"qos", s.QOS}} {
		if f.v != "" && strings.ContainsAny(f.v, " \t\r\n,") {
			return bad("slurm", "want slurm."+f.key+" without spaces or commas", f.v)
		}
	}
	switch {
	case s.TimeLimit != 0 && s.TimeLimit < time.Minute:
		return bad("slurm", "want slurm.time_limit of a minute or more (Slurm counts whole minutes), or none", s.TimeLimit.String())
	case s.Python == "" || strings.ContainsAny(s.Python, "\r\n"):
		return bad("slurm", "want slurm.python: the Python 3 interpreter on the compute nodes, e.g. python3", s.Python)
	case !filepath.IsAbs(s.ScratchDir):
		return bad("slurm", "want slurm.scratch_dir: an absolute path on the compute nodes", s.ScratchDir)
	case s.EnvCacheDir != "" && !filepath.IsAbs(s.EnvCacheDir):
		return bad("slurm", "want slurm.env_cache_dir: an absolute path the compute nodes share", s.EnvCacheDir)
	case s.RunAs == "" || s.RunAs == "root" || s.RunAs == "0":
		return bad("slurm", "want slurm.run_as: an account that is not root (jobs never run as root)", s.RunAs)
	case s.GPUGres != "" && !gresName.MatchString(s.GPUGres):
		return bad("slurm", "want slurm.gpu_gres as a GRES name and optional type, e.g. gpu or gpu:a100", s.GPUGres)
	case s.PollInterval < 100*time.Millisecond:
		return bad("slurm", "want slurm.poll_interval of 100ms or more", s.PollInterval.String())
	case s.Installation != "" && !slurmName.MatchString(s.Installation):
		return bad("slurm", "want slurm.installation of at most 63 letters, digits, '-', '_' and '.', "+
			"starting with a letter or digit", s.Installation)
	}
	for _, line := range s.Sbatch {
		if !strings.HasPrefix(line, "-") || strings.ContainsAny(line, "\r\n") {
			return bad("slurm", "want slurm.sbatch lines that are sbatch options, e.g. --constraint=a100", line)
		}
	}
	return nil
}
