package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// Table attributes. The key schema is part of template.yaml's JobsTable.
// The other names are the dynamodbav tags of Meta, Counts and outcome, for
// the expressions that update those items; a test checks them against the
// tags.
const (
	PartitionKey = "jobId"
	SortKey      = "sk"
	TTLAttribute = "expiration"
	metaSK       = "META"

	// The job's item (Meta, Counts).
	attrState          = "state"
	attrSuccessful     = "successful"
	attrUpdated        = "updated"
	attrFailed         = "failed"
	attrDeduplicated   = "deduplicated"
	attrUnprocessed    = "unprocessed"
	attrChunksDone     = "chunksDone"
	attrChunksPoisoned = "chunksPoisoned"
	attrUpdatedAt      = "updatedAt"
	attrFinishedBy     = "finishedBy"
	attrAnnouncedAt    = "announcedAt"
	attrAnnouncer      = "announcer"
	attrAnnounceUntil  = "announceUntil"

	// A chunk's item (outcome).
	attrResult    = "result"
	attrRun       = "run"
	attrParts     = "parts"
	attrCountedAt = "countedAt"
)

// Job states.
const (
	StateQueued    = "QUEUED"
	StateRunning   = "RUNNING"
	StateSucceeded = "SUCCEEDED"
	StatePartial   = "PARTIAL"
	StateFailed    = "FAILED"
	// StateStalled is a job that made no progress for longer than the
	// reaper allows (JOB_STALL_AFTER). It is not final: a chunk that is
	// counted later moves it on, and it still finishes.
	StateStalled = "STALLED"
)

// Final reports whether state is a finished job's.
func Final(state string) bool {
	return state == StateSucceeded || state == StatePartial || state == StateFailed
}

// The DynamoDB calls the store makes; template.yaml grants exactly these.
type dynamoAPI interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
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
	JobID string `json:"JobId" dynamodbav:"jobId"`
	SK    string `json:"-" dynamodbav:"sk"`
	State string `json:"State" dynamodbav:"state"`
	// Counts are inlined in the item, each count an attribute of its own
	// that Record adds to: attributevalue flattens an anonymous struct
	// field that has no dynamodbav tag. In JSON, the tag nests them.
	Counts         `json:"Counts"`
	Chunks         int   `json:"Chunks" dynamodbav:"chunks"`
	ChunksDone     int   `json:"ChunksDone" dynamodbav:"chunksDone"`
	ChunksPoisoned int   `json:"ChunksPoisoned" dynamodbav:"chunksPoisoned"`
	CreatedAt      int64 `json:"CreatedAt" dynamodbav:"createdAt"` // epoch ms
	UpdatedAt      int64 `json:"UpdatedAt" dynamodbav:"updatedAt"`
	Expiration     int64 `json:"-" dynamodbav:"expiration"`
	// SubmittedBy is who submitted the job, as its trigger reported it
	// (event.Caller), set once at Create. The status route lets only this
	// caller, and the job readers, see the job; the completion event
	// carries it. A job written before it existed has the zero Caller.
	SubmittedBy event.Caller `json:"SubmittedBy" dynamodbav:"submittedBy"`
	// FinishedBy names the Finish call that moved the job to its final
	// state ("submit" for a job settled at submission), so that the same
	// call sent again after a lost answer knows it won.
	FinishedBy string `json:"-" dynamodbav:"finishedBy,omitempty"`
	// AnnouncedAt (epoch ms) is set once the completion event is on the
	// bus; Announcer and AnnounceUntil hold the claim of whoever sends it.
	AnnouncedAt   int64  `json:"-" dynamodbav:"announcedAt,omitempty"`
	Announcer     string `json:"-" dynamodbav:"announcer,omitempty"`
	AnnounceUntil int64  `json:"-" dynamodbav:"announceUntil,omitempty"`
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
//
// Outcomes larger than one part (partBytes of JSON) are split: the chunk's
// item holds the first part, and items CHUNK#nnnnnn#<run>#pp the others;
// Run names the Record call whose parts are the chunk's, so the parts of an
// earlier, unfinished run are ignored.
type outcome struct {
	JobID      string `dynamodbav:"jobId"`
	SK         string `dynamodbav:"sk"`
	Result     string `dynamodbav:"result"` // report.Result JSON, redacted (the first part)
	Run        string `dynamodbav:"run,omitempty"`
	Parts      int    `dynamodbav:"parts,omitempty"` // 0 or 1: Result is all of it
	CountedAt  int64  `dynamodbav:"countedAt,omitempty"`
	Expiration int64  `dynamodbav:"expiration"`
}

// Store keeps jobs in DynamoDB.
type Store struct {
	client dynamoAPI
	table  string
	ttl    time.Duration
	now    func() time.Time
	// retry paces the store's own retries of transaction conflicts and
	// throttling, which the SDK does not retry (or has given up on).
	retry backoff
	// announceLease is how long a claim to send a completion event holds
	// before another caller (the reaper) may send it.
	announceLease time.Duration
}

// NewStore returns a store on table, keeping jobs for ttl after creation.
func NewStore(client dynamoAPI, table string, ttl time.Duration) *Store {
	return &Store{client: client, table: table, ttl: ttl, now: time.Now,
		retry: backoff{base: 25 * time.Millisecond, max: 2 * time.Second, attempts: 12}, announceLease: 5 * time.Minute}
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
// at once. The job records no submitter; Submit uses CreateBy.
func (s *Store) Create(ctx context.Context, jobID string, requested, chunks int, settled report.Result) error {
	return s.CreateBy(ctx, event.Caller{}, jobID, requested, chunks, settled)
}

// CreateBy is Create for a job submitted by by, which the job record keeps
// as SubmittedBy.
func (s *Store) CreateBy(ctx context.Context, by event.Caller, jobID string, requested, chunks int, settled report.Result) error {
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
		CreatedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli(), Expiration: exp, SubmittedBy: by}
	m.Counts = countsOf(settled)
	m.Requested = requested
	if m.finished() {
		m.State = m.finalState()
		m.FinishedBy = "submit"
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
