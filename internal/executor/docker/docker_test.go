package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/executor/docker"
	"github.com/atlasgo/atlas/internal/executor/executortest"
	"github.com/atlasgo/atlas/python"
)

// needDocker skips without a Docker engine and the worker image, and fails instead when CI=true.
func needDocker(t *testing.T) *docker.Executor {
	t.Helper()
	dir := t.TempDir()
	e, err := docker.New(context.Background(), docker.Config{SocketDir: filepath.Join(dir, "sock"),
		EnvsDir: filepath.Join(dir, "envs"), Home: dir})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker is required (CI=true): %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	if d := e.Describe(context.Background()); strings.Contains(d, "not found") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the worker image is required (CI=true): %s", d)
		}
		t.Skipf("worker image missing: %s", d)
	}
	return e
}

func TestContract(t *testing.T) {
	needDocker(t)
	executortest.Contract(t, executortest.ContractHarness{CachesEnvironments: true,
		New: func(t *testing.T, s *executortest.Stack) executor.Executor {
			e, err := docker.New(context.Background(), docker.Config{SocketDir: s.SocketDir,
				EnvsDir: filepath.Join(s.Home, "envs"), Home: s.Home})
			require.NoError(t, err)
			t.Cleanup(func() { e.Close() })
			return e
		}})
}

func TestConformance(t *testing.T) {
	needDocker(t)
	dir := t.TempDir()
	sdk, err := python.Extract(t.TempDir())
	require.NoError(t, err)
	executortest.Exercise(t, executortest.Harness{SDKDir: sdk, New: func(t *testing.T) executor.Executor {
		e, err := docker.New(context.Background(), docker.Config{SocketDir: filepath.Join(dir, "sock"),
			EnvsDir: filepath.Join(dir, "envs"), Home: dir})
		require.NoError(t, err)
		t.Cleanup(func() { e.Close() })
		return e
	}})
}
