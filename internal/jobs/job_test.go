package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

func nodeID(n int) string { return fmt.Sprintf("i-%017x", n) }

func fanOut(t *testing.T, nodes int, extra ...string) *request.Request {
	t.Helper()
	ids := make([]string, 0, nodes+len(extra))
	for n := range nodes {
		ids = append(ids, fmt.Sprintf("%q", nodeID(n)))
	}
	for _, x := range extra {
		ids = append(ids, fmt.Sprintf("%q", x))
	}
	req, err := request.Parse([]byte(`{"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":[`+strings.Join(ids, ",")+`]}`), request.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// allOutcomes reads every page of a job's outcomes.
func (e *env) allOutcomes(jobID string) report.Result {
	var all report.Result
	token := ""
	for pages := 0; ; pages++ {
		p, err := e.direct.Outcomes(context.Background(), jobID, 7, token)
		if err != nil {
			e.t.Fatal(err)
		}
		all.Successful = append(all.Successful, p.Outcomes.Successful...)
		all.Failed = append(all.Failed, p.Outcomes.Failed...)
		all.Deduplicated = append(all.Deduplicated, p.Outcomes.Deduplicated...)
		all.Unprocessed = append(all.Unprocessed, p.Outcomes.Unprocessed...)
		if token = p.NextToken; token == "" {
			all.Tally()
			return all
		}
		if pages > 10000 {
			e.t.Fatal("pagination does not end")
		}
	}
}

// nodeOutcomes maps each node to the lists it appears in.
func nodeOutcomes(r report.Result) map[string][]string {
	out := map[string][]string{}
	add := func(id *string, ts []request.Target, list string) {
		switch {
		case id != nil && *id != "":
			out[*id] = append(out[*id], list)
		case len(ts) > 0:
			for _, v := range ts[0].Values {
				out[v] = append(out[v], list)
			}
		}
	}
	for _, a := range r.Successful {
		add(&a.InstanceId, a.Targets, "Successful")
	}
	for _, f := range r.Failed {
		add(f.Entry.InstanceId, f.Entry.Targets, "Failed")
	}
	for _, d := range r.Deduplicated {
		add(d.Entry.InstanceId, d.Entry.Targets, "Deduplicated:"+d.Reason)
	}
	for _, u := range r.Unprocessed {
		add(u.Entry.InstanceId, u.Entry.Targets, "Unprocessed")
	}
	return out
}

func (e *env) assertNoClaimInProgress() {
	filt, _ := expression.NewBuilder().WithFilter(expression.Name("status").Equal(expression.Value("IN_PROGRESS"))).Build()
	out, err := e.ddbClient.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.dedupeTable),
		FilterExpression: filt.Filter(), ExpressionAttributeNames: filt.Names(), ExpressionAttributeValues: filt.Values()})
	if err != nil {
		e.t.Fatal(err)
	}
	if out.Count != 0 {
		e.t.Errorf("%d claims left IN_PROGRESS", out.Count)
	}
}

func (e *env) assertLedgerOnce(want int) {
	pairs := e.emu.AssociationsByNode()
	for k, ids := range pairs {
		if len(ids) > 1 {
			e.t.Errorf("%s associated %d times", k, len(ids))
		}
	}
	if len(pairs) != want {
		e.t.Errorf("ledger has %d (document, node) pairs, want %d", len(pairs), want)
	}
}

