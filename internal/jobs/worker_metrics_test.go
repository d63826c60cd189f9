package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/metrics"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// emfLine is one EMF line of the worker, as CloudWatch reads it.
type emfLine struct {
	FunctionName string
	Source       string
	counts       map[string]int
	latency      json.RawMessage
	AWS          struct {
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	} `json:"_aws"`
}

func emfLines(t *testing.T, out []byte) []emfLine {
	t.Helper()
	var lines []emfLine
	for _, l := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var line emfLine
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(l, &line); err != nil {
			t.Fatalf("EMF line %s: %v", l, err)
		}
		if err := json.Unmarshal(l, &raw); err != nil {
			t.Fatal(err)
		}
		line.counts = map[string]int{}
		for _, d := range line.AWS.CloudWatchMetrics {
			if d.Namespace != metrics.Namespace || len(d.Dimensions) != 1 || !slices.Equal(d.Dimensions[0], []string{"FunctionName", "Source"}) {
				t.Errorf("EMF directive %+v: want namespace %s, dimensions FunctionName and Source", d, metrics.Namespace)
			}
			for _, m := range d.Metrics {
				if m.Unit != "Count" {
					line.latency = raw[m.Name]
					continue
				}
				var n int
				if err := json.Unmarshal(raw[m.Name], &n); err != nil {
					t.Fatalf("metric %s = %s: %v", m.Name, raw[m.Name], err)
				}
				line.counts[m.Name] = n
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// latencyValues is the number of calls an SSMCallLatency value stands for:
// an array of values (up to metrics.MaxValues) or a histogram's Count.
func latencyValues(t *testing.T, raw json.RawMessage) (n int, histogram bool) {
	t.Helper()
	var arr []float64
	if json.Unmarshal(raw, &arr) == nil {
		if len(arr) > metrics.MaxValues {
			t.Errorf("SSMCallLatency has %d values: CloudWatch drops a line of more than %d", len(arr), metrics.MaxValues)
		}
		return len(arr), false
	}
	var h metrics.Histogram
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("SSMCallLatency %s: neither values nor a histogram", raw)
	}
	if len(h.Values) > metrics.MaxValues || len(h.Values) != len(h.Counts) {
		t.Errorf("SSMCallLatency histogram of %d values and %d counts, want at most %d", len(h.Values), len(h.Counts), metrics.MaxValues)
	}
	sum := 0
	for _, c := range h.Counts {
		sum += c
	}
	if sum != h.Count {
		t.Errorf("SSMCallLatency histogram counts sum to %d, Count is %d", sum, h.Count)
	}
	return h.Count, true
}

// TestWorkerWritesChunkMetrics: each chunk a worker runs writes one EMF
// line with the associate function's metric names, FunctionName from the
// Lambda environment and Source "worker", the chunk's outcomes and its SSM
// calls with their latencies (as a histogram past 100 calls), so that the
// Failed alarm and the dashboard see jobs.
func TestWorkerWritesChunkMetrics(t *testing.T) {
	opts := ssmlocal.DefaultOptions()
	opts.MaxAssociations = 140 // 10 of the 150 nodes fail with AssociationLimitExceeded (Client)
	e := newEnv(t, opts, 5, 60*time.Second)
	const nodes = 150
	acc, err := e.submitter(120).Submit(context.Background(), fanOut(t, nodes), event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatal(err)
	}
	if acc.Chunks != 2 {
		t.Fatalf("accepted %+v: want 2 chunks (120 and 30 entries)", acc)
	}
	defer func(fn string) { lambdacontext.FunctionName = fn }(lambdacontext.FunctionName)
	lambdacontext.FunctionName = "stack-WorkerFunction-x1"

	var out bytes.Buffer
	w := e.worker(associate.Settings{BatchSize: 1, MaxConcurrency: 4, MaxAttempts: 3, Backoff: time.Millisecond}).WriteMetrics(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	finished := func() bool {
		m, err := e.direct.Meta(context.Background(), acc.JobID)
		return err == nil && jobs.Final(m.State)
	}
	src := testinfra.SQSEventSource{Client: e.sqs, QueueURL: e.queueURL, BatchSize: 1, Timeout: 60 * time.Second}
	src.Run(ctx, w.Handle, finished)
	m, err := e.direct.Meta(ctx, acc.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != jobs.StatePartial || m.Successful != 140 || m.Failed != 10 {
		t.Fatalf("job %+v: want PARTIAL, 140 Successful, 10 Failed", m)
	}

	lines := emfLines(t, out.Bytes())
	if len(lines) != 2 {
		t.Fatalf("%d EMF lines, want one per chunk (2):\n%s", len(lines), out.String())
	}
	sum := map[string]int{}
	var histograms int
	for _, l := range lines {
		if l.FunctionName != "stack-WorkerFunction-x1" || l.Source != "worker" {
			t.Errorf("line of FunctionName %q, Source %q: want the function's name and worker", l.FunctionName, l.Source)
		}
		for k, v := range l.counts {
			sum[k] += v
		}
		n, h := latencyValues(t, l.latency)
		if n != l.counts["Calls"] {
			t.Errorf("line with %d calls has %d call latencies", l.counts["Calls"], n)
		}
		if h {
			histograms++
		}
	}
	for name, want := range map[string]int{"Requested": nodes, "Successful": 140, "Failed": 10, "Unprocessed": 0, "Updated": 0, "Deduplicated": 0, "Calls": nodes} {
		if sum[name] != want {
			t.Errorf("%s over the lines = %d, want %d (%v)", name, sum[name], want, sum)
		}
	}
	if histograms != 1 {
		t.Errorf("%d lines wrote SSMCallLatency as a histogram, want 1 (the chunk of 120 calls)", histograms)
	}
}

// TestWorkerMetricsCountOutcomesOnce: a run that leaves its chunk for
// another receive writes its SSM calls but no outcomes; the run that counts
// the chunk writes them, once.
func TestWorkerMetricsCountOutcomesOnce(t *testing.T) {
	opts := ssmlocal.DefaultOptions()
	opts.ThrottleRate = 1 // every call throttled: no entry can succeed
	e := newEnv(t, opts, 2, 60*time.Second)
	const nodes = 4
	acc, err := e.submitter(10).Submit(context.Background(), fanOut(t, nodes), event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queueURL), MaxNumberOfMessages: 1,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"}, WaitTimeSeconds: 5})
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(got.Messages))
	}
	ev := testinfra.ToSQSEvent(got.Messages[0])

	var out bytes.Buffer
	w := e.worker(associate.Settings{BatchSize: 10, MaxConcurrency: 1, MaxAttempts: 2, Backoff: time.Millisecond}).WriteMetrics(&out)
	receive := func(n string) (events.SQSEventResponse, emfLine) {
		t.Helper()
		ev.Records[0].Attributes["ApproximateReceiveCount"] = n
		out.Reset()
		resp, err := w.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		lines := emfLines(t, out.Bytes())
		if len(lines) != 1 {
			t.Fatalf("receive %s: %d EMF lines, want 1:\n%s", n, len(lines), out.String())
		}
		return resp, lines[0]
	}

	// The first receive of two: the chunk goes back to the queue.
	resp, first := receive("1")
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("first receive answered %+v: want the chunk handed back", resp)
	}
	if first.counts["Throttles"] == 0 || first.counts["Calls"] == 0 {
		t.Errorf("first receive: metrics %v, want its calls and throttles", first.counts)
	}
	for _, name := range []string{"Requested", "Unprocessed", "Failed", "Successful"} {
		if v, ok := first.counts[name]; !ok || v != 0 {
			t.Errorf("first receive: %s = %v (written %v), want 0: the entries are not the job's outcome yet", name, v, ok)
		}
	}

	// The last receive counts the chunk: its entries, throttled on every
	// attempt, are the job's outcome, and the line's.
	resp, last := receive("2")
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("last receive answered %+v: want the chunk counted", resp)
	}
	m, err := e.direct.Meta(ctx, acc.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if !jobs.Final(m.State) || m.Failed+m.Unprocessed != nodes {
		t.Fatalf("job %+v: want final, its %d entries Failed or Unprocessed", m, nodes)
	}
	if last.counts["Requested"] != nodes || last.counts["Failed"] != m.Failed || last.counts["Unprocessed"] != m.Unprocessed || last.counts["Throttles"] == 0 {
		t.Errorf("last receive: metrics %v, want %d Requested, the job's %d Failed and %d Unprocessed, and its throttles", last.counts, nodes, m.Failed, m.Unprocessed)
	}
}
