package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/faultproxy"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// faulty puts the fault proxy in front of DynamoDB Local for the job store
// (the claims keep a direct client: the faults are the job bookkeeping's).
func (e *env) faulty(seed int64) *faultproxy.Proxy {
	p, err := faultproxy.New(ddb.Endpoint(), seed)
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	e.t.Cleanup(srv.Close)
	cfg := e.cfg.Copy()
	cfg.BaseEndpoint = aws.String(srv.URL)
	e.store = jobs.NewStore(awsclient.DynamoDB(cfg), e.jobsTable, time.Hour)
	return p
}

func (e *env) announcer() *jobs.Announcer {
	mcfg := e.cfg.Copy()
	mcfg.BaseEndpoint = aws.String(moto.Endpoint())
	return jobs.NewAnnouncer(awsclient.EventBridge(mcfg), e.bus)
}

func (e *env) reaper() *jobs.Reaper {
	return jobs.NewReaper(e.store, e.announcer(), time.Hour, nil, nil)
}

// handling is what the workers did with each chunk's messages.
type handling struct {
	mu       sync.Mutex
	receives map[int][]int // chunk -> ApproximateReceiveCount of each delivery
	failed   map[int]int   // chunk -> deliveries handed back
	// inFlight counts each chunk's deliveries being handled; twice marks
	// the chunks SQS delivered again while one was (at-least-once: moto
	// does it under load too), whose second run rightly finds the claims
	// held and hands the chunk back.
	inFlight map[int]int
	twice    map[int]bool
}

func (h *handling) chunkOf(m events.SQSMessage) int {
	n, _ := strconv.Atoi(attrValue(m, jobs.ChunkAttribute))
	return n
}

func attrValue(m events.SQSMessage, name string) string {
	if a, ok := m.MessageAttributes[name]; ok && a.StringValue != nil {
		return *a.StringValue
	}
	return ""
}

// jobRun plays 4 workers (batch size 1, as the template's default) and,
// when dlq is set, the reaper on the dead-letter queue, until the job is
// final. crash names a chunk whose worker dies on every receive.
type jobRun struct {
	workers int
	crash   int
	dlq     bool
	timeout time.Duration // the workers' invocation timeout
}

func (e *env) run(ctx context.Context, jobID string, r jobRun) (jobs.Meta, *handling) {
	h := &handling{receives: map[int][]int{}, failed: map[int]int{}, inFlight: map[int]int{}, twice: map[int]bool{}}
	var wg sync.WaitGroup
	finished := func() bool {
		m, err := e.direct.Meta(context.Background(), jobID)
		return err == nil && jobs.Final(m.State)
	}
	set := associate.Settings{BatchSize: 10, MaxConcurrency: 4, MaxAttempts: 5, Backoff: 20 * time.Millisecond}
	for range r.workers {
		w := e.worker(set)
		handle := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			msg := ev.Records[0]
			chunk := h.chunkOf(msg)
			n, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
			h.mu.Lock()
			h.receives[chunk] = append(h.receives[chunk], n)
			h.inFlight[chunk]++
			h.twice[chunk] = h.twice[chunk] || h.inFlight[chunk] > 1
			h.mu.Unlock()
			defer func() {
				h.mu.Lock()
				h.inFlight[chunk]--
				h.mu.Unlock()
			}()
			if chunk == r.crash {
				// The process dies: no answer, the batch comes back — at
				// once here, rather than after the visibility timeout, which
				// stays long so that no other chunk is delivered twice.
				_, _ = e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(e.queueURL),
					ReceiptHandle: aws.String(msg.ReceiptHandle), VisibilityTimeout: 0})
				return events.SQSEventResponse{}, fmt.Errorf("worker crashed on chunk %d", chunk)
			}
			resp, err := w.Handle(ctx, ev)
			if len(resp.BatchItemFailures) > 0 || err != nil {
				h.mu.Lock()
				h.failed[chunk]++
				h.mu.Unlock()
			}
			return resp, err
		}
		src := testinfra.SQSEventSource{Client: e.sqs, QueueURL: e.queueURL, BatchSize: 1, Timeout: r.timeout}
		wg.Go(func() { src.Run(ctx, handle, finished) })
	}
	if r.dlq {
		rp := e.reaper()
		src := testinfra.SQSEventSource{Client: e.sqs, QueueURL: e.dlqURL, BatchSize: 10, Timeout: r.timeout}
		wg.Go(func() { src.Run(ctx, rp.HandleDeadLetters, finished) })
	}
	wg.Wait()
	m, err := e.direct.Meta(context.Background(), jobID)
	if err != nil {
		e.t.Fatal(err)
	}
	return m, h
}

