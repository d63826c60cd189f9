package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func cancelled(codes ...string) *ddbtypes.TransactionCanceledException {
	tce := &ddbtypes.TransactionCanceledException{}
	for _, c := range codes {
		tce.CancellationReasons = append(tce.CancellationReasons, ddbtypes.CancellationReason{Code: aws.String(c)})
	}
	return tce
}

// The count transaction's reasons are read item by item: the chunk's item
// first, then the job's.
func TestReadCancellation(t *testing.T) {
	for _, tt := range []struct {
		codes []string
		want  countOutcome
	}{
		{[]string{"ConditionalCheckFailed", "None"}, countAlreadyCounted},
		{[]string{"ConditionalCheckFailed", "TransactionConflict"}, countAlreadyCounted},
		{[]string{"None", "ConditionalCheckFailed"}, countNoJob},
		{[]string{"None", "TransactionConflict"}, countRetry},
		{[]string{"TransactionConflict", "None"}, countRetry},
		{[]string{"ThrottlingError", "None"}, countRetry},
		{[]string{"None", "ProvisionedThroughputExceeded"}, countRetry},
		{[]string{"ValidationError", "None"}, countFailed},
		{[]string{"None", "ItemCollectionSizeLimitExceeded"}, countFailed},
		{nil, countFailed},
	} {
		if got := readCancellation(cancelled(tt.codes...)); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.codes, got, tt.want)
		}
	}
}

func TestBackoffRetriesOnlyTransientErrors(t *testing.T) {
	b := backoff{base: time.Millisecond, max: 2 * time.Millisecond, attempts: 4}
	for _, tt := range []struct {
		err   error
		calls int
	}{
		{&ddbtypes.TransactionConflictException{}, 4},
		{fmt.Errorf("wrapped: %w", &ddbtypes.ProvisionedThroughputExceededException{}), 4},
		{errRetry{cancelled("None", "TransactionConflict")}, 4},
		{&ddbtypes.ConditionalCheckFailedException{}, 1},
		{errors.New("access denied"), 1},
	} {
		calls := 0
		err := b.do(context.Background(), func() error { calls++; return tt.err })
		if calls != tt.calls || !errors.Is(err, tt.err) {
			t.Errorf("%T: %d calls, error %v; want %d calls", tt.err, calls, err, tt.calls)
		}
	}
}

// splitResult keeps every outcome, in order, in parts that fit an item.
func TestSplitResult(t *testing.T) {
	r := report.New()
	for i := range 3000 {
		id := fmt.Sprintf("i-%017x", i)
		r.Failed = append(r.Failed, report.Failure{Entry: request.Entry{Name: "AWS-UpdateSSMAgent", InstanceId: &id}, Fault: report.FaultServer, Message: string(make([]byte, 5000))})
	}
	parts, err := splitResult(r)
	if err != nil {
		t.Fatal(err)
	}
	got := report.New()
	for _, p := range parts {
		if len(p) > partBytes {
			t.Fatalf("part of %d bytes", len(p))
		}
		pr, err := decodeResult(p)
		if err != nil {
			t.Fatal(err)
		}
		appendResult(&got, pr)
	}
	if len(parts) < 2 || len(got.Failed) != 3000 || *got.Failed[2999].Entry.InstanceId != "i-00000000000000bb7" || len(got.Failed[0].Message) > maxTextBytes+len("…") {
		t.Fatalf("%d parts, %d outcomes", len(parts), len(got.Failed))
	}
}

// A chunk given up on keeps what an earlier run did; the rest of its
// entries are Unprocessed with the reason.
func TestPoisonResult(t *testing.T) {
	id := func(s string) *string { return &s }
	entries := []request.Entry{{Name: "D", InstanceId: id("i-1")}, {Name: "D", InstanceId: id("i-2")}, {Name: "D", InstanceId: id("i-3")}}
	earlier := report.New()
	earlier.Successful = []report.Association{{AssociationId: "a1", Name: "D", InstanceId: "i-1"}}
	earlier.Deduplicated = []report.Deduplicated{{Entry: entries[1], Reason: report.ReasonInProgress}}
	earlier.Unprocessed = []report.Unprocessed{{Entry: entries[2], Reason: "time budget"}}
	got := poisonResult(earlier, entries, "dead")
	if len(got.Successful) != 1 || len(got.Deduplicated) != 0 || len(got.Unprocessed) != 2 ||
		*got.Unprocessed[0].Entry.InstanceId != "i-2" || got.Unprocessed[1].Reason != "dead" || got.Summary.Unprocessed != 2 {
		t.Fatalf("%+v", got)
	}
}
