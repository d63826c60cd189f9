package jobs

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

// Finish moves a job whose chunks are all counted to its final state. It is
// conditional on the job not being final yet (or on this call having made
// it final, when its answer was lost and the write is sent again), so
// calling it twice, or from two places at once, is harmless. It returns the
// job as it stands, and whether this call finished it.
func (s *Store) Finish(ctx context.Context, m Meta) (Meta, bool, error) {
	final := m.finalState()
	by := newRun()
	cond := expression.Name(attrState).In(expression.Value(StateQueued), expression.Value(StateRunning), expression.Value(StateStalled)).
		Or(expression.Name(attrFinishedBy).Equal(expression.Value(by)))
	upd := expression.Set(expression.Name(attrState), expression.Value(final)).
		Set(expression.Name(attrFinishedBy), expression.Value(by)).
		Set(expression.Name(attrUpdatedAt), expression.Value(s.now().UnixMilli()))
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return m, false, fmt.Errorf("build finish of %s: %w", m.JobID, err)
	}
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(m.JobID, metaSK),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: ddbtypes.ReturnValueAllNew,
	}
	var out *dynamodb.UpdateItemOutput
	err = s.retry.do(ctx, func() error {
		var err error
		out, err = s.client.UpdateItem(ctx, in)
		return err
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		now, err := s.Meta(ctx, m.JobID)
		return now, false, err
	}
	if err != nil {
		return m, false, fmt.Errorf("finish job %s: %w", m.JobID, err)
	}
	var now Meta
	if err := attributevalue.UnmarshalMap(out.Attributes, &now); err != nil {
		return m, false, fmt.Errorf("unmarshal job %s: %w", m.JobID, err)
	}
	return now, true, nil
}

// claimAnnouncement takes the right to send a finished job's completion
// event: granted when nobody has sent it and nobody holds the right, or the
// holder's lease has run out (it died before sending).
func (s *Store) claimAnnouncement(ctx context.Context, jobID, by string) (bool, error) {
	now := s.now()
	cond := expression.Name(attrState).In(expression.Value(StateSucceeded), expression.Value(StatePartial), expression.Value(StateFailed)).
		And(expression.AttributeNotExists(expression.Name(attrAnnouncedAt))).
		And(expression.Or(
			expression.AttributeNotExists(expression.Name(attrAnnounceUntil)),
			expression.Name(attrAnnounceUntil).LessThan(expression.Value(now.UnixMilli())),
			expression.Name(attrAnnouncer).Equal(expression.Value(by)),
		))
	upd := expression.Set(expression.Name(attrAnnouncer), expression.Value(by)).
		Set(expression.Name(attrAnnounceUntil), expression.Value(now.Add(s.announceLease).UnixMilli()))
	return s.conditionalUpdate(ctx, jobID, cond, upd)
}

// announced records that the completion event is on the bus.
func (s *Store) announced(ctx context.Context, jobID, by string) error {
	cond := expression.Name(attrAnnouncer).Equal(expression.Value(by))
	upd := expression.Set(expression.Name(attrAnnouncedAt), expression.Value(s.now().UnixMilli()))
	_, err := s.conditionalUpdate(ctx, jobID, cond, upd)
	return err
}

// releaseAnnouncement gives the right back after a failed send.
func (s *Store) releaseAnnouncement(ctx context.Context, jobID, by string) error {
	cond := expression.Name(attrAnnouncer).Equal(expression.Value(by))
	upd := expression.Remove(expression.Name(attrAnnounceUntil))
	_, err := s.conditionalUpdate(ctx, jobID, cond, upd)
	return err
}

// conditionalUpdate updates the job's item if cond holds, retrying
// conflicts and throttling; it reports whether cond held.
func (s *Store) conditionalUpdate(ctx context.Context, jobID string, cond expression.ConditionBuilder, upd expression.UpdateBuilder) (bool, error) {
	expr, err := expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	if err != nil {
		return false, fmt.Errorf("build update of %s: %w", jobID, err)
	}
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(jobID, metaSK),
		ConditionExpression: expr.Condition(), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}
	err = s.retry.do(ctx, func() error { _, err := s.client.UpdateItem(ctx, in); return err })
	var ccf *ddbtypes.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("update job %s: %w", jobID, err)
	}
	return true, nil
}

