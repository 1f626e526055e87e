package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/atomicfile"
)

// DefaultEnv is the submission config every install has.
const DefaultEnv = "scheduler"

// Submission is a parsed <env>.config.yaml: where a scheduler is.
type Submission struct {
	Name         string
	Path         string
	SchedulerURL string
	// Token, if set, is sent to that scheduler (FOUNDATIONS_TOKEN and credentials.yaml win).
	Token string
}

// Atlas's submission configs also carry cache_config, container_config_root, job_deployment_env,
// job_results_root, working_dir_root, job_store_dir_root and redis_url; we accept and ignore them.

// SubmissionDirs lists where submission configs are looked up, first match wins: the project's
// ./config/submission, then $FOUNDATIONS_HOME/config/submission.
func SubmissionDirs(cwd string) []string {
	return []string{filepath.Join(cwd, "config", "submission"), filepath.Join(Home(), "config", "submission")}
}

// ParseSubmission parses a submission config's content.
func ParseSubmission(name, path string, data []byte) (*Submission, error) {
	p := &parser{file: path}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	s := &Submission{Name: name, Path: path}
	if root != nil {
		kvs, err := p.entries(root, "")
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			k, v := kv[0].Value, kv[1]
			switch k {
			case "scheduler_url":
				if s.SchedulerURL, err = p.str(v, k); err != nil {
					return nil, err
				}
				if s.SchedulerURL == "" {
					return nil, p.errf(v, k, "%s", missingURL)
				}
				if err := validateURL(s.SchedulerURL); err != nil {
					return nil, p.errf(v, k, "%v", err)
				}
			case "token":
				if s.Token, err = p.str(v, k); err != nil {
					return nil, err
				}
			default:
				// Atlas's other keys (atlasKeys), and anything else, are accepted silently: a
				// config copied from an Atlas install must keep working.
			}
		}
	}
	if s.SchedulerURL == "" {
		return nil, &Error{File: path, Key: "scheduler_url", Msg: missingURL}
	}
	s.SchedulerURL = strings.TrimRight(s.SchedulerURL, "/")
	return s, nil
}

const missingURL = "missing: set it to the scheduler's address, e.g. http://127.0.0.1:5555"

func validateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !validHost(u.Hostname()) {
		if strings.ContainsAny(s, "<>") {
			return fmt.Errorf("want an http:// or https:// URL with a host, got %q (replace the <placeholder> with the scheduler's address)", s)
		}
		return fmt.Errorf("want an http:// or https:// URL with a host, got %q", s)
	}
	return nil
}

// validHost accepts an IP address or a DNS name (letters, digits, '-', '_' and dots).
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// LoadSubmission finds and parses the submission config called name: the project's, then
// $FOUNDATIONS_HOME's. A project config without scheduler_url defers to the home one.
func LoadSubmission(cwd, name string) (*Submission, error) {
	if name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return nil, atlas.Invalidf("invalid scheduler config name %q", name)
	}
	var tried []string
	var noURL error // the first config found without scheduler_url
	for _, dir := range SubmissionDirs(cwd) {
		path := filepath.Join(dir, name+".config.yaml")
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			tried = append(tried, path)
			continue
		}
		if err != nil {
			return nil, err
		}
		s, err := ParseSubmission(name, path, data)
		var ce *Error
		if errors.As(err, &ce) && ce.Key == "scheduler_url" && ce.Msg == missingURL && ce.Line == 0 {
			// A project's config may carry other keys only (Atlas's configs had many): the
			// scheduler is then the one of $FOUNDATIONS_HOME's config of that name.
			if noURL == nil {
				noURL = err
			}
			continue
		}
		return s, err
	}
	if noURL != nil {
		return nil, noURL
	}
	return nil, atlas.NotFoundf("could not find submission configuration with name %q (looked for %s; `foundations info --env` lists them)",
		name, strings.Join(tried, " and "))
}

// Env is one submission config found on disk.
type Env struct {
	Name string
	Path string
	URL  string // empty if the file does not parse
	Err  error
}

// ListSubmissions returns every submission config visible from cwd, project configs first.
func ListSubmissions(cwd string) []Env {
	seen := map[string]bool{}
	var out []Env
	for _, dir := range SubmissionDirs(cwd) {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.config.yaml"))
		sort.Strings(matches)
		for _, m := range matches {
			name := strings.TrimSuffix(filepath.Base(m), ".config.yaml")
			if seen[name] {
				continue
			}
			seen[name] = true
			e := Env{Name: name, Path: m}
			data, err := os.ReadFile(m)
			if err == nil {
				var s *Submission
				if s, err = ParseSubmission(name, m, data); err == nil {
					e.URL = s.SchedulerURL
				}
			}
			e.Err = err
			out = append(out, e)
		}
	}
	return out
}

const defaultSubmissionHeader = "# The local Atlas scheduler, written by `atlas-server start`.\n" +
	"# Copy this file as <name>.config.yaml and change scheduler_url to submit elsewhere.\n"

// WriteDefaultSubmission makes $FOUNDATIONS_HOME/config/submission/scheduler.config.yaml point
// at url: it writes the file when it is missing, and updates it when it is still the file the
// server wrote (the server moved to another port). A file the user edited is left alone; then
// the returned note says where it points, if that is not url.
func WriteDefaultSubmission(home, url string) (wrote bool, note string, err error) {
	dir := filepath.Join(home, "config", "submission")
	path := filepath.Join(dir, DefaultEnv+".config.yaml")
	content := defaultSubmissionHeader + "scheduler_url: " + url + "\n"
	old, err := os.ReadFile(path)
	switch {
	case err == nil && string(old) == content:
		return false, "", nil
	case err == nil:
		rest, ours := strings.CutPrefix(string(old), defaultSubmissionHeader+"scheduler_url: ")
		if !ours || strings.Count(rest, "\n") != 1 || !strings.HasSuffix(rest, "\n") {
			if s, perr := ParseSubmission(DefaultEnv, path, old); perr == nil && s.SchedulerURL != url {
				return false, fmt.Sprintf("%s points at %s, not at this server (%s)", path, s.SchedulerURL, url), nil
			}
			return false, "", nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return false, "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, "", err
	}
	return true, "", atomicfile.Write(path, []byte(content), 0o644, true)
}

func errorsIsNotFound(err error) bool { return errors.Is(err, atlas.ErrNotFound) }
