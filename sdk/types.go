package sdk

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Job states.
const (
	StateQueued    = "queued"
	StateStarting  = "starting"
	StateRunning   = "running"
	StateStopping  = "stopping" // a stop is under way: signal, grace period, kill, archive
	StateCompleted = "completed"
	StateFailed    = "failed"
	StateStopped   = "stopped"
)

// Finished reports whether a state is terminal.
func Finished(state string) bool {
	return state == StateCompleted || state == StateFailed || state == StateStopped
}

// Worker is a job's container settings (job.config.yaml's worker block).
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

// JobSpec is the body of POST /api/v1/jobs. Fields left empty come from JobConfig (the raw
// job.config.yaml, parsed by the server), then from defaults.
type JobSpec struct {
	// ID may be set by the client (a UUID) so that a retried submission is not queued twice.
	ID string `json:"id,omitempty"`
	// Name is the job's human-readable name (at most 100 printable characters); when empty the
	// server makes one up ("brave-otter").
	Name       string         `json:"name,omitempty"`
	Project    string         `json:"project,omitempty"`
	User       string         `json:"user,omitempty"`
	Command    []string       `json:"command,omitempty"`
	Entrypoint []string       `json:"entrypoint,omitempty"`
	Params     map[string]any `json:"params,omitempty"`
	NumGPUs    *int           `json:"num_gpus,omitempty"`
	RAMGB      *float64       `json:"ram_gb,omitempty"`
	Priority   *int           `json:"priority,omitempty"`
	Worker     *Worker        `json:"worker,omitempty"`
	// BundleDigest names an uploaded bundle ("sha256:<hex>").
	BundleDigest string `json:"bundle_digest,omitempty"`
	// JobConfig is the content of the job folder's job.config.yaml, if any.
	JobConfig string `json:"job_config,omitempty"`
	// Mode is "scheduled" (default: the server runs it) or "execution" (a script started by
	// hand records itself; nothing is queued).
	Mode     string `json:"mode,omitempty"`
	ParentID string `json:"parent_id,omitempty"`
}

// SubmitResult is the answer to a submission or a clone.
type SubmitResult struct {
	// ID is the new job's id (Job.ID).
	ID  string `json:"id"`
	Job *Job   `json:"job"`
	// Token lets an execution-mode script write to its own job.
	Token string `json:"token,omitempty"`
	// Warnings are non-fatal problems, such as unknown keys in job.config.yaml.
	Warnings []string `json:"warnings,omitempty"`
}

// CloneSpec is the body of POST /api/v1/jobs/{id}/clone: the new job is a copy of the job id
// with these changes.
type CloneSpec struct {
	// ID may be set by the client, as in JobSpec, so that a retried clone is not queued twice.
	ID string `json:"id,omitempty"`
	// Params replace or add keys of the source job's submitted params.
	Params map[string]any `json:"params,omitempty"`
	// Name is the new job's name ("": one made up).
	Name string `json:"name,omitempty"`
}

// Metric is the summary of one metric of a job.
type Metric struct {
	Key      string   `json:"key"`
	Last     any      `json:"last"`
	LastStep int64    `json:"last_step"`
	Count    int64    `json:"count"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
}

// Artifact is a file saved by a job.
type Artifact struct {
	Key       string    `json:"key"`
	Filename  string    `json:"filename"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	URL       string    `json:"url,omitempty"`
}

