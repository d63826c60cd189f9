package associate

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
)

// ownerMargin is kept between the end of the owner record and the end of
// any call started: clocks of two Lambdas differ a little, and the record
// must outlive every call this invocation makes.
const ownerMargin = time.Second

// ownerLease is this invocation's heartbeat: the owner record that tells
// other invocations its claims are alive (dedupe/owner.go). A call starts
// only when the record is sure to outlive it.
type ownerLease struct {
	mu    sync.Mutex
	until time.Time // the record's end, as last written
	dead  bool      // it ran out before a renewal: claims may be taken over
	stop  chan struct{}
	done  chan struct{}
}

// covers says whether a call of length d started now ends while the owner
// record is alive.
func (o *ownerLease) covers(d time.Duration) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.dead && time.Now().Add(d+ownerMargin).Before(o.until)
}

func (o *ownerLease) set(until time.Time, dead bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.until, o.dead = until, o.dead || dead
}

// end is when calls must be over: the record's end less the margin.
func (o *ownerLease) end() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dead {
		return time.Time{}
	}
	return o.until.Add(-ownerMargin)
}

// startOwner writes the owner record, then renews it every third of
// ClaimLease until stopOwner.
func (r *run) startOwner(ctx context.Context) error {
	lease := r.set.ClaimLease
	start := time.Now()
	if err := r.claims.StartOwner(ctx, r.job.Owner, start.Add(lease)); err != nil {
		return err
	}
	r.owner.set(start.Add(lease), false)
	r.owner.stop, r.owner.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.owner.done)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-r.owner.stop:
				return
			case <-t.C:
			}
			at, last := time.Now(), r.owner.end()
			// A renewal must land before the record may be seen dead: one
			// that lands later could follow a takeover, and must not bring
			// this invocation back.
			rctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), last)
			err := r.claims.RenewOwner(rctx, r.job.Owner, at.Add(lease))
			cancel()
			switch {
			case err == nil && time.Now().After(last):
				r.log.ErrorContext(ctx, "this invocation's owner renewal landed too late; it sends nothing more")
				r.owner.set(time.Time{}, true)
				return
			case err == nil:
				r.owner.set(at.Add(lease), false)
			case errors.Is(err, dedupe.ErrOwnerExpired):
				r.log.ErrorContext(ctx, "this invocation's owner record ran out; it sends nothing more", "error", err)
				r.owner.set(time.Time{}, true)
				return
			default:
				// The record stays as it was; calls stop when it nears its end.
				r.log.WarnContext(ctx, "owner heartbeat failed", "error", err)
			}
		}
	}()
	return nil
}

// stopOwner ends the heartbeat. The record is renewed one last time to
// ReconcileDelay from now: what the invocation leaves in progress (claims
// of entries in doubt, or whose bookkeeping failed) can then be taken over
// soon, and is read back from SSM by whoever takes it.
func (r *run) stopOwner(ctx context.Context) {
	close(r.owner.stop)
	<-r.owner.done
	end := time.Now().Add(r.set.ReconcileDelay)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	if err := r.claims.RenewOwner(rctx, r.job.Owner, end); err != nil && !errors.Is(err, dedupe.ErrOwnerExpired) {
		r.log.WarnContext(ctx, "owner record not shortened; claims left in progress wait for its end", "error", err)
	}
}
