package associate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// claimItem takes every key of an item in the claim table and returns the
// item narrowed to the keys this invocation now owns and may send. Keys
// held elsewhere are reported Deduplicated; keys that could not be claimed
// are reported Unprocessed, and given back in case the write landed after
// all. Keys taken over from an invocation that died holding them may have
// been sent: they are put in doubt, to be read back from SSM first.
func (r *run) claimItem(ctx context.Context, it plan.Item) (plan.Item, bool) {
	var keep, over []int
	for k, key := range it.Keys {
		single := it
		if len(it.Nodes) > 0 {
			single = it.Single(k)
		}
		c, err := r.claims.Claim(ctx, key, r.job.Owner, r.job.LeaseUntil)
		switch {
		case err != nil:
			reason := reasonNotClaimed
			if ctx.Err() == nil {
				reason = reasonTableDown
				r.claimErr.Store(&err)
				r.log.WarnContext(ctx, "claim failed", "key", key, "error", err.Error())
			}
			r.record(func(res *report.Result) {
				res.Unprocessed = append(res.Unprocessed, report.Unprocessed{Entry: single.Entry, Reason: reason})
			})
			// Not released: the write may have landed, and may have taken
			// the key from a dead owner that sent it (a takeover's write
			// replaces its possibly_sent mark). Left in progress, the key
			// is taken over once this invocation's owner record ends, and
			// read back from SSM then.
		case c.Outcome == dedupe.Claimed:
			switch r.legacyRecord(ctx, single, key) {
			case legacyNone:
				keep = append(keep, k)
			case legacyInDoubt:
				over = append(over, k)
			}
			r.claimedAny.Store(true)
		case takenOverUpdate(c):
			// Another invocation was changing this association when it
			// stopped: read it and finish the job, or report it.
			r.claimedAny.Store(true)
			r.existingAssociation(single, c.AssociationID, true, false)
		case c.Outcome == dedupe.TakenOver:
			r.log.InfoContext(ctx, "claim taken over from an invocation that stopped; reading SSM before sending", "key", key, "previousOwner", c.Owner)
			over = append(over, k)
		case c.Outcome == dedupe.Associated:
			r.associatedBefore(ctx, single, c)
		default:
			r.record(func(res *report.Result) {
				res.Deduplicated = append(res.Deduplicated, report.Deduplicated{Entry: single.Entry, Reason: report.ReasonInProgress})
			})
		}
	}
	if len(keep)+len(over) > 0 {
		r.claimedAny.Store(true)
	}
	if len(over) > 0 {
		doubtful := r.doubt(ctx, narrow(it, over), plan.Unknown)
		r.mu.Lock()
		r.takenOver = append(r.takenOver, doubtful)
		r.mu.Unlock()
	}
	if len(keep) == 0 {
		return plan.Item{}, false
	}
	return narrow(it, keep), true
}

// associatedBefore settles a key the table records as associated: the same
// settings again are Deduplicated "already associated"; other settings are
// never dropped silently: reported with the names of the settings that
// differ, or, with "OnExisting": "update", updated.
func (r *run) associatedBefore(ctx context.Context, it plan.Item, c dedupe.Claim) {
	diff := dedupe.Settings(it.Settings).Differences(c.Settings)
	switch {
	case len(diff) == 0:
		r.record(func(res *report.Result) {
			res.Deduplicated = append(res.Deduplicated, report.Deduplicated{
				Entry: it.Entry, Reason: report.ReasonAlreadyAssociated, AssociationId: c.AssociationID,
			})
		})
	case r.job.Request.OnExisting == request.OnExistingUpdate:
		r.existingAssociation(it, c.AssociationID, false, false)
	default:
		r.record(func(res *report.Result) {
			res.Deduplicated = append(res.Deduplicated, report.Deduplicated{
				Entry: it.Entry, Reason: report.ReasonDifferentSettings, AssociationId: c.AssociationID, Differences: diff,
			})
		})
	}
}

// What the key an entry had before TargetLocations became a setting holds
// (dedupe.LegacyTargetsKey).
const (
	legacyNone    = iota // nothing: the entry is new, send it
	legacySettled        // a record, carried over and settled from it
	legacyInDoubt        // left in progress by an invocation that stopped: read SSM first
)

