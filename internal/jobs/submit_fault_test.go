package jobs_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/faultproxy"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// TestJobChunkNeitherQueuedNorCounted: SQS refuses the second batch of
// chunks (11 and 12), and DynamoDB refuses to count chunk 11 as not queued.
// Nothing would ever count chunk 11, so the submitter offers it to the
// queue again — SQS takes it now — and the job finishes: chunk 12's
// entries Unprocessed, the rest associated, one event. When SQS refuses
// the second offer too, and the count fails again, the answer is an error,
// and chunk 12 is counted all the same.
func TestJobChunkNeitherQueuedNorCounted(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	ddbFaults := e.faulty(21)
	sqsFaults, err := faultproxy.New(moto.Endpoint(), 22)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sqsFaults)
	t.Cleanup(srv.Close)
	cfg := e.cfg.Copy()
	cfg.BaseEndpoint = aws.String(srv.URL)
	sub := jobs.NewSubmitter(awsclient.SQS(cfg), e.queueURL, e.store, 10).WithAnnouncer(e.announcer())
	refuse := func(times int) {
		sqsFaults.SetRules(faultproxy.Rule{Operation: "SendMessageBatch", Match: faultproxy.BodyContains(`"Id":"11"`), Count: times, Fault: faultproxy.Denied})
		ddbFaults.SetRules(faultproxy.Rule{Operation: "TransactWriteItems", Match: faultproxy.BodyContains(`"CHUNK#000011"`), Count: times, Fault: faultproxy.Denied})
	}
	const nodes = 120 // 12 chunks: SendMessageBatch sends 1-10, then 11-12

	refuse(1)
	acc, err := sub.Submit(context.Background(), fanOut(t, nodes), event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if f, g := sqsFaults.Fired(), ddbFaults.Fired(); f[0] != 1 || g[0] != 1 {
		t.Fatalf("rules fired: SQS %v, DynamoDB %v; want each once", f, g)
	}
	if acc.Chunks != 12 || acc.Unqueued == nil {
		t.Fatalf("accepted %+v, want 12 chunks, one not queued, and why", acc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, h := e.run(ctx, acc.JobID, jobRun{workers: 4, timeout: 60 * time.Second})
	all := e.assertJob(m, jobs.StatePartial, nodes)
	if m.Unprocessed != 10 || m.Successful != nodes-10 || m.ChunksPoisoned != 1 {
		t.Errorf("job %+v: want chunk 12's 10 entries Unprocessed, the other 110 associated", m)
	}
	for _, u := range all.Unprocessed {
		if !strings.Contains(u.Reason, "could not be queued") {
			t.Errorf("unprocessed %s: reason %q", aws.ToString(u.Entry.InstanceId), u.Reason)
		}
	}
	h.assertNoBounce(t, 11, 0)
	e.assertLedgerOnce(nodes - 10)

	refuse(2)
	_, err = sub.Submit(context.Background(), fanOut(t, nodes), event.Caller{Kind: event.Direct})
	if err == nil || !strings.Contains(err.Error(), "neither queued nor counted") {
		t.Fatalf("submit: %v, want an error naming chunk 11", err)
	}
	if f, g := sqsFaults.Fired(), ddbFaults.Fired(); f[0] != 2 || g[0] != 2 {
		t.Fatalf("rules fired: SQS %v, DynamoDB %v; want each twice", f, g)
	}
	jobID := strings.Fields(err.Error())[1]
	jobID = strings.TrimSuffix(jobID, ":")
	rec, err := e.direct.Outcome(context.Background(), jobID, 12)
	if err != nil || !rec.Counted || len(rec.Result.Unprocessed) != 10 {
		t.Errorf("job %s chunk 12: %+v, %v; want it counted, its 10 entries Unprocessed", jobID, rec, err)
	}
}
