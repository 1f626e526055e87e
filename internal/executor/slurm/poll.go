// The poller: one squeue call per round for every job, one sacct call for those it cannot say
// enough about.

package slurm

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
)

// queued is a job as squeue shows it.
type queued struct {
	State, Reason string
	Start         time.Time // when it started, or is expected to
	Nodes         string    // where it runs or ran ("": nowhere yet)
	Status        int       // the batch script's wait status, once it ended
}

// accounted is a job's record in Slurm's accounting, as sacct shows it.
type accounted struct {
	State        string // COMPLETED, FAILED, CANCELLED, OUT_OF_MEMORY...
	By           string // the uid that cancelled it ("CANCELLED by 1000")
	Exit, Signal int
	Start        time.Time
	Nodes        string // where it ran ("None assigned": nowhere)
}

// accountingLag is how long a job squeue says was cancelled may wait for its record in sacct,
// which reaches the database a moment later and says who cancelled it.
const accountingLag = 10 * time.Second

// missingRounds is how many rounds in a row a job may be unknown to both squeue and sacct
// before it is given up as lost.
const missingRounds = 3

func (e *Executor) poller() {
	defer close(e.done)
	tick := time.NewTicker(e.cfg.PollInterval)
	defer tick.Stop()
	away := false
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
		case <-e.wake:
		}
		err := e.round()
		switch {
		case err != nil && !away:
			e.cfg.Logger.Warn("cannot ask Slurm about the jobs; trying again every round", "err", atlas.OneLine(err))
		case err == nil && away:
			e.cfg.Logger.Info("Slurm answers again")
		}
		away = err != nil
	}
}

// round asks Slurm about every job followed and tells each handle what it says.
func (e *Executor) round() error {
	e.mu.Lock()
	handles := slices.Collect(maps.Values(e.handles))
	e.mu.Unlock()
	if len(handles) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	ids := make([]string, len(handles))
	for i, h := range handles {
		ids[i] = h.id
	}
	queue, err := e.squeue(ctx, ids)
	if err != nil {
		return err
	}
	// squeue says how a job ended while slurmctld keeps it (MinJobAge), but not who cancelled
	// one, nor anything of jobs it has forgotten: sacct does.
	var ended []string
	for _, id := range ids {
		if q, ok := queue[id]; !ok || q.State == "CANCELLED" {
			ended = append(ended, id)
		}
	}
	var acct map[string]*accounted
	var acctErr error
	if len(ended) > 0 {
		acct, acctErr = e.sacct(ctx, ended)
		if acctErr != nil {
			e.cfg.Logger.Debug("sacct", "err", atlas.OneLine(acctErr))
		}
	}
	now := time.Now()
	for _, h := range handles {
		h.observe(queue[h.id], acct[h.id], acctErr == nil, now)
	}
	return nil
}

// squeue shows the jobs, ended ones too while slurmctld keeps them (MinJobAge).
func (e *Executor) squeue(ctx context.Context, ids []string) (map[string]*queued, error) {
	out, err := e.cfg.Run(ctx, Command{Name: "squeue", Args: []string{"--noheader", "--states=all",
		"--jobs=" + strings.Join(ids, ","), "--Format=JobID:0|,State:0|,Reason:0|,StartTime:0|,NodeList:0|,exit_code:0"}})
	if err != nil {
		return nil, err
	}
	return parseSqueue(out), nil
}

func parseSqueue(out string) map[string]*queued {
	rows := map[string]*queued{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 6 || f[0] == "" {
			continue
		}
		q := &queued{State: f[1], Reason: f[2], Start: parseTime(f[3]), Nodes: f[4]}
		q.Status, _ = strconv.Atoi(f[5])
		rows[f[0]] = q
	}
	return rows
}

// sacct reads the accounting records of the jobs (one line each: -X leaves out the steps).
func (e *Executor) sacct(ctx context.Context, ids []string) (map[string]*accounted, error) {
	out, err := e.cfg.Run(ctx, Command{Name: "sacct", Args: []string{"--noheader", "--parsable2", "--allocations",
		"--jobs=" + strings.Join(ids, ","), "--format=JobIDRaw,State,ExitCode,Start,NodeList"}})
	if err != nil {
		return nil, err
	}
	return parseSacct(out), nil
}

func parseSacct(out string) map[string]*accounted {
	rows := map[string]*accounted{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 5 || f[0] == "" {
			continue
		}
		a := &accounted{Start: parseTime(f[3]), Nodes: f[4]}
		a.State, a.By, _ = strings.Cut(f[1], " by ")
		code, sig, _ := strings.Cut(f[2], ":")
		a.Exit, _ = strconv.Atoi(code)
		a.Signal, _ = strconv.Atoi(sig)
		rows[f[0]] = a
	}
	return rows
}

// parseTime reads Slurm's times (local, to the second); "Unknown", "None" and "N/A" are zero.
func parseTime(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
	if err != nil {
		return time.Time{}
	}
	return t
}

// finished reports whether a job in state s has ended.
func finished(s string) bool {
	switch s {
	case "", "PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD",
		"REQUEUE_FED", "RESIZING", "RESV_DEL_HOLD", "SIGNALING", "STAGE_OUT", "STOPPED", "SPECIAL_EXIT":
		return false
	}
	return true
}

// running reports whether a job in state s has started (it may be ending).
func running(s string) bool {
	switch s {
	case "RUNNING", "SUSPENDED", "COMPLETING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESIZING":
		return true
	}
	return false
}

// reasons say what Slurm's commonest pending reasons mean.
var reasons = map[string]string{
	"None":                     "Slurm has not looked at it yet",
	"Resources":                "the resources it asks for are in use",
	"Priority":                 "jobs of higher priority go first",
	"Dependency":               "it waits for a job it depends on",
	"BeginTime":                "its start time has not come",
	"JobHeldUser":              "held by its user (scontrol release lets it go)",
	"JobHeldAdmin":             "held by an administrator",
	"ReqNodeNotAvail":          "the nodes it needs are not available",
	"PartitionDown":            "its partition is down",
	"PartitionInactive":        "its partition is inactive",
	"PartitionNodeLimit":       "it asks for more nodes than its partition allows",
	"PartitionTimeLimit":       "its time limit is over its partition's",
	"NodeDown":                 "a node it needs is down",
	"Reservation":              "it waits for its reservation",
	"Licenses":                 "it waits for licenses",
	"BadConstraints":           "no node has the features it asks for",
	"InvalidAccount":           "its account is not valid (slurm.account)",
	"InvalidQOS":               "its QOS is not valid (slurm.qos)",
	"QOSNotAllowed":            "its QOS is not allowed (slurm.qos)",
	"AssociationJobLimit":      "its account has as many jobs as it may",
	"AssociationResourceLimit": "its account uses as much as it may",
	"AssociationTimeLimit":     "its time limit is over its account's",
}

// pendingReason is the "why pending" of a job squeue shows waiting: its reason code, said in
// words where it is a common one (the QOS and association limits name themselves).
func pendingReason(q *queued) string {
	why := "Slurm: " + q.Reason
	if q.State != "PENDING" {
		why = "Slurm: " + q.State + ", " + q.Reason
	}
	if text := reasons[q.Reason]; text != "" {
		why += " (" + text + ")"
	} else if strings.HasPrefix(q.Reason, "QOS") || strings.HasPrefix(q.Reason, "Assoc") {
		why += " (a limit of its QOS or account)"
	}
	return why
}