func TestJobOfTwentyThousandNodes(t *testing.T) {
	opts := ssmlocal.DefaultOptions()
	opts.MaxAssociations = 0
	opts.MaxBatch = 50
	opts.EntryFaultRate = 0.03
	opts.ThrottleRate = 0.02
	opts.Seed = 7
	e := newEnv(t, opts, 5, 3*time.Minute) // longer than a worker run (the event source gives it 60 s), as the template makes it (6x the worker timeout): under load a 500-entry chunk once took over 30 s and was redelivered while it ran
	const n = 20000
	// Ten repeated nodes and one malformed ID are settled at submission.
	var repeats []string
	for i := range 10 {
		repeats = append(repeats, nodeID(i*100))
	}
	req := fanOut(t, n, append(repeats, "i-bad")...)

	acc, err := e.submitter(500).Submit(context.Background(), req, event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatal(err)
	}
	if acc.State != jobs.StateQueued || acc.Chunks != 40 || acc.Counts.Requested != n+11 || acc.Counts.Failed != 1 || acc.Counts.Deduplicated != 10 {
		t.Fatalf("accepted %+v", acc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	m := e.runWorkers(ctx, acc.JobID, 3, associate.Settings{BatchSize: 50, MaxConcurrency: 4, MaxAttempts: 8, Backoff: 20 * time.Millisecond})
	t.Logf("job %s finished in %s: %+v; emulator %+v", acc.JobID, time.Since(start).Round(time.Millisecond), m, e.emu.Stats())

	if m.State != jobs.StatePartial || m.Successful != n || m.Failed != 1 || m.Deduplicated != 10 || m.Unprocessed != 0 || m.ChunksDone != 40 {
		// PARTIAL: the malformed ID is a Failed entry.
		t.Fatalf("job %+v", m)
	}
	all := e.allOutcomes(acc.JobID)
	if all.Summary.Successful != n || all.Summary.Failed != 1 || all.Summary.Deduplicated != 10 {
		t.Fatalf("outcomes %+v", all.Summary)
	}
	for node, lists := range nodeOutcomes(all) {
		if lists[0] != "Successful" && node != "i-bad" {
			t.Fatalf("%s: %v", node, lists)
		}
		for _, l := range lists[1:] {
			if l != "Deduplicated:"+report.ReasonDuplicateInRequest {
				t.Fatalf("%s has outcomes %v", node, lists)
			}
		}
	}
	e.assertLedgerOnce(n)
	e.assertNoClaimInProgress()
	if st := e.emu.Stats(); st.DuplicatesRefused != 0 || st.EntriesFailedByInjection == 0 {
		t.Errorf("emulator %+v: want faults injected and nothing resent after success", st)
	}
	done := e.completions()
	if len(done) != 1 || done[0].JobID != acc.JobID || done[0].State != jobs.StatePartial || done[0].Successful != n {
		t.Errorf("completion events %+v", done)
	}
}

func TestWorkerKilledMidChunkLosesNothing(t *testing.T) {
	opts := ssmlocal.DefaultOptions()
	opts.Latency = 40 * time.Millisecond
	e := newEnv(t, opts, 8, 6*time.Second)
	testinfra.RequireTools(t, testinfra.ToolRIE, testinfra.ToolGo)
	const n = 600
	acc, err := e.submitter(300).Submit(context.Background(), fanOut(t, n), event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatal(err)
	}

	// The real worker, under the Runtime Interface Emulator, is killed with
	// SIGKILL in the middle of a chunk: it neither answers, nor releases its
	// claims, nor lets its message be deleted.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bootstrap, err := testinfra.BuildBootstrap(ctx, "./functions/worker", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const lease = 5 * time.Second // the worker's timeout, so its claims' lease
	rie, err := testinfra.StartRIE(ctx, bootstrap, append(ddb.Env(),
		"AWS_ENDPOINT_URL_SSM="+e.ssmURL, "AWS_ENDPOINT_URL_SQS="+moto.Endpoint(), "AWS_ENDPOINT_URL_EVENTBRIDGE="+moto.Endpoint(),
		"DEDUPE_TABLE="+e.dedupeTable, "JOBS_TABLE="+e.jobsTable, "JOBS_QUEUE_URL="+e.queueURL, "EVENT_BUS_NAME="+e.bus,
		"BATCH_SIZE=10", "MAX_CONCURRENCY=2", "CALLS_PER_SECOND=0", "AWS_LAMBDA_LOG_FORMAT=JSON",
	), testinfra.WithFunctionTimeout(lease))
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queueURL), MaxNumberOfMessages: 1,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"}})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v", err)
	}
	payload, err := json.Marshal(testinfra.ToSQSEvent(out.Messages[0]))
	if err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	go func() { _, _ = rie.Invoke(ctx, payload) }()
	for e.emu.Stats().AssociationsCreated < 50 {
		if time.Since(killedAt) > 30*time.Second {
			t.Fatalf("the worker made no progress:\n%s", rie.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := rie.Kill(); err != nil {
		t.Fatal(err)
	}
	before := e.emu.Stats().AssociationsCreated
	if before >= 300 {
		t.Fatalf("%d associations before the kill: the chunk had finished", before)
	}
	t.Logf("killed after %d associations", before)

	// Workers that play the event source finish the job: the killed chunk
	// comes back after the visibility timeout, waits for its lease, and is
	// run again; what the killed run associated but never recorded comes
	// back from SSM as already existing.
	set := associate.Settings{BatchSize: 10, MaxConcurrency: 2, MaxAttempts: 5}
	m := e.runWorkers(ctx, acc.JobID, 2, set)
	if m.State != jobs.StateSucceeded || m.Successful+m.Deduplicated != n || m.Failed+m.Unprocessed != 0 {
		t.Fatalf("job %+v", m)
	}
	// Each node has one outcome: Successful, or, for what the killed run
	// did, "already associated" (it recorded the claim before it died) or
	// "already exists in SSM" (it died between SSM's answer and the record).
	for node, lists := range nodeOutcomes(e.allOutcomes(acc.JobID)) {
		switch {
		case len(lists) != 1:
			t.Errorf("%s: %v", node, lists)
		case lists[0] == "Successful", lists[0] == "Deduplicated:"+report.ReasonAlreadyExists, lists[0] == "Deduplicated:"+report.ReasonAlreadyAssociated:
		default:
			t.Errorf("%s: %v", node, lists)
		}
	}
	e.assertLedgerOnce(n)
	e.assertNoClaimInProgress()
	if st := e.emu.Stats(); st.AssociationsCreated != n {
		t.Errorf("%d associations created, want %d", st.AssociationsCreated, n)
	}
}

func TestPoisonMessageIsCountedAndDeadLettered(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 2, 2*time.Second)
	acc, err := e.submitter(100).Submit(context.Background(), fanOut(t, 150), event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatal(err)
	}
	// A message that names the job but whose body cannot be read.
	jobID := acc.JobID
	_, err = e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.queueURL), MessageBody: aws.String("{not json"),
		MessageAttributes: messageAttrs(jobID, 3)})
	if err != nil {
		t.Fatal(err)
	}
	// The job must wait for the poisoned chunk: tell it it has three.
	if _, err := e.ddbClient.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(e.jobsTable),
		Key: jobKey(jobID), UpdateExpression: aws.String("SET chunks = :c"), ExpressionAttributeValues: numberValue(":c", 3)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := e.runWorkers(ctx, jobID, 1, associate.Settings{BatchSize: 10, MaxConcurrency: 2, MaxAttempts: 3})
	if m.State != jobs.StatePartial || m.ChunksDone != 2 || m.ChunksPoisoned != 1 || m.Successful != 150 {
		t.Fatalf("job %+v", m)
	}
	// After maxReceiveCount receives SQS moves it to the dead-letter queue.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queueURL), WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		_ = out
		d, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.dlqURL), WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Messages) == 1 && aws.ToString(d.Messages[0].Body) == "{not json" {
			return
		}
	}
	t.Fatal("the poison message did not reach the dead-letter queue")
}