// assertJob checks what every job test promises: a final state, counts
// that are the sum of the chunks' outcomes, every chunk counted exactly
// once, one outcome per node, and exactly one completion event.
func (e *env) assertJob(m jobs.Meta, wantState string, nodes int) report.Result {
	e.t.Helper()
	if m.State != wantState {
		e.t.Errorf("job state %s, want %s (%+v)", m.State, wantState, m)
	}
	if m.ChunksDone+m.ChunksPoisoned != m.Chunks {
		e.t.Errorf("chunks done %d + poisoned %d != %d: a chunk counted twice or not at all", m.ChunksDone, m.ChunksPoisoned, m.Chunks)
	}
	all := e.allOutcomes(m.JobID)
	if got, want := (jobs.Counts{Requested: m.Requested, Successful: all.Summary.Successful, Updated: all.Summary.Updated, Failed: all.Summary.Failed,
		Deduplicated: all.Summary.Deduplicated, Unprocessed: all.Summary.Unprocessed}), m.Counts; got != want {
		e.t.Errorf("job counts %+v, want the sum of its chunks' outcomes %+v", want, got)
	}
	if sum := m.Successful + m.Updated + m.Failed + m.Deduplicated + m.Unprocessed; sum != m.Requested && nodes > 0 {
		e.t.Errorf("counts add up to %d, want %d requested", sum, m.Requested)
	}
	for node, lists := range nodeOutcomes(all) {
		if len(lists) != 1 {
			e.t.Errorf("node %s has outcomes %v: counted twice", node, lists)
		}
	}
	if nodes > 0 && len(nodeOutcomes(all)) != nodes {
		e.t.Errorf("%d nodes have an outcome, want %d", len(nodeOutcomes(all)), nodes)
	}
	done := e.completions()
	time.Sleep(time.Second) // a late duplicate would arrive meanwhile
	done = append(done, e.completions()...)
	if len(done) != 1 || done[0].JobID != m.JobID || done[0].State != m.State || done[0].Counts != m.Counts {
		e.t.Errorf("completion events %+v, want exactly one for %+v", done, m)
	}
	return all
}

// assertNoBounce: every chunk but the crashing one was handled once, on
// its first receive, and not handed back (none waited for a visibility
// timeout); or, delivered twice at once by the queue, twice with at most
// one hand-back.
func (h *handling) assertNoBounce(t *testing.T, chunks, crash int) {
	t.Helper()
	for c := 1; c <= chunks; c++ {
		if c == crash {
			continue
		}
		if h.twice[c] && len(h.receives[c]) == 2 && h.failed[c] <= 1 {
			t.Logf("chunk %d: delivered again while it ran (receives %v, handed back %d times): the queue's at-least-once, not the function", c, h.receives[c], h.failed[c])
			continue
		}
		if got := h.receives[c]; len(got) != 1 || got[0] != 1 || h.failed[c] != 0 {
			t.Errorf("chunk %d: receives %v, handed back %d times; want one receive, not handed back", c, got, h.failed[c])
		}
	}
}

const (
	faultNodes     = 600
	faultChunkSize = 25 // 24 chunks
)

