// Package atlas is the domain vocabulary shared by every part of the server: jobs and their
// states, the allowed state transitions, tracked values, and the error kinds that the API maps to
// HTTP status codes and the CLI maps to exit codes.
//
// It must stay free of I/O and import only the standard library, so that the store, scheduler,
// executors and API can all depend on it without depending on each other.
package atlas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// State is the lifecycle state of a job. The same strings appear in the database, the API and
// the CLI.
type State string

// Job states. A scheduled job moves queued → starting → running → completed | failed | stopped,
// through stopping while a stop is under way (signal, grace period, kill, archive). A job
// recorded by a script run outside the scheduler (execution mode) starts in running.
const (
	StateQueued    State = "queued"
	StateStarting  State = "starting"
	StateRunning   State = "running"
	StateStopping  State = "stopping"
	StateCompleted State = "completed"
	StateFailed    State = "failed"
	StateStopped   State = "stopped"
)

// States lists every state in lifecycle order.
var States = []State{StateQueued, StateStarting, StateRunning, StateStopping, StateCompleted, StateFailed, StateStopped}

// transitions is the table of allowed state changes. A store refuses any other change with
// ErrConflict, so two writers racing on one job cannot both win.
var transitions = map[State][]State{
	StateQueued: {StateStarting, StateStopped, StateFailed},
	// A job handed to an engine may end before the server saw it run.
	StateStarting: {StateRunning, StateFailed, StateStopped, StateQueued, StateStopping, StateCompleted},
	StateRunning:  {StateCompleted, StateFailed, StateStopped, StateStopping},
	// A job asked to stop ends stopped however it exits; failed only when it is lost.
	StateStopping: {StateStopped, StateFailed},
}

// CanTransition reports whether a job may move from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Finished reports whether the state is terminal.
func (s State) Finished() bool {
	return s == StateCompleted || s == StateFailed || s == StateStopped
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, k := range States {
		if s == k {
			return true
		}
	}
	return false
}

// Mode says who runs a job: the server's scheduler, or a script the user started by hand.
type Mode string

const (
	// ModeScheduled jobs were submitted and are run by the server's executors.
	ModeScheduled Mode = "scheduled"
	// ModeExecution jobs were created by `python main.py` with `import foundations`; the SDK
	// reports their end.
	ModeExecution Mode = "execution"
)

// Worker holds the container settings of a job (job.config.yaml's `worker:` block).
type Worker struct {
	Image       string            `json:"image,omitempty"`
	Entrypoint  []string          `json:"entrypoint,omitempty"`
	Command     []string          `json:"command,omitempty"`
	WorkingDir  string            `json:"working_dir,omitempty"`
	Volumes     map[string]Volume `json:"volumes,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
}

// Volume is one host path mounted into a worker.
type Volume struct {
	Bind string `json:"bind"`
	Mode string `json:"mode"`
}

// Job is one unit of work and everything recorded about it, except its tracked values.
type Job struct {
	ID  string `json:"id"`
	Seq int64  `json:"seq"` // submit order, assigned by the store
	// Name is a human-readable name: the submitter's own, or one generated at submit ("" for
	// jobs stored before jobs had names). Not unique.
	Name     string `json:"name,omitempty"`
	Project  string `json:"project"`
	User     string `json:"user"`
	State    State  `json:"state"`
	Mode     Mode   `json:"mode"`
	Priority int    `json:"priority"`
	ParentID string `json:"parent_id,omitempty"`

	Command    []string       `json:"command"`
	Entrypoint []string       `json:"entrypoint,omitempty"`
	Params     map[string]any `json:"params,omitempty"` // written to foundations_job_parameters.json
	NumGPUs    int            `json:"num_gpus"`
	RAMGB      float64        `json:"ram_gb,omitempty"`
	Worker     Worker         `json:"worker"`
	// RunAs is "uid:gid" of the local user who submitted the job; containers run as that user
	// so the files they write belong to them. Empty: the server's own user.
	RunAs string `json:"run_as,omitempty"`

	BundleDigest  string `json:"bundle_digest,omitempty"`
	ArchiveDigest string `json:"archive_digest,omitempty"`

	Executor string   `json:"executor,omitempty"`
	GPUIDs   []string `json:"gpu_ids,omitempty"`
	ExitCode *int     `json:"exit_code,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// RunInfo is executor-private data needed to re-attach to the job after a restart.
	RunInfo   string `json:"-"`
	TokenHash string `json:"-"`

	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	HeartbeatAt *time.Time `json:"heartbeat_at,omitempty"`
	// StoppingAt is when a stop was asked for (the job became stopping).
	StoppingAt *time.Time `json:"stopping_at,omitempty"`
	// ReportedExitCode is how the job's command ended, as its in-job side reported it (jobs that
	// run where the server cannot watch their process).
	ReportedExitCode *int `json:"reported_exit_code,omitempty"`
	// SearchID is the search the job is a trial of ("": none), and SearchTrial its number in
	// that search (0, 1, ...).
	SearchID    string `json:"search_id,omitempty"`
	SearchTrial int    `json:"search_trial,omitempty"`
}

