// Package fake is an executor for unit tests of the job service and the scheduler: it runs
// nothing, and each job behaves as its own command says, so a test describes a misbehaving
// job in the job itself (the idea of nomad's mock driver). Command words, all optional:
//
//	output=TEXT         appended to the job's log when it starts
//	run_for=DURATION    end by itself after DURATION (default: at once)
//	block               run until the test calls Exit, or the job is stopped
//	exit_code=N         the exit code when it ends by itself (default 0)
//	start_error=TEXT    Start fails with TEXT
//	ignore_sigterm      a stop only ends it when the grace period is over (a kill)
//	pending=TEXT        the engine has still to place the job (an executor.Placer whose
//	                    reason is TEXT) until the test calls Place; it then runs as told
//
// Jobs live in the Executor value: Recover finds a job started by the same Executor (a
// server restart that kept the job running), and fails with executor.ErrGone otherwise. It
// must only be used by tests.
package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// Executor is the fake executor.
type Executor struct {
	mu   sync.Mutex
	jobs map[string]*handle
	// started receives the id of every job that started.
	started chan string
	// Specs holds the spec of every job started, by id.
	specs map[string]*executor.Spec
}

var _ executor.Executor = (*Executor)(nil)

// New returns a fake executor.
func New() *Executor {
	return &Executor{jobs: map[string]*handle{}, started: make(chan string, 1024), specs: map[string]*executor.Spec{}}
}

// Name implements executor.Executor.
func (e *Executor) Name() string { return "fake" }

// behaviour is what a job's command asks of the fake.
type behaviour struct {
	output        string
	runFor        time.Duration
	block         bool
	exitCode      int
	startError    string
	ignoreSIGTERM bool
	pending       string
}

func parse(command []string) (behaviour, error) {
	var b behaviour
	for _, w := range command {
		k, v, _ := strings.Cut(w, "=")
		var err error
		switch k {
		case "output":
			b.output = v
		case "run_for":
			b.runFor, err = time.ParseDuration(v)
		case "block":
			b.block = true
		case "exit_code":
			b.exitCode, err = strconv.Atoi(v)
		case "start_error":
			b.startError = v
		case "ignore_sigterm":
			b.ignoreSIGTERM = true
		case "pending":
			b.pending = v
		default:
			err = errors.New("unknown word")
		}
		if err != nil {
			return b, fmt.Errorf("fake executor: command word %q: %v", w, err)
		}
	}
	return b, nil
}

// Start implements executor.Executor.
func (e *Executor) Start(ctx context.Context, spec *executor.Spec) (executor.Handle, error) {
	b, err := parse(spec.Job.Command)
	if err != nil {
		return nil, err
	}
	if b.startError != "" {
		return nil, errors.New(b.startError)
	}
	if b.output != "" {
		f, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(b.output + "\n")
		if err := errors.Join(err, f.Close()); err != nil {
			return nil, err
		}
	}
	h := &handle{id: spec.Job.ID, b: b, done: make(chan struct{}), placed: make(chan struct{})}
	e.mu.Lock()
	e.jobs[h.id] = h
	e.specs[h.id] = spec
	e.mu.Unlock()
	if b.pending == "" {
		h.place()
	}
	if !b.block {
		go func() {
			<-h.placed
			select {
			case <-time.After(b.runFor):
				h.end(executor.Result{ExitCode: b.exitCode})
			case <-h.done:
			}
		}()
	}
	e.started <- h.id
	return h.exposed(), nil
}

// Place has the engine place a job started with pending=TEXT: it runs from now on.
func (e *Executor) Place(id string) {
	e.mu.Lock()
	h := e.jobs[id]
	e.mu.Unlock()
	if h != nil {
		h.place()
	}
}

// Recover implements executor.Executor.
func (e *Executor) Recover(ctx context.Context, job *atlas.Job, logPath string) (executor.Handle, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h := e.jobs[job.ID]; h != nil && job.RunInfo == h.RunInfo() {
		return h.exposed(), nil
	}
	return nil, fmt.Errorf("%w: no fake job %s", executor.ErrGone, job.ID)
}

// Started waits until a job starts and returns its id, or "" when ctx ends first.
func (e *Executor) Started(ctx context.Context) string {
	select {
	case id := <-e.started:
		return id
	case <-ctx.Done():
		return ""
	}
}

// Spec returns the spec a job was started with (nil if it never started).
func (e *Executor) Spec(id string) *executor.Spec {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.specs[id]
}

// Exit ends a running job with the exit code, as if it exited by itself.
func (e *Executor) Exit(id string, code int) {
	e.mu.Lock()
	h := e.jobs[id]
	e.mu.Unlock()
	if h != nil {
		h.end(executor.Result{ExitCode: code})
	}
}

// Stops returns how many times a job was asked to stop.
func (e *Executor) Stops(id string) int {
	e.mu.Lock()
	h := e.jobs[id]
	e.mu.Unlock()
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stops
}

// Released reports whether the scheduler released a job's resources.
func (e *Executor) Released(id string) bool {
	e.mu.Lock()
	h := e.jobs[id]
	e.mu.Unlock()
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.released
}

type handle struct {
	id     string
	b      behaviour
	done   chan struct{}
	placed chan struct{}

	mu       sync.Mutex
	res      executor.Result
	ended    bool
	stops    int
	released bool
	since    time.Time // when it was placed; zero if it ended before
}

func (h *handle) end(res executor.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended {
		return
	}
	h.ended, h.res = true, res
	close(h.done)
	h.placeLocked()
}

func (h *handle) place() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.placeLocked()
}

func (h *handle) placeLocked() {
	select {
	case <-h.placed:
	default:
		if !h.ended {
			h.since = time.Now() // placed, not ended before it ran
		}
		close(h.placed)
	}
}

// exposed is the handle as the scheduler sees it: a Placer for a job started pending.
func (h *handle) exposed() executor.Handle {
	if h.b.pending != "" {
		return placing{h}
	}
	return h
}

// placing is the handle of a job the engine has still to place.
type placing struct{ *handle }

var _ executor.Placer = placing{}

// Placed implements executor.Placer.
func (p placing) Placed() <-chan struct{} { return p.placed }

// Since implements executor.Placer.
func (p placing) Since() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.since
}

// Pending implements executor.Placer.
func (p placing) Pending() string {
	select {
	case <-p.placed:
		return ""
	default:
		return p.b.pending
	}
}

// RunInfo implements executor.Handle.
func (h *handle) RunInfo() string {
	b, _ := json.Marshal(struct {
		executor.Worker
		ID string `json:"id"`
	}{executor.Worker{Worker: "fake " + h.id}, h.id})
	return string(b)
}

// Wait implements executor.Handle.
func (h *handle) Wait(ctx context.Context) (executor.Result, error) {
	select {
	case <-h.done:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.res, nil
	case <-ctx.Done():
		return executor.Result{}, ctx.Err()
	}
}

// Stop implements executor.Handle: SIGTERM ends the job at once with 143, unless it ignores
// SIGTERM; then it is killed (137) when the grace period is over.
func (h *handle) Stop(grace time.Duration) error {
	h.mu.Lock()
	h.stops++
	h.mu.Unlock()
	if !h.b.ignoreSIGTERM {
		h.end(executor.Result{ExitCode: 143, Reason: "killed by signal SIGTERM"})
		return nil
	}
	go func() {
		select {
		case <-time.After(grace):
			h.end(executor.Result{ExitCode: 137, Reason: "killed by signal SIGKILL", Killed: true})
		case <-h.done:
		}
	}()
	return nil
}

// Release implements executor.Handle.
func (h *handle) Release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released = true
	return nil
}
