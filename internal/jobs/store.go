package jobs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// Table attributes. The key schema is part of template.yaml's JobsTable.
const (
	PartitionKey = "jobId"
	SortKey      = "sk"
	TTLAttribute = "expiration"
	metaSK       = "META"
)

// Job states.
const (
	StateQueued    = "QUEUED"
	StateRunning   = "RUNNING"
	StateSucceeded = "SUCCEEDED"
	StatePartial   = "PARTIAL"
	StateFailed    = "FAILED"
)

// The DynamoDB calls the store makes; template.yaml grants exactly these.
type dynamoAPI interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Counts are a job's outcome counts.
type Counts struct {
	Requested    int `json:"Requested" dynamodbav:"requested"`
	Successful   int `json:"Successful" dynamodbav:"successful"`
	Updated      int `json:"Updated" dynamodbav:"updated"`
	Failed       int `json:"Failed" dynamodbav:"failed"`
	Deduplicated int `json:"Deduplicated" dynamodbav:"deduplicated"`
	Unprocessed  int `json:"Unprocessed" dynamodbav:"unprocessed"`
}

func countsOf(r report.Result) Counts {
	return Counts{Successful: len(r.Successful), Updated: len(r.Updated), Failed: len(r.Failed), Deduplicated: len(r.Deduplicated), Unprocessed: len(r.Unprocessed)}
}

// Meta is a job's summary record.
type Meta struct {
	JobID          string          `json:"JobId" dynamodbav:"jobId"`
	SK             string          `json:"-" dynamodbav:"sk"`
	State          string          `json:"State" dynamodbav:"state"`
	Counts         `json:"Counts"` // inlined in the item: anonymous fields are
	Chunks         int             `json:"Chunks" dynamodbav:"chunks"`
	ChunksDone     int             `json:"ChunksDone" dynamodbav:"chunksDone"`
	ChunksPoisoned int             `json:"ChunksPoisoned" dynamodbav:"chunksPoisoned"`
	CreatedAt      int64           `json:"CreatedAt" dynamodbav:"createdAt"` // epoch ms
	UpdatedAt      int64           `json:"UpdatedAt" dynamodbav:"updatedAt"`
	Expiration     int64           `json:"-" dynamodbav:"expiration"`
}

// finished reports whether every chunk has been counted.
func (m Meta) finished() bool { return m.ChunksDone+m.ChunksPoisoned >= m.Chunks }

// finalState is the state of a finished job.
func (m Meta) finalState() string {
	switch {
	case m.Failed == 0 && m.Unprocessed == 0 && m.ChunksPoisoned == 0:
		return StateSucceeded
	case m.Successful+m.Updated+m.Deduplicated == 0:
		return StateFailed
	default:
		return StatePartial
	}
}

// outcome is a chunk's item: its outcomes so far and, once the chunk is
// counted into the job, when. A counted chunk's outcomes never change
// again, so a late redelivery cannot overwrite them.
type outcome struct {
	JobID      string `dynamodbav:"jobId"`
	SK         string `dynamodbav:"sk"`
	Result     string `dynamodbav:"result"` // report.Result JSON, redacted
	CountedAt  int64  `dynamodbav:"countedAt,omitempty"`
	Expiration int64  `dynamodbav:"expiration"`
}

// Store keeps jobs in DynamoDB.
type Store struct {
	client dynamoAPI
	table  string
	ttl    time.Duration
	now    func() time.Time
}

// NewStore returns a store on table, keeping jobs for ttl after creation.
func NewStore(client dynamoAPI, table string, ttl time.Duration) *Store {
	return &Store{client: client, table: table, ttl: ttl, now: time.Now}
}

func chunkSK(i int) string { return fmt.Sprintf("CHUNK#%06d", i) }

func (s *Store) key(jobID, sk string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		PartitionKey: &ddbtypes.AttributeValueMemberS{Value: jobID},
		SortKey:      &ddbtypes.AttributeValueMemberS{Value: sk},
	}
}

// Create records a new job of chunks chunks. settled holds the outcomes
// known at submission (invalid entries, duplicates in the request), counted
// at once.
func (s *Store) Create(ctx context.Context, jobID string, requested, chunks int, settled report.Result) error {
	now := s.now()
	exp := now.Add(s.ttl).Unix()
	b, err := json.Marshal(settled.Redacted())
	if err != nil {
		return fmt.Errorf("encode outcomes: %w", err)
	}
	first, err := attributevalue.MarshalMap(outcome{JobID: jobID, SK: chunkSK(0), Result: string(b), CountedAt: now.UnixMilli(), Expiration: exp})
	if err != nil {
		return fmt.Errorf("marshal outcomes: %w", err)
	}
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: first}); err != nil {
		return fmt.Errorf("create job %s: %w", jobID, err)
	}
	m := Meta{JobID: jobID, SK: metaSK, State: StateQueued, Chunks: chunks,
		CreatedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli(), Expiration: exp}
	m.Counts = countsOf(settled)
	m.Requested = requested
	if m.finished() {
		m.State = m.finalState()
	}
	item, err := attributevalue.MarshalMap(m)
	if err != nil {
		return fmt.Errorf("marshal job %s: %w", jobID, err)
	}
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("create job %s: %w", jobID, err)
	}
	return nil
}

