package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/sdk"
)

// A job that ships its own output (a script run by hand; later the in-job side of a cluster
// executor) stores it exactly once by byte offset, and followers see it as it arrives.
func TestShippedOutputContract(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	user := sdk.New(s.URL, "")
	res, err := user.Submit(ctx, &sdk.JobSpec{ID: uuid.NewString(), Mode: "execution", Project: "shipped", User: "me",
		Command: []string{"main.py"}})
	require.NoError(t, err)
	id := res.Job.ID
	job := sdk.New(s.URL, res.Token)

	// A follower, started before any output exists.
	follow, err := user.Logs(ctx, id, 0, true)
	require.NoError(t, err)
	defer follow.Close()
	read := func(n int) string {
		buf := make([]byte, n)
		_, err := io.ReadFull(follow, buf)
		require.NoError(t, err)
		return string(buf)
	}

	n, err := job.AppendLog(ctx, id, 0, []byte("epoch 1\n"))
	require.NoError(t, err)
	require.EqualValues(t, 8, n)
	require.Equal(t, "epoch 1\n", read(8), "the follower sees shipped output live")

	// A resend after a lost answer is acknowledged and not stored twice.
	n, err = job.AppendLog(ctx, id, 0, []byte("epoch 1\n"))
	require.NoError(t, err)
	require.EqualValues(t, 8, n)
	// A piece that overlaps the end: only its new tail is stored.
	n, err = job.AppendLog(ctx, id, 6, []byte("1\nepoch 2\n"))
	require.NoError(t, err)
	require.EqualValues(t, 16, n)
	require.Equal(t, "epoch 2\n", read(8))

	// A gap: nothing written, and the answer says where the log ends.
	_, err = job.AppendLog(ctx, id, 100, []byte("lost?\n"))
	var gap *sdk.LogGapError
	require.ErrorAs(t, err, &gap)
	require.EqualValues(t, 16, gap.Length)
	require.True(t, sdk.IsConflict(err))

	// Only a job's own token, or its user, may write to its log.
	other, err := user.Submit(ctx, &sdk.JobSpec{ID: uuid.NewString(), Mode: "execution", Project: "shipped", User: "me"})
	require.NoError(t, err)
	_, err = sdk.New(s.URL, other.Token).AppendLog(ctx, id, 16, []byte("not mine\n"))
	var apiErr *sdk.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusForbidden, apiErr.Status)

	// Raw bytes only.
	code := s.api(t, http.MethodPost, "/api/v1/jobs/"+id+"/logs?offset=16", map[string]string{"text": "json"}, nil)
	require.Equal(t, http.StatusUnsupportedMediaType, code)

	// Once the job has finished its log takes nothing more: a 409 without a length.
	finish(t, s, res.Token, id, `{"state": "completed", "exit_code": 0}`, http.StatusOK)
	require.Equal(t, "", read0(t, follow), "the follower ends when the job has finished")
	_, err = job.AppendLog(ctx, id, 16, []byte("too late\n"))
	require.True(t, sdk.IsConflict(err), "%v", err)
	require.False(t, errors.As(err, &gap), "a finished job's 409 carries no length")
	require.Equal(t, "epoch 1\nepoch 2\n", s.logs(t, id))
}

// read0 reads what is left of a follow stream until it ends.
func read0(t *testing.T, r io.Reader) string {
	t.Helper()
	data, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(data)
}

// finish posts a script's end with a token and checks the status.
func finish(t *testing.T, s *Server, token, id, body string, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/v1/jobs/"+id+"/finish", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	require.NoError(t, err)
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, want, resp.StatusCode, "finish %s: %s", body, data)
}

// A script run by hand that turns out to be a driver discards its own job with its own token;
// nobody else can discard it that way.
func TestDiscardOwnExecutionJob(t *testing.T) {
	t.Parallel()
	s := startServer(t, newHome(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	user := sdk.New(s.URL, "")
	res, err := user.Submit(ctx, &sdk.JobSpec{ID: uuid.NewString(), Mode: "execution", Project: "drivers", User: "me"})
	require.NoError(t, err)
	id := res.Job.ID
	_, err = sdk.New(s.URL, res.Token).AppendLog(ctx, id, 0, []byte("submitting...\n"))
	require.NoError(t, err)

	other, err := user.Submit(ctx, &sdk.JobSpec{ID: uuid.NewString(), Mode: "execution", Project: "drivers", User: "me"})
	require.NoError(t, err)
	finish(t, s, other.Token, id, `{"discard": true}`, http.StatusForbidden)
	finish(t, s, "", id, `{"discard": true}`, http.StatusForbidden)
	require.True(t, s.jobExists(t, id))

	finish(t, s, res.Token, id, `{"discard": true}`, http.StatusNoContent)
	require.False(t, s.jobExists(t, id))
	require.NoFileExists(t, s.logPath(id), "its log went with it")
	require.True(t, s.jobExists(t, other.Job.ID), "only that job")
}
