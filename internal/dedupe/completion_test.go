package dedupe

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func TestCompleteAllRecordsEveryKey(t *testing.T) {
	ctx := context.Background()
	s, c, now := newStore(t)
	lease := now.Add(30 * time.Second)
	// More than one BatchWriteItem's worth of keys.
	var done []Association
	for i := range 2*maxBatchWrite + 3 {
		key := fmt.Sprintf("k%02d", i)
		if cl, err := s.Claim(ctx, key, "A", lease); err != nil || !cl.Owned() {
			t.Fatalf("claim %s: %+v %v", key, cl, err)
		}
		done = append(done, Association{Key: key, AssociationID: "assoc-" + key})
	}
	counting := &countingWriter{dynamoAPI: s.client}
	s.client = counting
	if err := s.CompleteAll(ctx, "A", done); err != nil {
		t.Fatal(err)
	}
	if counting.requests != 3 {
		t.Errorf("%d BatchWriteItem requests for %d keys, want 3", counting.requests, len(done))
	}
	for _, a := range done {
		r, ok := get(t, c, s, a.Key)
		if !ok || r.Status != statusAssociated || r.AssociationID != a.AssociationID || r.Owner != "A" ||
			r.LeaseExpiry != 0 || r.Expiration != now.Add(time.Hour).Unix() {
			t.Fatalf("%s: record %+v (found %v)", a.Key, r, ok)
		}
		// It reads as associated to the next claim, with its ID.
		cl, err := s.Claim(ctx, a.Key, "B", lease)
		if err != nil || cl.Outcome != Associated || cl.AssociationID != a.AssociationID {
			t.Fatalf("claim of completed %s: %+v err %v", a.Key, cl, err)
		}
	}
	// A completed key can no longer be released.
	if err := s.Release(ctx, done[0].Key, "A"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release of an associated key: %v", err)
	}
}

func TestCompleteAllSendsUnprocessedItemsAgain(t *testing.T) {
	ctx := context.Background()
	s, c, _ := newStore(t)
	// DynamoDB applies only part of the first two requests.
	partial := &countingWriter{dynamoAPI: s.client, partial: 2}
	s.client = partial
	settings := SettingsOf(request.Entry{Name: "D", ScheduleExpression: aws.String("rate(1 day)")})
	done := []Association{{"a", "1", settings}, {"b", "2", settings}, {Key: "c", AssociationID: "3"}, {Key: "d", AssociationID: "4"}}
	if err := s.CompleteAll(ctx, "A", done); err != nil {
		t.Fatal(err)
	}
	if partial.requests != 3 {
		t.Errorf("%d requests, want 3 (two partial, then the rest)", partial.requests)
	}
	for _, a := range done {
		if r, ok := get(t, c, s, a.Key); !ok || r.AssociationID != a.AssociationID || len(r.Settings.Differences(a.Settings)) != 0 || (r.Settings == nil) != (a.Settings == nil) {
			t.Fatalf("%s not recorded: %+v", a.Key, r)
		}
	}
}

func TestCompleteAllGivesUpAtItsDeadline(t *testing.T) {
	s, _, _ := newStore(t)
	s.client = &countingWriter{dynamoAPI: s.client, partial: 1 << 30, applyNone: true}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.CompleteAll(ctx, "A", []Association{{Key: "a", AssociationID: "1"}, {Key: "b", AssociationID: "2"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want one wrapping the deadline", err)
	}
}

// countingWriter counts BatchWriteItem requests and, for the first partial
// ones, forwards only the first item (none with applyNone) and hands the
// rest back unprocessed, as DynamoDB does when it throttles part of a batch.
type countingWriter struct {
	dynamoAPI
	requests, partial int
	applyNone         bool
}

func (w *countingWriter) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	w.requests++
	if w.requests > w.partial {
		return w.dynamoAPI.BatchWriteItem(ctx, in, opts...)
	}
	if w.applyNone {
		return &dynamodb.BatchWriteItemOutput{UnprocessedItems: in.RequestItems}, nil
	}
	unprocessed := map[string][]ddbtypes.WriteRequest{}
	forward := map[string][]ddbtypes.WriteRequest{}
	for table, writes := range in.RequestItems {
		forward[table] = writes[:1]
		if len(writes) > 1 {
			unprocessed[table] = writes[1:]
		}
	}
	if _, err := w.dynamoAPI.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: forward}, opts...); err != nil {
		return nil, err
	}
	return &dynamodb.BatchWriteItemOutput{UnprocessedItems: unprocessed}, nil
}