// Outcome returns the outcomes recorded for a chunk so far, if any.
func (s *Store) Outcome(ctx context.Context, jobID string, chunk int) (report.Result, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: s.key(jobID, chunkSK(chunk)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return report.Result{}, false, fmt.Errorf("read outcomes of %s chunk %d: %w", jobID, chunk, err)
	}
	if out.Item == nil {
		return report.Result{}, false, nil
	}
	var o outcome
	if err := attributevalue.UnmarshalMap(out.Item, &o); err != nil {
		return report.Result{}, false, fmt.Errorf("unmarshal outcomes: %w", err)
	}
	var r report.Result
	if err := json.Unmarshal([]byte(o.Result), &r); err != nil {
		return report.Result{}, false, fmt.Errorf("decode outcomes: %w", err)
	}
	return r, true, nil
}

// Started marks a queued job running; a job already running or finished is
// left alone.
func (s *Store) Started(ctx context.Context, jobID string) error {
	cond := expression.Name("state").Equal(expression.Value(StateQueued))
	upd := expression.Set(expression.Name("state"), expression.Value(StateRunning)).
		Set(expression.Name("updatedAt"), expression.Value(s.now().UnixMilli()))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return fmt.Errorf("build start of %s: %w", jobID, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(jobID, metaSK),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("start job %s: %w", jobID, err)
	}
	return nil
}

// Record stores a chunk's outcomes. When final, it also counts the chunk
// into the job, once: the chunk's item and the job's counters change in one
// transaction whose condition fails if the chunk was counted before, and a
// counted chunk's outcomes are never overwritten. It returns the job as it
// stands after the update, and whether this call counted the chunk.
func (s *Store) Record(ctx context.Context, jobID string, chunk int, r report.Result, final, poisoned bool) (Meta, bool, error) {
	now := s.now()
	b, err := json.Marshal(r.Redacted())
	if err != nil {
		return Meta{}, false, fmt.Errorf("encode outcomes: %w", err)
	}
	set := expression.Set(expression.Name("result"), expression.Value(string(b))).
		Set(expression.Name(TTLAttribute), expression.Value(now.Add(s.ttl).Unix()))
	if final {
		set = set.Set(expression.Name("countedAt"), expression.Value(now.UnixMilli()))
	}
	chunkExpr, err := expression.NewBuilder().
		WithCondition(expression.AttributeNotExists(expression.Name("countedAt"))).
		WithUpdate(set).Build()
	if err != nil {
		return Meta{}, false, fmt.Errorf("build chunk update: %w", err)
	}
	chunkUpdate := &ddbtypes.Update{TableName: aws.String(s.table), Key: s.key(jobID, chunkSK(chunk)),
		ConditionExpression: chunkExpr.Condition(), UpdateExpression: chunkExpr.Update(),
		ExpressionAttributeNames: chunkExpr.Names(), ExpressionAttributeValues: chunkExpr.Values()}
	var ccf *ddbtypes.ConditionalCheckFailedException
	if !final {
		_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: chunkUpdate.TableName, Key: chunkUpdate.Key,
			ConditionExpression: chunkUpdate.ConditionExpression, UpdateExpression: chunkUpdate.UpdateExpression,
			ExpressionAttributeNames: chunkUpdate.ExpressionAttributeNames, ExpressionAttributeValues: chunkUpdate.ExpressionAttributeValues})
		if err != nil && !errors.As(err, &ccf) {
			return Meta{}, false, fmt.Errorf("record chunk %d of %s: %w", chunk, jobID, err)
		}
		return Meta{}, false, nil
	}
	c := countsOf(r)
	done := "chunksDone"
	if poisoned {
		done = "chunksPoisoned"
	}
	counts := expression.Add(expression.Name("successful"), expression.Value(c.Successful)).
		Add(expression.Name("updated"), expression.Value(c.Updated)).
		Add(expression.Name("failed"), expression.Value(c.Failed)).
		Add(expression.Name("deduplicated"), expression.Value(c.Deduplicated)).
		Add(expression.Name("unprocessed"), expression.Value(c.Unprocessed)).
		Add(expression.Name(done), expression.Value(1)).
		Set(expression.Name("updatedAt"), expression.Value(now.UnixMilli()))
	countsExpr, err := expression.NewBuilder().
		WithCondition(expression.AttributeExists(expression.Name(PartitionKey))).
		WithUpdate(counts).Build()
	if err != nil {
		return Meta{}, false, fmt.Errorf("build job counts: %w", err)
	}
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
		{Update: chunkUpdate},
		{Update: &ddbtypes.Update{TableName: aws.String(s.table), Key: s.key(jobID, metaSK),
			ConditionExpression: countsExpr.Condition(), UpdateExpression: countsExpr.Update(),
			ExpressionAttributeNames: countsExpr.Names(), ExpressionAttributeValues: countsExpr.Values()}},
	}})
	counted := true
	var tce *ddbtypes.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 0 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		counted = false // a redelivery of a chunk already counted
	} else if err != nil {
		return Meta{}, false, fmt.Errorf("count chunk %d of %s: %w", chunk, jobID, err)
	}
	m, err := s.Meta(ctx, jobID)
	return m, counted, err
}

