// Job tokens: derived from the server's secret, never stored.

package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"github.com/atlasgo/atlas/internal/atlas"
	"strings"
)

// JobToken returns the token a job uses to write to itself and submit child jobs. It names
// the job and is signed with the server's secret, so it need not be stored.
func (s *Service) JobToken(jobID string) string {
	return "job." + jobID + "." + s.jobMAC(jobID)
}

// TokenJob returns the job a job token names, if the token is genuine.
func (s *Service) TokenJob(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, "job.")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", false
	}
	id, mac := rest[:i], rest[i+1:]
	return id, hmac.Equal([]byte(mac), []byte(s.jobMAC(id)))
}

func (s *Service) jobMAC(jobID string) string {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte("job:" + jobID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// How long a finished job's token still works, for what its SDK had not delivered when the
// job ended. A script run by hand may leave its values in its spool for the next script to
// send, so its token lasts longer.
const (
	TokenDrain     = 10 * time.Minute
	TokenDrainHand = 7 * 24 * time.Hour
)

// JobCaller checks a job token and returns the caller it stands for: the job, acting as its
// user. ok is false when token is not a job token. A job token stops working once its job is
// deleted, and a drain period after its job finished.
func (s *Service) JobCaller(ctx context.Context, token string) (c *Caller, ok bool, err error) {
	id, ok := s.TokenJob(token)
	if !ok {
		return nil, false, nil
	}
	j, err := s.cfg.Store.JobGet(ctx, id)
	if errors.Is(err, atlas.ErrNotFound) {
		return nil, true, fmt.Errorf("%w: the token of job %s no longer works: the job was deleted", atlas.ErrAuth, id)
	}
	if err != nil {
		return nil, true, err
	}
	drain := TokenDrain
	if j.Mode == atlas.ModeExecution {
		drain = TokenDrainHand
	}
	if j.FinishedAt != nil && time.Since(*j.FinishedAt) > drain {
		return nil, true, fmt.Errorf("%w: the token of job %s no longer works: the job finished at %s",
			atlas.ErrAuth, id, j.FinishedAt.Format(time.RFC3339))
	}
	return &Caller{User: j.User, JobID: id, Job: j}, true, nil
}
