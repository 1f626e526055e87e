// Package store defines what the server needs from its database, independent of the backend.
//
// Every backend (internal/store/sqlite, internal/store/postgres) passes the one conformance suite in
// internal/store/storetest. Rules every implementation keeps:
//   - a state change is one call that checks the previous state (atlas.CanTransition) and
//     returns atlas.ErrConflict when another writer got there first;
//   - a tracking batch is applied at most once per (job, writer, seq), in one transaction with
//     the record of its sequence number, so a retried batch is never stored twice;
//   - missing rows are atlas.ErrNotFound;
//   - a job of a search (atlas.Job.SearchID) is inserted only while its search is running, in
//     one transaction with its tag search=<id> and the search's count of submitted trials.
//
// No SQL lives outside the backend packages, except the job listing's (JobList, JobValues),
// which internal/store/joblist writes once for both.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Store is the database of jobs, their tracked values and projects.
type Store interface {
	// JobInsert stores a new job and assigns its Seq.
	JobInsert(ctx context.Context, j *atlas.Job) error
	JobGet(ctx context.Context, id string) (*atlas.Job, error)
	// JobIDsByPrefix returns the ids of jobs that start with prefix (the job whose id is
	// prefix itself first, then by length and id), at most limit of them, and how many there
	// are in all.
	JobIDsByPrefix(ctx context.Context, prefix string, limit int) ([]string, int, error)
	// JobList returns one page of jobs and the total number matching (-1 with SkipTotal).
	JobList(ctx context.Context, p *JobListParams) ([]*atlas.Job, int, error)
	// JobCount returns how many jobs JobList would count as its total.
	JobCount(ctx context.Context, p *JobListParams) (int, error)
	// JobValues returns the given columns ("param:<key>", "metric:<key>": the last value) of
	// every job matching p, in submit order; Sort, Limit and Offset are ignored. It feeds
	// charts over a whole project without sending whole jobs.
	JobValues(ctx context.Context, p *JobListParams, columns []string) (*Values, error)
	// JobsInState returns the jobs in any of the states, in queue order (priority desc, seq asc).
	JobsInState(ctx context.Context, states ...atlas.State) ([]*atlas.Job, error)
	// JobQueue returns the queued jobs in queue order (priority desc, seq asc), with only what
	// the scheduler needs to decide. A limit above 0 returns only the first limit jobs (read
	// through an index in queue order, so the head costs the same however long the queue is).
	JobQueue(ctx context.Context, limit int) ([]QueueEntry, error)
	// JobQueueHead returns the first limit queued jobs, whole, in queue order, through the same
	// index as JobQueue.
	JobQueueHead(ctx context.Context, limit int) ([]*atlas.Job, error)
	// JobQueuePosition returns a queued job's place in the queue (1: the next to start),
	// counted in the queue's index without reading the jobs ahead; 0 when it is not queued.
	JobQueuePosition(ctx context.Context, id string) (int, error)
	// JobQueueOldest returns when the job queued longest was submitted (zero when none is
	// queued), through an index.
	JobQueueOldest(ctx context.Context) (time.Time, error)
	// JobCounts counts the jobs in each of the states (none: every state), through an index.
	JobCounts(ctx context.Context, states ...atlas.State) (map[atlas.State]int, error)
	// JobSetState moves a job from one of p.From (or any state that may move to p.To, when
	// From is empty) to p.To, with the fields that go with it.
	JobSetState(ctx context.Context, p *JobSetStateParams) (*atlas.Job, error)
	JobSetRunInfo(ctx context.Context, id, runInfo string) error
	// JobSetArchive records a job's archive without changing its state.
	JobSetArchive(ctx context.Context, id, digest string) error
	JobHeartbeat(ctx context.Context, id string, at time.Time) error
	// JobReportExit records how a job's command ended, as its in-job side reported it, and the
	// archive it uploaded (when not empty), if the job is in one of the states in; a job in
	// any other state is a StateConflict.
	JobReportExit(ctx context.Context, id string, code int, archive string, in []atlas.State) (*atlas.Job, error)
	// JobDelete removes a job in one of the states in, and everything tracked for it; a job in
	// any other state is a StateConflict. It returns the job as it was, so the caller can
	// clean up its files.
	JobDelete(ctx context.Context, id string, in []atlas.State) (*atlas.Job, []atlas.Artifact, error)
	// JobsDeleteQueued removes every queued job (of one project and one user, when they are not
	// empty) and returns them.
	JobsDeleteQueued(ctx context.Context, project, user string) ([]*atlas.Job, error)
	// BlobRefs counts jobs, artifacts and unfinished searches (whose next trials need their
	// bundle) that refer to a blob.
	BlobRefs(ctx context.Context, digest string) (int, error)

	// JobsImport stores finished jobs with what they tracked, all or none, in one transaction:
	// the bulk path for filling a project with many jobs at once (a database of a job that
	// ran elsewhere, a benchmark's project). Each job must be finished and its id new; seqs
	// are assigned in the order given. A job in a search is refused (searches count their
	// own trials).
	JobsImport(ctx context.Context, jobs []ImportedJob) error

	// TrackBatch applies a batch of tracked values. It returns false, and stores nothing, when
	// the batch's (writer, seq) was applied before.
	TrackBatch(ctx context.Context, b *TrackBatch) (bool, error)
	Params(ctx context.Context, jobIDs []string) (map[string]map[string]any, error)
	MetricSummaries(ctx context.Context, jobIDs []string) (map[string][]atlas.MetricSummary, error)
	MetricSeries(ctx context.Context, jobID, key string) ([]atlas.MetricPoint, error)
	Tags(ctx context.Context, jobIDs []string) (map[string]map[string]string, error)
	TagDelete(ctx context.Context, jobID, key string) error
	Artifacts(ctx context.Context, jobID string) ([]atlas.Artifact, error)

	ProjectList(ctx context.Context) ([]Project, error)
	ProjectGet(ctx context.Context, name string) (*Project, error)
	// ProjectSetDescription replaces a project's description and records the edit (who, when,
	// what) in its history, in one transaction.
	ProjectSetDescription(ctx context.Context, name, description, editor string) error
	// ProjectDescriptionHistory lists the edits of a project's description, newest first.
	ProjectDescriptionHistory(ctx context.Context, name string) ([]DescriptionEdit, error)
	// ProjectColumns lists the param and metric keys used by a project's jobs.
	ProjectColumns(ctx context.Context, name string) (params, metrics []string, err error)
	NoteAdd(ctx context.Context, n *Note) error
	Notes(ctx context.Context, project string) ([]Note, error)

	// SearchInsert stores a new search; ErrConflict if its id is taken.
	SearchInsert(ctx context.Context, s *atlas.Search) error
	SearchGet(ctx context.Context, id string) (*atlas.Search, error)
	// SearchList returns the searches of a project ("": every project) in any of the states
	// (none: every state), newest first.
	SearchList(ctx context.Context, project string, states ...atlas.SearchState) ([]*atlas.Search, error)
	// SearchSetState moves a search to another state (atlas.CanTransitionSearch), with a reason
	// when not empty; a search in a state that may not move there is a SearchStateError.
	SearchSetState(ctx context.Context, id string, to atlas.SearchState, reason string) (*atlas.Search, error)
	// SearchTrials returns the jobs of a search that still exist, by trial number.
	SearchTrials(ctx context.Context, id string) ([]*atlas.Job, error)
	// SearchRungAdd records a decision of a search and assigns its Seq; ErrConflict if the trial
	// already has one at that rung.
	SearchRungAdd(ctx context.Context, r *atlas.RungRecord) error
	// SearchRungs returns the decisions of a search in the order they were made.
	SearchRungs(ctx context.Context, id string) ([]atlas.RungRecord, error)

	// UserAdd creates a user; ErrConflict if the name is taken.
	UserAdd(ctx context.Context, name string, admin bool) (*User, error)
	UserList(ctx context.Context) ([]User, error)
	// TokenAdd stores a token's hash for a user; ErrNotFound for an unknown user.
	TokenAdd(ctx context.Context, user, hash, label string) (*Token, error)
	// TokenUser returns the user a token hash belongs to, and notes the token's use;
	// ErrNotFound for an unknown or revoked token.
	TokenUser(ctx context.Context, hash string) (*User, error)
	TokenList(ctx context.Context, user string) ([]Token, error)
	TokenRevoke(ctx context.Context, id int64) error

	Close() error
}

