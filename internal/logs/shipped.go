package logs

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
)

// GapError says a shipped piece of output starts after the end of the log: the bytes between
// were never received, so nothing was written. Length is the log's current length, where the
// sender should resume.
type GapError struct{ Length int64 }

func (e *GapError) Error() string {
	return fmt.Sprintf("the log has %d bytes; output shipped at a later offset would leave a gap", e.Length)
}

// shipLocks serialise AppendAt per job (striped by job id, so memory stays bounded however
// many jobs ship output).
type shipLocks [64]sync.Mutex

func (l *shipLocks) of(jobID string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(jobID))
	return &l[h.Sum32()%uint32(len(l))]
}

// AppendAt stores output a job ships itself (a script run by hand, or the in-job side of a
// cluster executor), exactly once by byte offset in the job's log: data is the output from
// offset on. When offset is the log's length, data is appended; when the log already holds
// those bytes (offset+len(data) <= length, a resend) nothing is written; when they overlap the
// end, only the new tail is appended; when offset is past the end it returns a *GapError and
// writes nothing. It returns the log's length afterwards. Appends to one job are serialised.
func (d *Dir) AppendAt(jobID string, offset int64, data []byte) (int64, error) {
	if offset < 0 {
		return 0, fmt.Errorf("append to the log of job %s: negative offset %d", jobID, offset)
	}
	mu := d.ship.of(jobID)
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(d.Path(jobID), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, errors.Join(err, f.Close())
	}
	size := fi.Size()
	end := offset + int64(len(data))
	switch {
	case offset > size:
		return size, errors.Join(&GapError{Length: size}, f.Close())
	case end <= size:
		return size, f.Close()
	}
	n, err := f.WriteAt(data[size-offset:], size)
	return size + int64(n), errors.Join(err, f.Close())
}
