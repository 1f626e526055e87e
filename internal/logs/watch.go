// Waking followers: one inotify watch of the log directory wakes every follower of a job when
// its log is written to, by the job itself, a container or the server, instead of each
// follower polling the file.

package logs

import (
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watcher wakes the followers of each job when the job's log changes.
type watcher struct {
	dir string

	once sync.Once
	fd   int
	ok   bool // inotify works; without it followers look every PollInterval

	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{} // job id -> followers
}

// PollInterval is how often a follower looks for new output when the system cannot tell it.
const PollInterval = 50 * time.Millisecond

// follow returns a channel that receives after the job's log changed (it may also receive
// when nothing did), a fallback ticker's channel (nil when inotify works), and a function that
// ends the subscription.
func (w *watcher) follow(jobID string) (<-chan struct{}, <-chan time.Time, func()) {
	w.once.Do(w.start)
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs[jobID] == nil {
		w.subs[jobID] = map[chan struct{}]struct{}{}
	}
	w.subs[jobID][ch] = struct{}{}
	w.mu.Unlock()
	var tick *time.Ticker
	var tc <-chan time.Time
	if !w.ok {
		tick = time.NewTicker(PollInterval)
		tc = tick.C
	}
	return ch, tc, func() {
		if tick != nil {
			tick.Stop()
		}
		w.mu.Lock()
		delete(w.subs[jobID], ch)
		if len(w.subs[jobID]) == 0 {
			delete(w.subs, jobID)
		}
		w.mu.Unlock()
	}
}

func (w *watcher) start() {
	w.subs = map[string]map[chan struct{}]struct{}{}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return
	}
	if _, err := unix.InotifyAddWatch(fd, w.dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return
	}
	w.fd, w.ok = fd, true
	go w.read()
}

// read turns inotify events into wake-ups, for as long as the server runs.
func (w *watcher) read() {
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			w.wakeAll() // followers fall back to their safety checks
			return
		}
		woken := map[string]bool{}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(raw), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if id, ok := strings.CutSuffix(filepath.Base(name), ".log"); ok && !woken[id] {
				woken[id] = true
				w.wake(id)
			}
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				w.wakeAll()
			}
		}
	}
}

func (w *watcher) wake(jobID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[jobID] {
		select {
		case ch <- struct{}{}:
		default: // already due to look
		}
	}
}

func (w *watcher) wakeAll() {
	w.mu.Lock()
	ids := make([]string, 0, len(w.subs))
	for id := range w.subs {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	for _, id := range ids {
		w.wake(id)
	}
}
