package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const spoolMain = `
import os, time, foundations
foundations.log_metric("loss", 1.0)
foundations.flush()
print("first value delivered", flush=True)
while not os.path.exists(%q):
    time.sleep(0.02)
# The server is down now: these cannot be delivered before the script ends.
for v in (0.5, 0.25):
    foundations.log_metric("loss", v)
foundations.log_param("late", "yes")
print("ending while the server is down", flush=True)
`

// A job that ends while the server is down leaves what it could not deliver in its spool; the
// server stores it, exactly once, when it records the job's end after a restart.
func TestSpoolOfJobEndedWhileServerDown(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	gate := gatePath(t)
	proj := newProject(t, "spool", map[string]string{
		"main.py":         fmt.Sprintf(spoolMain, gate),
		"job.config.yaml": "worker:\n  environment:\n    FOUNDATIONS_FLUSH_TIMEOUT: '0.5'\n",
	})
	id := s.submitNoStream(t, proj, "main.py")
	s.waitLog(t, id, "first value delivered")
	s.Stop()
	openGate(t, gate)
	// The job's shim records its exit status when the job ends.
	exitFile := filepath.Join(s.Home, "run", id+".exit")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(exitFile); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the job did not end while the server was down")
		time.Sleep(20 * time.Millisecond)
	}

	s = startServer(t, s.Home, "--port", fmt.Sprint(s.Port))
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State, "reason: %s", j.Reason)
	var loss struct {
		Points []struct {
			Value float64 `json:"value"`
		} `json:"points"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+id+"/metrics/loss", nil, &loss))
	require.Len(t, loss.Points, 3, "every point once: the delivered one and the two spooled ones")
	require.Equal(t, []float64{1, 0.5, 0.25}, []float64{loss.Points[0].Value, loss.Points[1].Value, loss.Points[2].Value})
	require.Equal(t, "yes", j.Params["late"])
	_, err := os.Stat(filepath.Join(s.Home, "spool", "jobs", id))
	require.True(t, os.IsNotExist(err), "the job's spool is removed once stored")
}
