package associate

// One call: send waits its turn (the pace, the deadline, the owner record),
// makes the CreateAssociationBatch call, then sorts SSM's answer entry by
// entry (match.go pairs results with entries, classify.go reads a failed
// call's error) and moves each entry on (lifecycle.go).

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// sent is what one call leaves: the halves of a batch refused as a whole,
// entries to send again, and entries in doubt.
type sent struct {
	halves       []plan.Batch
	retry, doubt []plan.Item
}

// send makes one call for b, unless the deadline does not leave room for
// it, and moves each of its entries on (lifecycle.go).
func (r *run) send(ctx context.Context, b plan.Batch) sent {
	rate, ok := r.waitTurn(ctx)
	if !ok {
		for _, it := range b {
			r.unprocessed(ctx, it)
		}
		return sent{}
	}
	in := &ssm.CreateAssociationBatchInput{
		Entries:                       make([]ssmtypes.CreateAssociationBatchRequestEntry, len(b)),
		AssociationDispatchAssumeRole: r.job.Request.AssociationDispatchAssumeRole,
	}
	start := time.Now()
	for i := range b {
		b[i].Attempts++
		b[i].Stage = plan.Sent
		if b[i].FirstSent.IsZero() {
			b[i].FirstSent = start
		}
		in.Entries[i] = b[i].Entry.SDK()
	}
	callCtx, cancel := r.callContext(ctx)
	defer cancel()
	out, err := r.ssm.CreateAssociationBatch(callCtx, in, r.callOptions(rate)...)
	took := time.Since(start)
	r.latency.observe(took)
	r.record(func(res *report.Result) { res.Summary.Calls++ })
	if err != nil {
		r.log.DebugContext(ctx, "CreateAssociationBatch failed", "entries", len(b), "took", took, "error", scrub(err.Error(), b))
		return r.callFailed(ctx, b, err)
	}
	r.answered()
	return r.sortResults(ctx, b, in, out)
}

// callContext bounds one call, the SDK's retries included: it ends at the
// deadline, or when this invocation's owner record may be seen dead by
// another that then takes the keys over, whichever comes first. A call cut
// there is in doubt, never resent blind.
func (r *run) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	end := r.job.Deadline
	if o := r.owner.end(); o.Before(end) {
		end = o
	}
	return context.WithDeadline(ctx, end)
}

// waitTurn waits for the rate limiter and reports the rate of the turn,
// and whether a call started now would still end before the deadline and
// while this invocation surely still owns its claims. A call is allowed
// the slowest call so far and a quarter more: a call cut at the deadline
// is not lost, but its entries are in doubt, which costs reads and may
// leave them for the next invocation.
func (r *run) waitTurn(ctx context.Context) (float64, bool) {
	need := r.latency.expected() * 5 / 4
	waitCtx, cancel := context.WithDeadline(ctx, r.job.Deadline.Add(-need))
	defer cancel()
	rate, err := r.limiter.Turn(waitCtx)
	if err != nil {
		return 0, false
	}
	return rate, time.Until(r.job.Deadline) >= need && r.owner.covers(need)
}

// sortResults moves every entry of a call that SSM answered.
func (r *run) sortResults(ctx context.Context, b plan.Batch, in *ssm.CreateAssociationBatchInput, out *ssm.CreateAssociationBatchOutput) sent {
	m := newMatcher(in)
	var (
		next sent
		done []createdEntry
	)
	for _, d := range out.Successful {
		i, ok := m.successful(d)
		if !ok {
			// The entry it belongs to stays unanswered, hence in doubt, and
			// the read back finds this association for it.
			r.log.WarnContext(ctx, "SSM returned an association that matches no entry sent", "associationId", aws.ToString(d.AssociationId))
			continue
		}
		done = append(done, createdEntry{item: b[i], desc: d})
	}
	r.created(ctx, done)
	for _, f := range out.Failed {
		i, ok := m.failed(f)
		if !ok {
			r.log.WarnContext(ctx, "SSM returned a failure that matches no entry sent", "fault", string(f.Fault))
			continue
		}
		next.add(r.entryFailed(ctx, b[i], string(f.Fault), scrub(aws.ToString(f.Message), b[i:i+1])))
	}
	for _, i := range m.unanswered() {
		next.doubt = append(next.doubt, r.doubt(ctx, b[i], plan.Unknown))
	}
	return next
}

// add files an item moved on by entryFailed.
func (s *sent) add(it plan.Item, ok bool) {
	switch {
	case !ok:
	case it.Stage == plan.Retryable:
		s.retry = append(s.retry, it)
	default:
		s.doubt = append(s.doubt, it)
	}
}

// entryFailed moves an entry SSM reported in Failed. It returns the entry
// when it has a next stage (Retryable, Unknown or Exists).
func (r *run) entryFailed(ctx context.Context, it plan.Item, fault, message string) (plan.Item, bool) {
	switch {
	case alreadyExists(message):
		return r.doubt(ctx, it, plan.Exists), true
	case fault == string(ssmtypes.FaultUnknown):
		// SSM itself does not know whether the entry was created.
		return r.doubt(ctx, it, plan.Unknown), true
	case fault == report.FaultClient:
		r.failed(ctx, it, fault, message)
		return plan.Item{}, false
	default:
		return r.retry(ctx, it, fault, message)
	}
}

// retry moves an entry SSM certainly did not create to Retryable, or to
// Failed once its attempts are spent.
func (r *run) retry(ctx context.Context, it plan.Item, fault, message string) (plan.Item, bool) {
	if it.Attempts >= r.set.MaxAttempts {
		r.failed(ctx, it, fault, message)
		return plan.Item{}, false
	}
	it.Stage = plan.Retryable
	it.RetryAfter = time.Now().Add(r.backoff(it.Attempts))
	return it, true
}

// callFailed moves the entries of a call that failed as a whole, after the
// SDK's own retries (which resend only what SSM certainly did not execute).
func (r *run) callFailed(ctx context.Context, b plan.Batch, err error) sent {
	c := classify(ctx, err)
	c.message = scrub(c.message, b)
	var next sent
	switch c.verdict {
	case unknown:
		for _, it := range b {
			next.doubt = append(next.doubt, r.doubt(ctx, it, plan.Unknown))
		}
	case refused:
		// One bad entry makes SSM refuse the whole call; halve the batch
		// until that entry is alone, so that its neighbours still go through.
		if len(b) > 1 && !c.callWide {
			left, right := plan.Split(b)
			for i := range b {
				b[i].Attempts-- // the split resends; the entries did not fail
				b[i].Stage = plan.Ready
			}
			next.halves = []plan.Batch{left, right}
			return next
		}
		for _, it := range b {
			next.add(r.entryFailed(ctx, it, report.FaultClient, c.message))
		}
	case notCreated:
		for _, it := range b {
			next.add(r.retry(ctx, it, c.fault, c.message))
		}
	}
	if c.verdict != refused {
		// Kept as text: the message was scrubbed of parameter values, the
		// error chain was not.
		r.record(func(*report.Result) { r.unreachable = errors.New("CreateAssociationBatch: " + c.message) })
	}
	return next
}
