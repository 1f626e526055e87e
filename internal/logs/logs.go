// Package logs keeps each job's output in an append-only file and streams it to readers, with
// follow, while the job still writes.
//
// Executors hand the file to the job (process jobs write to it directly, so output survives a
// server restart) or copy a container's stream into it; a job that ships its own output over
// the API (a script run by hand, a job on a cluster) is appended exactly once by byte offset
// (AppendAt). Readers never hold a lock that writers
// need.
package logs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Dir holds one log file per job.
type Dir struct {
	root    string
	watcher *watcher
	ship    shipLocks
}

// New returns a Dir rooted at root, creating it. Logs are the server's to read: the directory
// and its files are its owner's only (a job gets its own log as an open file, or mounted).
func New(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return nil, err
	}
	return &Dir{root: root, watcher: &watcher{dir: root}}, nil
}

// Path is where a job's log lives.
func (d *Dir) Path(jobID string) string { return filepath.Join(d.root, jobID+".log") }

// OpenAppend opens a job's log for appending, creating it.
func (d *Dir) OpenAppend(jobID string) (*os.File, error) {
	return os.OpenFile(d.Path(jobID), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
}

// Append writes text to a job's log.
func (d *Dir) Append(jobID, text string) error {
	f, err := d.OpenAppend(jobID)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	return errors.Join(err, f.Close())
}

// Remove deletes a job's log.
func (d *Dir) Remove(jobID string) error {
	err := os.Remove(d.Path(jobID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Size returns the current length of a job's log (0 if it has none yet).
func (d *Dir) Size(jobID string) int64 {
	fi, err := os.Stat(d.Path(jobID))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LineStart returns the offset of the first line that starts at or after offset (the end of
// the log if none does), so that a tail of the log starts with a whole line.
func (d *Dir) LineStart(jobID string, offset int64) int64 {
	f, err := os.Open(d.Path(jobID))
	if err != nil {
		return offset
	}
	defer f.Close()
	if offset == 0 {
		return 0
	}
	buf := make([]byte, 64<<10)
	pos := offset - 1 // a line starts at offset when the byte before it ends a line
	for {
		n, err := f.ReadAt(buf, pos)
		for i := 0; i < n; i++ {
			if buf[i] == '\n' {
				return pos + int64(i) + 1
			}
		}
		if err != nil {
			return pos + int64(n)
		}
		pos += int64(n)
	}
}

// Tail returns up to the last n bytes of a job's log.
func (d *Dir) Tail(jobID string, n int64) string {
	f, err := os.Open(d.Path(jobID))
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	start := max(0, fi.Size()-n)
	buf := make([]byte, fi.Size()-start)
	k, _ := f.ReadAt(buf, start)
	return string(buf[:k])
}

// Stream copies a job's log from offset to w. With follow it keeps copying new output until
// done is closed and everything written before that has been copied, or ctx ends. It waits
// for output without polling: the job's log being written wakes it. flush, if not nil, is
// called after each copy so a network client sees output promptly.
func (d *Dir) Stream(ctx context.Context, jobID string, offset int64, follow bool, done <-chan struct{}, w io.Writer, flush func()) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var changed <-chan struct{}
	var tick <-chan time.Time
	if follow {
		var stop func()
		changed, tick, stop = d.watcher.follow(jobID)
		defer stop()
	}
	for {
		// See whether the job is done before copying: output written before it ended is then
		// in the file by the time we copy.
		finished := !follow || isClosed(done)
		if f == nil {
			var err error
			f, err = os.Open(d.Path(jobID))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if f != nil && offset > 0 {
				if _, err := f.Seek(offset, io.SeekStart); err != nil {
					return err
				}
			}
		}
		if f != nil {
			n, err := io.Copy(w, f)
			if err != nil {
				return err
			}
			if n > 0 && flush != nil {
				flush()
			}
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-tick:
		case <-done:
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// LastLine is the last meaningful line of a log tail: no colours, no progress-bar rewrites,
// at most 300 characters. A failed job's reason ends with it: usually the exception.
func LastLine(tail string) string {
	lines := strings.FieldsFunc(ansiEscape.ReplaceAllString(tail, ""), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.Trim(l, "=") == "" {
			continue
		}
		if r := []rune(l); len(r) > 300 {
			l = string(r[:297]) + "..."
		}
		return l
	}
	return ""
}
