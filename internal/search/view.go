// What the API shows of a search: its trials, their values, its decisions and the best so far.

package search

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/jobs"
	"github.com/atlasgo/atlas/sdk"
)

// View returns a search as the API shows it, with its trials.
func (s *Searcher) View(ctx context.Context, c *jobs.Caller, id string) (*sdk.Search, error) {
	se, err := s.Get(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, se, true)
}

// List returns the searches of a project ("": all) the caller may read, newest first, without
// their trials.
func (s *Searcher) List(ctx context.Context, c *jobs.Caller, project string) ([]*sdk.Search, error) {
	list, err := s.cfg.Store.SearchList(ctx, project)
	if err != nil {
		return nil, err
	}
	out := []*sdk.Search{}
	for _, se := range list {
		if s.cfg.Jobs.MayReadOwned(c, "", se.User) != nil {
			continue
		}
		v, err := s.view(ctx, se, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// view builds what the API shows of a search; withTrials adds every trial.
func (s *Searcher) view(ctx context.Context, se *atlas.Search, withTrials bool) (*sdk.Search, error) {
	cfg, err := decodeConfig(se.Config)
	if err != nil {
		return nil, fmt.Errorf("search %s: read its config: %w", se.ID, err)
	}
	out := &sdk.Search{ID: se.ID, Project: se.Project, User: se.User, State: string(se.State), Reason: se.Reason,
		Rungs: cfg.Rungs(), TrialsPlanned: cfg.Trials(), TrialsSubmitted: se.Trials, Counts: map[string]int{},
		CreatedAt: se.CreatedAt, FinishedAt: se.FinishedAt}
	dec := json.NewDecoder(strings.NewReader(string(se.Config)))
	dec.UseNumber()
	if err := dec.Decode(&out.Config); err != nil {
		return nil, err
	}
	trials, err := s.cfg.Store.SearchTrials(ctx, se.ID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(trials))
	for i, j := range trials {
		ids[i] = j.ID
	}
	sums, err := s.cfg.Store.MetricSummaries(ctx, ids)
	if err != nil {
		return nil, err
	}
	recs, err := s.cfg.Store.SearchRungs(ctx, se.ID)
	if err != nil {
		return nil, err
	}
	rungs := map[string][]sdk.SearchRung{}
	for _, r := range recs {
		rungs[r.JobID] = append(rungs[r.JobID], sdk.SearchRung{Rung: r.Rung, Step: r.Step, Value: r.Value, Stop: r.Stop})
	}
	ended, withMetric := 0, 0
	others := map[string]bool{}
	for _, j := range trials {
		t := sdk.SearchTrial{Trial: j.SearchTrial, JobID: j.ID, State: string(j.State), Reason: j.Reason, Params: j.Params,
			Rungs: rungs[j.ID], CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
		if n := len(t.Rungs); n > 0 && t.Rungs[n-1].Stop {
			step := t.Rungs[n-1].Step
			t.StoppedAt = &step
		}
		out.Counts[t.State]++
		if m := summaryOf(sums[j.ID], cfg.Metric); m != nil && m.Min != nil {
			withMetric++
			best := *m.Max
			if cfg.SmallerIsBetter {
				best = *m.Min
			}
			t.Value = &best
			if last, ok := atlas.Number(m.Last); ok {
				t.Last = &last
			}
			t.LastStep, t.Count = m.LastStep, m.Count
		} else {
			for _, m := range sums[j.ID] {
				others[m.Key] = true
			}
		}
		if j.State.Finished() {
			ended++
		}
		if t.Value != nil && (out.Best == nil || beats(*t.Value, *out.Best.Value, cfg.SmallerIsBetter)) {
			best := t
			out.Best = &best
		}
		if withTrials {
			out.Trials = append(out.Trials, t)
		}
	}
	if out.Best != nil {
		out.Best.Rungs = nil
	}
	if ended > 0 && withMetric == 0 {
		logged := "no metrics"
		if len(others) > 0 {
			keys := make([]string, 0, len(others))
			for k := range others {
				keys = append(keys, fmt.Sprintf("%q", k))
			}
			slices.Sort(keys)
			if len(keys) > 10 {
				keys = append(keys[:10], "...")
			}
			logged = "only " + strings.Join(keys, ", ")
		}
		out.Warnings = append(out.Warnings, fmt.Sprintf("no trial has logged the metric %q: %d trial(s) ended without it (they logged %s); check the metric's name",
			cfg.Metric, ended, logged))
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	out.Version = hex.EncodeToString(sum[:8])
	return out, nil
}
