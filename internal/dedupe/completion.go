package dedupe

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Association is a key SSM associated, the ID SSM gave the association,
// and the fingerprint of its settings.
type Association struct {
	Key           string
	AssociationID string
	Settings      Settings
}

// maxBatchWrite is BatchWriteItem's limit of items per request.
const maxBatchWrite = 25

// CompleteAll records that owner associated every key in done, in one
// BatchWriteItem request per 25 keys instead of one UpdateItem per key: a
// call to SSM associates up to its batch size of nodes at once, and closing
// their claims one request at a time cost as much as taking them.
//
// The writes are unconditional, as Powertools' save of a success is: the
// association exists in SSM whoever holds the claim now, so recording it is
// right even in the one case a condition would catch (this invocation's
// lease ran out and another took the key over; that one's call is then
// refused as "already exists"). Complete, which keeps the condition, is for
// completions without an association ID, which must not overwrite one.
//
// Items DynamoDB leaves unprocessed (throttling) are sent again with backoff
// until ctx ends; the error then says how many keys are not recorded.
func (s *Store) CompleteAll(ctx context.Context, owner string, done []Association) error {
	now := s.now()
	for start := 0; start < len(done); start += maxBatchWrite {
		chunk := done[start:min(start+maxBatchWrite, len(done))]
		writes := make([]ddbtypes.WriteRequest, len(chunk))
		for i, a := range chunk {
			item, err := attributevalue.MarshalMap(record{
				ID:            a.Key,
				Status:        statusAssociated,
				Owner:         owner,
				Expiration:    now.Add(s.ttl).Unix(),
				AssociationID: a.AssociationID,
				UpdatedAt:     now.UnixMilli(),
				Settings:      a.Settings,
			})
			if err != nil {
				return fmt.Errorf("marshal completion of %s: %w", a.Key, err)
			}
			writes[i] = ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: item}}
		}
		if err := s.batchWrite(ctx, writes); err != nil {
			return fmt.Errorf("complete %d keys from %s: %w", len(done)-start, chunk[0].Key, err)
		}
	}
	return nil
}

// batchWrite sends writes, and sends again what DynamoDB leaves unprocessed.
func (s *Store) batchWrite(ctx context.Context, writes []ddbtypes.WriteRequest) error {
	return untilProcessed(ctx, "items", func() (int, error) {
		out, err := s.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]ddbtypes.WriteRequest{s.table: writes},
		})
		if err != nil {
			return 0, err
		}
		writes = out.UnprocessedItems[s.table]
		return len(writes), nil
	})
}

// untilProcessed calls send, which reports how much of its work DynamoDB
// left unprocessed, until nothing is left, with backoff in between: a batch
// call succeeds while leaving part of its work undone (throttling), and the
// SDK retries calls that fail, not those. It gives up when ctx ends, saying
// how many of what are left.
func untilProcessed(ctx context.Context, what string, send func() (left int, err error)) error {
	wait := 50 * time.Millisecond
	for {
		left, err := send()
		if err != nil || left == 0 {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%d %s left unprocessed: %w", left, what, ctx.Err())
		}
		wait = min(2*wait, time.Second)
	}
}
