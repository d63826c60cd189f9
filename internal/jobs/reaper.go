package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/metrics"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// ReasonDeadLettered is the reason given to the entries of a chunk whose
// message reached the dead-letter queue without being counted.
const ReasonDeadLettered = "not run: the chunk's message reached the dead-letter queue (its worker failed on every receive); send these entries again"

// Reaper finishes what workers cannot: chunks whose message reached the
// jobs dead-letter queue uncounted (a worker that crashed or timed out on
// every receive), jobs whose chunks are all counted but that nobody
// finished or announced, and jobs that stopped making progress or run
// longer than they may.
type Reaper struct {
	store      *Store
	events     announcer
	stallAfter time.Duration
	maxRunning time.Duration // 0: no job is overdue
	log        *slog.Logger
	metrics    io.Writer
	now        func() time.Time
}

// NewReaper returns a reaper that marks a job STALLED after stallAfter
// without progress, writing its metrics (EMF) to out.
func NewReaper(store *Store, events announcer, stallAfter time.Duration, log *slog.Logger, out io.Writer) *Reaper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if out == nil {
		out = io.Discard
	}
	return &Reaper{store: store, events: events, stallAfter: stallAfter, log: log, metrics: out, now: time.Now}
}

// MaxRunning makes a sweep count the jobs not finished d after they were
// submitted (JOB_MAX_RUNNING) as overdue, in the JobsOverdue metric, and
// returns r. Unlike a stall, which needs a job without any progress, it
// catches a job that moves too slowly to finish (a chunk that comes back
// on every visibility timeout, throttled calls): nothing is changed, an
// operator is told.
func (r *Reaper) MaxRunning(d time.Duration) *Reaper {
	r.maxRunning = d
	return r
}

// Handle is the function's handler: an SQS event from the jobs dead-letter
// queue, or anything else (the schedule's event) for a sweep.
func (r *Reaper) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		}
	}
	if json.Unmarshal(raw, &probe) == nil && len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:sqs" {
		var ev events.SQSEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("read SQS event: %w", err)
		}
		return r.HandleDeadLetters(ctx, ev)
	}
	return r.Sweep(ctx)
}