// A job is split into a multiple of the workers' chunks, of equal size:
// 1,000 entries at most 400 a chunk would be 400, 400 and 200, which two
// workers finish one after the other; with 2 workers they are 4 of 250.
// With calls of 30 entries, they are whole calls (9, 9, 8 and what is
// left, 7⅓) instead of 250 = 8⅓ calls each. The last two, one for each
// worker, are Closing.
func TestJobChunksComeInMultiplesOfTheWorkers(t *testing.T) {
	for _, c := range []struct {
		batch int
		want  []int
	}{{1, []int{250, 250, 250, 250}}, {30, []int{270, 270, 240, 220}}} {
		e := newEnv(t, ssmlocal.DefaultOptions(), 5, 30*time.Second)
		const n = 1000
		acc, err := e.submitter(400).WithWorkers(2).WithBatchSize(c.batch).Submit(context.Background(), fanOut(t, n), event.Caller{Kind: event.Direct})
		if err != nil {
			t.Fatal(err)
		}
		if acc.Chunks != 4 {
			t.Fatalf("batch %d: %d chunks, want 4", c.batch, acc.Chunks)
		}
		sizes, closing := map[int]int{}, map[int]bool{}
		for len(sizes) < acc.Chunks {
			out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil || len(out.Messages) == 0 {
				t.Fatalf("receive: %d messages, %v; have %v", len(out.Messages), err, sizes)
			}
			for _, m := range out.Messages {
				var ch jobs.Chunk
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ch); err != nil {
					t.Fatal(err)
				}
				sizes[ch.Index], closing[ch.Index] = len(ch.Entries), ch.Closing
			}
		}
		got := []int{sizes[1], sizes[2], sizes[3], sizes[4]}
		if !slices.Equal(got, c.want) {
			t.Errorf("batch %d: chunk sizes %v, want %v", c.batch, got, c.want)
		}
		// The last chunk of each worker closes its share of the rate.
		if want := map[int]bool{1: false, 2: false, 3: true, 4: true}; !maps.Equal(closing, want) {
			t.Errorf("batch %d: chunks closing %v, want %v", c.batch, closing, want)
		}
	}
}

