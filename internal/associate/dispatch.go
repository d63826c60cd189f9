package associate

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// dispatch runs the items through SSM. The first round is a pipeline:
// claims are taken in the dedupe table while earlier batches are already
// being sent, so the time is the longer of the two rather than their sum,
// and what the deadline stops was never claimed. Each later round first
// reads SSM for the entries in doubt (reconcile.go), then sends what is
// still to do: entries that failed retryably, and entries in doubt that
// SSM proved absent. Nothing in doubt is ever sent before that. A round
// waits for its retries' own backoff, counted from when each failed, so
// that the last round's retries leave little idle time behind the round;
// with entries in doubt, also for a backoff of its own and for SSM's reads
// to settle.
func (r *run) dispatch(ctx context.Context, items []plan.Item) {
	left := r.sendAll(ctx, r.claimAndPack(ctx, items))
	r.mu.Lock()
	left.doubt = append(left.doubt, r.takenOver...)
	r.mu.Unlock()
	for round := 1; len(left.retry)+len(left.doubt) > 0; round++ {
		r.record(func(res *report.Result) { res.Summary.Retries += len(left.retry) })
		wait := time.Until(retryAfter(left.retry))
		if len(left.doubt) > 0 {
			wait = max(wait, r.backoff(round), r.settling(left.doubt))
		}
		if !r.sleep(ctx, wait) {
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
	retry, doubt []plan.Item
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
func (r *run) claimAndPack(ctx context.Context, items []plan.Item) <-chan plan.Batch {
	var (
		todo    = make(chan plan.Item)
		owned   = make(chan plan.Item)
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

// retryNow counts a full retry batch and waits for its entries' backoff;
// when the deadline leaves no room for it, its entries are Unprocessed
// instead.
func (r *run) retryNow(ctx context.Context, b plan.Batch) bool {
	r.record(func(res *report.Result) { res.Summary.Retries += len(b) })
	if r.sleep(ctx, time.Until(retryAfter(b))) {
		return true
	}
	for _, it := range b {
		r.unprocessed(ctx, it)
	}
	return false
}

// retryAfter is when the last of items' backoffs ends (Item.RetryAfter).
func retryAfter(items []plan.Item) time.Time {
	var t time.Time
	for _, it := range items {
		if it.RetryAfter.After(t) {
			t = it.RetryAfter
		}
	}
	return t
}

// sleep waits d, unless the deadline would not leave room for a call after
// it; it reports whether there is still time to plan.
func (r *run) sleep(ctx context.Context, d time.Duration) bool {
	d = max(d, 0)
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

// backoff is the wait before the nth resend of an entry, or before round n
// with entries in doubt (1, 2, …): exponential, capped,
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
