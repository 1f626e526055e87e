// Package clusters gives tests the single-node Kubernetes and Slurm clusters that
// scripts/k8s-cluster.sh and scripts/slurm-cluster.sh run on a test machine (`make test` starts
// them with CI=true through scripts/test-setup.sh). A test that needs one calls NeedKubernetes
// or NeedSlurm: without the cluster it skips, saying why and how to start it, and with CI=true
// it fails instead, since CI provisions both.
//
// It never starts, stops or reconfigures a cluster: the clusters are shared by every test, every
// test package running in parallel and every test run on the machine, so tests create what they
// use under unique names (a namespace of their own, a unique job name) and remove it.
package clusters

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// probe runs a cluster script's status and env once per test binary.
type probe struct {
	once   sync.Once
	reason string            // why the cluster cannot be used; "" when it can
	env    map[string]string // the script's `env` output
}

func (p *probe) run(script, start string) {
	p.once.Do(func() {
		path, err := scriptPath(script)
		if err != nil {
			p.reason = err.Error()
			return
		}
		out, err := runScript(path, "status")
		if err != nil {
			p.reason = fmt.Sprintf("%s (start it with `%s`)", notReady(out), start)
			return
		}
		out, err = runScript(path, "env")
		if err != nil {
			p.reason = fmt.Sprintf("scripts/%s env: %s", script, firstLine(out, err))
			return
		}
		p.env = map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				p.env[k] = v
			}
		}
	})
}

// need skips or fails the test when the probe found the cluster unusable.
func (p *probe) need(t testing.TB, what string) {
	t.Helper()
	if p.reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the %s tests cannot run: %s (CI=true, so this is a failure)", what, p.reason)
	}
	t.Skipf("%s tests skipped: %s", what, p.reason)
}

// scriptPath finds scripts/NAME in the repository that holds the working directory (go test
// runs a test in its package's directory).
func scriptPath(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/%s not found above the working directory", name)
		}
		dir = parent
	}
}

func runScript(path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// notReady picks the lines of a status report that say what is wrong.
func notReady(out string) string {
	var bad []string
	for _, line := range strings.Split(out, "\n") {
		_, line, _ = strings.Cut(line, ": ")
		if (strings.Contains(line, "not ") || strings.Contains(line, "missing")) && !strings.HasPrefix(line, "not ready") {
			bad = append(bad, line)
		}
	}
	if len(bad) == 0 {
		return out
	}
	return strings.Join(bad, "; ")
}

func firstLine(out string, err error) string {
	s := strings.TrimSpace(out)
	if s == "" {
		s = err.Error()
	}
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// logTails shows the end of each log file when the test failed: the clusters' own account of
// what went wrong.
func logTails(t testing.TB, files ...string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			if len(lines) > 30 {
				lines = lines[len(lines)-30:]
			}
			t.Logf("the end of %s:\n%s", f, strings.Join(lines, "\n"))
		}
	})
}

// command runs a program and returns its combined output, trimmed.
func command(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && s != "" {
			return s, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, s)
		}
		return s, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return s, nil
}
