package config

import (
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/atlasgo/atlas/internal/atlas"
)

// JobConfigFile is the name of the per-project job config.
const JobConfigFile = "job.config.yaml"

// Job is a parsed job.config.yaml. Zero values mean "not set".
type Job struct {
	ProjectName string
	LogLevel    string
	NumGPUs     *int
	RAMGB       *float64
	Priority    *int
	Params      map[string]any
	Entrypoint  []string
	Worker      atlas.Worker
	// Warnings lists keys that were not understood, and keys given twice.
	Warnings []string
}

// LogLevels are the accepted values of log_level.
var LogLevels = []string{"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}

// ParseJob parses the content of a job.config.yaml; name is used in error messages.
func ParseJob(name string, data []byte) (*Job, error) {
	p := &parser{file: name}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	j := &Job{}
	if root == nil {
		return j, nil
	}
	kvs, err := p.entries(root, "")
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		k, v := kv[0].Value, kv[1]
		switch k {
		case "project_name":
			if j.ProjectName, err = p.str(v, k); err != nil {
				return nil, err
			}
			if err := ValidateProjectName(j.ProjectName); j.ProjectName != "" && err != nil {
				return nil, p.errf(v, k, "%v", err)
			}
		case "log_level":
			s, err := p.str(v, k)
			if err != nil {
				return nil, err
			}
			s = strings.ToUpper(s)
			if s != "" && !contains(LogLevels, s) {
				return nil, p.errf(v, k, "want one of %s, got %q", strings.Join(LogLevels, ", "), v.Value)
			}
			j.LogLevel = s
		case "num_gpus":
			if isNull(v) {
				continue
			}
			n, err := p.integer(v, k)
			if err != nil {
				return nil, err
			}
			if n < 0 {
				return nil, p.errf(v, k, "want 0 or more, got %d", n)
			}
			j.NumGPUs = &n
		case "ram":
			if isNull(v) {
				continue
			}
			f, err := p.number(v, k)
			if err != nil {
				return nil, err
			}
			if f <= 0 {
				return nil, p.errf(v, k, "want a memory limit in GB greater than 0, got %v", v.Value)
			}
			j.RAMGB = &f
		case "priority":
			if isNull(v) {
				continue
			}
			n, err := p.integer(v, k)
			if err != nil {
				return nil, err
			}
			j.Priority = &n
		case "params":
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return nil, p.errf(v, k, "want a mapping of parameter names to values, got %s", describe(v))
			}
			if j.Params, err = p.params(v, k); err != nil {
				return nil, err
			}
		case "entrypoint":
			if j.Entrypoint, err = p.strList(v, k); err != nil {
				return nil, err
			}
		case "worker":
			if err := p.worker(v, &j.Worker); err != nil {
				return nil, err
			}
		case "search":
			// The search of `foundations search`, read by ParseSearch.
		default:
			p.warnf(kv[0], k)
		}
	}
	j.Warnings = p.warnings
	return j, nil
}

