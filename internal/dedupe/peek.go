package dedupe

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// maxBatchGet is BatchGetItem's limit of keys per request.
const maxBatchGet = 100

// Peek returns, for each key, what a Claim would find now, without writing
// anything: the outcome of a dry run. Claimed means the key is free (or its
// association expired); TakenOver, that it is left in progress by an owner
// whose lease or heartbeat ran out (a run would read SSM for it first).
func (s *Store) Peek(ctx context.Context, keys []string) ([]Claim, error) {
	found := make(map[string]record, len(keys))
	for start := 0; start < len(keys); start += maxBatchGet {
		want := make([]map[string]ddbtypes.AttributeValue, 0, maxBatchGet)
		for _, k := range keys[start:min(start+maxBatchGet, len(keys))] {
			want = append(want, keyOf(k))
		}
		if err := s.batchGet(ctx, want, found); err != nil {
			return nil, err
		}
	}
	now := s.now()
	out := make([]Claim, len(keys))
	for i, k := range keys {
		old, ok := found[k]
		switch {
		case !ok:
			out[i] = Claim{Outcome: Claimed}
		case old.Status == statusAssociated && old.Expiration >= now.Unix():
			out[i] = Claim{Outcome: Associated, AssociationID: old.AssociationID, Settings: old.Settings}
		case old.Status == statusAssociated:
			out[i] = Claim{Outcome: Claimed}
		default:
			out[i] = Claim{Outcome: Held, Owner: old.Owner, LeaseExpiry: time.UnixMilli(old.LeaseExpiry)}
			alive, err := s.ownerAlive(ctx, old.Owner)
			if old.LeaseExpiry < now.UnixMilli() || (err == nil && !alive) {
				out[i].Outcome = TakenOver
			}
		}
	}
	return out, nil
}

// batchGet reads keys with consistent reads into found, asking again for
// what DynamoDB leaves unprocessed.
func (s *Store) batchGet(ctx context.Context, keys []map[string]ddbtypes.AttributeValue, found map[string]record) error {
	err := untilProcessed(ctx, "claims", func() (int, error) {
		out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]ddbtypes.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true)}},
		})
		if err != nil {
			return 0, err
		}
		for _, item := range out.Responses[s.table] {
			var r record
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return 0, fmt.Errorf("unmarshal claim: %w", err)
			}
			found[r.ID] = r
		}
		keys = out.UnprocessedKeys[s.table].Keys
		return len(keys), nil
	})
	if err != nil {
		return fmt.Errorf("read claims: %w", err)
	}
	return nil
}
