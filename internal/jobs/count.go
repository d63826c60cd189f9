package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// backoff retries what DynamoDB refuses for a moment: transaction conflicts
// (which the SDK never retries) and throttling (which it retries a few
// times only).
type backoff struct {
	base, max time.Duration
	attempts  int
}

// errRetry marks an error do should retry although it is not one of
// DynamoDB's transient errors (a transaction cancelled by a conflict).
type errRetry struct{ error }

func (e errRetry) Unwrap() error { return e.error }

// do runs op until it succeeds, fails for good, the attempts are spent or
// ctx ends; it returns op's last error.
func (b backoff) do(ctx context.Context, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || !transient(err) || attempt >= b.attempts {
			return err
		}
		d := min(b.base<<min(attempt-1, 16), b.max)
		d = d/2 + mrand.N(d/2+1) // jitter: conflicting workers do not meet again
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
	}
}

// transient reports whether a DynamoDB error is worth retrying: a
// conflict with another transaction, or throttling.
func transient(err error) bool {
	var (
		r      errRetry
		tc     *ddbtypes.TransactionConflictException
		pte    *ddbtypes.ProvisionedThroughputExceededException
		rle    *ddbtypes.RequestLimitExceeded
		tip    *ddbtypes.TransactionInProgressException
		api    smithy.APIError
		gaveUp *retry.MaxAttemptsError // the SDK's retries of a transient error are spent
	)
	switch {
	case errors.As(err, &gaveUp), errors.As(err, &r), errors.As(err, &tc), errors.As(err, &pte), errors.As(err, &rle), errors.As(err, &tip):
		return true
	case errors.As(err, &api):
		switch api.ErrorCode() {
		case "ThrottlingException", "Throttling", "InternalServerError", "ServiceUnavailable":
			return true
		}
	}
	return false
}

// Cancellation reasons DynamoDB gives per item of a cancelled transaction.
const (
	reasonNone                = "None"
	reasonConditionFailed     = "ConditionalCheckFailed"
	reasonConflict            = "TransactionConflict"
	reasonThrottled           = "ThrottlingError"
	reasonThroughput          = "ProvisionedThroughputExceeded"
	reasonRequestLimit        = "RequestLimitExceeded"
	chunkItem, metaItem   int = 0, 1 // positions in the count transaction
)

// countOutcome reads a cancelled count transaction's reasons item by item.
type countOutcome int

const (
	countFailed         countOutcome = iota // another reason: an error
	countAlreadyCounted                     // the chunk's item had countedAt
	countNoJob                              // the job's item is missing
	countRetry                              // a conflict or throttling: try again
)

func readCancellation(tce *ddbtypes.TransactionCanceledException) countOutcome {
	code := func(i int) string {
		if i < len(tce.CancellationReasons) {
			return aws.ToString(tce.CancellationReasons[i].Code)
		}
		return ""
	}
	switch {
	case code(chunkItem) == reasonConditionFailed:
		return countAlreadyCounted
	case code(metaItem) == reasonConditionFailed:
		return countNoJob
	}
	retry := false
	for i := range tce.CancellationReasons {
		switch code(i) {
		case reasonNone, "":
		case reasonConflict, reasonThrottled, reasonThroughput, reasonRequestLimit:
			retry = true
		default:
			return countFailed
		}
	}
	if retry {
		return countRetry
	}
	return countFailed
}

// partBytes bounds the outcomes JSON one item holds; DynamoDB's item limit
// is 400 KB, names and the other attributes included.
const partBytes = 300_000

// maxTextBytes bounds an outcome's message or reason as recorded; with
// the entry itself bounded by the chunk message (MaxMessageBytes), every
// outcome fits in a part.
const maxTextBytes = 2048