func (p *parser) worker(n *yaml.Node, w *atlas.Worker) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "worker", "want a mapping (image, entrypoint, command, volumes, environment), got %s", describe(n))
	}
	kvs, err := p.entries(n, "worker")
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		k, v := kv[0].Value, kv[1]
		key := "worker." + k
		switch k {
		case "image":
			if w.Image, err = p.str(v, key); err != nil {
				return err
			}
		case "entrypoint":
			if w.Entrypoint, err = p.strList(v, key); err != nil {
				return err
			}
		case "command", "args":
			if w.Command, err = p.strList(v, key); err != nil {
				return err
			}
		case "working_dir":
			if w.WorkingDir, err = p.str(v, key); err != nil {
				return err
			}
		case "environment":
			if w.Environment, err = p.strMap(v, key); err != nil {
				return err
			}
		case "volumes":
			if isNull(v) {
				continue
			}
			if v.Kind != yaml.MappingNode {
				return p.errf(v, key, "want a mapping of host paths to {bind, mode}, got %s", describe(v))
			}
			hvs, err := p.entries(v, key)
			if err != nil {
				return err
			}
			w.Volumes = map[string]atlas.Volume{}
			for _, hv := range hvs {
				host := hv[0].Value
				vk := key + "." + host
				if hv[0].Kind != yaml.ScalarNode || !filepath.IsAbs(host) {
					return p.errf(hv[0], vk, "host path must be absolute, got %q", host)
				}
				vol := atlas.Volume{Mode: "rw"}
				switch {
				case isNull(hv[1]):
				case hv[1].Kind == yaml.ScalarNode: // "/host: /container" shorthand
					vol.Bind = hv[1].Value
				case hv[1].Kind == yaml.MappingNode:
					fields, err := p.entries(hv[1], vk)
					if err != nil {
						return err
					}
					for _, f := range fields {
						switch f[0].Value {
						case "bind":
							if vol.Bind, err = p.str(f[1], vk+".bind"); err != nil {
								return err
							}
						case "mode":
							if vol.Mode, err = p.str(f[1], vk+".mode"); err != nil {
								return err
							}
							if vol.Mode != "rw" && vol.Mode != "ro" {
								return p.errf(f[1], vk+".mode", "want rw or ro, got %q", vol.Mode)
							}
						default:
							p.warnf(f[0], vk+"."+f[0].Value)
						}
					}
				default:
					return p.errf(hv[1], vk, "want {bind: /container/path, mode: rw|ro}, got %s", kindName(hv[1]))
				}
				if vol.Bind == "" {
					return p.errf(hv[1], vk+".bind", "missing: set it to the absolute path in the container")
				}
				if !strings.HasPrefix(vol.Bind, "/") {
					return p.errf(hv[1], vk+".bind", "want an absolute container path, got %q", vol.Bind)
				}
				w.Volumes[host] = vol
			}
		default:
			p.warnf(kv[0], key)
		}
	}
	return nil
}

// LoadJob reads job.config.yaml from dir. A missing file yields an empty config.
func LoadJob(dir string) (*Job, []byte, error) {
	path := filepath.Join(dir, JobConfigFile)
	data, err := readFile(path)
	if err != nil {
		if errorsIsNotFound(err) {
			return &Job{}, nil, nil
		}
		return nil, nil, err
	}
	j, err := ParseJob(path, data)
	return j, data, err
}

// ValidateProjectName checks a project name is usable in URLs and file names.
func ValidateProjectName(name string) error {
	switch {
	case name == "":
		return atlas.Invalidf("project name is empty")
	case len(name) > 200:
		return atlas.Invalidf("project name is longer than 200 characters")
	case strings.ContainsAny(name, "/\\\x00"):
		return atlas.Invalidf("project name %q contains a slash or NUL", name)
	case strings.TrimSpace(name) != name:
		return atlas.Invalidf("project name %q starts or ends with spaces", name)
	case name == "." || name == "..":
		return atlas.Invalidf("project name %q is not a name", name)
	}
	return nil
}

// MaxJobNameLength is the most characters a job's name may have.
const MaxJobNameLength = 100

// ValidateJobName checks the name a submitter gives a job: at most MaxJobNameLength
// characters, every one printable (no newline, tab or other control), no spaces around it.
// "" is no name (the server makes one up).
func ValidateJobName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return atlas.Invalidf("job name %s is not valid UTF-8", atlas.Shorten(name))
	case utf8.RuneCountInString(name) > MaxJobNameLength:
		return atlas.Invalidf("job name is %d characters long: at most %d", utf8.RuneCountInString(name), MaxJobNameLength)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return atlas.Invalidf("job name %s holds a newline, tab or other character that does not print", atlas.Shorten(name))
	case strings.TrimSpace(name) != name:
		return atlas.Invalidf("job name %q starts or ends with spaces", name)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
