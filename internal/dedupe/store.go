package dedupe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names of a claim item. KeyAttribute and TTLAttribute are part of
// the table's definition in template.yaml, which a test checks against them.
const (
	KeyAttribute     = "id"
	TTLAttribute     = "expiration"
	attrStatus       = "status"
	attrOwner        = "owner"
	attrLease        = "lease_expiry"
	attrAssocID      = "association_id"
	attrUpdatedAt    = "updated_at"
	attrSent         = "possibly_sent"
	attrSettings     = "settings"
	statusClaimed    = "IN_PROGRESS"
	statusAssociated = "ASSOCIATED"
)

// A key's life in the table:
//
//	(none) ──Claim──► IN_PROGRESS(owner, lease) ──CompleteAll/Complete──► ASSOCIATED(id) ──TTL──► (none)
//	                     │  ▲
//	                     │  └─ Claim by another: TakenOver, once the lease or the owner's heartbeat ran out
//	                     ├──Release──► (none)            only while never possibly sent
//	                     └──MarkPossiblySent──► IN_PROGRESS + possibly_sent: never released; whoever
//	                                             takes it over reads SSM before sending it again
//
// Every IN_PROGRESS key names its owner, an invocation that keeps an owner
// record (owner#<owner>) alive with a heartbeat; see owner.go.

// The calls the store makes; template.yaml grants exactly these.
type dynamoAPI interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// record is a claim item as stored.
type record struct {
	ID            string `dynamodbav:"id"`
	Status        string `dynamodbav:"status"`
	Owner         string `dynamodbav:"owner,omitempty"`
	LeaseExpiry   int64  `dynamodbav:"lease_expiry,omitempty"` // epoch milliseconds
	Expiration    int64  `dynamodbav:"expiration"`             // epoch seconds, the table's TTL
	AssociationID string `dynamodbav:"association_id,omitempty"`
	UpdatedAt     int64  `dynamodbav:"updated_at"`              // epoch milliseconds
	PossiblySent  int64  `dynamodbav:"possibly_sent,omitempty"` // epoch milliseconds
	// Settings fingerprints the associated settings (SettingsOf): hashes,
	// never values.
	Settings Settings `dynamodbav:"settings,omitempty"`
}

// Outcome is what a claim found.
type Outcome int

const (
	// Claimed: the key was free (new, or its association expired).
	Claimed Outcome = iota
	// TakenOver: the key was left in progress by an invocation whose lease
	// or heartbeat ran out. That invocation may have sent the entry, and SSM
	// may have created it: read SSM before sending it again.
	TakenOver
	// Associated: the key is recorded as associated, within DEDUPE_TTL.
	Associated
	// Held: another invocation, still alive, holds the key.
	Held
)

// Claim is the result of Store.Claim.
type Claim struct {
	Outcome
	// AssociationID is the recorded association, for Associated; for
	// TakenOver, the association the previous owner was changing, if any.
	AssociationID string
	// Settings is the recorded fingerprint, for Associated; nil for a
	// record written before fingerprints were kept.
	Settings Settings
	// Owner and LeaseExpiry name who holds the key, for Held; for TakenOver,
	// who held it before.
	Owner       string
	LeaseExpiry time.Time
}

// Owned says whether this invocation now holds the key.
func (c Claim) Owned() bool { return c.Outcome == Claimed || c.Outcome == TakenOver }

// ErrNotOwner reports that a completion or release found the claim held by
// someone else: the lease ran out and another invocation took it over. A
// release also reports it for a key that was possibly sent.
var ErrNotOwner = errors.New("claim is no longer held by this invocation")

// Store keeps claims in a DynamoDB table, following the design of the
// Powertools idempotency utility: one item per key, taken by one conditional
// PutItem that returns the holder on a lost race, with expiry checked in the
// condition rather than left to TTL deletion, which can lag by up to 48 hours.
type Store struct {
	client dynamoAPI
	table  string
	ttl    time.Duration
	now    func() time.Time
	owners ownerCache
}

// NewStore returns a store on table, remembering associations for ttl.
func NewStore(client dynamoAPI, table string, ttl time.Duration) *Store {
	return &Store{client: client, table: table, ttl: ttl, now: time.Now}
}

