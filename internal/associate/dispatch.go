package associate

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/work"
)

// dispatch runs the items through SSM. The first round is a pipeline:
// claims are taken in the dedupe table while earlier batches are already
// being sent, so the time is the longer of the two rather than their sum,
// and what the deadline stops was never claimed. Each later round, after a
// backoff, first reads SSM for the entries in doubt (reconcile.go), then
// sends what is still to do: entries that failed retryably, and entries in
// doubt that SSM proved absent. Nothing in doubt is ever sent before that.
func (r *run) dispatch(ctx context.Context, items []work.Item) {
	left := r.sendAll(ctx, r.claimAndPack(ctx, items))
	r.mu.Lock()
	left.doubt = append(left.doubt, r.takenOver...)
	r.mu.Unlock()
	for round := 1; len(left.retry)+len(left.doubt) > 0; round++ {
		r.record(func(res *report.Result) { res.Summary.Retries += len(left.retry) })
		if !r.sleep(ctx, max(r.backoff(round), r.settling(left.doubt))) {
			r.timeUp(ctx, left)
			return
		}
		again, still := r.reconcile(ctx, left.doubt)
		todo := append(left.retry, again...)
		batches := make(chan plan.Batch)
		go func() {
			defer close(batches)
			for _, b := range plan.Batches(todo, r.set.BatchSize) {
				batches <- b
			}
		}()
		left = r.sendAll(ctx, batches)
		left.doubt = append(left.doubt, still...)
	}
}

// leftover is what a round leaves for the next: entries to send again, and
// entries in doubt, to read SSM for first.
type leftover struct {
	retry, doubt []work.Item
}

// timeUp files what is left when no time remains for another round.
func (r *run) timeUp(ctx context.Context, left leftover) {
	for _, it := range append(left.retry, left.doubt...) {
		r.unprocessed(ctx, it)
	}
}

// claimAndPack claims items with ClaimConcurrency workers and packs what
// it owns into batches, handed over as soon as they are full. It stops
// claiming when a call started after the claim could not end before the
// deadline: those items are Unprocessed, and hold no claim.
func (r *run) claimAndPack(ctx context.Context, items []work.Item) <-chan plan.Batch {
	var (
		todo    = make(chan work.Item)
		owned   = make(chan work.Item)
		batches = make(chan plan.Batch)
		wg      sync.WaitGroup
	)
	// In-flight claims are not cut at the deadline: a write cut off may
	// still land after its release, and hold the key until its lease ends.
	// The feeder stops starting them instead.
	go func() {
		defer close(todo)
		for i, it := range items {
			if time.Until(r.job.Deadline) < r.latency.expected() {
				for _, left := range items[i:] {
					r.record(func(res *report.Result) {
						res.Unprocessed = append(res.Unprocessed, report.Unprocessed{Entry: left.Entry, Reason: reasonDeadline})
					})
				}
				return
			}
			todo <- it
		}
	}()
	for range r.set.ClaimConcurrency {
		wg.Go(func() {
			for it := range todo {
				if mine, ok := r.claimItem(ctx, it); ok {
					owned <- mine
				}
			}
		})
	}
	go func() { wg.Wait(); close(owned) }()
	go func() {
		defer close(batches)
		packer := plan.NewPacker(r.set.BatchSize)
		for it := range owned {
			if b, full := packer.Add(it); full {
				batches <- b
			}
		}
		for _, b := range packer.Flush() {
			batches <- b
		}
	}()
	return batches
}