// splitResult splits r's outcomes, in order, into parts of at most
// partBytes of JSON each.
func splitResult(r report.Result) ([]string, error) {
	var (
		parts []string
		cur   = report.New()
		size  int
	)
	flush := func() error {
		cur.Tally()
		b, err := json.Marshal(cur)
		if err != nil {
			return fmt.Errorf("encode outcomes: %w", err)
		}
		parts = append(parts, string(b))
		cur, size = report.New(), 0
		return nil
	}
	add := func(v any, put func()) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode outcome: %w", err)
		}
		if size > 0 && size+len(b)+1 > partBytes-512 { // 512: the summary and list names
			if err := flush(); err != nil {
				return err
			}
		}
		put()
		size += len(b) + 1
		return nil
	}
	for _, a := range r.Successful {
		if err := add(a, func() { cur.Successful = append(cur.Successful, a) }); err != nil {
			return nil, err
		}
	}
	for _, u := range r.Updated {
		if err := add(u, func() { cur.Updated = append(cur.Updated, u) }); err != nil {
			return nil, err
		}
	}
	for _, f := range r.Failed {
		f.Message = truncate(f.Message)
		if err := add(f, func() { cur.Failed = append(cur.Failed, f) }); err != nil {
			return nil, err
		}
	}
	for _, d := range r.Deduplicated {
		if err := add(d, func() { cur.Deduplicated = append(cur.Deduplicated, d) }); err != nil {
			return nil, err
		}
	}
	for _, u := range r.Unprocessed {
		u.Reason = truncate(u.Reason)
		if err := add(u, func() { cur.Unprocessed = append(cur.Unprocessed, u) }); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return parts, nil
}

func truncate(s string) string {
	if len(s) <= maxTextBytes {
		return s
	}
	cut := maxTextBytes
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

func partSK(chunk int, run string, part int) string {
	return fmt.Sprintf("%s#%s#%02d", chunkSK(chunk), run, part)
}

// countToken is the ClientRequestToken of one attempt to count a chunk:
// derived from the job, the chunk and the Record call, so the SDK's retries
// of a transaction whose answer was lost are idempotent, while another
// delivery (with other outcomes) never meets IdempotentParameterMismatch.
func countToken(jobID string, chunk int, run string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%s", jobID, chunk, run))
	return hex.EncodeToString(sum[:])[:36]
}

func newRun() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ChunkRecord is what the table holds for a chunk.
type ChunkRecord struct {
	Result  report.Result
	Found   bool // the chunk has an item (outcomes of an earlier run, or counted)
	Counted bool // the chunk is counted into its job; its outcomes are final
}

// Outcome returns the outcomes recorded for a chunk so far, and whether it
// is counted.
func (s *Store) Outcome(ctx context.Context, jobID string, chunk int) (ChunkRecord, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: s.key(jobID, chunkSK(chunk)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return ChunkRecord{}, fmt.Errorf("read outcomes of %s chunk %d: %w", jobID, chunk, err)
	}
	if out.Item == nil {
		return ChunkRecord{}, nil
	}
	var o outcome
	if err := attributevalue.UnmarshalMap(out.Item, &o); err != nil {
		return ChunkRecord{}, fmt.Errorf("unmarshal outcomes: %w", err)
	}
	r, err := decodeResult(o.Result)
	if err != nil {
		return ChunkRecord{}, err
	}
	for p := 1; p < o.Parts; p++ {
		part, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(s.table), Key: s.key(jobID, partSK(chunk, o.Run, p)), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return ChunkRecord{}, fmt.Errorf("read outcomes of %s chunk %d part %d: %w", jobID, chunk, p, err)
		}
		var po outcome
		if err := attributevalue.UnmarshalMap(part.Item, &po); err != nil {
			return ChunkRecord{}, fmt.Errorf("unmarshal outcomes: %w", err)
		}
		pr, err := decodeResult(po.Result)
		if err != nil {
			return ChunkRecord{}, err
		}
		appendResult(&r, pr)
	}
	r.Tally()
	return ChunkRecord{Result: r, Found: true, Counted: o.CountedAt != 0}, nil
}