// Finish moves a job whose chunks are all counted to its final state. Only
// one caller wins; it alone returns true and announces the job.
func (s *Store) Finish(ctx context.Context, m Meta) (Meta, bool, error) {
	final := m.finalState()
	cond := expression.Name("state").In(expression.Value(StateQueued), expression.Value(StateRunning))
	upd := expression.Set(expression.Name("state"), expression.Value(final)).
		Set(expression.Name("updatedAt"), expression.Value(s.now().UnixMilli()))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return m, false, fmt.Errorf("build finish of %s: %w", m.JobID, err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(m.JobID, metaSK),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("finish job %s: %w", m.JobID, err)
	}
	m.State = final
	return m, true, nil
}

// Meta reads a job's summary; ErrNoJob when there is none.
func (s *Store) Meta(ctx context.Context, jobID string) (Meta, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: s.key(jobID, metaSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Meta{}, fmt.Errorf("read job %s: %w", jobID, err)
	}
	if out.Item == nil {
		return Meta{}, ErrNoJob
	}
	var m Meta
	if err := attributevalue.UnmarshalMap(out.Item, &m); err != nil {
		return Meta{}, fmt.Errorf("unmarshal job %s: %w", jobID, err)
	}
	return m, nil
}

// ErrNoJob means no job has that ID (or it has expired).
var ErrNoJob = errors.New("no such job")

// Page is one page of a job's outcomes.
type Page struct {
	Outcomes  report.Result
	NextToken string
}

// Outcomes returns up to limit chunks' outcomes, merged into one result,
// from the position token names ("" for the start).
func (s *Store) Outcomes(ctx context.Context, jobID string, limit int32, token string) (Page, error) {
	keyCond := expression.Key(PartitionKey).Equal(expression.Value(jobID)).
		And(expression.Key(SortKey).BeginsWith("CHUNK#"))
	expr, err := expression.NewBuilder().WithKeyCondition(keyCond).Build()
	if err != nil {
		return Page{}, fmt.Errorf("build outcome query: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		Limit: aws.Int32(limit), ConsistentRead: aws.Bool(true),
	}
	if token != "" {
		sk, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return Page{}, ErrBadToken
		}
		in.ExclusiveStartKey = s.key(jobID, string(sk))
	}
	out, err := s.client.Query(ctx, in)
	if err != nil {
		return Page{}, fmt.Errorf("query outcomes of %s: %w", jobID, err)
	}
	page := Page{Outcomes: report.New()}
	for _, item := range out.Items {
		var o outcome
		if err := attributevalue.UnmarshalMap(item, &o); err != nil {
			return Page{}, fmt.Errorf("unmarshal outcomes: %w", err)
		}
		var r report.Result
		if err := json.Unmarshal([]byte(o.Result), &r); err != nil {
			return Page{}, fmt.Errorf("decode outcomes: %w", err)
		}
		page.Outcomes.Successful = append(page.Outcomes.Successful, r.Successful...)
		page.Outcomes.Failed = append(page.Outcomes.Failed, r.Failed...)
		page.Outcomes.Deduplicated = append(page.Outcomes.Deduplicated, r.Deduplicated...)
		page.Outcomes.Updated = append(page.Outcomes.Updated, r.Updated...)
		page.Outcomes.Unprocessed = append(page.Outcomes.Unprocessed, r.Unprocessed...)
	}
	page.Outcomes.Tally()
	if lek := out.LastEvaluatedKey; lek != nil {
		if sk, ok := lek[SortKey].(*ddbtypes.AttributeValueMemberS); ok {
			page.NextToken = base64.RawURLEncoding.EncodeToString([]byte(sk.Value))
		}
	}
	return page, nil
}

// ErrBadToken means a NextToken that this store did not hand out.
var ErrBadToken = errors.New("invalid NextToken")

// TableDefinition is the jobs table, for tests and the demo; template.yaml
// declares the same.
func TableDefinition(table string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String(PartitionKey), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String(SortKey), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String(PartitionKey), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String(SortKey), KeyType: ddbtypes.KeyTypeRange},
		},
	}
}