// StateConflict is the error of a change refused because of the state a job is in: an
// atlas.ErrConflict that names the state, for the caller to explain.
func StateConflict(j *atlas.Job) error {
	return &StateError{Job: j}
}

// StateError is a change refused because of the state Job is in.
type StateError struct{ Job *atlas.Job }

func (e *StateError) Error() string { return fmt.Sprintf("job %s is %s", e.Job.ID, e.Job.State) }
func (e *StateError) Unwrap() error { return atlas.ErrConflict }

// SearchStateConflict is the error of a change refused because of the state a search is in.
func SearchStateConflict(s *atlas.Search) error { return &SearchStateError{Search: s} }

// SearchStateError is a change refused because of the state Search is in.
type SearchStateError struct{ Search *atlas.Search }

func (e *SearchStateError) Error() string {
	return fmt.Sprintf("search %s is %s", e.Search.ID, e.Search.State)
}
func (e *SearchStateError) Unwrap() error { return atlas.ErrConflict }

// JobListParams selects and orders jobs.
type JobListParams struct {
	Project string
	States  []atlas.State
	Filters []Filter
	// Sort is a column: created_at (default), started_at, finished_at, duration, state, user,
	// id, name, project, "param:<key>" or "metric:<key>". Missing values sort last.
	Sort string
	Desc bool
	// Limit is the size of a page; 0 or less is every job. A negative Offset is ErrInvalid.
	Limit  int
	Offset int
	// SkipTotal leaves the total uncounted (JobList returns -1) when Limit is above 0: for a
	// caller that asks JobCount at the same time.
	SkipTotal bool
}