func (e *env) submitNodes(t *testing.T, n int) jobs.Accepted {
	t.Helper()
	acc, err := e.submitter(faultChunkSize).WithAnnouncer(e.announcer()).Submit(context.Background(), fanOut(t, n), event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// isStarted matches Store.Started's UpdateItem: the only job update whose
// values name RUNNING without naming finishedBy (Finish's), while no
// reaper runs (MarkStalled's names RUNNING too).
func isStarted(body []byte) bool {
	return bytes.Contains(body, []byte(`"RUNNING"`)) && !bytes.Contains(body, []byte("finishedBy"))
}

// TestJobTransactionConflicts: 30 % of the count transactions are
// cancelled by a TransactionConflict, and 30 % of the Started updates
// refused with TransactionConflictException (another chunk's count
// transaction holds the job's item); the worker retries both at once with
// backoff, so no chunk comes back after a visibility timeout.
func TestJobTransactionConflicts(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	p := e.faulty(14)
	p.SetRules(
		faultproxy.Rule{Operation: "TransactWriteItems", Rate: 0.3, Fault: faultproxy.TransactionConflict},
		faultproxy.Rule{Operation: "UpdateItem", Match: isStarted, Rate: 0.3, Fault: faultproxy.TransactionConflict},
	)
	acc := e.submitNodes(t, faultNodes)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	m, h := e.run(ctx, acc.JobID, jobRun{workers: 4, timeout: 60 * time.Second})
	st, fired := p.Stats(), p.Fired()
	t.Logf("job finished in %s: %+v; TransactWriteItems forwarded %d, conflicts injected %d; Started refused %d times",
		time.Since(start).Round(time.Millisecond), m.Counts, st["TransactWriteItems"].Forwarded, fired[0], fired[1])
	if fired[0] == 0 {
		t.Fatal("no count transaction conflicted")
	}
	if fired[1] == 0 || st["UpdateItem"].Injected[faultproxy.TransactionConflict] != fired[1] {
		t.Fatalf("Started refused %d times, UpdateItem stats %+v: want Started's retry exercised", fired[1], st["UpdateItem"])
	}
	e.assertJob(m, jobs.StateSucceeded, faultNodes)
	h.assertNoBounce(t, acc.Chunks, 0)
	e.assertLedgerOnce(faultNodes)
}

// TestJobLostAnswers: a third of the answers to the count transactions and
// to the job's updates (Started, Finish, the announcement's claim) are
// lost after DynamoDB applied them, and the first answer to Finish always
// is (the only request naming finishedBy).
func TestJobLostAnswers(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	p := e.faulty(15)
	p.SetRules(
		faultproxy.Rule{Operation: "UpdateItem", Match: faultproxy.BodyContains(`"finishedBy"`), Count: 1, Fault: faultproxy.DropAfterForward},
		faultproxy.Rule{Operation: "TransactWriteItems", Rate: 0.3, Fault: faultproxy.DropAfterForward},
		faultproxy.Rule{Operation: "UpdateItem", Rate: 0.3, Fault: faultproxy.DropAfterForward},
	)
	acc := e.submitNodes(t, faultNodes)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	m, h := e.run(ctx, acc.JobID, jobRun{workers: 4, timeout: 60 * time.Second})
	st := p.Stats()
	t.Logf("job finished in %s: %+v; lost answers: TransactWriteItems %d of %d, UpdateItem %d of %d",
		time.Since(start).Round(time.Millisecond), m.Counts,
		st["TransactWriteItems"].Injected[faultproxy.DropAfterForward], st["TransactWriteItems"].Forwarded,
		st["UpdateItem"].Injected[faultproxy.DropAfterForward], st["UpdateItem"].Forwarded)
	if st["TransactWriteItems"].Injected[faultproxy.DropAfterForward] == 0 || st["UpdateItem"].Injected[faultproxy.DropAfterForward] == 0 {
		t.Fatal("no answer lost")
	}
	if fired := p.Fired(); fired[0] != 1 {
		t.Fatalf("rules fired %v: Finish's answer was not lost", fired)
	}
	e.assertJob(m, jobs.StateSucceeded, faultNodes)
	h.assertNoBounce(t, acc.Chunks, 0)
	e.assertLedgerOnce(faultNodes)
}

// TestJobLostAnswerToTheLastFinish: the answer to the last chunk's count
// transaction is lost, and then the first two answers to Finish: the job
// still ends, announced once, and settling it again changes nothing.
func TestJobLostAnswerToTheLastFinish(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	p := e.faulty(16)
	ctx := context.Background()
	if err := e.store.Create(ctx, "last", 3, 1, report.New()); err != nil {
		t.Fatal(err)
	}
	r := report.New()
	for i := range 3 {
		r.Successful = append(r.Successful, report.Association{AssociationId: fmt.Sprint(i), Name: "AWS-UpdateSSMAgent", InstanceId: nodeID(i)})
	}
	p.SetRules(faultproxy.Rule{Operation: "TransactWriteItems", Count: 1, Fault: faultproxy.DropAfterForward})
	m, counted, err := e.store.Record(ctx, "last", 1, r, true, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("count transaction's answer lost; this call counted: %v (true: DynamoDB Local honoured the ClientRequestToken)", counted)
	if m.ChunksDone != 1 || m.Successful != 3 || jobs.Final(m.State) {
		t.Fatalf("job %+v", m)
	}
	p.SetRules(faultproxy.Rule{Operation: "UpdateItem", Count: 2, Fault: faultproxy.DropAfterForward})
	m, err = e.store.Settle(ctx, e.announcer(), m)
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st["UpdateItem"].Injected[faultproxy.DropAfterForward] != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Settled again, by a redelivery or the reaper: nothing more.
	if _, err := e.store.Settle(ctx, e.announcer(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reaper().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	m, err = e.direct.Meta(ctx, "last")
	if err != nil {
		t.Fatal(err)
	}
	e.assertJob(m, jobs.StateSucceeded, 3)
}

// TestJobChunkCrashesTheWorker: one chunk's message kills its worker on
// every receive; after MAX_RECEIVES it reaches the dead-letter queue, where
// the reaper counts it as poisoned, its entries Unprocessed, and finishes
// the job. The other chunks are never handed back.
func TestJobChunkCrashesTheWorker(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 2, 60*time.Second)
	p := e.faulty(17)
	p.SetRules(faultproxy.Rule{Operation: "TransactWriteItems", Rate: 0.3, Fault: faultproxy.TransactionConflict})
	acc := e.submitNodes(t, faultNodes)
	const crash = 7
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	m, h := e.run(ctx, acc.JobID, jobRun{workers: 4, crash: crash, dlq: true, timeout: 30 * time.Second})
	t.Logf("job finished in %s: %+v; the crashing chunk was received %v", time.Since(start).Round(time.Millisecond), m.Counts, h.receives[crash])
	all := e.assertJob(m, jobs.StatePartial, faultNodes)
	if m.ChunksPoisoned != 1 || m.Unprocessed != faultChunkSize || m.Successful != faultNodes-faultChunkSize {
		t.Errorf("job %+v: want chunk %d poisoned with its %d entries Unprocessed", m, crash, faultChunkSize)
	}
	for _, u := range all.Unprocessed {
		if u.Reason != jobs.ReasonDeadLettered {
			t.Errorf("unprocessed %s: reason %q", aws.ToString(u.Entry.InstanceId), u.Reason)
		}
	}
	if got := h.receives[crash]; len(got) != 2 {
		t.Errorf("crashing chunk received %v, want MAX_RECEIVES (2) times", got)
	}
	h.assertNoBounce(t, acc.Chunks, crash)
	e.assertLedgerOnce(faultNodes - faultChunkSize)
}

// TestJobSettledAtSubmission: every entry is invalid or a repeat, so the
// job has no chunk: it is final at once and announced once — by the
// submitter, or by the reaper when the submitter has no announcer.
func TestJobSettledAtSubmission(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	e.faulty(18).SetRules(faultproxy.Rule{Operation: "UpdateItem", Rate: 0.5, Fault: faultproxy.DropAfterForward})
	req, err := request.Parse([]byte(`{"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-bad","nope","i-wrong"]}`), request.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, withAnnouncer := range []bool{true, false} {
		s := e.submitter(10)
		if withAnnouncer {
			s.WithAnnouncer(e.announcer())
		}
		acc, err := s.Submit(context.Background(), req, event.Caller{Kind: event.Direct})
		if err != nil {
			t.Fatal(err)
		}
		if acc.Chunks != 0 || acc.State != jobs.StateFailed {
			t.Fatalf("accepted %+v, want a FAILED job of no chunk", acc)
		}
		// The reaper's sweeps must not announce it again (or, without an
		// announcer at submission, announce it once).
		for range 2 {
			if _, err := e.reaper().Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		m, err := e.direct.Meta(context.Background(), acc.JobID)
		if err != nil {
			t.Fatal(err)
		}
		e.assertJob(m, jobs.StateFailed, 0)
	}
}

// TestJobRedeliveredCountedChunk: a chunk's message delivered again after
// the chunk was counted (and the job finished) is deleted without running
// the engine; the counts and the single completion event stay.
func TestJobRedeliveredCountedChunk(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	p := e.faulty(19)
	p.SetRules(faultproxy.Rule{Operation: "TransactWriteItems", Rate: 0.3, Fault: faultproxy.TransactionConflict})
	req := fanOut(t, 100)
	acc, err := e.submitter(faultChunkSize).WithAnnouncer(e.announcer()).Submit(context.Background(), req, event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatal(err)
	}
	// Chunk 2's message, as the submitter sent it.
	c := jobs.Chunk{JobID: acc.JobID, Index: 2}
	for _, it := range req.Items[faultChunkSize : 2*faultChunkSize] {
		c.Entries = append(c.Entries, it.Entry)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, h := e.run(ctx, acc.JobID, jobRun{workers: 4, timeout: 60 * time.Second})
	h.assertNoBounce(t, acc.Chunks, 0)
	calls := e.emu.Stats().Calls

	if _, err := e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.queueURL), MessageBody: aws.String(body),
		MessageAttributes: messageAttrs(acc.JobID, 2)}); err != nil {
		t.Fatal(err)
	}
	w := e.worker(associate.Settings{BatchSize: 10, MaxConcurrency: 4, MaxAttempts: 5})
	got, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queueURL), MaxNumberOfMessages: 1,
		MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}, WaitTimeSeconds: 5})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("receive the redelivery: %v", err)
	}
	resp, err := w.Handle(ctx, testinfra.ToSQSEvent(got.Messages...))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery: %v, failures %v; want it deleted", err, resp.BatchItemFailures)
	}
	if after := e.emu.Stats().Calls; after != calls {
		t.Errorf("the redelivered chunk made %d SSM calls, want none (not run again)", after-calls)
	}
	again, err := e.direct.Meta(context.Background(), acc.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Counts != m.Counts || again.ChunksDone != m.ChunksDone {
		t.Errorf("after the redelivery %+v, before %+v", again, m)
	}
	e.assertJob(again, jobs.StateSucceeded, 100)
	e.assertLedgerOnce(100)
}