// Job is a job as the API shows it.
type Job struct {
	ID string `json:"id"`
	// Name is the job's human-readable name; "" for jobs stored before jobs had names.
	Name            string         `json:"name"`
	Project         string         `json:"project"`
	User            string         `json:"user"`
	State           string         `json:"state"`
	Mode            string         `json:"mode"`
	Priority        int            `json:"priority"`
	ParentID        string         `json:"parent_id,omitempty"`
	Command         []string       `json:"command"`
	Entrypoint      []string       `json:"entrypoint,omitempty"`
	SubmittedParams map[string]any `json:"submitted_params,omitempty"`
	NumGPUs         int            `json:"num_gpus"`
	RAMGB           float64        `json:"ram_gb,omitempty"`
	Worker          Worker         `json:"worker"`
	RunAs           string         `json:"run_as,omitempty"`
	BundleDigest    string         `json:"bundle_digest,omitempty"`
	ArchiveDigest   string         `json:"archive_digest,omitempty"`
	Executor        string         `json:"executor,omitempty"`
	// WorkerID names what runs the job: "pid 1234" or "container 0123456789ab".
	WorkerID string   `json:"worker_id,omitempty"`
	GPUIDs   []string `json:"gpu_ids,omitempty"`
	ExitCode *int     `json:"exit_code,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// StopRequested is set while the job is stopping (kept for older clients: state says it).
	StopRequested bool       `json:"stop_requested,omitempty"`
	StoppingAt    *time.Time `json:"stopping_at,omitempty"`
	// ReportedExitCode is how the job's command ended, as its in-job side reported it (jobs
	// that run where the server cannot watch their process).
	ReportedExitCode *int       `json:"reported_exit_code,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
	StartedAt        *time.Time `json:"started_at,omitempty"`
	FinishedAt       *time.Time `json:"finished_at,omitempty"`
	// DurationSeconds runs to now for a running job.
	DurationSeconds *float64 `json:"duration_seconds,omitempty"`

	Params    map[string]any    `json:"params"`
	Metrics   []Metric          `json:"metrics"`
	Tags      map[string]string `json:"tags"`
	Artifacts []Artifact        `json:"artifacts,omitempty"`
	// KeysTruncated is set in a listing when Params or Metrics hold only the job's first
	// 1,000 (by name); GET /api/v1/jobs/{id} has them all.
	KeysTruncated bool `json:"keys_truncated,omitempty"`

	// QueuePosition (1-based) and WaitingReason are set for queued jobs.
	QueuePosition int    `json:"queue_position,omitempty"`
	WaitingReason string `json:"waiting_reason,omitempty"`

	// SearchID is the search the job is a trial of, and SearchTrial its number there.
	SearchID    string `json:"search_id,omitempty"`
	SearchTrial int    `json:"search_trial,omitempty"`
}

// JobList is a page of jobs.
type JobList struct {
	Jobs  []*Job `json:"jobs"`
	Total int    `json:"total"`
	// Params and Metrics list the keys used in the project, when the list is for one project.
	Params  []string `json:"params,omitempty"`
	Metrics []string `json:"metrics,omitempty"`
	// ColumnsTruncated says Params or Metrics were cut to their first 5,000 names.
	ColumnsTruncated bool `json:"columns_truncated,omitempty"`
}

// Filter narrows a job list; see the OpenAPI description of GET /api/v1/jobs.
type Filter struct {
	Field  string   `json:"field"`
	Op     string   `json:"op"`
	Values []string `json:"values,omitempty"`
	Min    *float64 `json:"min,omitempty"`
	Max    *float64 `json:"max,omitempty"`
}

// ListOptions selects jobs.
type ListOptions struct {
	Project string
	States  []string
	Filters []Filter
	Sort    string
	Desc    bool
	Limit   int
	Offset  int
	// Full asks for params, metrics and tags of each job.
	Full bool
}

// MetricSeries holds the points of one metric.
type MetricSeries struct {
	Key         string        `json:"key"`
	Total       int           `json:"total"`
	Downsampled bool          `json:"downsampled"`
	Points      []MetricPoint `json:"points"`
}

// MetricPoint is one logged value.
type MetricPoint struct {
	Step  int64   `json:"step"`
	Value any     `json:"value"`
	Time  float64 `json:"time"`
}

// TrackBatch is the body of POST /api/v1/jobs/{id}/track. Writer and Seq make retries safe:
// the server applies each (writer, seq) once.
type TrackBatch struct {
	Writer    string                 `json:"writer"`
	Seq       int64                  `json:"seq"`
	Params    map[string]any         `json:"params,omitempty"`
	Metrics   map[string]MetricBatch `json:"metrics,omitempty"`
	Tags      map[string]string      `json:"tags,omitempty"`
	Artifacts []Artifact             `json:"artifacts,omitempty"`
}

// MetricBatch holds new points of one metric, column-wise. Steps and Times may be empty.
//
// Each column may come packed instead: ValuesF64 for Values (finite numbers only), StepsI64
// for Steps, TimesNs for Times (unix nanoseconds). Packed columns cost a fraction of JSON
// numbers to write and to read, which matters at a million points a second. A column comes
// one way or the other, not both; the forms mix freely across columns.
type MetricBatch struct {
	Values    []any     `json:"values,omitempty"`
	Steps     []int64   `json:"steps,omitempty"`
	Times     []float64 `json:"times,omitempty"`
	ValuesF64 Packed    `json:"values_f64,omitempty"`
	StepsI64  Packed    `json:"steps_i64,omitempty"`
	TimesNs   Packed    `json:"times_ns,omitempty"`
}

