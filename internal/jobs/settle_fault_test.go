package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// afterSend puts the completion event on the bus with the real announcer,
// then does what its caller does next: gives up (cancels the context the
// event was sent under) or dies (panics) before Settle records the event.
type afterSend struct {
	events *jobs.Announcer
	then   func()
}

func (a afterSend) Completed(ctx context.Context, m jobs.Meta) error {
	if err := a.events.Completed(ctx, m); err != nil {
		return err
	}
	a.then()
	return nil
}

// finishedJob creates a job of one chunk and counts it.
func (e *env) finishedJob(t *testing.T, jobID string) jobs.Meta {
	t.Helper()
	ctx := context.Background()
	if err := e.store.Create(ctx, jobID, 1, 1, report.New()); err != nil {
		t.Fatal(err)
	}
	r := report.New()
	r.Successful = []report.Association{{AssociationId: "a", Name: "AWS-UpdateSSMAgent", InstanceId: nodeID(1)}}
	m, _, err := e.store.Record(ctx, jobID, 1, r, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// leaseRunsOut makes the job's announcement claim expire now, as it would
// five minutes on.
func (e *env) leaseRunsOut(t *testing.T, jobID string) {
	t.Helper()
	if _, err := e.ddbClient.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(e.jobsTable), Key: jobKey(jobID),
		UpdateExpression: aws.String("SET announceUntil = :t"), ExpressionAttributeValues: numberValue(":t", 1)}); err != nil {
		t.Fatal(err)
	}
}

// TestCompletionRecordedAfterTheCallerGivesUp: the caller's context ends
// just after PutEvents succeeded (an invocation at its deadline). The
// event is still recorded as sent, so when the claim's lease has run out
// the reaper does not send it again.
func TestCompletionRecordedAfterTheCallerGivesUp(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	m := e.finishedJob(t, "gave-up")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := e.store.Settle(ctx, afterSend{e.announcer(), cancel}, m)
	if err != nil {
		t.Fatalf("settle: %v", err)
	}
	if ctx.Err() == nil {
		t.Fatal("the caller's context did not end")
	}
	if m, err = e.direct.Meta(context.Background(), "gave-up"); err != nil || m.AnnouncedAt == 0 {
		t.Fatalf("job %+v, %v: the event sent is not recorded", m, err)
	}
	e.leaseRunsOut(t, "gave-up")
	if _, err := e.reaper().Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.assertJob(m, jobs.StateSucceeded, 1)
}

// TestCompletionRepeatedAfterACrash is the window that stays open: the
// sender dies after PutEvents succeeded and before it recorded the event.
// Nothing tells that from a sender that died before sending, so once the
// claim's lease runs out the reaper sends the event again — the same
// summary, with the same JobId, which is what consumers dedupe on (the
// EventBridge event id differs).
func TestCompletionRepeatedAfterACrash(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	m := e.finishedJob(t, "crashed")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the sender did not die")
			}
		}()
		_, _ = e.store.Settle(context.Background(), afterSend{e.announcer(), func() { panic("the process dies") }}, m)
	}()
	// Within the lease nobody sends it again.
	if _, err := e.reaper().Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := e.completions()
	e.leaseRunsOut(t, "crashed")
	if _, err := e.reaper().Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := e.completions()
	m, err := e.direct.Meta(context.Background(), "crashed")
	if err != nil || m.AnnouncedAt == 0 {
		t.Fatalf("job %+v, %v: the second send is not recorded", m, err)
	}
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("events %+v before the lease ran out, %+v after: want one each", first, second)
	}
	if first[0].JobID != "crashed" || second[0] != first[0] {
		t.Errorf("the events differ: %+v and %+v; want the same summary and JobId", first[0], second[0])
	}
	// Settled again (a redelivery, the next sweep): nothing more.
	if _, err := e.reaper().Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if more := e.completions(); len(more) != 0 {
		t.Errorf("a third event: %+v", more)
	}
}
