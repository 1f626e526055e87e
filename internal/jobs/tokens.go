// Job tokens: derived from the server's secret, never stored.

package jobs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