// TestLargestChunkOutcomes records the outcomes of the largest chunk
// CHUNK_SIZE allows (10,000 entries), each Failed with a message at the
// recorded limit: far more than one 400 KB item holds.
func TestLargestChunkOutcomes(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	const entries = 10000
	ctx := context.Background()
	if err := e.store.Create(ctx, "big", entries, 1, report.New()); err != nil {
		t.Fatal(err)
	}
	r := report.New()
	msg := strings.Repeat("m", 4000) // recorded cut to 2 KB
	for i := range entries {
		r.Failed = append(r.Failed, report.Failure{Entry: request.Entry{Name: "AWS-RunShellScript", InstanceId: aws.String(nodeID(i)),
			Parameters: map[string][]string{"commands": {strings.Repeat("x", 20)}}}, Fault: report.FaultServer, Message: msg, Attempts: 5})
	}
	// An earlier, unfinished run of the same chunk, with other outcomes,
	// must not show through.
	if _, _, err := e.store.Record(ctx, "big", 1, r, false, false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m, counted, err := e.store.Record(ctx, "big", 1, r, true, false)
	if err != nil || !counted {
		t.Fatalf("record: counted %v, %v", counted, err)
	}
	took := time.Since(start)
	if m.Failed != entries || m.ChunksDone != 1 {
		t.Fatalf("job %+v", m)
	}
	rec, err := e.store.Outcome(ctx, "big", 1)
	if err != nil || !rec.Counted || len(rec.Result.Failed) != entries {
		t.Fatalf("outcome: counted %v, %d Failed, %v", rec.Counted, len(rec.Result.Failed), err)
	}
	all := e.allOutcomes("big")
	if all.Summary.Failed != entries || len(nodeOutcomes(all)) != entries {
		t.Fatalf("outcomes: %+v, %d nodes", all.Summary, len(nodeOutcomes(all)))
	}
	for _, f := range all.Failed {
		if len(f.Message) > 2100 || f.Entry.Parameters["commands"][0] == strings.Repeat("x", 20) {
			t.Fatalf("outcome recorded with a %d-byte message, parameters %v", len(f.Message), f.Entry.Parameters)
		}
	}
	b, _ := json.Marshal(all)
	t.Logf("10,000 outcomes, %d bytes of JSON, recorded in %s", len(b), took.Round(time.Millisecond))
}

// TestReaperSweep: a job whose chunks are all counted but that nobody
// finished (its worker died after the count) is finished and announced
// once by the sweep; a job without progress for JOB_STALL_AFTER is marked
// STALLED, counted in the JobsStalled metric, and still finishes when its
// chunk comes in.
func TestReaperSweep(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	e.faulty(20).SetRules(faultproxy.Rule{Operation: "UpdateItem", Rate: 0.3, Fault: faultproxy.DropAfterForward})
	ctx := context.Background()
	one := report.New()
	one.Successful = []report.Association{{AssociationId: "a", Name: "AWS-UpdateSSMAgent", InstanceId: nodeID(1)}}
	one.Tally()
	for _, id := range []string{"orphan", "stuck"} {
		if err := e.store.Create(ctx, id, 1, 1, report.New()); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Started(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.store.Record(ctx, "orphan", 1, one, true, false); err != nil {
		t.Fatal(err)
	}
	var metrics strings.Builder
	rp := jobs.NewReaper(e.store, e.announcer(), time.Millisecond, nil, &metrics)
	time.Sleep(5 * time.Millisecond)
	res, err := rp.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Finished != 1 || res.Stalled != 1 {
		t.Errorf("sweep %+v, want 1 finished and 1 stalled", res)
	}
	if !strings.Contains(metrics.String(), `"JobsStalled":1`) {
		t.Errorf("metrics %s: want JobsStalled 1", metrics.String())
	}
	m, err := e.direct.Meta(ctx, "orphan")
	if err != nil {
		t.Fatal(err)
	}
	e.assertJob(m, jobs.StateSucceeded, 1)

	stuck, err := e.direct.Meta(ctx, "stuck")
	if err != nil || stuck.State != jobs.StateStalled {
		t.Fatalf("stuck job %+v, %v: want STALLED", stuck, err)
	}
	// Its chunk comes back (a redelivery): the job runs and finishes.
	if err := e.store.Started(ctx, "stuck"); err != nil {
		t.Fatal(err)
	}
	two := report.New()
	two.Successful = []report.Association{{AssociationId: "b", Name: "AWS-UpdateSSMAgent", InstanceId: nodeID(2)}}
	m, _, err = e.store.Record(ctx, "stuck", 1, two, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != jobs.StateRunning {
		t.Errorf("after a chunk started, state %s, want RUNNING", m.State)
	}
	if m, err = e.store.Settle(ctx, e.announcer(), m); err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	e.assertJob(m, jobs.StateSucceeded, 1)
}

// TestReaperBootstrap runs the real reaper (./functions/reaper, built as sam
// build builds it) under the Runtime Interface Emulator: a scheduled event
// sweeps, and a dead-letter queue event counts a chunk as poisoned.
func TestReaperBootstrap(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	testinfra.RequireTools(t, testinfra.ToolRIE, testinfra.ToolGo)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bootstrap, err := testinfra.BuildBootstrap(ctx, "./functions/reaper", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rie, err := testinfra.StartRIE(ctx, bootstrap, append(ddb.Env(),
		"AWS_ENDPOINT_URL_EVENTBRIDGE="+moto.Endpoint(), "JOBS_TABLE="+e.jobsTable, "EVENT_BUS_NAME="+e.bus, "AWS_LAMBDA_LOG_FORMAT=JSON",
	), testinfra.WithFunctionTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	// A job of two chunks: the first counted, the second dead-lettered.
	if err := e.store.Create(ctx, "dl", 2, 2, report.New()); err != nil {
		t.Fatal(err)
	}
	one := report.New()
	one.Successful = []report.Association{{AssociationId: "a", Name: "AWS-UpdateSSMAgent", InstanceId: nodeID(1)}}
	if _, _, err := e.store.Record(ctx, "dl", 1, one, true, false); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(jobs.Chunk{JobID: "dl", Index: 2, Entries: []request.Entry{{Name: "AWS-UpdateSSMAgent", InstanceId: aws.String(nodeID(2))}}})
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: string(body), EventSource: "aws:sqs"}}}
	payload, _ := json.Marshal(ev)
	out, err := rie.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("dead-letter event: %v\n%s", err, rie.Logs())
	}
	if !strings.Contains(string(out), `"batchItemFailures":[]`) && !strings.Contains(string(out), `"batchItemFailures":null`) {
		t.Errorf("answer %s: want no batch item failure", out)
	}
	m, err := e.direct.Meta(ctx, "dl")
	if err != nil {
		t.Fatal(err)
	}
	if m.ChunksPoisoned != 1 || m.Unprocessed != 1 {
		t.Errorf("job %+v: want chunk 2 poisoned, its entry Unprocessed", m)
	}
	e.assertJob(m, jobs.StatePartial, 2)
	out, err = rie.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`))
	if err != nil || !strings.Contains(string(out), `"Open":0`) {
		t.Fatalf("sweep: %s, %v\n%s", out, err, rie.Logs())
	}
}
