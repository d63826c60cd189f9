package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/metrics"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// runner is the engine as the worker uses it.
type runner interface {
	Run(context.Context, associate.Job) (report.Result, error)
}

// announcer tells the world a job has finished.
type announcer interface {
	Completed(ctx context.Context, m Meta) error
}

// JobIDAttribute is the message attribute that names a chunk's job, so a
// message whose body cannot be read is still counted in its job.
const (
	JobIDAttribute = "JobId"
	ChunkAttribute = "Chunk"
)

// Worker runs chunk messages from the jobs queue.
type Worker struct {
	engine runner
	store  *Store
	events announcer
	log    *slog.Logger
	// maxReceives is the queue's redrive maxReceiveCount: on the last
	// receive, a chunk that still cannot finish is counted as it stands,
	// or, when it cannot be read, counted as poisoned before SQS moves it
	// to the dead-letter queue.
	maxReceives int
	metrics     io.Writer
	now         func() time.Time
}

// NewWorker returns a worker. It writes no metrics until WriteMetrics
// names where they go.
func NewWorker(engine runner, store *Store, events announcer, maxReceives int, log *slog.Logger) *Worker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{engine: engine, store: store, events: events, maxReceives: maxReceives, log: log, metrics: io.Discard, now: time.Now}
}

// WriteMetrics sends the worker's metrics, one EMF line per chunk run, to
// out (the function's stdout, which CloudWatch Logs reads), and returns w.
func (w *Worker) WriteMetrics(out io.Writer) *Worker {
	if out == nil {
		out = io.Discard
	}
	w.metrics = out
	return w
}

