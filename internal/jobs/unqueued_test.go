package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// halfQueue accepts chunk 1 and refuses the others, as SQS refuses a
// sender the queue policy does not allow.
type halfQueue struct{}

const refusal = "User: arn:aws:sts::123456789012:assumed-role/Fn/x is not authorized to perform: sqs:sendmessage on resource: arn:aws:sqs:us-east-1:123456789012:chunks"

func (halfQueue) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if aws.ToString(e.Id) == "1" {
			out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id})
			continue
		}
		out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("AccessDenied"), Message: aws.String(refusal), SenderFault: true})
	}
	return out, nil
}

// TestUnqueuedChunkKeepsSQSOutOfTheOutcomes: the entries of a chunk that
// could not be queued are Unprocessed with a fixed reason — the job's
// outcomes reach its readers, and SQS's error names the queue and the
// function's role — while Accepted.Unqueued keeps the error for the log.
func TestUnqueuedChunkKeepsSQSOutOfTheOutcomes(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 3, 10*time.Second)
	s := jobs.NewSubmitter(halfQueue{}, e.queueURL, e.store, 10)
	acc, err := s.Submit(context.Background(), fanOut(t, 15), event.Caller{Kind: event.Direct})
	if err != nil {
		t.Fatal(err)
	}
	if acc.Chunks != 2 || acc.Unqueued == nil || !strings.Contains(acc.Unqueued.Error(), "arn:aws:sqs:") {
		t.Fatalf("accepted %+v (unqueued %v), want 2 chunks, one not queued, and why", acc, acc.Unqueued)
	}
	all := e.allOutcomes(acc.JobID)
	if len(all.Unprocessed) != 5 {
		t.Fatalf("outcomes %+v, want the 5 entries of the chunk not queued Unprocessed", all.Summary)
	}
	for _, u := range all.Unprocessed {
		if strings.Contains(u.Reason, "arn:") || strings.Contains(u.Reason, "AccessDenied") || !strings.Contains(u.Reason, "could not be queued") {
			t.Fatalf("reason %q", u.Reason)
		}
	}
}
