package telemetry

import (
	"context"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
)

// Store returns st with the time of each call recorded (atlas_store_duration_seconds, by
// method) and the points of each batch stored counted (atlas_tracked_points_total). Methods
// added to store.Store later pass through untimed until they are listed here.
func (t *Telemetry) Store(st store.Store) store.Store { return &timedStore{Store: st, t: t} }

type timedStore struct {
	store.Store
	t *Telemetry
}

func (ts *timedStore) JobInsert(ctx context.Context, j *atlas.Job) error {
	defer ts.t.observeStore("JobInsert", time.Now())
	return ts.Store.JobInsert(ctx, j)
}

func (ts *timedStore) JobGet(ctx context.Context, id string) (*atlas.Job, error) {
	defer ts.t.observeStore("JobGet", time.Now())
	return ts.Store.JobGet(ctx, id)
}

func (ts *timedStore) JobIDsByPrefix(ctx context.Context, prefix string, limit int) ([]string, int, error) {
	defer ts.t.observeStore("JobIDsByPrefix", time.Now())
	return ts.Store.JobIDsByPrefix(ctx, prefix, limit)
}

func (ts *timedStore) JobList(ctx context.Context, p *store.JobListParams) ([]*atlas.Job, int, error) {
	defer ts.t.observeStore("JobList", time.Now())
	return ts.Store.JobList(ctx, p)
}

func (ts *timedStore) JobCount(ctx context.Context, p *store.JobListParams) (int, error) {
	defer ts.t.observeStore("JobCount", time.Now())
	return ts.Store.JobCount(ctx, p)
}

func (ts *timedStore) JobValues(ctx context.Context, p *store.JobListParams, columns []string) (*store.Values, error) {
	defer ts.t.observeStore("JobValues", time.Now())
	return ts.Store.JobValues(ctx, p, columns)
}

func (ts *timedStore) JobsInState(ctx context.Context, states ...atlas.State) ([]*atlas.Job, error) {
	defer ts.t.observeStore("JobsInState", time.Now())
	return ts.Store.JobsInState(ctx, states...)
}

func (ts *timedStore) JobQueue(ctx context.Context, limit int) ([]store.QueueEntry, error) {
	defer ts.t.observeStore("JobQueue", time.Now())
	return ts.Store.JobQueue(ctx, limit)
}

func (ts *timedStore) JobQueueHead(ctx context.Context, limit int) ([]*atlas.Job, error) {
	defer ts.t.observeStore("JobQueueHead", time.Now())
	return ts.Store.JobQueueHead(ctx, limit)
}

func (ts *timedStore) JobQueuePosition(ctx context.Context, id string) (int, error) {
	defer ts.t.observeStore("JobQueuePosition", time.Now())
	return ts.Store.JobQueuePosition(ctx, id)
}

func (ts *timedStore) JobQueueOldest(ctx context.Context) (time.Time, error) {
	defer ts.t.observeStore("JobQueueOldest", time.Now())
	return ts.Store.JobQueueOldest(ctx)
}

func (ts *timedStore) JobCounts(ctx context.Context, states ...atlas.State) (map[atlas.State]int, error) {
	defer ts.t.observeStore("JobCounts", time.Now())
	return ts.Store.JobCounts(ctx, states...)
}

func (ts *timedStore) JobSetState(ctx context.Context, p *store.JobSetStateParams) (*atlas.Job, error) {
	defer ts.t.observeStore("JobSetState", time.Now())
	return ts.Store.JobSetState(ctx, p)
}

func (ts *timedStore) JobSetRunInfo(ctx context.Context, id, runInfo string) error {
	defer ts.t.observeStore("JobSetRunInfo", time.Now())
	return ts.Store.JobSetRunInfo(ctx, id, runInfo)
}

func (ts *timedStore) JobSetArchive(ctx context.Context, id, digest string) error {
	defer ts.t.observeStore("JobSetArchive", time.Now())
	return ts.Store.JobSetArchive(ctx, id, digest)
}