// Settle brings a job whose chunks are all counted to its end: Finish, if
// it is not final yet, then the completion event, sent once. Whoever sees
// every chunk counted calls it — the worker after any chunk, the submitter,
// the reaper — whatever its own count did. It returns the job as it stands;
// an error means the caller should try again (the message comes back).
//
// The event is sent by the caller that holds the announcement claim; a
// caller that dies holding it leaves the job to the reaper once its lease
// ends. So the event is sent at least once, and twice when the sender dies
// (or the write recording the event fails) after PutEvents succeeded: the
// reaper cannot tell that from a sender that died before sending, and
// EventBridge takes no idempotency token. Consumers dedupe on the event's
// JobId. What narrows that window: the send is bounded well within the
// claim's lease (nobody else sends while it may still arrive), and the
// write recording it outlives the caller's context.
func (s *Store) Settle(ctx context.Context, events announcer, m Meta) (Meta, error) {
	if !m.finished() || m.AnnouncedAt != 0 {
		return m, nil
	}
	if !Final(m.State) {
		var err error
		if m, _, err = s.Finish(ctx, m); err != nil {
			return m, err
		}
		if !Final(m.State) || m.AnnouncedAt != 0 {
			return m, nil
		}
	}
	by := newRun()
	ok, err := s.claimAnnouncement(ctx, m.JobID, by)
	if err != nil || !ok {
		return m, err
	}
	// A send still under way when the lease ends could arrive after the
	// reaper's: it gives up at half the lease.
	sendCtx, cancel := context.WithTimeout(ctx, s.announceLease/2)
	err = events.Completed(sendCtx, m)
	cancel()
	// The writes after the send are made even when the caller's context
	// has just ended (an invocation at its deadline, a caller that gave
	// up): an event on the bus whose record is missing is sent again once
	// the lease runs out, and a claim not given back delays the event by
	// the lease.
	after, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordAnnouncementFor)
	defer cancel()
	if err != nil {
		if rerr := s.releaseAnnouncement(after, m.JobID, by); rerr != nil {
			return m, fmt.Errorf("%w; releasing the announcement: %w", err, rerr)
		}
		return m, err
	}
	if err := s.announced(after, m.JobID, by); err != nil {
		return m, fmt.Errorf("completion event of %s sent but not recorded (the reaper sends it again when the claim runs out): %w", m.JobID, err)
	}
	m.AnnouncedAt = s.now().UnixMilli()
	return m, nil
}

// recordAnnouncementFor bounds the writes after a completion event's send:
// long enough for the store's retries of conflicts and throttling.
const recordAnnouncementFor = 20 * time.Second

// MarkStalled marks a job that is not finished and has made no progress
// (no chunk started or counted) since before cutoff as STALLED.
func (s *Store) MarkStalled(ctx context.Context, jobID string, cutoff time.Time) (bool, error) {
	cond := expression.Name(attrState).In(expression.Value(StateQueued), expression.Value(StateRunning)).
		And(expression.Name(attrUpdatedAt).LessThan(expression.Value(cutoff.UnixMilli())))
	upd := expression.Set(expression.Name(attrState), expression.Value(StateStalled))
	return s.conditionalUpdate(ctx, jobID, cond, upd)
}

// OpenJobs returns the jobs the reaper looks after: not final, or final and
// not yet announced. It scans the table (jobs expire after JOB_TTL, so it
// stays the size of the recent jobs).
func (s *Store) OpenJobs(ctx context.Context) ([]Meta, error) {
	filt := expression.Name(SortKey).Equal(expression.Value(metaSK)).And(expression.Or(
		expression.Name(attrState).In(expression.Value(StateQueued), expression.Value(StateRunning), expression.Value(StateStalled)),
		expression.AttributeExists(expression.Name(attrFinishedBy)).And(expression.AttributeNotExists(expression.Name(attrAnnouncedAt))),
	))
	expr, err := expression.NewBuilder().WithFilter(filt).Build()
	if err != nil {
		return nil, fmt.Errorf("build scan: %w", err)
	}
	in := &dynamodb.ScanInput{TableName: aws.String(s.table), FilterExpression: expr.Filter(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true)}
	var out []Meta
	p := dynamodb.NewScanPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("scan jobs: %w", err)
		}
		for _, item := range page.Items {
			var m Meta
			if err := attributevalue.UnmarshalMap(item, &m); err != nil {
				return out, fmt.Errorf("unmarshal job: %w", err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}
