package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

type sendBatchAPI interface {
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Submitter turns a request into a job.
type Submitter struct {
	sqs        sendBatchAPI
	queueURL   string
	store      *Store
	chunkSize  int
	workers    int
	batch      int
	maxMessage int
	events     announcer
}

// NewSubmitter returns a submitter sending chunks of at most chunkSize
// entries to queueURL.
func NewSubmitter(client sendBatchAPI, queueURL string, store *Store, chunkSize int) *Submitter {
	return &Submitter{sqs: client, queueURL: queueURL, store: store, chunkSize: max(chunkSize, 1), workers: 1, batch: 1, maxMessage: MaxMessageBytes}
}

// WithWorkers splits each job into a multiple of workers chunks
// (WORKER_MAX_CONCURRENCY), of equal size, and returns s.
func (s *Submitter) WithWorkers(workers int) *Submitter {
	s.workers = max(workers, 1)
	return s
}

// WithBatchSize makes those chunks whole numbers of the workers' calls of
// batch entries (BATCH_SIZE) where they can be, and returns s.
func (s *Submitter) WithBatchSize(batch int) *Submitter {
	s.batch = max(batch, 1)
	return s
}

// chunkSizes is how many entries each chunk of a job of n takes, in order
// (Split repeats the last for any chunk after). A job that does not fit in
// one chunk of most is split into a multiple of workers chunks, as equal
// as they can be: workers that start together end together, instead of
// one running the job's last chunk alone while the others' share of the
// rate goes unused. Each is a whole number of calls of batch entries when
// that keeps them within one call of each other: 100,000 entries in 52
// chunks of 1,924 ended each chunk with a call of 4 entries. A job of one
// chunk stays one chunk: one invocation.
func chunkSizes(n, most, workers, batch int) []int {
	if n <= most || workers <= 1 {
		return []int{most}
	}
	k := (n + most - 1) / most
	k = min((k+workers-1)/workers*workers, n)
	unit := max(batch, 1)
	units := (n + unit - 1) / unit // the last may be short: n is no multiple of batch
	if units < k || (units+k-1)/k*unit > most {
		unit, units = 1, n
	}
	sizes := make([]int, k)
	for i := range sizes {
		sizes[i] = units / k * unit
		if i < units%k {
			sizes[i] += unit
		}
	}
	return sizes
}

// WithAnnouncer makes the submitter announce the jobs it settles itself:
// those settled entirely at submission, and those whose queued chunks all
// finished before it had counted the chunks it could not queue. Without
// it, the reaper announces them on its next run.
func (s *Submitter) WithAnnouncer(a *Announcer) *Submitter {
	s.events = a
	return s
}

// Accepted is the answer to a submitted job.
type Accepted struct {
	JobID     string `json:"JobId"`
	StatusURL string `json:"StatusUrl,omitempty"`
	State     string `json:"State"`
	Chunks    int    `json:"Chunks"`
	Counts    Counts `json:"Counts"`
	// Unqueued is why some chunks could not be queued (their entries are
	// Unprocessed), for the submitter's log: its text can name the queue
	// and AWS error codes, so the job's outcomes do not carry it.
	Unqueued error `json:"-"`
}

// Submit records req as a job of the caller by and queues its chunks.
// Entries that are invalid or repeat an earlier one are settled at once, as
// the synchronous path would report them.
func (s *Submitter) Submit(ctx context.Context, req *request.Request, by event.Caller) (Accepted, error) {
	jobID := newJobID()
	items, settled := associate.Settle(req.Items)
	entries := make([]request.Entry, len(items))
	for i, it := range items {
		entries[i] = it.Entry
	}
	head := Chunk{JobID: jobID, AssociationDispatchAssumeRole: req.AssociationDispatchAssumeRole, OnExisting: req.OnExisting}
	chunks, tooLarge, err := Split(head, entries, chunkSizes(len(entries), s.chunkSize, s.workers, s.batch), s.maxMessage)
	if err != nil {
		return Accepted{}, err
	}
	// SQS hands chunks out roughly in order: the last one per worker is
	// the last its worker runs.
	for i := max(len(chunks)-max(s.workers, 1), 0); i < len(chunks); i++ {
		chunks[i].Closing = true
	}
	for _, e := range tooLarge {
		settled.Failed = append(settled.Failed, report.Failure{Entry: e, Fault: report.FaultClient,
			Message: fmt.Sprintf("entry is larger than a queue message (%d bytes); send it in a synchronous request", s.maxMessage)})
	}
	settled.Tally()
	// The job exists before its first chunk can reach a worker.
	if err := s.store.CreateBy(ctx, by, jobID, len(req.Items), len(chunks), settled); err != nil {
		return Accepted{}, err
	}
	if len(chunks) == 0 {
		// Settled at submission: the job is final already; announce it.
		m, err := s.store.Meta(ctx, jobID)
		if err == nil {
			err = s.settle(ctx, m)
		}
		if err != nil {
			return Accepted{}, fmt.Errorf("job %s: settled at submission, not announced (the reaper will): %w", jobID, err)
		}
	}
	sent, sendErr := s.send(ctx, chunks)
	var unqueued []Chunk
	for _, ch := range chunks {
		if !sent[ch.Index] {
			unqueued = append(unqueued, ch)
		}
	}
	requeued, err := s.settleUnqueued(ctx, jobID, unqueued)
	maps.Copy(sent, requeued)
	if err != nil {
		return Accepted{}, fmt.Errorf("job %s: %w; settling the chunks not queued: %w", jobID, sendErr, err)
	}
	if len(sent) == 0 && len(chunks) > 0 {
		return Accepted{}, fmt.Errorf("job %s: nothing could be queued: %w", jobID, sendErr)
	}
	c := countsOf(settled)
	c.Requested = len(req.Items)
	state := StateQueued
	if len(chunks) == 0 {
		state = Meta{Counts: c}.finalState()
	}
	acc := Accepted{JobID: jobID, State: state, Chunks: len(chunks), Counts: c}
	if len(sent) < len(chunks) {
		acc.Unqueued = sendErr
	}
	return acc, nil
}

// settleUnqueued counts the chunks SQS did not take into the job, their
// entries Unprocessed, so that the job still finishes and says which
// entries to send again. No message will ever count a chunk whose count
// fails, so such a chunk is offered to the queue once more (a worker counts
// it if SQS takes it now), and counted again if SQS still refuses it. It
// returns the chunks queued on that second offer, and an error naming the
// chunks neither queued nor counted: their job cannot finish (the reaper
// marks it STALLED), so the caller must send the request again. Whatever
// fails, every chunk is tried.
func (s *Submitter) settleUnqueued(ctx context.Context, jobID string, unqueued []Chunk) (map[int]bool, error) {
	if len(unqueued) == 0 {
		return nil, nil
	}
	record := func(chunks []Chunk) ([]Chunk, error) {
		var (
			failed []Chunk
			errs   []error
		)
		for _, ch := range chunks {
			lost := report.New()
			for _, e := range ch.Entries {
				lost.Unprocessed = append(lost.Unprocessed, report.Unprocessed{Entry: e, Reason: reasonNotQueued})
			}
			if _, _, err := s.store.Record(ctx, jobID, ch.Index, lost, true, true); err != nil {
				failed = append(failed, ch)
				errs = append(errs, err)
			}
		}
		return failed, errors.Join(errs...)
	}
	failed, _ := record(unqueued)
	var requeued map[int]bool
	if len(failed) > 0 {
		requeued, _ = s.send(ctx, failed)
		var left []Chunk
		for _, ch := range failed {
			if !requeued[ch.Index] {
				left = append(left, ch)
			}
		}
		if failed, err := record(left); err != nil {
			idx := make([]int, len(failed))
			for i, ch := range failed {
				idx[i] = ch.Index
			}
			return requeued, fmt.Errorf("chunks %v neither queued nor counted: %w", idx, err)
		}
	}
	// The queued chunks may all have finished already: then nobody else
	// sees every chunk counted.
	m, err := s.store.Meta(ctx, jobID)
	if err == nil {
		err = s.settle(ctx, m)
	}
	return requeued, err
}

// reasonNotQueued is the outcome of an entry whose chunk could not be
// queued. It leaves out SQS's error, which names the queue; Accepted's
// Unqueued carries it to the log.
const reasonNotQueued = "could not be queued (SQS refused the chunk or could not be reached); send the entry again"

// settle finishes the job if every chunk is counted, and announces it when
// the submitter has an announcer (else the reaper does).
func (s *Submitter) settle(ctx context.Context, m Meta) error {
	if s.events != nil {
		_, err := s.store.Settle(ctx, s.events, m)
		return err
	}
	if m.finished() && !Final(m.State) {
		_, _, err := s.store.Finish(ctx, m)
		return err
	}
	return nil
}

// send queues the chunks with SendMessageBatch: at most 10 messages and
// MaxMessageBytes in all per call, retrying the entries SQS reports failed.
// It returns the chunks queued, and the error that stopped it, if any.
func (s *Submitter) send(ctx context.Context, chunks []Chunk) (map[int]bool, error) {
	var (
		batch []sqstypes.SendMessageBatchRequestEntry
		size  int
		sent  = map[int]bool{}
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		defer func() { batch, size = nil, 0 }()
		for attempt := 1; ; attempt++ {
			out, err := s.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.queueURL), Entries: batch})
			if err != nil {
				return fmt.Errorf("queue chunks: %w", err)
			}
			for _, ok := range out.Successful {
				n, _ := strconv.Atoi(aws.ToString(ok.Id))
				sent[n] = true
			}
			if len(out.Failed) == 0 {
				return nil
			}
			if attempt == 3 {
				f := out.Failed[0]
				return fmt.Errorf("queue chunks: %d messages refused, e.g. %s: %s", len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message))
			}
			failed := map[string]bool{}
			for _, f := range out.Failed {
				failed[aws.ToString(f.Id)] = true
			}
			var again []sqstypes.SendMessageBatchRequestEntry
			for _, e := range batch {
				if failed[aws.ToString(e.Id)] {
					again = append(again, e)
				}
			}
			batch = again
		}
	}
	for _, c := range chunks {
		body, err := json.Marshal(c)
		if err != nil {
			return sent, fmt.Errorf("encode chunk: %w", err)
		}
		if len(batch) == 10 || size+len(body) > s.maxMessage {
			if err := flush(); err != nil {
				return sent, err
			}
		}
		batch = append(batch, sqstypes.SendMessageBatchRequestEntry{
			Id:          aws.String(strconv.Itoa(c.Index)),
			MessageBody: aws.String(string(body)),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				JobIDAttribute: {DataType: aws.String("String"), StringValue: aws.String(c.JobID)},
				ChunkAttribute: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(c.Index))},
			},
		})
		size += len(body)
	}
	return sent, flush()
}

func newJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
