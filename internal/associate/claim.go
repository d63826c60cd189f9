package associate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/work"
)

// claim takes every key of items in the claim table and returns the items
// narrowed to what this invocation now owns. Keys held elsewhere are reported
// Deduplicated; keys that could not be claimed for an error are reported
// Unprocessed, and the last such error is returned.
func (r *run) claim(ctx context.Context, items []work.Item) ([]work.Item, error) {
	r.dynamo = make(chan struct{}, r.set.ClaimConcurrency)
	type verdict struct {
		claimed bool
		holder  dedupe.Holder
		err     error
	}
	verdicts := make([][]verdict, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		verdicts[i] = make([]verdict, len(it.Keys))
		for k, key := range it.Keys {
			wg.Add(1)
			r.dynamo <- struct{}{}
			go func() {
				defer func() { <-r.dynamo; wg.Done() }()
				ok, h, err := r.claims.Claim(ctx, key, r.job.Owner, r.job.LeaseUntil)
				verdicts[i][k] = verdict{ok, h, err}
			}()
		}
	}
	wg.Wait()

	var (
		owned   = make([]work.Item, 0, len(items))
		lastErr error
	)
	for i, it := range items {
		keep := make([]int, 0, len(it.Keys))
		for k, v := range verdicts[i] {
			single := it
			if len(it.Nodes) > 0 {
				single = it.Single(k)
			}
			switch {
			case v.err != nil:
				lastErr = v.err
				r.res.Unprocessed = append(r.res.Unprocessed, report.Unprocessed{
					Entry: single.Entry, Reason: fmt.Sprintf("dedupe table unavailable: %v", v.err),
				})
			case v.claimed:
				keep = append(keep, k)
			case v.holder.Associated:
				r.res.Deduplicated = append(r.res.Deduplicated, report.Deduplicated{
					Entry: single.Entry, Reason: report.ReasonAlreadyAssociated, AssociationId: v.holder.AssociationID,
				})
			default:
				r.res.Deduplicated = append(r.res.Deduplicated, report.Deduplicated{
					Entry: single.Entry, Reason: report.ReasonInProgress,
				})
			}
		}
		if len(keep) == len(it.Keys) {
			owned = append(owned, it)
		} else if len(keep) > 0 {
			owned = append(owned, it.Narrow(keep))
		}
	}
	if lastErr != nil {
		r.log.WarnContext(ctx, "some claims failed", "error", lastErr)
	}
	return owned, lastErr
}

// complete records the keys of an associated item, in the background: the
// association exists in SSM whatever happens here, and a claim left behind
// only delays a later invocation until its lease passes, when SSM's
// "already exists" settles it.
func (r *run) complete(ctx context.Context, it work.Item, associationID string) {
	r.completed.Add(int64(len(it.Keys)))
	r.background(ctx, it.Keys, func(ctx context.Context, key string) error {
		return r.claims.Complete(ctx, key, r.job.Owner, associationID)
	})
}

// release gives up the keys of an item this invocation will not associate.
func (r *run) release(ctx context.Context, it work.Item) {
	r.background(ctx, it.Keys, func(ctx context.Context, key string) error {
		return r.claims.Release(ctx, key, r.job.Owner)
	})
}

func (r *run) background(ctx context.Context, keys []string, op func(context.Context, string) error) {
	// Recording must outlive a cancelled work context: a release that does
	// not happen leaves the key locked until the lease passes.
	base := context.WithoutCancel(ctx)
	for _, key := range keys {
		r.records.Add(1)
		r.dynamo <- struct{}{}
		go func() {
			defer func() { <-r.dynamo; r.records.Done() }()
			ctx, cancel := context.WithTimeout(base, bookkeepingTimeout)
			defer cancel()
			if err := op(ctx, key); err != nil {
				r.log.WarnContext(ctx, "claim bookkeeping failed; the lease will expire", "key", key, "error", err)
			}
		}()
	}
}

// bookkeepingTimeout bounds one completion or release, retries included.
const bookkeepingTimeout = 5 * time.Second