func (ts *timedStore) JobHeartbeat(ctx context.Context, id string, at time.Time) error {
	defer ts.t.observeStore("JobHeartbeat", time.Now())
	return ts.Store.JobHeartbeat(ctx, id, at)
}

func (ts *timedStore) JobReportExit(ctx context.Context, id string, code int, archive string, in []atlas.State) (*atlas.Job, error) {
	defer ts.t.observeStore("JobReportExit", time.Now())
	return ts.Store.JobReportExit(ctx, id, code, archive, in)
}

func (ts *timedStore) JobDelete(ctx context.Context, id string, in []atlas.State) (*atlas.Job, []atlas.Artifact, error) {
	defer ts.t.observeStore("JobDelete", time.Now())
	return ts.Store.JobDelete(ctx, id, in)
}

func (ts *timedStore) JobsDeleteQueued(ctx context.Context, project, user string) ([]*atlas.Job, error) {
	defer ts.t.observeStore("JobsDeleteQueued", time.Now())
	return ts.Store.JobsDeleteQueued(ctx, project, user)
}

func (ts *timedStore) BlobRefs(ctx context.Context, digest string) (int, error) {
	defer ts.t.observeStore("BlobRefs", time.Now())
	return ts.Store.BlobRefs(ctx, digest)
}

func (ts *timedStore) JobsImport(ctx context.Context, jobs []store.ImportedJob) error {
	defer ts.t.observeStore("JobsImport", time.Now())
	return ts.Store.JobsImport(ctx, jobs)
}

func (ts *timedStore) TrackBatch(ctx context.Context, b *store.TrackBatch) (bool, error) {
	defer ts.t.observeStore("TrackBatch", time.Now())
	applied, err := ts.Store.TrackBatch(ctx, b)
	if applied && err == nil {
		n := 0
		for _, pts := range b.Metrics {
			n += len(pts)
		}
		ts.t.points.add(uint64(n))
	}
	return applied, err
}

func (ts *timedStore) Params(ctx context.Context, jobIDs []string) (map[string]map[string]any, error) {
	defer ts.t.observeStore("Params", time.Now())
	return ts.Store.Params(ctx, jobIDs)
}

func (ts *timedStore) MetricSummaries(ctx context.Context, jobIDs []string) (map[string][]atlas.MetricSummary, error) {
	defer ts.t.observeStore("MetricSummaries", time.Now())
	return ts.Store.MetricSummaries(ctx, jobIDs)
}

func (ts *timedStore) MetricSeries(ctx context.Context, jobID, key string) ([]atlas.MetricPoint, error) {
	defer ts.t.observeStore("MetricSeries", time.Now())
	return ts.Store.MetricSeries(ctx, jobID, key)
}

func (ts *timedStore) Tags(ctx context.Context, jobIDs []string) (map[string]map[string]string, error) {
	defer ts.t.observeStore("Tags", time.Now())
	return ts.Store.Tags(ctx, jobIDs)
}

func (ts *timedStore) TagDelete(ctx context.Context, jobID, key string) error {
	defer ts.t.observeStore("TagDelete", time.Now())
	return ts.Store.TagDelete(ctx, jobID, key)
}

func (ts *timedStore) Artifacts(ctx context.Context, jobID string) ([]atlas.Artifact, error) {
	defer ts.t.observeStore("Artifacts", time.Now())
	return ts.Store.Artifacts(ctx, jobID)
}

func (ts *timedStore) ProjectList(ctx context.Context) ([]store.Project, error) {
	defer ts.t.observeStore("ProjectList", time.Now())
	return ts.Store.ProjectList(ctx)
}

func (ts *timedStore) ProjectGet(ctx context.Context, name string) (*store.Project, error) {
	defer ts.t.observeStore("ProjectGet", time.Now())
	return ts.Store.ProjectGet(ctx, name)
}

func (ts *timedStore) ProjectSetDescription(ctx context.Context, name, description, editor string) error {
	defer ts.t.observeStore("ProjectSetDescription", time.Now())
	return ts.Store.ProjectSetDescription(ctx, name, description, editor)
}