// HandleDeadLetters counts each dead-lettered chunk into its job as
// poisoned — what an earlier run recorded stays, the rest of its entries
// Unprocessed with ReasonDeadLettered — and settles the job. A message it
// could not count is kept (reported as a batch item failure).
func (r *Reaper) HandleDeadLetters(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	counted := 0
	for _, msg := range ev.Records {
		if err := r.deadLetter(ctx, msg); err != nil {
			r.log.ErrorContext(ctx, "dead-lettered chunk not settled; kept for another try", "messageId", msg.MessageId, "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
			continue
		}
		counted++
	}
	r.emit(map[string]int{"ChunksDeadLettered": counted, "ChunksDeadLetterFailures": len(resp.BatchItemFailures)})
	return resp, nil
}

func (r *Reaper) deadLetter(ctx context.Context, msg events.SQSMessage) error {
	var c Chunk
	if err := json.Unmarshal([]byte(msg.Body), &c); err != nil || c.JobID == "" || c.Index < 1 {
		// Unreadable: the attributes still name the chunk.
		c = Chunk{JobID: attr(msg, JobIDAttribute)}
		c.Index, _ = strconv.Atoi(attr(msg, ChunkAttribute))
	}
	if c.JobID == "" || c.Index < 1 {
		// It names no job: nothing can count it, and keeping it would only
		// bring it back. Dropped, with its ID in the log.
		r.log.ErrorContext(ctx, "dead-lettered message names no job chunk; dropped", "messageId", msg.MessageId)
		return nil
	}
	rec, err := r.store.Outcome(ctx, c.JobID, c.Index)
	if err != nil {
		return err
	}
	if !rec.Counted {
		res := poisonResult(rec.Result, c.Entries, ReasonDeadLettered)
		if _, _, err := r.store.Record(ctx, c.JobID, c.Index, res, true, true); err != nil {
			if errors.Is(err, ErrNoJob) {
				r.log.WarnContext(ctx, "dead-lettered chunk of a job that no longer exists; dropped", "jobId", c.JobID, "chunk", c.Index)
				return nil
			}
			return err
		}
		r.log.WarnContext(ctx, "dead-lettered chunk counted as poisoned", "jobId", c.JobID, "chunk", c.Index,
			"successful", len(res.Successful), "unprocessed", len(res.Unprocessed))
	}
	m, err := r.store.Meta(ctx, c.JobID)
	if err != nil {
		return err
	}
	_, err = r.store.Settle(ctx, r.events, m)
	return err
}

// poisonResult is the outcome of a chunk given up on: what an earlier run
// recorded as done (Successful, Updated, Failed, Deduplicated but for "in
// progress elsewhere"), and every other entry Unprocessed with reason.
func poisonResult(earlier report.Result, entries []request.Entry, reason string) report.Result {
	out := report.New()
	done := map[string]bool{}
	mark := func(e request.Entry) {
		for _, k := range keysOf(e) {
			done[k] = true
		}
	}
	for _, a := range earlier.Successful {
		out.Successful = append(out.Successful, a)
		mark(request.Entry{Name: a.Name, InstanceId: nonEmpty(a.InstanceId), Targets: a.Targets, TargetMaps: a.TargetMaps, AssociationName: nonEmpty(a.AssociationName)})
	}
	for _, u := range earlier.Updated {
		out.Updated = append(out.Updated, u)
		mark(u.Entry)
	}
	for _, f := range earlier.Failed {
		out.Failed = append(out.Failed, f)
		mark(f.Entry)
	}
	for _, d := range earlier.Deduplicated {
		if d.Reason == report.ReasonInProgress {
			continue
		}
		out.Deduplicated = append(out.Deduplicated, d)
		mark(d.Entry)
	}
	for _, e := range entries {
		all := true
		for _, k := range keysOf(e) {
			all = all && done[k]
		}
		if !all {
			out.Unprocessed = append(out.Unprocessed, report.Unprocessed{Entry: e, Reason: reason})
		}
	}
	out.Tally()
	return out
}

// SweepResult is what one sweep did.
type SweepResult struct {
	Open     int `json:"Open"`     // jobs not final, or final and not announced
	Finished int `json:"Finished"` // jobs settled by this sweep
	Stalled  int `json:"Stalled"`  // jobs STALLED after the sweep
	Overdue  int `json:"Overdue"`  // jobs not finished MaxRunning after their submission
	Errors   int `json:"Errors"`
}

// Sweep looks at every open job: one whose chunks are all counted is
// finished and announced; one that made no progress for stallAfter is
// marked STALLED; one not finished maxRunning after it was submitted is
// counted overdue. The JobsStalled and JobsOverdue metrics count them.
func (r *Reaper) Sweep(ctx context.Context) (SweepResult, error) {
	open, err := r.store.OpenJobs(ctx)
	res := SweepResult{Open: len(open)}
	now := r.now()
	cutoff := now.Add(-r.stallAfter)
	var errs []error
	for _, m := range open {
		// A job whose chunks are all counted is finished below, not late.
		if r.maxRunning > 0 && !Final(m.State) && !m.finished() && m.CreatedAt < now.Add(-r.maxRunning).UnixMilli() {
			res.Overdue++
			r.log.WarnContext(ctx, "job overdue: not finished within JOB_MAX_RUNNING", "jobId", m.JobID, "state", m.State,
				"submitted", time.UnixMilli(m.CreatedAt).UTC().Format(time.RFC3339), "maxRunning", r.maxRunning.String(),
				"chunks", m.Chunks, "chunksDone", m.ChunksDone, "chunksPoisoned", m.ChunksPoisoned)
		}
		switch {
		case m.finished():
			after, serr := r.store.Settle(ctx, r.events, m)
			if serr != nil {
				res.Errors++
				errs = append(errs, serr)
				continue
			}
			if after.AnnouncedAt != 0 || Final(after.State) && !Final(m.State) {
				res.Finished++
				r.log.InfoContext(ctx, "job settled by the reaper", "jobId", m.JobID, "state", after.State)
			}
		case m.State == StateStalled:
			res.Stalled++
		case m.UpdatedAt < cutoff.UnixMilli():
			ok, serr := r.store.MarkStalled(ctx, m.JobID, cutoff)
			if serr != nil {
				res.Errors++
				errs = append(errs, serr)
				continue
			}
			if ok {
				res.Stalled++
				r.log.WarnContext(ctx, "job stalled: no progress", "jobId", m.JobID, "since", time.UnixMilli(m.UpdatedAt).UTC().Format(time.RFC3339),
					"chunks", m.Chunks, "chunksDone", m.ChunksDone, "chunksPoisoned", m.ChunksPoisoned)
			}
		}
	}
	r.emit(map[string]int{"JobsOpen": res.Open, "JobsSettledByReaper": res.Finished, "JobsStalled": res.Stalled, "JobsOverdue": res.Overdue, "ReaperErrors": res.Errors})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	return res, nil
}

func (r *Reaper) emit(counts map[string]int) {
	// The deployed name, so that two stacks in one account and Region keep
	// their alarms apart (the template names it with !Ref ReaperFunction).
	fn := lambdacontext.FunctionName
	if fn == "" {
		fn = "ReaperFunction"
	}
	if err := metrics.Write(r.metrics, metrics.Invocation{Function: fn, Source: "reaper", Counts: counts, Time: r.now()}); err != nil {
		r.log.Warn("metrics not written", "error", err.Error())
	}
}