// MetricSummary is what a job table shows for one metric of one job.
type MetricSummary struct {
	Key      string   `json:"key"`
	Last     any      `json:"last"`
	LastStep int64    `json:"last_step"`
	Count    int64    `json:"count"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
}

// MetricPoint is one logged value of a metric.
type MetricPoint struct {
	Step  int64   `json:"step"`
	Value any     `json:"value"` // float64 or string
	Time  float64 `json:"time"`  // unix seconds
}

// Number is a tracked value (a MetricPoint's, a summary's last) as a float, when it is a
// number.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}

// Artifact is a file a job saved with save_artifact.
type Artifact struct {
	Key       string    `json:"key"`
	Filename  string    `json:"filename"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
}

// Errors the API maps to status codes and the CLI to messages. Wrap them with context.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	ErrTooLarge = errors.New("too large")
	ErrAuth     = errors.New("unauthorized")
	ErrDenied   = errors.New("forbidden")
)

// Invalidf returns an ErrInvalid with a message for the user.
func Invalidf(format string, args ...any) error {
	return &kindError{kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

// NotFoundf returns an ErrNotFound with a message for the user.
func NotFoundf(format string, args ...any) error {
	return &kindError{kind: ErrNotFound, msg: fmt.Sprintf(format, args...)}
}

// Conflictf returns an ErrConflict with a message for the user.
func Conflictf(format string, args ...any) error {
	return &kindError{kind: ErrConflict, msg: fmt.Sprintf(format, args...)}
}

// Deniedf returns an ErrDenied with a message for the user.
func Deniedf(format string, args ...any) error {
	return &kindError{kind: ErrDenied, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// OneLine is an error's message on one line, as users see it: runs of white space, line
// breaks included, become one space.
func OneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// Shorten quotes s for an error message (escaping its controls), cut to a readable length.
func Shorten(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:37]) + "..."
	}
	return strconv.Quote(s)
}

// EscapeControls escapes the control characters of s (as Go string literals do), so that a
// key, file name or path holding a newline cannot break a one-line message in two.
func EscapeControls(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SearchState is the lifecycle state of a hyperparameter search.
type SearchState string

// Search states. A search runs until it has run all its trials (completed), is stopped
// (stopping while its trials are being stopped, then stopped), or cannot go on (failed: a trial
// could not be submitted).
const (
	SearchRunning   SearchState = "running"
	SearchStopping  SearchState = "stopping"
	SearchCompleted SearchState = "completed"
	SearchStopped   SearchState = "stopped"
	SearchFailed    SearchState = "failed"
)

var searchTransitions = map[SearchState][]SearchState{
	SearchRunning:  {SearchStopping, SearchCompleted, SearchFailed},
	SearchStopping: {SearchStopped},
}

// CanTransitionSearch reports whether a search may move from one state to another.
func CanTransitionSearch(from, to SearchState) bool {
	for _, s := range searchTransitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Finished reports whether the search state is terminal.
func (s SearchState) Finished() bool {
	return s == SearchCompleted || s == SearchStopped || s == SearchFailed
}

// Search is a hyperparameter search: trials, each an ordinary job made from Template with
// params of its own, and what the searcher decided about them at its rungs.
type Search struct {
	ID      string      `json:"id"`
	Project string      `json:"project"`
	User    string      `json:"user"`
	State   SearchState `json:"state"`
	Reason  string      `json:"reason,omitempty"`
	// Config is the search as parsed and completed at submit (method, metric, params, the seed
	// that was drawn...), as JSON; internal/search reads it.
	Config []byte `json:"config"`
	// Template is the job every trial is a copy of, with the trial's own id and params.
	Template *Job `json:"template"`
	// Trials is how many trials were submitted so far (trial numbers 0..Trials-1).
	Trials     int        `json:"trials"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// RungRecord is a searcher's decision about one trial at one rung: the trial's metric value
// when it reached the rung's step, and whether it was stopped there. Seq is the order in which
// the search's decisions were made (assigned by the store).
type RungRecord struct {
	SearchID  string    `json:"search_id"`
	JobID     string    `json:"job_id"`
	Trial     int       `json:"trial"`
	Rung      int       `json:"rung"`
	Step      int64     `json:"step"`
	Value     float64   `json:"value"`
	Stop      bool      `json:"stop"`
	Seq       int64     `json:"seq"`
	CreatedAt time.Time `json:"created_at"`
}