func (ts *timedStore) ProjectDescriptionHistory(ctx context.Context, name string) ([]store.DescriptionEdit, error) {
	defer ts.t.observeStore("ProjectDescriptionHistory", time.Now())
	return ts.Store.ProjectDescriptionHistory(ctx, name)
}

func (ts *timedStore) ProjectColumns(ctx context.Context, name string) (params, metrics []string, err error) {
	defer ts.t.observeStore("ProjectColumns", time.Now())
	return ts.Store.ProjectColumns(ctx, name)
}

func (ts *timedStore) NoteAdd(ctx context.Context, n *store.Note) error {
	defer ts.t.observeStore("NoteAdd", time.Now())
	return ts.Store.NoteAdd(ctx, n)
}

func (ts *timedStore) Notes(ctx context.Context, project string) ([]store.Note, error) {
	defer ts.t.observeStore("Notes", time.Now())
	return ts.Store.Notes(ctx, project)
}

func (ts *timedStore) SearchInsert(ctx context.Context, s *atlas.Search) error {
	defer ts.t.observeStore("SearchInsert", time.Now())
	return ts.Store.SearchInsert(ctx, s)
}

func (ts *timedStore) SearchGet(ctx context.Context, id string) (*atlas.Search, error) {
	defer ts.t.observeStore("SearchGet", time.Now())
	return ts.Store.SearchGet(ctx, id)
}

func (ts *timedStore) SearchList(ctx context.Context, project string, states ...atlas.SearchState) ([]*atlas.Search, error) {
	defer ts.t.observeStore("SearchList", time.Now())
	return ts.Store.SearchList(ctx, project, states...)
}

func (ts *timedStore) SearchSetState(ctx context.Context, id string, to atlas.SearchState, reason string) (*atlas.Search, error) {
	defer ts.t.observeStore("SearchSetState", time.Now())
	return ts.Store.SearchSetState(ctx, id, to, reason)
}

func (ts *timedStore) SearchTrials(ctx context.Context, id string) ([]*atlas.Job, error) {
	defer ts.t.observeStore("SearchTrials", time.Now())
	return ts.Store.SearchTrials(ctx, id)
}

func (ts *timedStore) SearchRungAdd(ctx context.Context, r *atlas.RungRecord) error {
	defer ts.t.observeStore("SearchRungAdd", time.Now())
	return ts.Store.SearchRungAdd(ctx, r)
}

func (ts *timedStore) SearchRungs(ctx context.Context, id string) ([]atlas.RungRecord, error) {
	defer ts.t.observeStore("SearchRungs", time.Now())
	return ts.Store.SearchRungs(ctx, id)
}

func (ts *timedStore) UserAdd(ctx context.Context, name string, admin bool) (*store.User, error) {
	defer ts.t.observeStore("UserAdd", time.Now())
	return ts.Store.UserAdd(ctx, name, admin)
}

func (ts *timedStore) UserList(ctx context.Context) ([]store.User, error) {
	defer ts.t.observeStore("UserList", time.Now())
	return ts.Store.UserList(ctx)
}

func (ts *timedStore) TokenAdd(ctx context.Context, user, hash, label string) (*store.Token, error) {
	defer ts.t.observeStore("TokenAdd", time.Now())
	return ts.Store.TokenAdd(ctx, user, hash, label)
}

func (ts *timedStore) TokenUser(ctx context.Context, hash string) (*store.User, error) {
	defer ts.t.observeStore("TokenUser", time.Now())
	return ts.Store.TokenUser(ctx, hash)
}

func (ts *timedStore) TokenList(ctx context.Context, user string) ([]store.Token, error) {
	defer ts.t.observeStore("TokenList", time.Now())
	return ts.Store.TokenList(ctx, user)
}

func (ts *timedStore) TokenRevoke(ctx context.Context, id int64) error {
	defer ts.t.observeStore("TokenRevoke", time.Now())
	return ts.Store.TokenRevoke(ctx, id)
}