// Handle processes an SQS batch and reports the messages to keep: chunks
// that could not finish come back after the visibility timeout, and run
// again; their finished entries are deduplicated by the claim table.
func (w *Worker) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	end, ok := ctx.Deadline()
	if !ok {
		end = time.Now().Add(15 * time.Minute)
	}
	for i, msg := range ev.Records {
		if time.Until(end) < 2*time.Second {
			// No time left to start another chunk: hand the rest back.
			for _, m := range ev.Records[i:] {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			}
			break
		}
		if err := w.handleMessage(ctx, msg, end); err != nil {
			w.log.WarnContext(ctx, "chunk left for another receive", "messageId", msg.MessageId, "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	return resp, nil
}

func (w *Worker) handleMessage(ctx context.Context, msg events.SQSMessage, end time.Time) error {
	receives, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	last := w.maxReceives > 0 && receives >= w.maxReceives
	var c Chunk
	if err := json.Unmarshal([]byte(msg.Body), &c); err != nil || c.JobID == "" || c.Index < 1 {
		if last {
			return w.poisoned(ctx, msg)
		}
		return fmt.Errorf("chunk message cannot be read: %v", err)
	}
	// The job marked running, and this chunk's outcomes of an earlier
	// receive read, at once: one round trip before the chunk's calls.
	started := make(chan error, 1)
	go func() { started <- w.store.Started(ctx, c.JobID) }()
	earlier, err := w.store.Outcome(ctx, c.JobID, c.Index)
	if err := errors.Join(<-started, err); err != nil {
		return err
	}
	if earlier.Counted {
		// A redelivery of a chunk already counted (its message was not
		// deleted, or came back): its outcomes are final, so running it
		// again would change nothing. Only make sure the job is finished.
		w.log.InfoContext(ctx, "chunk already counted; not run again", "jobId", c.JobID, "chunk", c.Index, "receive", receives)
		return w.settle(ctx, c.JobID)
	}
	res, runErr := w.engine.Run(ctx, associate.Job{
		Request:    c.Request(),
		Owner:      owner(ctx),
		Deadline:   end.Add(-2 * time.Second),
		LeaseUntil: end,
		AnswerBy:   end.Add(-500 * time.Millisecond),
		Closing:    c.Closing,
	})
	res = merge(earlier.Result, res)
	// "In progress elsewhere" inside a job is most often this chunk's own
	// earlier run that died holding its claims: come back when the lease
	// has passed rather than settle those nodes as deduplicated.
	final := runErr == nil && !res.Retryable() || last
	m, counted, err := w.store.Record(ctx, c.JobID, c.Index, res, final, false)
	w.observe(ctx, res, counted && err == nil)
	if err != nil {
		return err
	}
	w.log.InfoContext(ctx, "chunk processed", "jobId", c.JobID, "chunk", c.Index, "receive", receives,
		"final", final, "counted", counted, "successful", len(res.Successful), "updated", len(res.Updated), "failed", len(res.Failed),
		"deduplicated", len(res.Deduplicated), "unprocessed", len(res.Unprocessed))
	if final {
		// Whether or not this call counted the chunk (an answer lost after
		// the write makes it look as if it did not), the job's state says
		// whether it is done.
		if err := w.settleMeta(ctx, m); err != nil {
			return err
		}
	}
	switch {
	case runErr != nil && !final:
		return runErr
	case !final:
		return fmt.Errorf("chunk %d of job %s: %d entries left to retry", c.Index, c.JobID, len(res.Unprocessed)+len(res.Failed))
	}
	return nil
}

// observe writes one EMF line for a run of a chunk, with the names and
// dimensions of the associate function's (handler observe), so that the
// Failed and Unprocessed alarms and the dashboard see jobs too (Source
// "worker"). The SSM
// activity (Calls, Retries, Throttles, Reads, SSMCallLatency) is this run's,
// whatever became of it. The outcomes are written once per chunk, by the
// run that counted it into its job, as the job reports them: a run that
// leaves entries for the next receive writes them as 0, or an entry retried
// across receives would be counted Unprocessed on each. A run whose count
// was written but whose answer was lost writes them as 0 too: better one
// chunk missing from the metrics than counted twice.
func (w *Worker) observe(ctx context.Context, res report.Result, counted bool) {
	s := res.Summary
	if !counted {
		s.Requested, s.Successful, s.Updated, s.Failed, s.Deduplicated, s.Unprocessed = 0, 0, 0, 0, 0, 0
	}
	fn := lambdacontext.FunctionName
	if fn == "" {
		fn = "WorkerFunction"
	}
	if err := metrics.Write(w.metrics, metrics.Invocation{
		Function:    fn,
		Source:      "worker",
		Counts:      s.Counts(),
		CallLatency: res.CallLatencies,
		Time:        w.now(),
	}); err != nil {
		w.log.WarnContext(ctx, "metrics not written", "error", err.Error())
	}
}

// poisoned counts an unreadable chunk in its job on its last receive,
// before SQS moves it to the dead-letter queue.
func (w *Worker) poisoned(ctx context.Context, msg events.SQSMessage) error {
	jobID := attr(msg, JobIDAttribute)
	chunk, _ := strconv.Atoi(attr(msg, ChunkAttribute))
	if jobID == "" || chunk < 1 {
		w.log.ErrorContext(ctx, "unreadable chunk names no job; it goes to the dead-letter queue uncounted", "messageId", msg.MessageId)
		return errors.New("unreadable chunk names no job")
	}
	earlier, err := w.store.Outcome(ctx, jobID, chunk)
	if err != nil {
		return err
	}
	m, _, err := w.store.Record(ctx, jobID, chunk, poisonResult(earlier.Result, nil, ""), true, true)
	if err != nil {
		return fmt.Errorf("poisoned chunk %d of %s not counted: %w", chunk, jobID, err)
	}
	if err := w.settleMeta(ctx, m); err != nil {
		return err
	}
	return errors.New("chunk message cannot be read; counted as poisoned")
}

// settle reads the job and settles it.
func (w *Worker) settle(ctx context.Context, jobID string) error {
	m, err := w.store.Meta(ctx, jobID)
	if err != nil {
		return err
	}
	return w.settleMeta(ctx, m)
}

// settleMeta finishes and announces the job if every chunk is counted; its
// error makes the message come back, so that the job is finished then.
func (w *Worker) settleMeta(ctx context.Context, m Meta) error {
	before := m.State
	m, err := w.store.Settle(ctx, w.events, m)
	if err != nil {
		return fmt.Errorf("job %s not settled: %w", m.JobID, err)
	}
	if Final(m.State) && !Final(before) {
		w.log.InfoContext(ctx, "job finished", "jobId", m.JobID, "state", m.State, "successful", m.Successful, "updated", m.Updated,
			"failed", m.Failed, "deduplicated", m.Deduplicated, "unprocessed", m.Unprocessed)
	}
	return nil
}

func attr(msg events.SQSMessage, name string) string {
	if a, ok := msg.MessageAttributes[name]; ok && a.StringValue != nil {
		return *a.StringValue
	}
	return ""
}

// owner names this run of a chunk in the claim table.
func owner(ctx context.Context) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := "worker"
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		id = lc.AwsRequestID
	}
	return id + "/" + hex.EncodeToString(b[:])
}