// closingSpy runs a worker's chunks on engine and records, chunk by chunk,
// whether the worker ran it as Closing.
type closingSpy struct {
	engine *associate.Engine

	mu      sync.Mutex
	closing map[int]bool
}

func (s *closingSpy) Run(ctx context.Context, j associate.Job) (report.Result, error) {
	var chunk int
	if len(j.Request.Items) > 0 {
		_, _ = fmt.Sscanf(j.Request.Items[0].Path, "Chunk[%d]", &chunk)
	}
	s.mu.Lock()
	s.closing[chunk] = j.Closing
	s.mu.Unlock()
	return s.engine.Run(ctx, j)
}

// The worker runs the last chunk of each worker as Closing: with
// CALLS_PER_SECOND=auto it leaves the shared rate at once, for the workers
// still running to take its share.
func TestWorkerRunsTheJobsLastChunksAsClosing(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 30*time.Second)
	acc, err := e.submitter(400).WithWorkers(2).Submit(context.Background(), fanOut(t, 1000), event.Caller{Kind: event.Direct})
	if err != nil || acc.Chunks != 4 {
		t.Fatalf("submit: %+v, %v; want 4 chunks", acc, err)
	}
	spy := &closingSpy{engine: e.engine(associate.Settings{BatchSize: 10, CallsPerSecond: 0, MaxConcurrency: 4, MaxAttempts: 5}), closing: map[int]bool{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if m := e.runWorkersOf(ctx, acc.JobID, 2, func() *jobs.Worker { return e.workerOn(spy) }); m.State != jobs.StateSucceeded {
		t.Fatalf("job %s, want %s", m.State, jobs.StateSucceeded)
	}
	if want := map[int]bool{1: false, 2: false, 3: true, 4: true}; !maps.Equal(spy.closing, want) {
		t.Errorf("chunks run as closing %v, want %v", spy.closing, want)
	}
}