// Packed is a packed column of a MetricBatch: 8-byte little-endian numbers (float64 or int64)
// one after the other; in JSON, a string of their hexadecimal digits (hex is several times
// cheaper than base64 for Python to write).
type Packed []byte

// MarshalJSON implements json.Marshaler.
func (p Packed) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 2*len(p)+2)
	out = append(out, '"')
	out = hex.AppendEncode(out, p)
	return append(out, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (p *Packed) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	return p.setHex([]byte(s))
}

// setHex sets p from hexadecimal digits.
func (p *Packed) setHex(digits []byte) error {
	out := make([]byte, hex.DecodedLen(len(digits)))
	if _, err := hex.Decode(out, digits); err != nil {
		return fmt.Errorf("a packed column is not hexadecimal digits: %w", err)
	}
	*p = out
	return nil
}

// TrackResult answers a track batch.
type TrackResult struct {
	Applied bool `json:"applied"`
}

// FinishRequest is sent by an execution-mode script when it ends.
type FinishRequest struct {
	State         string `json:"state"`
	ExitCode      *int   `json:"exit_code,omitempty"`
	Reason        string `json:"reason,omitempty"`
	ArchiveDigest string `json:"archive_digest,omitempty"`
	// Discard removes the job instead: the script was a driver (it submitted jobs and tracked
	// nothing itself), not a job. Only the job's own token may ask for it.
	Discard bool `json:"discard,omitempty"`
}

// ExitReport is sent by the in-job side of a job that runs where the server's files are not
// (POST /api/v1/jobs/{id}/exit): how the job's command ended, and the archive it uploaded.
type ExitReport struct {
	ExitCode      *int   `json:"exit_code"`
	ArchiveDigest string `json:"archive_digest,omitempty"`
}

// HeartbeatResult tells a script whether it was asked to stop.
type HeartbeatResult struct {
	State string `json:"state"`
	Stop  bool   `json:"stop"`
}

// Queue is the scheduler's view: queued jobs in order, and running jobs.
type Queue struct {
	Queued []*Job `json:"queued"`
	// QueuedTotal counts every queued job; Queued holds the first ones (see the limit).
	QueuedTotal int    `json:"queued_total"`
	Running     []*Job `json:"running"`
	Workers     int    `json:"workers"`
	GPUs        int    `json:"gpus"`
	Executor    string `json:"executor"`
}

// ClearQueueResult says what clear-queue did: the queued jobs it removed, and the jobs it
// asked to stop that had not started running (handed to a cluster that had not placed them).
type ClearQueueResult struct {
	Removed    int      `json:"removed"`
	IDs        []string `json:"ids"`
	Stopped    int      `json:"stopped"`
	StoppedIDs []string `json:"stopped_ids"`
}

// Project is a project with counts of its jobs by state.
type Project struct {
	Name         string    `json:"name"`
	CreatedAt    time.Time `json:"created_at"`
	LastActivity time.Time `json:"last_activity"`
	Description  string    `json:"description"`
	// DescriptionBy and DescriptionAt say who last edited the description, and when.
	DescriptionBy string         `json:"description_by,omitempty"`
	DescriptionAt *time.Time     `json:"description_at,omitempty"`
	Counts        map[string]int `json:"counts"`
	Tags          []string       `json:"tags"`
	Users         []string       `json:"users"`
	Jobs          int            `json:"jobs"`
}

// Values holds columns of values of a project's jobs: entry i of every slice is job IDs[i].
type Values struct {
	IDs       []string         `json:"ids"`
	States    []string         `json:"states"`
	CreatedAt []time.Time      `json:"created_at"`
	Columns   map[string][]any `json:"columns"`
}

// Note is a comment on a project.
type Note struct {
	ID        int64     `json:"id"`
	Author    string    `json:"author"`
	Message   string    `json:"message"`
	CreatedAt time.Time `json:"created_at"`
}

