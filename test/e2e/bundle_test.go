package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// bundleMain fetches its own job's bundle with its own token, as a job on another machine
// does, and another user's job's.
const bundleMain = `import hashlib, json, os
from foundations._client import APIError, Client
c = Client(os.environ["FOUNDATIONS_SCHEDULER_URL"], token=os.environ["FOUNDATIONS_TOKEN"])
_, _, data = c.request("GET", "/api/v1/jobs/{}/bundle".format(os.environ["FOUNDATIONS_JOB_ID"]))
try:
    c.request("GET", "/api/v1/jobs/%s/bundle")
    other = 200
except APIError as e:
    other = e.status
print("RESULTS " + json.dumps({"own": hashlib.sha256(data).hexdigest(), "other": other}))
`

// GET /jobs/{id}/bundle: a job fetches its own bundle with its token; with --auth, its user
// may too, other users may not (the bundle holds the same files as the archive), and a job
// cannot see another user's job at all.
func TestJobFetchesItsBundle(t *testing.T) {
	requirePython(t)
	t.Parallel()
	home := newHome(t)
	alice := addUser(t, home, "alice", false)
	bob := addUser(t, home, "bob", false)
	s := startServer(t, home, "--auth", "--workers", "2")
	client := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, client, "login", s.URL, "--token", bob).Code)
	bobJob := s.submitNoStream(t, newProject(t, "bobs", map[string]string{"main.py": "print('bob was here')\n"}), "main.py")
	require.Equal(t, "completed", waitDoneAs(t, s, bob, bobJob).State)

	require.Equal(t, 0, cli(t, s.Home, client, "login", s.URL, "--token", alice).Code)
	id := s.submitNoStream(t, newProject(t, "alices", map[string]string{"main.py": fmt.Sprintf(bundleMain, bobJob)}), "main.py")
	j := waitDoneAs(t, s, alice, id)
	require.Equal(t, "completed", j.State, "reason %s", j.Reason)
	var digest struct {
		BundleDigest string `json:"bundle_digest"`
	}
	_, body := apiAs(t, s, alice, http.MethodGet, "/api/v1/jobs/"+id, nil)
	require.NoError(t, json.Unmarshal([]byte(body), &digest))
	m := regexp.MustCompile(`RESULTS (.*)`).FindStringSubmatch(logsAs(t, s, alice, id))
	require.NotNil(t, m)
	var results struct {
		Own   string `json:"own"`
		Other int    `json:"other"`
	}
	require.NoError(t, json.Unmarshal([]byte(m[1]), &results))
	require.Equal(t, strings.TrimPrefix(digest.BundleDigest, "sha256:"), results.Own, "the job got its own bundle")
	require.Equal(t, http.StatusNotFound, results.Other, "a job does not see another user's job")

	code, body := apiAs(t, s, alice, http.MethodGet, "/api/v1/jobs/"+id+"/bundle", nil)
	require.Equal(t, http.StatusOK, code)
	sum := sha256.Sum256([]byte(body))
	require.Equal(t, digest.BundleDigest, "sha256:"+hex.EncodeToString(sum[:]))
	code, body = apiAs(t, s, bob, http.MethodGet, "/api/v1/jobs/"+id+"/bundle", nil)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, "the bundle of job "+id+" is its user's (alice)")
	code, _ = apiAs(t, s, "", http.MethodGet, "/api/v1/jobs/"+id+"/bundle", nil)
	require.Equal(t, http.StatusUnauthorized, code)
}