// sendAll sends batches with at most MaxConcurrency calls in flight. A
// batch SSM refuses as a whole is halved, and the halves sent by the same
// caller. Entries that fail retryably are packed into retry batches as they
// come; a retry batch that fills up goes out in this round, after a
// backoff, so that retries overlap the round instead of all waiting for its
// end. Entries in doubt are never sent again in the round: they wait for
// the next, which reads SSM first. It returns what is left.
func (r *run) sendAll(ctx context.Context, batches <-chan plan.Batch) leftover {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		retries = plan.NewPacker(r.set.BatchSize)
		left    leftover
	)
	for range r.set.MaxConcurrency {
		wg.Go(func() {
			for b := range batches {
				stack := []plan.Batch{b}
				for len(stack) > 0 {
					b := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					out := r.send(ctx, b)
					stack = append(stack, out.halves...)
					mu.Lock()
					left.doubt = append(left.doubt, out.doubt...)
					var full []plan.Batch
					for _, it := range out.retry {
						if fb, ok := retries.Add(it); ok {
							full = append(full, fb)
						}
					}
					mu.Unlock()
					for _, fb := range full {
						if r.retryNow(ctx, fb) {
							stack = append(stack, fb)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	for _, b := range retries.Flush() {
		left.retry = append(left.retry, b...)
	}
	return left
}

// retryNow counts a full retry batch and waits its backoff; when the
// deadline leaves no room for it, its entries are Unprocessed instead.
func (r *run) retryNow(ctx context.Context, b plan.Batch) bool {
	r.record(func(res *report.Result) { res.Summary.Retries += len(b) })
	attempts := 1
	for _, it := range b {
		attempts = max(attempts, it.Attempts)
	}
	if r.sleep(ctx, r.backoff(attempts)) {
		return true
	}
	for _, it := range b {
		r.unprocessed(ctx, it)
	}
	return false
}

// sent is what one call leaves: the halves of a batch refused as a whole,
// entries to send again, and entries in doubt.
type sent struct {
	halves       []plan.Batch
	retry, doubt []work.Item
}

// send makes one call for b, unless the deadline does not leave room for
// it, and moves each of its entries on (lifecycle.go).
func (r *run) send(ctx context.Context, b plan.Batch) sent {
	if !r.waitTurn(ctx) {
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
		b[i].Stage = work.Sent
		if b[i].FirstSent.IsZero() {
			b[i].FirstSent = start
		}
		in.Entries[i] = b[i].Entry.SDK()
	}
	callCtx, cancel := r.callContext(ctx)
	defer cancel()
	out, err := r.ssm.CreateAssociationBatch(callCtx, in, r.callOptions()...)
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

// waitTurn waits for the rate limiter and reports whether a call started
// now would still end before the deadline, and while this invocation
// surely still owns its claims. A call is allowed the slowest call so far
// and a quarter more: a call cut at the deadline is not lost, but its
// entries are in doubt, which costs reads and may leave them for the next
// invocation.
func (r *run) waitTurn(ctx context.Context) bool {
	need := r.latency.expected() * 5 / 4
	waitCtx, cancel := context.WithDeadline(ctx, r.job.Deadline.Add(-need))
	defer cancel()
	if err := r.limiter.Wait(waitCtx); err != nil {
		return false
	}
	return time.Until(r.job.Deadline) >= need && r.owner.covers(need)
}

// sleep waits d, unless the deadline would not leave room for a call after
// it; it reports whether there is still time to work.
func (r *run) sleep(ctx context.Context, d time.Duration) bool {
	if time.Now().Add(d + r.latency.expected()).After(r.job.Deadline) {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff is the wait before retry round n (1, 2, …): exponential, capped,
// with full jitter (a random wait in [0, d], as the SDK's retryer here and
// AWS's "Exponential Backoff and Jitter" advise). Throttles are paced by the
// limiter, not by this wait; a wait over only the upper half of d kept the
// last retries of a request idle for 0.6 s at n = 10,000 (BENCHMARKS.md).
func (r *run) backoff(n int) time.Duration {
	d := r.set.Backoff << min(n-1, 20)
	if d <= 0 || d > r.set.MaxBackoff {
		d = r.set.MaxBackoff
	}
	return rand.N(d + 1)
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
		next.doubt = append(next.doubt, r.doubt(ctx, b[i], work.Unknown))
	}
	return next
}

// add files an item moved on by entryFailed.
func (s *sent) add(it work.Item, ok bool) {
	switch {
	case !ok:
	case it.Stage == work.Retryable:
		s.retry = append(s.retry, it)
	default:
		s.doubt = append(s.doubt, it)
	}
}

// entryFailed moves an entry SSM reported in Failed. It returns the entry
// when it has a next stage (Retryable, Unknown or Exists).
func (r *run) entryFailed(ctx context.Context, it work.Item, fault, message string) (work.Item, bool) {
	switch {
	case alreadyExists(message):
		return r.doubt(ctx, it, work.Exists), true
	case fault == string(ssmtypes.FaultUnknown):
		// SSM itself does not know whether the entry was created.
		return r.doubt(ctx, it, work.Unknown), true
	case fault == report.FaultClient:
		r.failed(ctx, it, fault, message)
		return work.Item{}, false
	default:
		return r.retry(ctx, it, fault, message)
	}
}

// retry moves an entry SSM certainly did not create to Retryable, or to
// Failed once its attempts are spent.
func (r *run) retry(ctx context.Context, it work.Item, fault, message string) (work.Item, bool) {
	if it.Attempts >= r.set.MaxAttempts {
		r.failed(ctx, it, fault, message)
		return work.Item{}, false
	}
	it.Stage = work.Retryable
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
			next.doubt = append(next.doubt, r.doubt(ctx, it, work.Unknown))
		}
	case refused:
		// One bad entry makes SSM refuse the whole call; halve the batch
		// until that entry is alone, so that its neighbours still go through.
		if len(b) > 1 && !c.callWide {
			left, right := plan.Split(b)
			for i := range b {
				b[i].Attempts-- // the split resends; the entries did not fail
				b[i].Stage = work.Ready
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
