package dedupe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Owner records let a crashed invocation's claims be taken over within
// CLAIM_LEASE instead of at the end of its Lambda timeout (up to 15 minutes),
// for one write per heartbeat per invocation rather than one per claim.
//
// An invocation writes owner#<owner> before its first claim and renews it
// every third of CLAIM_LEASE; it sends nothing unless its record is sure to
// outlive the call. A renewal is conditional on the record still being
// alive, so an owner whose record ran out stays dead: it sends nothing more,
// and another invocation may take its keys over (Claim, TakenOver).
const ownerPrefix = "owner#"

// ErrOwnerExpired reports that an owner record ran out before it was
// renewed: the owner's claims may have been taken over.
var ErrOwnerExpired = errors.New("owner record ran out: its claims may have been taken over")

// StartOwner writes owner's record, alive until until.
func (s *Store) StartOwner(ctx context.Context, owner string, until time.Time) error {
	item, err := attributevalue.MarshalMap(record{
		ID:          ownerPrefix + owner,
		Status:      "OWNER",
		LeaseExpiry: until.UnixMilli(),
		Expiration:  until.Add(s.ttl).Unix(),
		UpdatedAt:   s.now().UnixMilli(),
	})
	if err != nil {
		return fmt.Errorf("marshal owner %s: %w", owner, err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item})
	if err != nil {
		return fmt.Errorf("start owner %s: %w", owner, err)
	}
	return nil
}

// RenewOwner moves the end of owner's record to until, unless it has run
// out already (ErrOwnerExpired). An owner also renews to a near time when it
// finishes, so that what it leaves in progress can be taken over soon.
func (s *Store) RenewOwner(ctx context.Context, owner string, until time.Time) error {
	now := s.now()
	err := s.updateIf(ctx, ownerPrefix+owner,
		expression.Name(attrLease).GreaterThanEqual(expression.Value(now.UnixMilli())),
		expression.Set(expression.Name(attrLease), expression.Value(until.UnixMilli())).
			Set(expression.Name(TTLAttribute), expression.Value(until.Add(s.ttl).Unix())).
			Set(expression.Name(attrUpdatedAt), expression.Value(now.UnixMilli())))
	var ccf *ddbtypes.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ccf):
		return fmt.Errorf("renew owner %s: %w", owner, ErrOwnerExpired)
	default:
		return fmt.Errorf("renew owner %s: %w", owner, err)
	}
}

// ownerAlive reads whether owner's record is alive. A missing record counts
// as alive: the claim was taken by a version without owner records, and its
// own lease decides. A dead owner stays dead, so that answer is kept; an
// alive one is kept until its record's end.
func (s *Store) ownerAlive(ctx context.Context, owner string) (bool, error) {
	now := s.now()
	if alive, ok := s.owners.get(owner, now); ok {
		return alive, nil
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyOf(ownerPrefix + owner),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return true, fmt.Errorf("read owner %s: %w", owner, err)
	}
	if out.Item == nil {
		return true, nil
	}
	var r record
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return true, fmt.Errorf("unmarshal owner %s: %w", owner, err)
	}
	until := time.UnixMilli(r.LeaseExpiry)
	alive := !until.Before(now)
	s.owners.put(owner, alive, until)
	return alive, nil
}

// ownerCache remembers owners read: dead ones for good, live ones until
// their record's end. It is bounded, since a warm container lives long.
type ownerCache struct {
	mu sync.Mutex
	m  map[string]ownerState
}

type ownerState struct {
	alive bool
	until time.Time
}

const ownerCacheSize = 4096

func (c *ownerCache) get(owner string, now time.Time) (alive, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[owner]
	if !ok || (st.alive && now.After(st.until)) {
		return false, false
	}
	return st.alive, true
}

func (c *ownerCache) put(owner string, alive bool, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= ownerCacheSize {
		c.m = make(map[string]ownerState)
	}
	c.m[owner] = ownerState{alive: alive, until: until}
}