// Claim takes key for owner until leaseUntil. It succeeds when the key is
// new, when its association has expired, or when a previous holder's lease
// has run out or its owner stopped its heartbeat (a crashed or timed-out
// invocation): then the outcome is TakenOver. Otherwise it returns the
// current holder.
func (s *Store) Claim(ctx context.Context, key, owner string, leaseUntil time.Time) (Claim, error) {
	now := s.now()
	if !leaseUntil.After(now) {
		// A lease must always be set and lie in the future, or a crash
		// would leave the key locked until TTL deletion (Powertools #4759).
		leaseUntil = now.Add(time.Minute)
	}
	free := expression.AttributeNotExists(expression.Name(KeyAttribute)).
		Or(expression.Name(attrStatus).Equal(expression.Value(statusAssociated)).
			And(expression.Name(TTLAttribute).LessThan(expression.Value(now.Unix())))).
		Or(expression.Name(attrStatus).Equal(expression.Value(statusClaimed)).
			And(expression.Name(attrLease).LessThan(expression.Value(now.UnixMilli()))))
	old, err := s.put(ctx, key, owner, leaseUntil, free)
	var ccf *ddbtypes.ConditionalCheckFailedException
	switch {
	case err == nil:
		return claimedOver(old), nil
	case !errors.As(err, &ccf):
		return Claim{}, fmt.Errorf("claim %s: %w", key, err)
	}
	if err := attributevalue.UnmarshalMap(ccf.Item, &old); err != nil {
		return Claim{}, fmt.Errorf("unmarshal holder of %s: %w", key, err)
	}
	switch {
	case old.Status == statusAssociated:
		return Claim{Outcome: Associated, AssociationID: old.AssociationID, Settings: old.Settings}, nil
	case old.Owner == owner:
		// Our own write: its answer was lost and the SDK retried it. What
		// it replaced is unknown (it may have taken the key from a dead
		// owner that sent it), so it counts as a takeover: SSM is read
		// before the entry is sent.
		return Claim{Outcome: TakenOver, Owner: owner}, nil
	}
	held := Claim{Outcome: Held, Owner: old.Owner, LeaseExpiry: time.UnixMilli(old.LeaseExpiry)}
	alive, err := s.ownerAlive(ctx, old.Owner)
	if err != nil || alive {
		// Unknown liveness counts as alive: taking a key from a live
		// owner could send it twice.
		return held, nil
	}
	// The holder's heartbeat stopped: take the key from that owner only.
	fromDead := expression.Name(attrStatus).Equal(expression.Value(statusClaimed)).
		And(expression.Name(attrOwner).Equal(expression.Value(old.Owner)))
	prev, err := s.put(ctx, key, owner, leaseUntil, fromDead)
	switch {
	case err == nil:
		return claimedOver(prev), nil
	case errors.As(err, &ccf):
		return held, nil // someone else was quicker; say so, the next retry sees whom
	default:
		return Claim{}, fmt.Errorf("take over %s: %w", key, err)
	}
}

// put writes an IN_PROGRESS claim under cond and returns the item it
// replaced, if any.
func (s *Store) put(ctx context.Context, key, owner string, leaseUntil time.Time, cond expression.ConditionBuilder) (record, error) {
	now := s.now()
	item, err := attributevalue.MarshalMap(record{
		ID:          key,
		Status:      statusClaimed,
		Owner:       owner,
		LeaseExpiry: leaseUntil.UnixMilli(),
		Expiration:  leaseUntil.Add(s.ttl).Unix(),
		UpdatedAt:   now.UnixMilli(),
	})
	if err != nil {
		return record{}, fmt.Errorf("marshal claim %s: %w", key, err)
	}
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return record{}, fmt.Errorf("build claim condition: %w", err)
	}
	out, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                item,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValues:                        ddbtypes.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return record{}, err
	}
	var old record
	if len(out.Attributes) > 0 {
		if err := attributevalue.UnmarshalMap(out.Attributes, &old); err != nil {
			return record{}, fmt.Errorf("unmarshal previous claim of %s: %w", key, err)
		}
	}
	return old, nil
}

// claimedOver tells a fresh claim from one taken over from an invocation
// that left the key in progress.
func claimedOver(old record) Claim {
	if old.Status == statusClaimed {
		return Claim{Outcome: TakenOver, Owner: old.Owner, LeaseExpiry: time.UnixMilli(old.LeaseExpiry), AssociationID: old.AssociationID}
	}
	return Claim{Outcome: Claimed}
}

