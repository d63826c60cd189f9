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
	statusClaimed    = "IN_PROGRESS"
	statusAssociated = "ASSOCIATED"
)

// The calls the store makes; template.yaml grants exactly these.
type dynamoAPI interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// record is a claim item as stored.
type record struct {
	ID            string `dynamodbav:"id"`
	Status        string `dynamodbav:"status"`
	Owner         string `dynamodbav:"owner,omitempty"`
	LeaseExpiry   int64  `dynamodbav:"lease_expiry,omitempty"` // epoch milliseconds
	Expiration    int64  `dynamodbav:"expiration"`             // epoch seconds, the table's TTL
	AssociationID string `dynamodbav:"association_id,omitempty"`
	UpdatedAt     int64  `dynamodbav:"updated_at"` // epoch milliseconds
}

// Holder is who holds a key that could not be claimed.
type Holder struct {
	// Associated is true when the key was associated (within DEDUPE_TTL);
	// otherwise another invocation holds a live lease on it.
	Associated    bool
	AssociationID string
	// LeaseExpiry is when the other invocation's lease runs out.
	LeaseExpiry time.Time
}

// ErrNotOwner reports that a completion or release found the claim held by
// someone else: the lease ran out and another invocation took it over.
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
}

// NewStore returns a store on table, remembering associations for ttl.
func NewStore(client dynamoAPI, table string, ttl time.Duration) *Store {
	return &Store{client: client, table: table, ttl: ttl, now: time.Now}
}

// Claim takes key for owner until leaseUntil. It succeeds when the key is
// new, when its association has expired, or when a previous holder's lease
// has run out (a crashed or timed-out invocation). Otherwise it returns the
// current holder and claimed == false.
func (s *Store) Claim(ctx context.Context, key, owner string, leaseUntil time.Time) (claimed bool, holder Holder, err error) {
	now := s.now()
	if !leaseUntil.After(now) {
		// A lease must always be set and lie in the future, or a crash
		// would leave the key locked until TTL deletion (Powertools #4759).
		leaseUntil = now.Add(time.Minute)
	}
	item, err := attributevalue.MarshalMap(record{
		ID:          key,
		Status:      statusClaimed,
		Owner:       owner,
		LeaseExpiry: leaseUntil.UnixMilli(),
		Expiration:  leaseUntil.Add(s.ttl).Unix(),
		UpdatedAt:   now.UnixMilli(),
	})
	if err != nil {
		return false, Holder{}, fmt.Errorf("marshal claim %s: %w", key, err)
	}
	free := expression.AttributeNotExists(expression.Name(KeyAttribute)).
		Or(expression.Name(attrStatus).Equal(expression.Value(statusAssociated)).
			And(expression.Name(TTLAttribute).LessThan(expression.Value(now.Unix())))).
		Or(expression.Name(attrStatus).Equal(expression.Value(statusClaimed)).
			And(expression.Name(attrLease).LessThan(expression.Value(now.UnixMilli()))))
	expr, err := expression.NewBuilder().WithCondition(free).Build()
	if err != nil {
		return false, Holder{}, fmt.Errorf("build claim condition: %w", err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                item,
		ConditionExpression:                 expr.Condition(),
		ExpressionAttributeNames:            expr.Names(),
		ExpressionAttributeValues:           expr.Values(),
		ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, Holder{}, nil
	case errors.As(err, &ccf):
		var old record
		if uerr := attributevalue.UnmarshalMap(ccf.Item, &old); uerr != nil {
			return false, Holder{}, fmt.Errorf("unmarshal holder of %s: %w", key, uerr)
		}
		if old.Status == statusClaimed && old.Owner == owner {
			// Our own write: its answer was lost and the SDK retried it.
			return true, Holder{}, nil
		}
		return false, Holder{
			Associated:    old.Status == statusAssociated,
			AssociationID: old.AssociationID,
			LeaseExpiry:   time.UnixMilli(old.LeaseExpiry),
		}, nil
	default:
		return false, Holder{}, fmt.Errorf("claim %s: %w", key, err)
	}
}

// Complete records that owner associated key, remembering it for the TTL.
// associationID may be empty when SSM said the association already existed
// without naming it.
func (s *Store) Complete(ctx context.Context, key, owner, associationID string) error {
	now := s.now()
	update := expression.Set(expression.Name(attrStatus), expression.Value(statusAssociated)).
		Set(expression.Name(TTLAttribute), expression.Value(now.Add(s.ttl).Unix())).
		Set(expression.Name(attrUpdatedAt), expression.Value(now.UnixMilli())).
		Remove(expression.Name(attrLease))
	if associationID != "" {
		update = update.Set(expression.Name(attrAssocID), expression.Value(associationID))
	}
	return s.update(ctx, key, owner, update)
}

// Release gives key up so that a later invocation can take it at once; the
// condition makes sure a claim taken over by someone else is left alone.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	expr, err := expression.NewBuilder().WithCondition(s.ownedBy(owner)).Build()
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

func (s *Store) update(ctx context.Context, key, owner string, update expression.UpdateBuilder) error {
	expr, err := expression.NewBuilder().WithCondition(s.ownedBy(owner)).WithUpdate(update).Build()
	if err != nil {
		return fmt.Errorf("build completion of %s: %w", key, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       keyOf(key),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	return s.conditional(err, "complete", key)
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
