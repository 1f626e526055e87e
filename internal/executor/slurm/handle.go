// One Slurm job: what the poller says of it, how it ended, stopping it.

package slurm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atlasgo/atlas/internal/atlas"
	"github.com/atlasgo/atlas/internal/executor"
)

// handle follows one Slurm job. Its Placement says why Slurm has not started it, and since
// when it runs.
type handle struct {
	*executor.Placement
	e     *Executor
	id    string
	ramGB float64

	ended   chan struct{} // closed once result is set
	endOnce sync.Once
	result  executor.Result
	stopped atomic.Bool // Atlas asked it to stop
	killed  atomic.Bool // Atlas killed it: the grace was over

	mu            sync.Mutex // guards the poller's memory below
	terminalSince time.Time  // when squeue first said it ended, while sacct did not yet
	missing       int        // rounds in a row neither squeue nor sacct knew it
}

var _ executor.Placer = (*handle)(nil)

// RunInfo implements executor.Handle.
func (h *handle) RunInfo() string {
	b, _ := json.Marshal(runInfo{Worker: executor.Worker{Worker: "Slurm job " + h.id}, SlurmJob: h.id})
	return string(b)
}

// Wait implements executor.Handle.
func (h *handle) Wait(ctx context.Context) (executor.Result, error) {
	select {
	case <-h.ended:
		return h.result, nil
	case <-ctx.Done():
		return executor.Result{}, ctx.Err()
	}
}

// observe takes in what squeue (q) and sacct (a) say of the job in one round; acctOK says
// sacct answered.
func (h *handle) observe(q *queued, a *accounted, acctOK bool, now time.Time) {
	select {
	case <-h.ended:
		return
	default:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case q != nil && finished(q.State) && q.State != "CANCELLED":
		h.end(h.fromQueue(q))
	case a != nil && finished(a.State):
		h.end(h.fromAccounting(a, q))
	case q != nil && finished(q.State):
		// Who cancelled it reaches sacct a moment after slurmctld ends the job; without
		// accounting, what squeue says is all there is.
		if acctOK && (h.terminalSince.IsZero() || now.Sub(h.terminalSince) < accountingLag) {
			if h.terminalSince.IsZero() {
				h.terminalSince = now
			}
			return
		}
		h.end(h.fromQueue(q))
	case q != nil:
		h.missing = 0
		if running(q.State) {
			h.Running(q.Start)
		} else {
			h.Waiting(pendingReason(q))
		}
	default:
		h.missing++
		if h.missing < missingRounds {
			return
		}
		reason := "Slurm no longer knows its job " + h.id
		if !acctOK {
			reason += ", and has no accounting (sacct) to say how it ended"
		}
		h.end(executor.Result{ExitCode: -1, Lost: true, Reason: reason})
	}
}

// end records how the job ended.
func (h *handle) end(res executor.Result) {
	h.endOnce.Do(func() {
		h.result = res
		h.Done()
		close(h.ended)
	})
}

// fromAccounting is how a job ended, from its record in sacct, and its exit status from
// squeue when squeue still shows it: sacct shows exit codes over 128 less 128.
func (h *handle) fromAccounting(a *accounted, q *queued) executor.Result {
	ran := a.Nodes != "" && a.Nodes != "None assigned" // a job cancelled while it waited has a start time too
	if ran {
		h.Began(a.Start)
	}
	if a.State == "CANCELLED" {
		return h.cancelled(ran, a.By)
	}
	if q != nil && finished(q.State) {
		return h.fromState(a.State, q.Status>>8&0xff, q.Status&0x7f)
	}
	return h.fromState(a.State, a.Exit, a.Signal)
}

// fromQueue is how a job ended, from what squeue still shows of it.
func (h *handle) fromQueue(q *queued) executor.Result {
	ran := q.Nodes != ""
	if ran {
		h.Began(q.Start)
	}
	if q.State == "CANCELLED" {
		return h.cancelled(ran, "")
	}
	code, sig := q.Status>>8&0xff, q.Status&0x7f
	return h.fromState(q.State, code, sig)
}

