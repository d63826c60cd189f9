package jobs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// TestJobRecordsItsSubmitter: the caller given to Submit is the job
// record's SubmittedBy, survives the workers' and Finish's writes, is in the
// status answer's JSON and in the completion event — for a job run by a
// worker and for one settled at submission.
func TestJobRecordsItsSubmitter(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 3, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	callers := []event.Caller{
		{Kind: event.RESTAPI, ARN: "arn:aws:sts::123456789012:assumed-role/OpsAdmin/ops-admin", Account: "123456789012"},
		{Kind: event.EventBridge, Account: "123456789012", Source: "my.app", EventID: "eb-1"},
	}
	sub := e.submitter(10).WithAnnouncer(e.announcer())

	// Run by a worker.
	acc, err := sub.Submit(ctx, fanOut(t, 3), callers[0])
	if err != nil {
		t.Fatal(err)
	}
	if m, err := e.direct.Meta(ctx, acc.JobID); err != nil || m.SubmittedBy != callers[0] {
		t.Fatalf("job record %+v (%v), want SubmittedBy %+v", m.SubmittedBy, err, callers[0])
	}
	m := e.runWorkers(ctx, acc.JobID, 1, associate.Settings{BatchSize: 10, MaxConcurrency: 2, MaxAttempts: 3})
	if m.State != jobs.StateSucceeded || m.SubmittedBy != callers[0] {
		t.Fatalf("finished job %+v, want SUCCEEDED by %+v", m, callers[0])
	}
	b, _ := json.Marshal(m)
	var asJSON struct{ SubmittedBy map[string]string }
	if err := json.Unmarshal(b, &asJSON); err != nil || asJSON.SubmittedBy["Arn"] != callers[0].ARN || asJSON.SubmittedBy["Kind"] != "api-rest" {
		t.Errorf("job as JSON %s", b)
	}

	// Settled at submission (its only entry is malformed): announced by
	// the submitter.
	acc2, err := sub.Submit(ctx, fanOut(t, 0, "i-bad"), callers[1])
	if err != nil {
		t.Fatal(err)
	}
	if m, err := e.direct.Meta(ctx, acc2.JobID); err != nil || m.SubmittedBy != callers[1] || !jobs.Final(m.State) {
		t.Fatalf("job settled at submission %+v (%v)", m, err)
	}

	want := map[string]event.Caller{acc.JobID: callers[0], acc2.JobID: callers[1]}
	got := map[string]event.Caller{}
	for range 5 {
		for _, c := range e.completions() {
			got[c.JobID] = c.SubmittedBy
		}
		if len(got) == len(want) {
			break
		}
	}
	for id, c := range want {
		if got[id] != c {
			t.Errorf("completion event of %s: SubmittedBy %+v, want %+v", id, got[id], c)
		}
	}
}
