package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// progressMinBytes is the smallest upload whose progress is shown: smaller ones take no time.
const progressMinBytes = 1 << 20

// progressEvery is how often the progress line is redrawn at most.
const progressEvery = 200 * time.Millisecond

// uploadProgress draws an upload's progress on one line of a terminal: bytes sent of the
// total, the rate, and the time left. Each update redraws the line (carriage return); done
// ends it.
type uploadProgress struct {
	w     io.Writer
	now   func() time.Time
	start time.Time
	last  time.Time
	drawn bool
}

// newUploadProgress returns a progress line on w for an upload of size bytes, or nil when
// w is not a terminal (a pipe or a file: logs and scripts get no progress) or the upload is
// small.
func newUploadProgress(w io.Writer, size int64) *uploadProgress {
	if size < progressMinBytes || !isTerminal(w) {
		return nil
	}
	return &uploadProgress{w: w, now: time.Now, start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// update redraws the line, at most every progressEvery and always at the end.
func (p *uploadProgress) update(sent, total int64) {
	now := p.now()
	if sent < total && p.drawn && now.Sub(p.last) < progressEvery {
		return
	}
	p.last, p.drawn = now, true
	fmt.Fprintf(p.w, "\r%s\x1b[K", formatProgress(sent, total, now.Sub(p.start)))
}

// done ends the progress line, if one was drawn.
func (p *uploadProgress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// formatProgress says how far an upload is: "Foundations INFO: Uploading the bundle: 12.0 MB
// of 100.0 MB (12%), 4.0 MB/s, 22s left".
func formatProgress(sent, total int64, elapsed time.Duration) string {
	pct := 100
	if total > 0 {
		pct = int(sent * 100 / total)
	}
	line := fmt.Sprintf("Foundations INFO: Uploading the bundle: %s of %s (%d%%)", humanSize(sent), humanSize(total), pct)
	secs := elapsed.Seconds()
	if secs <= 0 || sent <= 0 {
		return line
	}
	rate := float64(sent) / secs
	line += fmt.Sprintf(", %s/s", humanSize(int64(rate)))
	if sent < total {
		left := time.Duration(float64(total-sent) / rate * float64(time.Second))
		line += fmt.Sprintf(", %s left", span(left.Round(time.Second)))
	} else {
		line += fmt.Sprintf(", done in %s", span(elapsed))
	}
	return line
}