// fromState is how a job that Slurm says ended in state, with exit code and signal, ended.
func (h *handle) fromState(state string, code, sig int) executor.Result {
	res := executor.Result{ExitCode: -1}
	switch state {
	case "COMPLETED", "FAILED":
		switch {
		case code != 0 || state == "COMPLETED":
			res.ExitCode = code
		case sig != 0:
			res.ExitCode, res.Reason = 128+sig, fmt.Sprintf("killed by signal %d (Slurm: %s)", sig, state)
		default:
			res.Reason = "Slurm: " + state
		}
	case "OUT_OF_MEMORY":
		limit := fmt.Sprintf("the job's limit is ram: %g GB", h.ramGB)
		if h.ramGB <= 0 {
			limit = "it set no ram:, so the cluster's default limit applies"
		}
		res.Reason = fmt.Sprintf("killed: out of memory (%s; Slurm: OUT_OF_MEMORY)", limit)
	case "TIMEOUT":
		res.Reason = fmt.Sprintf("killed: it ran out of time (the time limit is %s; Slurm: TIMEOUT)", timeLimit(h.e.cfg.TimeLimit))
	case "NODE_FAIL":
		res.Reason = "its node failed (Slurm: NODE_FAIL)"
	case "BOOT_FAIL":
		res.Reason = "its node failed to boot (Slurm: BOOT_FAIL)"
	case "PREEMPTED":
		res.Reason = "preempted by another job (Slurm: PREEMPTED)"
	case "DEADLINE":
		res.Reason = "its deadline passed (Slurm: DEADLINE)"
	default:
		res.Reason = "Slurm: " + state
	}
	if h.stopped.Load() && h.killed.Load() {
		res.Killed = true
	}
	if res.ExitCode != 0 {
		res.Output = h.output()
	}
	return res
}

// cancelled is how a cancelled job ended: stopped by Atlas, or cancelled by someone else (by
// names them, as a uid, when sacct says).
func (h *handle) cancelled(started bool, by string) executor.Result {
	switch {
	case h.stopped.Load() && h.killed.Load():
		return executor.Result{ExitCode: 137, Killed: true}
	case h.stopped.Load() && !started:
		return executor.Result{ExitCode: -1, Lost: true, Reason: "it had not started running"}
	case h.stopped.Load():
		return executor.Result{ExitCode: -1, Lost: true, Reason: "its Slurm job was cancelled before it reported how it ended"}
	}
	who := "someone other than Atlas"
	if by != "" {
		who = "uid " + by
		if u, err := user.LookupId(by); err == nil {
			who = u.Username
		}
	}
	return executor.Result{ExitCode: -1, Reason: fmt.Sprintf("cancelled in Slurm by %s (scancel %s)", who, h.id),
		Output: h.output()}
}

// output is the end of the job's Slurm output file, when the server sees the scratch
// directory: what a job printed before its in-job side could ship anything.
func (h *handle) output() string {
	f, err := os.Open(h.e.outputPath(h.id))
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > executor.OutputBytes {
		_, _ = f.Seek(fi.Size()-executor.OutputBytes, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, executor.OutputBytes))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > executor.OutputLines {
		lines = lines[len(lines)-executor.OutputLines:]
	}
	return strings.Join(lines, "\n")
}

// Stop implements executor.Handle. A job Slurm has not started is cancelled. A running one gets
// SIGTERM in its batch script's process, the in-job side, which passes it on to the command
// and reports how it ended; when the grace is over, the job is killed and cancelled. It
// returns at once; while Slurm cannot be reached, it tries again until the job has ended.
func (h *handle) Stop(grace time.Duration) error {
	if h.stopped.Swap(true) {
		return nil
	}
	go h.stop(grace)
	return nil
}

func (h *handle) stop(grace time.Duration) {
	e := h.e
	scancel := func(args ...string) {
		executor.Persist(2*time.Second, func() error { return h.scancel(args...) }, func(err error) {
			e.cfg.Logger.Warn("scancel; trying again", "slurm_job", h.id, "err", atlas.OneLine(err))
		}, h.ended, e.stop)
	}
	if !h.IsPlaced() {
		scancel(h.id)
		return
	}
	scancel("--batch", "--signal=TERM", h.id)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-h.ended:
		return
	case <-e.stop:
		return
	case <-t.C:
	}
	h.killed.Store(true)
	scancel("--full", "--signal=KILL", h.id)
	scancel(h.id)
}

// scancel runs scancel; a job that has ended already is no error.
func (h *handle) scancel(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.e.cfg.Run(ctx, Command{Name: "scancel", Args: args})
	if err != nil && (strings.Contains(err.Error(), "already complet") || strings.Contains(err.Error(), "Invalid job id")) {
		return nil
	}
	if err == nil {
		h.e.poke()
	}
	return err
}

// Release implements executor.Handle: the poller forgets the job, and its output file and
// folder in the scratch directory go, where the server sees them.
func (h *handle) Release() error {
	h.e.untrack(h.id)
	_ = os.Remove(h.e.outputPath(h.id))
	_ = os.RemoveAll(filepath.Join(h.e.cfg.ScratchDir, "atlas-"+h.id))
	return nil
}
