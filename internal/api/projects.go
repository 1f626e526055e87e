package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/store"
	"github.com/atlasgo/atlas/sdk"
)

func projectWire(p store.Project) sdk.Project {
	out := sdk.Project{Name: p.Name, CreatedAt: p.CreatedAt, LastActivity: p.LastActivity, Description: p.Description,
		DescriptionBy: p.DescriptionBy, DescriptionAt: p.DescriptionAt, Counts: map[string]int{}, Tags: p.Tags, Users: p.Users}
	for st, n := range p.Counts {
		out.Counts[string(st)] = n
		out.Jobs += n
	}
	return out
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.cfg.Store.ProjectList(r.Context())
	if err != nil {
		return err
	}
	out := make([]sdk.Project, len(ps))
	for i, p := range ps {
		out[i] = projectWire(p)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) error {
	p, err := s.cfg.Store.ProjectGet(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, projectWire(*p))
	return nil
}

// values returns columns of param and metric values of a project's (filtered) jobs, compactly:
// what the parallel-coordinates and overview charts need for thousands of jobs.
func (s *Server) values(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := s.cfg.Store.ProjectGet(r.Context(), name); err != nil {
		return err
	}
	p, err := listParams(r)
	if err != nil {
		return err
	}
	p.Project = name
	s.cfg.Jobs.Scope(callerOf(r), p)
	v, err := s.cfg.Store.JobValues(r.Context(), p, r.URL.Query()["column"])
	if err != nil {
		return err
	}
	states := make([]string, len(v.States))
	for i, st := range v.States {
		states[i] = string(st)
	}
	writeJSON(w, http.StatusOK, sdk.Values{IDs: nonNilStrings(v.IDs), States: states, CreatedAt: v.CreatedAt, Columns: v.Columns})
	return nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// maxNameLen caps the names a client gives for itself (a note's author without --auth).
const maxNameLen = 100

// actor returns who makes a change to a project: with --auth the authenticated user, whatever
// the request says; without it nobody is authenticated, and the name the client gives (the
// GUI's "your name") is recorded as given, as a job's user is.
func (s *Server) actor(r *http.Request, claimed string) (string, error) {
	if s.cfg.Auth {
		return callerOf(r).User, nil
	}
	claimed = strings.TrimSpace(claimed)
	if utf8.RuneCountInString(claimed) > maxNameLen || strings.ContainsFunc(claimed, unicode.IsControl) {
		return "", atlas.Invalidf("name %s: want at most %d characters, no control characters", atlas.Shorten(claimed), maxNameLen)
	}
	return claimed, nil
}

// setDescription replaces a project's description; the store keeps every edit. With --auth,
// an admin or a user who has jobs in the project may edit it: a description is what the
// project's people write about their work, and anyone else may still add notes.
func (s *Server) setDescription(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Description string `json:"description"`
		Editor      string `json:"editor"`
	}
	if err := decode(w, r, 1<<20, &body); err != nil {
		return err
	}
	name := r.PathValue("name")
	editor, err := s.actor(r, body.Editor)
	if err != nil {
		return err
	}
	if p := callerOf(r); s.cfg.Auth && !p.Admin {
		proj, err := s.cfg.Store.ProjectGet(r.Context(), name)
		if err != nil {
			return err
		}
		if !slices.Contains(proj.Users, p.User) {
			return atlas.Deniedf("only admins and users with jobs in project %s may edit its description; add a note instead", atlas.Shorten(name))
		}
	}
	if err := s.cfg.Store.ProjectSetDescription(r.Context(), name, body.Description, editor); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) descriptionHistory(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := s.cfg.Store.ProjectGet(r.Context(), name); err != nil {
		return err
	}
	edits, err := s.cfg.Store.ProjectDescriptionHistory(r.Context(), name)
	if err != nil {
		return err
	}
	out := make([]sdk.DescriptionEdit, len(edits))
	for i, e := range edits {
		out[i] = sdk.DescriptionEdit{ID: e.ID, Editor: e.Editor, Description: e.Description, CreatedAt: e.CreatedAt}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listNotes(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if _, err := s.cfg.Store.ProjectGet(r.Context(), name); err != nil {
		return err
	}
	notes, err := s.cfg.Store.Notes(r.Context(), name)
	if err != nil {
		return err
	}
	out := make([]sdk.Note, len(notes))
	for i, n := range notes {
		out[i] = sdk.Note{ID: n.ID, Author: n.Author, Message: n.Message, CreatedAt: n.CreatedAt}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// addNote adds a note to a project, by its author: with --auth, the authenticated user.
func (s *Server) addNote(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Author  string `json:"author"`
		Message string `json:"message"`
	}
	if err := decode(w, r, 1<<20, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Message) == "" {
		return atlas.Invalidf("note message is empty")
	}
	author, err := s.actor(r, body.Author)
	if err != nil {
		return err
	}
	n := &store.Note{Project: r.PathValue("name"), Author: author, Message: body.Message}
	if err := s.cfg.Store.NoteAdd(r.Context(), n); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, sdk.Note{ID: n.ID, Author: n.Author, Message: n.Message, CreatedAt: n.CreatedAt})
	return nil
}

// queue answers the queue's page: its head (the first limit jobs; why a job waits depends
// only on the jobs ahead of it), how many wait in all, and what runs. It reads the head and
// counts the rest in an index, so that it costs the same however long the queue is.
func (s *Server) queue(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	limit := 500
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return atlas.Invalidf("invalid limit %q", v)
		}
		limit = n
	}
	queued, err := s.cfg.Store.JobQueueHead(ctx, limit)
	if err != nil {
		return err
	}
	counts, err := s.cfg.Store.JobCounts(ctx, atlas.StateQueued)
	if err != nil {
		return err
	}
	running, err := s.cfg.Store.JobsInState(ctx, atlas.StateStarting, atlas.StateRunning, atlas.StateStopping)
	if err != nil {
		return err
	}
	waiting := s.cfg.Queue.Waiting(queued)
	out := sdk.Queue{Queued: []*sdk.Job{}, Running: []*sdk.Job{}, Workers: s.cfg.Queue.Workers(),
		GPUs: s.cfg.Queue.TotalGPUs(), Executor: s.cfg.Queue.ExecutorName(), QueuedTotal: max(counts[atlas.StateQueued], len(queued))}
	for i, j := range queued {
		wj := toWire(j)
		wj.QueuePosition = i + 1
		wj.WaitingReason = waiting[j.ID]
		if wj.WaitingReason == "" {
			wj.WaitingReason = "waiting for the scheduler"
		}
		out.Queued = append(out.Queued, wj)
	}
	for _, j := range running {
		wj := toWire(j)
		if j.State == atlas.StateStarting {
			wj.WaitingReason = waiting[j.ID] // a cluster that has not placed it says why
		}
		out.Running = append(out.Running, wj)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) clearQueue(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Project string `json:"project"`
	}
	if r.ContentLength != 0 {
		if err := decode(w, r, 1<<20, &body); err != nil {
			return err
		}
	}
	cleared, err := s.cfg.Jobs.ClearQueue(r.Context(), callerOf(r), body.Project)
	if err != nil {
		return err
	}
	out := sdk.ClearQueueResult{Removed: len(cleared.Removed), IDs: []string{}, Stopped: len(cleared.Stopped), StoppedIDs: []string{}}
	for _, j := range cleared.Removed {
		out.IDs = append(out.IDs, j.ID)
	}
	for _, j := range cleared.Stopped {
		out.StoppedIDs = append(out.StoppedIDs, j.ID)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// events streams job changes as server-sent events, for the GUI.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	changes, unsubscribe := s.cfg.Jobs.Events().Subscribe()
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	fmt.Fprint(w, ": connected\n\n")
	_ = rc.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case c := <-changes:
			data, _ := json.Marshal(c)
			event := "job"
			switch {
			case c.Tracked:
				event = "track"
			case c.JobID == "" && c.Search != "":
				event = "search"
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
				return nil
			}
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return nil
			}
		}
		_ = rc.Flush()
	}
}