// Filter narrows a job list. Field is id, name, state, user, project, mode, created_at, started_at,
// finished_at, duration, "tag", "param:<key>" or "metric:<key>"; Op says how to match. A filter
// that does not apply to its field is ErrInvalid (sqlutil.ParseFilter decides), and so are more
// than joblist.MaxFilters of them.
type Filter struct {
	Field string
	// Op: "in" (Values, exact), "contains" (Values[0], ignoring the case of ASCII letters) —
	// both match text, so not times or durations; "range" (Min and/or Max) compares numbers:
	// times (unix seconds), durations (seconds), params and metrics; "exists" (the job has the
	// tag, param or metric key; for "tag", any tag).
	Op     string
	Values []string
	Min    *float64
	Max    *float64
}

// Values holds columns of many jobs, one entry per job in each slice; nil where a job has no
// value.
type Values struct {
	IDs       []string
	States    []atlas.State
	CreatedAt []time.Time
	Columns   map[string][]any
}

// QueueEntry is a queued job as the scheduler sees it.
type QueueEntry struct {
	ID        string
	NumGPUs   int
	CreatedAt time.Time
}

// JobSetStateParams are the fields of a state change. Zero values leave a field unchanged.
type JobSetStateParams struct {
	ID            string
	From          []atlas.State
	To            atlas.State
	At            time.Time
	Reason        string
	ExitCode      *int
	Executor      string
	GPUIDs        []string
	RunInfo       string
	ArchiveDigest string
}

// TrackBatch is one batch of values from one writer (an SDK instance) for one job.
type TrackBatch struct {
	JobID  string
	Writer string
	Seq    int64
	Params map[string]any
	// Metrics maps a key to its new points, in logging order. A negative Step means "the next
	// step": the number of points the job already has for that key.
	Metrics   map[string][]atlas.MetricPoint
	Tags      map[string]string
	Artifacts []atlas.Artifact
}

// ImportedJob is a finished job and what it tracked, for JobsImport. Track may be nil; its
// JobID, Writer and Seq are ignored.
type ImportedJob struct {
	Job   *atlas.Job
	Track *TrackBatch
}

// CheckImport returns an Invalid error naming the first job that JobsImport must refuse.
func CheckImport(jobs []ImportedJob) error {
	for i, ij := range jobs {
		switch j := ij.Job; {
		case j == nil:
			return atlas.Invalidf("imported job %d: no job", i)
		case j.ID == "" || j.Project == "":
			return atlas.Invalidf("imported job %d: id and project are required", i)
		case !j.State.Finished():
			return atlas.Invalidf("imported job %s: state %q is not finished", j.ID, j.State)
		case j.CreatedAt.IsZero() || j.FinishedAt == nil:
			return atlas.Invalidf("imported job %s: the times it was created and finished are required", j.ID)
		case j.SearchID != "":
			return atlas.Invalidf("imported job %s: a search's trial cannot be imported", j.ID)
		}
	}
	return nil
}

// Project is a project and a summary of its jobs.
type Project struct {
	Name         string    `json:"name"`
	CreatedAt    time.Time `json:"created_at"`
	LastActivity time.Time `json:"last_activity"`
	Description  string    `json:"description"`
	// DescriptionBy and DescriptionAt say who last edited the description, and when (nil:
	// never edited).
	DescriptionBy string              `json:"description_by"`
	DescriptionAt *time.Time          `json:"description_at"`
	Counts        map[atlas.State]int `json:"counts"`
	Tags          []string            `json:"tags"`
	Users         []string            `json:"users"`
}

// User is someone who may use the server when authentication is on.
type User struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
	Tokens    int       `json:"tokens"`
}

// Token is an API token of a user (its secret is never stored, only its hash).
type Token struct {
	ID         int64      `json:"id"`
	User       string     `json:"user"`
	Label      string     `json:"label"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Note is a comment on a project.
type Note struct {
	ID        int64     `json:"id"`
	Project   string    `json:"project"`
	Author    string    `json:"author"`
	Message   string    `json:"message"`
	CreatedAt time.Time `json:"created_at"`
}

// DescriptionEdit is one edit of a project's description.
type DescriptionEdit struct {
	ID          int64     `json:"id"`
	Project     string    `json:"project"`
	Editor      string    `json:"editor"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}