// Complete records that owner associated key, remembering it for the TTL,
// if owner still holds it: one conditional UpdateItem per key. The engine
// records a call's keys together with CompleteAll, and uses Complete where
// the condition matters: to close a claim taken to update an association
// (ClaimUpdate), with the settings the association now has. Complete is
// also the one-per-key baseline of the claim-cost benchmark.
func (s *Store) Complete(ctx context.Context, key, owner string, a Association) error {
	now := s.now()
	update := expression.Set(expression.Name(attrStatus), expression.Value(statusAssociated)).
		Set(expression.Name(TTLAttribute), expression.Value(now.Add(s.ttl).Unix())).
		Set(expression.Name(attrUpdatedAt), expression.Value(now.UnixMilli())).
		Remove(expression.Name(attrLease)).
		Remove(expression.Name(attrSent))
	if a.AssociationID != "" {
		update = update.Set(expression.Name(attrAssocID), expression.Value(a.AssociationID))
	}
	if a.Settings != nil {
		update = update.Set(expression.Name(attrSettings), expression.Value(a.Settings))
	}
	return s.update(ctx, key, owner, update)
}

// ClaimUpdate takes a key recorded as associated with associationID, for
// owner to change that association: the record goes IN_PROGRESS under
// owner's lease, keeping the association's ID and settings, so that an
// invocation taking it over knows which association was being changed. It
// reports false when the record no longer names that association as
// associated (someone else got there first).
func (s *Store) ClaimUpdate(ctx context.Context, key, owner string, leaseUntil time.Time, associationID string) (bool, error) {
	now := s.now()
	if !leaseUntil.After(now) {
		leaseUntil = now.Add(time.Minute)
	}
	err := s.updateIf(ctx, key,
		expression.Name(attrStatus).Equal(expression.Value(statusAssociated)).
			And(expression.Name(attrAssocID).Equal(expression.Value(associationID))),
		expression.Set(expression.Name(attrStatus), expression.Value(statusClaimed)).
			Set(expression.Name(attrOwner), expression.Value(owner)).
			Set(expression.Name(attrLease), expression.Value(leaseUntil.UnixMilli())).
			Set(expression.Name(TTLAttribute), expression.Value(leaseUntil.Add(s.ttl).Unix())).
			Set(expression.Name(attrUpdatedAt), expression.Value(now.UnixMilli())))
	var ccf *ddbtypes.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ccf):
		return false, nil
	default:
		return false, fmt.Errorf("claim %s to update it: %w", key, err)
	}
}

// Release gives key up so that a later invocation can take it at once; the
// condition makes sure a claim taken over by someone else, or one marked
// possibly sent, is left alone.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	cond := s.ownedBy(owner).And(expression.AttributeNotExists(expression.Name(attrSent)))
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return fmt.Errorf("build release condition: %w", err)
	}
	_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       keyOf(key),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	return s.conditional(err, "release", key)
}

// MarkPossiblySent records that the entry of key may have reached SSM,
// though no answer said so: the claim is never released after this, and
// whoever takes it over reads SSM before sending the entry again.
func (s *Store) MarkPossiblySent(ctx context.Context, key, owner string) error {
	return s.update(ctx, key, owner, expression.Set(expression.Name(attrSent), expression.Value(s.now().UnixMilli())))
}

// update changes key's claim if owner holds it.
func (s *Store) update(ctx context.Context, key, owner string, update expression.UpdateBuilder) error {
	return s.conditional(s.updateIf(ctx, key, s.ownedBy(owner), update), "complete", key)
}

// updateIf is one UpdateItem of key under cond; a failed condition comes
// back as the SDK's ConditionalCheckFailedException.
func (s *Store) updateIf(ctx context.Context, key string, cond expression.ConditionBuilder, update expression.UpdateBuilder) error {
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(update).Build()
	if err != nil {
		return fmt.Errorf("build update of %s: %w", key, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       keyOf(key),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	return err
}

func (s *Store) ownedBy(owner string) expression.ConditionBuilder {
	return expression.Name(attrStatus).Equal(expression.Value(statusClaimed)).
		And(expression.Name(attrOwner).Equal(expression.Value(owner)))
}

func (s *Store) conditional(err error, op, key string) error {
	var ccf *ddbtypes.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ccf):
		return fmt.Errorf("%s %s: %w", op, key, ErrNotOwner)
	default:
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
}

func keyOf(key string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{KeyAttribute: &ddbtypes.AttributeValueMemberS{Value: key}}
}

// TableDefinition is the table the store expects, for tests and the demo;
// template.yaml declares the same for deployments.
func TableDefinition(table string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String(KeyAttribute), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String(KeyAttribute), KeyType: ddbtypes.KeyTypeHash},
		},
	}
}