// DescriptionEdit is one edit of a project's description.
type DescriptionEdit struct {
	ID          int64     `json:"id"`
	Editor      string    `json:"editor"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// Health is the answer of GET /api/v1/health.
type Health struct {
	Status   string `json:"status"`
	Auth     bool   `json:"auth"`
	Version  string `json:"version"`
	Executor string `json:"executor"`
	Workers  int    `json:"workers"`
	GPUs     int    `json:"gpus"`
}

// Who is the answer of GET /api/v1/whoami.
type Who struct {
	Auth  bool   `json:"auth"`
	User  string `json:"user"`
	Admin bool   `json:"admin"`
	Job   string `json:"job,omitempty"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// Search states.
const (
	SearchRunning   = "running"
	SearchStopping  = "stopping" // its trials are being stopped
	SearchCompleted = "completed"
	SearchStopped   = "stopped"
	SearchFailed    = "failed"
)

// SearchFinished reports whether a search state is terminal.
func SearchFinished(state string) bool {
	return state == SearchCompleted || state == SearchStopped || state == SearchFailed
}

// SearchSpec is the body of POST /api/v1/searches: the job every trial runs (as for POST
// /api/v1/jobs, without params, which each trial gets from the search), and the search.
type SearchSpec struct {
	// ID may be set by the client so that a retried submission does not start two searches.
	ID  string  `json:"id,omitempty"`
	Job JobSpec `json:"job"`
	// Config is the search: YAML (a file of its own, or with a search: section) or a JSON
	// object. Empty: the search: section of Job.JobConfig.
	Config string `json:"config,omitempty"`
	// ConfigName names Config in error messages (its file name).
	ConfigName string `json:"config_name,omitempty"`
}

// SearchSubmitResult is the answer to a search's submission.
type SearchSubmitResult struct {
	Search *Search `json:"search"`
	// Warnings are non-fatal problems of the job's or the search's config (unknown keys).
	Warnings []string `json:"warnings,omitempty"`
}

// SearchConfig is a search as parsed when it was submitted, with the seed it drew.
type SearchConfig struct {
	Method              string `json:"method"`
	Metric              string `json:"metric"`
	SmallerIsBetter     bool   `json:"smaller_is_better"`
	TimeAttribute       string `json:"time_attribute"`
	MaxTrials           int    `json:"max_trials"`
	MaxConcurrentTrials int    `json:"max_concurrent_trials"`
	Seed                *int64 `json:"seed,omitempty"`
	ReductionFactor     int    `json:"reduction_factor,omitempty"`
	MinSteps            int64  `json:"min_steps,omitempty"`
	MaxSteps            int64  `json:"max_steps,omitempty"`
	// Params is the space: {"type": "dict", "fields": {...}}, with leaves such as
	// {"type": "uniform", "min": 0, "max": 1}.
	Params map[string]any `json:"params"`
}

// Search is a hyperparameter search as the API shows it.
type Search struct {
	ID      string       `json:"id"`
	Project string       `json:"project"`
	User    string       `json:"user"`
	State   string       `json:"state"`
	Reason  string       `json:"reason,omitempty"`
	Config  SearchConfig `json:"config"`
	// Rungs are the steps at which asha and median judge trials.
	Rungs []int64 `json:"rungs,omitempty"`
	// TrialsPlanned is how many trials the search runs in all; TrialsSubmitted how many it
	// has queued so far.
	TrialsPlanned   int `json:"trials_planned"`
	TrialsSubmitted int `json:"trials_submitted"`
	// Counts are the trials by state.
	Counts map[string]int `json:"counts"`
	// Best is the trial with the best value of the metric so far.
	Best *SearchTrial `json:"best,omitempty"`
	// Warnings say what looks wrong, such as a metric no trial logged.
	Warnings   []string   `json:"warnings,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Trials are every trial still stored, by number (GET /api/v1/searches/{id} only).
	Trials []SearchTrial `json:"trials,omitempty"`
	// Version changes whenever anything shown here changes (for ?wait_since=).
	Version string `json:"version"`
}

// SearchTrial is one trial of a search: a job and what the search made of it.
type SearchTrial struct {
	Trial  int            `json:"trial"`
	JobID  string         `json:"job_id"`
	State  string         `json:"state"`
	Reason string         `json:"reason,omitempty"`
	Params map[string]any `json:"params"`
	// Value is the best value of the metric the trial logged (the least when smaller is
	// better); Last is its last value, LastStep the step of that, Count how many it logged.
	Value    *float64 `json:"value,omitempty"`
	Last     *float64 `json:"last,omitempty"`
	LastStep int64    `json:"last_step"`
	Count    int64    `json:"count"`
	// Rungs are the search's decisions about the trial, rung by rung.
	Rungs []SearchRung `json:"rungs,omitempty"`
	// StoppedAt is the step of the rung at which the search stopped the trial.
	StoppedAt  *int64     `json:"stopped_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// SearchRung is a search's decision about a trial at one rung.
type SearchRung struct {
	Rung  int     `json:"rung"`
	Step  int64   `json:"step"`
	Value float64 `json:"value"`
	Stop  bool    `json:"stop"`
}
