package slurm_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/executor"
	"github.com/atlasgo/atlas/internal/executor/executortest"
	"github.com/atlasgo/atlas/internal/executor/slurm"
	"github.com/atlasgo/atlas/test/clusters"
)

// The executor delivers the contract on a real cluster: batch jobs, run as the cluster's test
// account, reach a server stack in this process with nothing but HTTP, and cache requirements
// environments in a shared folder.
func TestSlurmContract(t *testing.T) {
	s := clusters.NeedSlurm(t)
	executortest.Contract(t, executortest.ContractHarness{CachesEnvironments: true,
		New: func(t *testing.T, st *executortest.Stack) executor.Executor {
			shared := s.SharedDir(t, "scratch", "envs")
			e, err := slurm.New(t.Context(), slurm.Config{Partition: s.Partition, SchedulerURL: st.URL,
				Installation: "contract-" + filepath.Base(shared), ScratchDir: filepath.Join(shared, "scratch"),
				EnvCacheDir: filepath.Join(shared, "envs"), RunAs: s.User.Username, PollInterval: 200 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { e.Close() })
			return e
		}})
}