// legacyRecord settles an entry with TargetLocations whose key this
// invocation has just claimed from a free slot by the record its key of
// before holds, if any. Until DEDUPE_TTL after the change the table may
// hold such a record, and sending the entry would make a second
// association (SSM accepts identical Targets-form ones). An associated
// record is carried over to the key (same AssociationId and fingerprint),
// then settled as a key found associated: already associated, with
// different settings, or updated. Only the record of the entry's own
// TargetLocations can be found so: one written with other TargetLocations
// hashed to a key that cannot be computed from this entry.
func (r *run) legacyRecord(ctx context.Context, it plan.Item, key string) int {
	legacy := legacyKey(it)
	if legacy == "" {
		return legacyNone
	}
	found, err := r.claims.Peek(ctx, []string{legacy})
	if err == nil && len(found) != 1 {
		err = fmt.Errorf("read %d claims for one key", len(found))
	}
	if err == nil && found[0].Outcome == dedupe.Associated {
		old := found[0]
		err = r.claims.Complete(ctx, key, r.job.Owner, dedupe.Association{Key: key, AssociationID: old.AssociationID, Settings: old.Settings})
		if err == nil {
			r.associatedBefore(ctx, it, old)
			return legacySettled
		}
	}
	if err != nil {
		// Sending without knowing could make a second association:
		// give the key back (never sent) and let the caller retry.
		r.log.WarnContext(ctx, "the record of the key before TargetLocations became a setting could not be read", "key", legacy, "error", err.Error())
		r.record(func(res *report.Result) {
			res.Unprocessed = append(res.Unprocessed, report.Unprocessed{Entry: it.Entry, Reason: reasonTableDown})
		})
		r.letGo(ctx, it)
		return legacySettled
	}
	switch found[0].Outcome {
	case dedupe.Held:
		// An invocation still running the old key is sending it.
		r.record(func(res *report.Result) {
			res.Deduplicated = append(res.Deduplicated, report.Deduplicated{Entry: it.Entry, Reason: report.ReasonInProgress})
		})
		r.letGo(ctx, it)
		return legacySettled
	case dedupe.TakenOver:
		return legacyInDoubt
	}
	return legacyNone
}

func narrow(it plan.Item, keep []int) plan.Item {
	if len(keep) == len(it.Keys) {
		return it
	}
	return it.Narrow(keep)
}

// completeAll records the keys SSM associated, in one bookkeeping
// operation: the store writes them in as few requests as DynamoDB allows.
// The associations exist in SSM whatever happens here; a claim left behind
// is taken over once this invocation's owner record runs out, and read
// back from SSM then.
func (r *run) completeAll(ctx context.Context, done []dedupe.Association) {
	if len(done) == 0 {
		return
	}
	r.completed.Add(int64(len(done)))
	keys := done[0].Key
	if len(done) > 1 {
		keys = fmt.Sprintf("%s and %d more", keys, len(done)-1)
	}
	r.book.do(ctx, keys, r.job.AnswerBy, func(ctx context.Context) error {
		return r.claims.CompleteAll(ctx, r.job.Owner, done)
	})
}

// bookkeeper records completions and releases in the background, on a
// pool of its own, so that a slow dedupe table never holds up a call to
// SSM. It retries each write with backoff until its time is up: a claim
// left in progress reads "in progress elsewhere" to every retry of the
// request until its lease ends.
type bookkeeper struct {
	ops     chan bookOp
	done    chan struct{}
	log     func(ctx context.Context, key string, err error)
	workers int
}

type bookOp struct {
	ctx   context.Context
	key   string
	until time.Time
	op    func(context.Context) error
}

// bookkeepingTimeout bounds one completion or release call, SDK retries
// included.
const bookkeepingTimeout = 5 * time.Second

func newBookkeeper(workers, pending int, log func(context.Context, string, error)) *bookkeeper {
	b := &bookkeeper{ops: make(chan bookOp, pending), done: make(chan struct{}), log: log, workers: workers}
	finished := make(chan struct{}, workers)
	for range workers {
		go func() {
			defer func() { finished <- struct{}{} }()
			for op := range b.ops {
				op.run(b.log)
			}
		}()
	}
	go func() {
		for range workers {
			<-finished
		}
		close(b.done)
	}()
	return b
}

// do queues an operation; it never blocks for long, since the queue holds
// every key of the request.
func (b *bookkeeper) do(ctx context.Context, key string, until time.Time, op func(context.Context) error) {
	// Bookkeeping must outlive a cancelled work context.
	b.ops <- bookOp{ctx: context.WithoutCancel(ctx), key: key, until: until, op: op}
}

// wait waits for every queued operation.
func (b *bookkeeper) wait() {
	close(b.ops)
	<-b.done
}

func (o bookOp) run(log func(context.Context, string, error)) {
	wait := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(o.ctx, min(bookkeepingTimeout, max(time.Until(o.until), 100*time.Millisecond)))
		err := o.op(ctx)
		cancel()
		if err == nil || errors.Is(err, dedupe.ErrNotOwner) {
			return
		}
		if time.Now().Add(wait).After(o.until) {
			log(o.ctx, o.key, err)
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}
