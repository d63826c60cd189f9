package associate

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/time/rate"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/work"
)

// Reasons for Unprocessed entries.
const (
	reasonDeadline = "not sent: the invocation's time budget ran out; its claims were released, send the request again to finish"
	reasonCutOff   = "outcome unknown: the call was cut off at the deadline; its claims were released, and sending again is safe (SSM refuses a second association)"
)

// dispatch runs the items through SSM. The first round is a pipeline:
// claims are taken in the dedupe table while earlier batches are already
// being sent, so the time is the longer of the two rather than their sum,
// and what the deadline stops was never claimed. Entries that fail
// retryably make later rounds, after a backoff.
func (r *run) dispatch(ctx context.Context, items []work.Item) {
	pending := r.sendAll(ctx, r.claimAndPack(ctx, items))
	for round := 1; len(pending) > 0; round++ {
		r.record(func(res *report.Result) { res.Summary.Retries += len(pending) })
		if !r.sleep(ctx, r.backoff(round)) {
			for _, it := range pending {
				r.unprocessed(ctx, it, reasonDeadline)
			}
			return
		}
		batches := make(chan plan.Batch)
		go func() {
			defer close(batches)
			for _, b := range plan.Batches(pending, r.set.BatchSize) {
				batches <- b
			}
		}()
		pending = r.sendAll(ctx, batches)
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

// sendAll sends batches with at most MaxConcurrency calls in flight and
// returns the items to send again in the next round. A batch SSM refuses as
// a whole is halved, and the halves sent by the same caller. Entries that
// fail retryably are packed into retry batches as they come; a retry batch
// that fills up goes out in this round, after a backoff, so that retries
// overlap the round instead of all waiting for its end. What is left in
// partly filled retry batches makes the next round.
func (r *run) sendAll(ctx context.Context, batches <-chan plan.Batch) []work.Item {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		retries = plan.NewPacker(r.set.BatchSize)
	)
	for range r.set.MaxConcurrency {
		wg.Go(func() {
			for b := range batches {
				stack := []plan.Batch{b}
				for len(stack) > 0 {
					b := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					halves, retry := r.send(ctx, b)
					stack = append(stack, halves...)
					mu.Lock()
					var full []plan.Batch
					for _, it := range retry {
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
	var again []work.Item
	for _, b := range retries.Flush() {
		again = append(again, b...)
	}
	return again
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
		r.unprocessed(ctx, it, reasonDeadline)
	}
	return false
}

// send makes one call for b, unless the deadline does not leave room for
// it, and sorts its entries into outcomes. It returns the halves of a batch
// refused as a whole, and the entries to retry.
func (r *run) send(ctx context.Context, b plan.Batch) ([]plan.Batch, []work.Item) {
	if !r.waitTurn(ctx) {
		for _, it := range b {
			r.unprocessed(ctx, it, reasonDeadline)
		}
		return nil, nil
	}
	in := &ssm.CreateAssociationBatchInput{
		Entries:                       make([]ssmtypes.CreateAssociationBatchRequestEntry, len(b)),
		AssociationDispatchAssumeRole: r.job.Request.AssociationDispatchAssumeRole,
	}
	for i := range b {
		b[i].Attempts++
		in.Entries[i] = b[i].Entry.SDK()
	}
	callCtx, cancel := context.WithDeadline(ctx, r.job.Deadline)
	defer cancel()
	start := time.Now()
	out, err := r.ssm.CreateAssociationBatch(callCtx, in, r.paceRetries)
	took := time.Since(start)
	r.latency.observe(took)
	r.record(func(res *report.Result) { res.Summary.Calls++ })
	if err != nil {
		r.log.DebugContext(ctx, "CreateAssociationBatch failed", "entries", len(b), "took", took, "error", scrub(err.Error(), b))
		return r.callFailed(ctx, b, err)
	}
	r.answered()
	return nil, r.sortResults(ctx, b, out)
}

// waitTurn waits for the rate limiter and reports whether a call started
// now would still end before the deadline.
func (r *run) waitTurn(ctx context.Context) bool {
	need := r.latency.expected()
	waitCtx, cancel := context.WithDeadline(ctx, r.job.Deadline.Add(-need))
	defer cancel()
	if err := r.limiter.Wait(waitCtx); err != nil {
		return false
	}
	return time.Until(r.job.Deadline) >= need
}

// newLimiter paces calls. A burst of one spaces them evenly: SSM's own
// bucket is undocumented, and bursts are what get throttled.
func newLimiter(callsPerSecond float64) *rate.Limiter {
	if callsPerSecond <= 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	return rate.NewLimiter(rate.Limit(callsPerSecond), 1)
}

// throttled counts a throttled attempt and slows the pace: calling at
// exactly the rate SSM allows leaves no slack for jitter, and every
// throttle costs a call's slot. Additive increase on success brings the pace
// back to CALLS_PER_SECOND (AIMD, as TCP and the SDK's adaptive mode do).
func (r *run) throttled() {
	r.throttles.Add(1)
	if r.set.CallsPerSecond <= 0 {
		return
	}
	r.paceMu.Lock()
	defer r.paceMu.Unlock()
	lim := float64(r.limiter.Limit()) * 0.85
	r.limiter.SetLimit(rate.Limit(max(lim, r.set.CallsPerSecond/4)))
}

// answered speeds the pace back up after a call SSM answered.
func (r *run) answered() {
	if r.set.CallsPerSecond <= 0 {
		return
	}
	r.paceMu.Lock()
	defer r.paceMu.Unlock()
	if lim := float64(r.limiter.Limit()); lim < r.set.CallsPerSecond {
		r.limiter.SetLimit(rate.Limit(min(r.set.CallsPerSecond, lim+r.set.CallsPerSecond*0.02)))
	}
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
// with jitter over its upper half so that concurrent invocations spread out.
func (r *run) backoff(n int) time.Duration {
	d := r.set.Backoff << min(n-1, 20)
	if d <= 0 || d > r.set.MaxBackoff {
		d = r.set.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// sortResults files every entry of a call that SSM answered.
func (r *run) sortResults(ctx context.Context, b plan.Batch, out *ssm.CreateAssociationBatchOutput) []work.Item {
	m := newMatcher(b)
	var (
		again []work.Item
		done  []dedupe.Association
	)
	for _, d := range out.Successful {
		i, ok := m.successful(d)
		if !ok {
			r.log.WarnContext(ctx, "SSM returned an association that matches no entry sent", "associationId", deref(d.AssociationId))
			continue
		}
		r.record(func(res *report.Result) { res.Successful = append(res.Successful, report.FromSDK(d)) })
		for _, key := range b[i].Keys {
			done = append(done, dedupe.Association{Key: key, AssociationID: deref(d.AssociationId)})
		}
	}
	r.completeAll(ctx, done)
	for _, f := range out.Failed {
		i, ok := m.failed(f)
		if !ok {
			r.log.WarnContext(ctx, "SSM returned a failure that matches no entry sent", "fault", string(f.Fault))
			continue
		}
		if retry, ok := r.entryFailed(ctx, b[i], string(f.Fault), scrub(deref(f.Message), b[i:i+1])); ok {
			again = append(again, retry)
		}
	}
	for _, i := range m.unanswered() {
		if retry, ok := r.entryFailed(ctx, b[i], report.FaultUnknown, "SSM returned no result for this entry"); ok {
			again = append(again, retry)
		}
	}
	return again
}

// entryFailed files an entry SSM reported in Failed, returning it when it
// is to be sent again.
func (r *run) entryFailed(ctx context.Context, it work.Item, fault, message string) (work.Item, bool) {
	switch {
	case alreadyExists(message):
		r.record(func(res *report.Result) {
			res.Deduplicated = append(res.Deduplicated, report.Deduplicated{Entry: it.Entry, Reason: report.ReasonAlreadyExists})
		})
		r.completeExisting(ctx, it)
		return work.Item{}, false
	case fault == report.FaultClient || it.Attempts >= r.set.MaxAttempts:
		if fault == "" {
			fault = report.FaultUnknown
		}
		r.fail(ctx, it, fault, message)
		return work.Item{}, false
	default:
		return it, true
	}
}

// callFailed files the entries of a call that failed as a whole, after the
// SDK's own retries.
func (r *run) callFailed(ctx context.Context, b plan.Batch, err error) ([]plan.Batch, []work.Item) {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		for _, it := range b {
			r.unprocessed(ctx, it, reasonCutOff)
		}
		return nil, nil
	}
	c := classify(err)
	c.message = scrub(c.message, b)
	if !c.retryable {
		// One bad entry makes SSM refuse the whole call; halve the batch
		// until that entry is alone, so that its neighbours still go through.
		if len(b) > 1 && !c.callWide {
			left, right := plan.Split(b)
			for i := range b {
				b[i].Attempts-- // the split resends; the entries did not fail
			}
			return []plan.Batch{left, right}, nil
		}
		for _, it := range b {
			r.entryFailed(ctx, it, report.FaultClient, c.message)
		}
		return nil, nil
	}
	// Kept as text: the message was scrubbed of parameter values, the error
	// chain was not.
	r.record(func(*report.Result) { r.unreachable = errors.New("CreateAssociationBatch: " + c.message) })
	var again []work.Item
	for _, it := range b {
		if retry, ok := r.entryFailed(ctx, it, c.fault, c.message); ok {
			again = append(again, retry)
		}
	}
	return nil, again
}

func (r *run) fail(ctx context.Context, it work.Item, fault, message string) {
	r.record(func(res *report.Result) {
		res.Failed = append(res.Failed, report.Failure{Entry: it.Entry, Fault: fault, Message: message, Attempts: it.Attempts})
	})
	r.release(ctx, it)
}

func (r *run) unprocessed(ctx context.Context, it work.Item, reason string) {
	r.record(func(res *report.Result) {
		res.Unprocessed = append(res.Unprocessed, report.Unprocessed{Entry: it.Entry, Reason: reason})
	})
	r.release(ctx, it)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