func decodeResult(s string) (report.Result, error) {
	r := report.New()
	if s == "" {
		return r, nil
	}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return report.Result{}, fmt.Errorf("decode outcomes: %w", err)
	}
	return r, nil
}

func appendResult(dst *report.Result, r report.Result) {
	dst.Successful = append(dst.Successful, r.Successful...)
	dst.Updated = append(dst.Updated, r.Updated...)
	dst.Failed = append(dst.Failed, r.Failed...)
	dst.Deduplicated = append(dst.Deduplicated, r.Deduplicated...)
	dst.Unprocessed = append(dst.Unprocessed, r.Unprocessed...)
}

// Started marks a queued (or stalled) job running; a job already running
// or finished is left alone.
func (s *Store) Started(ctx context.Context, jobID string) error {
	cond := expression.Name(attrState).In(expression.Value(StateQueued), expression.Value(StateStalled))
	upd := expression.Set(expression.Name(attrState), expression.Value(StateRunning)).
		Set(expression.Name(attrUpdatedAt), expression.Value(s.now().UnixMilli()))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return fmt.Errorf("build start of %s: %w", jobID, err)
	}
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(jobID, metaSK),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}
	// Other chunks' count transactions update the same item: DynamoDB
	// refuses this write with TransactionConflictException while one is
	// under way, and the SDK does not retry that.
	err = s.retry.do(ctx, func() error {
		_, err := s.client.UpdateItem(ctx, in)
		return err
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
// counted chunk's outcomes are never overwritten. Conflicts with other
// chunks' transactions and throttling are retried with backoff. It returns
// the job as it stands after the update, and whether this call counted the
// chunk (false also when a lost answer hid that it did: callers decide
// from the job's state, never from this).
func (s *Store) Record(ctx context.Context, jobID string, chunk int, r report.Result, final, poisoned bool) (Meta, bool, error) {
	now := s.now()
	parts, err := splitResult(r.Redacted())
	if err != nil {
		return Meta{}, false, err
	}
	run := newRun()
	exp := now.Add(s.ttl).Unix()
	notCounted := expression.AttributeNotExists(expression.Name(attrCountedAt))

	// Parts after the first, each write conditional on the chunk not being
	// counted yet, so a counted chunk's outcomes stay as they were.
	if len(parts) > 1 {
		check, err := expression.NewBuilder().WithCondition(notCounted).Build()
		if err != nil {
			return Meta{}, false, fmt.Errorf("build part condition: %w", err)
		}
		const perTransaction = 10 // 10 x 300 KB: under the 4 MB a transaction may write
		for first := 1; first < len(parts); first += perTransaction {
			items := []ddbtypes.TransactWriteItem{{ConditionCheck: &ddbtypes.ConditionCheck{
				TableName: aws.String(s.table), Key: s.key(jobID, chunkSK(chunk)),
				ConditionExpression: check.Condition(), ExpressionAttributeNames: check.Names(),
			}}}
			for p := first; p < min(first+perTransaction, len(parts)); p++ {
				item, err := attributevalue.MarshalMap(outcome{JobID: jobID, SK: partSK(chunk, run, p), Result: parts[p], Run: run, Expiration: exp})
				if err != nil {
					return Meta{}, false, fmt.Errorf("marshal outcomes: %w", err)
				}
				items = append(items, ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{TableName: aws.String(s.table), Item: item}})
			}
			in := &dynamodb.TransactWriteItemsInput{TransactItems: items, ClientRequestToken: aws.String(countToken(jobID, chunk, fmt.Sprintf("%s/part%d", run, first)))}
			err = s.retry.do(ctx, func() error {
				_, err := s.client.TransactWriteItems(ctx, in)
				var tce *ddbtypes.TransactionCanceledException
				if errors.As(err, &tce) && readCancellation(tce) == countRetry {
					return errRetry{err}
				}
				return err
			})
			var tce *ddbtypes.TransactionCanceledException
			if errors.As(err, &tce) && readCancellation(tce) == countAlreadyCounted {
				m, err := s.Meta(ctx, jobID)
				return m, false, err
			}
			if err != nil {
				return Meta{}, false, fmt.Errorf("record outcomes of chunk %d of %s: %w", chunk, jobID, err)
			}
		}
	}

	set := expression.Set(expression.Name(attrResult), expression.Value(parts[0])).
		Set(expression.Name(attrRun), expression.Value(run)).
		Set(expression.Name(attrParts), expression.Value(len(parts))).
		Set(expression.Name(TTLAttribute), expression.Value(exp))
	if final {
		set = set.Set(expression.Name(attrCountedAt), expression.Value(now.UnixMilli()))
	}
	chunkExpr, err := expression.NewBuilder().WithCondition(notCounted).WithUpdate(set).Build()
	if err != nil {
		return Meta{}, false, fmt.Errorf("build chunk update: %w", err)
	}
	chunkUpdate := &ddbtypes.Update{TableName: aws.String(s.table), Key: s.key(jobID, chunkSK(chunk)),
		ConditionExpression: chunkExpr.Condition(), UpdateExpression: chunkExpr.Update(),
		ExpressionAttributeNames: chunkExpr.Names(), ExpressionAttributeValues: chunkExpr.Values()}
	var ccf *ddbtypes.ConditionalCheckFailedException
	if !final {
		in := &dynamodb.UpdateItemInput{TableName: chunkUpdate.TableName, Key: chunkUpdate.Key,
			ConditionExpression: chunkUpdate.ConditionExpression, UpdateExpression: chunkUpdate.UpdateExpression,
			ExpressionAttributeNames: chunkUpdate.ExpressionAttributeNames, ExpressionAttributeValues: chunkUpdate.ExpressionAttributeValues}
		err := s.retry.do(ctx, func() error { _, err := s.client.UpdateItem(ctx, in); return err })
		if err != nil && !errors.As(err, &ccf) {
			return Meta{}, false, fmt.Errorf("record chunk %d of %s: %w", chunk, jobID, err)
		}
		return Meta{}, false, nil
	}
	c := countsOf(r)
	done := attrChunksDone
	if poisoned {
		done = attrChunksPoisoned
	}
	counts := expression.Add(expression.Name(attrSuccessful), expression.Value(c.Successful)).
		Add(expression.Name(attrUpdated), expression.Value(c.Updated)).
		Add(expression.Name(attrFailed), expression.Value(c.Failed)).
		Add(expression.Name(attrDeduplicated), expression.Value(c.Deduplicated)).
		Add(expression.Name(attrUnprocessed), expression.Value(c.Unprocessed)).
		Add(expression.Name(done), expression.Value(1)).
		Set(expression.Name(attrUpdatedAt), expression.Value(now.UnixMilli()))
	countsExpr, err := expression.NewBuilder().
		WithCondition(expression.AttributeExists(expression.Name(PartitionKey))).
		WithUpdate(counts).Build()
	if err != nil {
		return Meta{}, false, fmt.Errorf("build job counts: %w", err)
	}
	// The same input, token included, for every attempt: when an answer is
	// lost, the SDK's retry (and ours) is recognised by DynamoDB as the
	// transaction it already applied.
	in := &dynamodb.TransactWriteItemsInput{
		ClientRequestToken: aws.String(countToken(jobID, chunk, run)),
		TransactItems: []ddbtypes.TransactWriteItem{
			chunkItem: {Update: chunkUpdate},
			metaItem: {Update: &ddbtypes.Update{TableName: aws.String(s.table), Key: s.key(jobID, metaSK),
				ConditionExpression: countsExpr.Condition(), UpdateExpression: countsExpr.Update(),
				ExpressionAttributeNames: countsExpr.Names(), ExpressionAttributeValues: countsExpr.Values()}},
		}}
	var verdict countOutcome
	err = s.retry.do(ctx, func() error {
		_, err := s.client.TransactWriteItems(ctx, in)
		var tce *ddbtypes.TransactionCanceledException
		if errors.As(err, &tce) {
			if verdict = readCancellation(tce); verdict == countRetry {
				return errRetry{err}
			}
		}
		return err
	})
	counted := err == nil
	var (
		tce      *ddbtypes.TransactionCanceledException
		mismatch *ddbtypes.IdempotentParameterMismatchException
	)
	switch {
	case err == nil:
	case errors.As(err, &tce) && verdict == countAlreadyCounted:
		// Counted before: by a redelivery, or by this very call when its
		// first answer was lost and the retry met the condition.
	case errors.As(err, &tce) && verdict == countNoJob:
		return Meta{}, false, fmt.Errorf("count chunk %d of %s: %w", chunk, jobID, ErrNoJob)
	case errors.As(err, &mismatch):
		// Cannot happen with a token per call; if it does, the table says
		// whether the chunk is counted.
		rec, rerr := s.Outcome(ctx, jobID, chunk)
		if rerr != nil || !rec.Counted {
			return Meta{}, false, fmt.Errorf("count chunk %d of %s: %w", chunk, jobID, err)
		}
	default:
		return Meta{}, false, fmt.Errorf("count chunk %d of %s: %w", chunk, jobID, err)
	}
	m, err := s.Meta(ctx, jobID)
	return m, counted, err
}

// Page is one page of a job's outcomes.
type Page struct {
	Outcomes  report.Result
	NextToken string
}

// Outcomes returns up to limit items' outcomes (a chunk, or a part of a
// large chunk's), merged into one result, from the position token names
// ("" for the start).
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
		if err != nil || !strings.HasPrefix(string(sk), "CHUNK#") {
			return Page{}, ErrBadToken
		}
		in.ExclusiveStartKey = s.key(jobID, string(sk))
	}
	out, err := s.client.Query(ctx, in)
	if err != nil {
		return Page{}, fmt.Errorf("query outcomes of %s: %w", jobID, err)
	}
	page := Page{Outcomes: report.New()}
	runs := map[string]string{} // chunk SK -> the run whose parts count
	for _, item := range out.Items {
		var o outcome
		if err := attributevalue.UnmarshalMap(item, &o); err != nil {
			return Page{}, fmt.Errorf("unmarshal outcomes: %w", err)
		}
		if main, rest, isPart := strings.Cut(strings.TrimPrefix(o.SK, "CHUNK#"), "#"); isPart {
			mainSK := "CHUNK#" + main
			run, ok := runs[mainSK]
			if !ok { // the chunk's own item was on an earlier page
				got, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.key(jobID, mainSK), ConsistentRead: aws.Bool(true)})
				if err != nil {
					return Page{}, fmt.Errorf("read outcomes of %s: %w", jobID, err)
				}
				var mo outcome
				if err := attributevalue.UnmarshalMap(got.Item, &mo); err != nil {
					return Page{}, fmt.Errorf("unmarshal outcomes: %w", err)
				}
				run = mo.Run
				runs[mainSK] = run
			}
			if partRun, _, _ := strings.Cut(rest, "#"); partRun != run {
				continue // a part of an earlier, unfinished run
			}
		} else {
			runs[o.SK] = o.Run
		}
		r, err := decodeResult(o.Result)
		if err != nil {
			return Page{}, err
		}
		appendResult(&page.Outcomes, r)
	}
	page.Outcomes.Tally()
	if lek := out.LastEvaluatedKey; lek != nil {
		if sk, ok := lek[SortKey].(*ddbtypes.AttributeValueMemberS); ok {
			page.NextToken = base64.RawURLEncoding.EncodeToString([]byte(sk.Value))
		}
	}
	return page, nil
}
