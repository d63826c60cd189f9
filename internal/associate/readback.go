package associate

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// clockSkew is how much earlier than our first send SSM's creation date of
// an association may read and still be ours.
const clockSkew = 2 * time.Second

// reconcile settles entries in doubt by reading SSM (internal/reconcile),
// paced by the call rate limiter; only entries in doubt cost a read, so
// the happy path makes none. It returns the entries SSM proved absent,
// Ready to send again, and those still in doubt because SSM could not be
// read (each is read at most MaxAttempts times, then left Unprocessed with
// its claim kept).
func (r *run) reconcile(ctx context.Context, doubt []plan.Item) (again, still []plan.Item) {
	// A read cut at the deadline leaves its entries in doubt.
	ctx, cancel := context.WithDeadline(ctx, r.job.Deadline)
	defer cancel()
	var unknown, exists []plan.Item
	for _, it := range doubt {
		it.Reads++
		if it.Stage == plan.Exists {
			exists = append(exists, it)
		} else {
			unknown = append(unknown, it)
		}
	}
	a, s := r.findSent(ctx, unknown)
	again, still = append(again, a...), append(still, s...)
	for _, it := range exists {
		a, s := r.findCovering(ctx, it)
		again, still = append(again, a...), append(still, s...)
	}
	kept := still[:0]
	for _, it := range still {
		if it.Reads >= r.set.MaxAttempts {
			r.unprocessed(ctx, it)
			continue
		}
		kept = append(kept, it)
	}
	return again, kept
}

// findSent looks for the associations entries in Unknown may have created.
// One found and created after this invocation first sent the entry is its
// own: Successful. One found otherwise (an earlier invocation's, or
// someone else's identical association) is Deduplicated "already exists in
// SSM". One of the same identity with other settings is settled as an
// existing association (update.go). None found: SSM did not create it, and
// it may be sent again.
func (r *run) findSent(ctx context.Context, items []plan.Item) (again, still []plan.Item) {
	if len(items) == 0 {
		return nil, nil
	}
	entries := make([]request.Entry, len(items))
	for i, it := range items {
		entries[i] = it.Entry
	}
	found, err := r.reader.Match(ctx, entries)
	if err != nil {
		r.log.WarnContext(ctx, "SSM could not be read to settle entries in doubt; they stay in doubt", "entries", len(items), "error", err.Error())
		return nil, items
	}
	var mine []createdEntry
	for i, it := range items {
		d := found[i].Exact
		switch {
		case d == nil && found[i].Same != nil:
			// Not ours (ours would be equal): an association of the same
			// document, targets and name with other settings. Sending the
			// entry would make a second one; settle it as an existing
			// association instead (reported, or updated).
			for k := range it.Keys {
				single := it
				if len(it.Nodes) > 0 {
					single = it.Single(k)
				}
				r.existingAssociation(single, aws.ToString(found[i].Same.AssociationId), true, true)
			}
		case d == nil && it.Attempts >= r.set.MaxAttempts:
			r.failed(ctx, it, report.FaultUnknown, fmt.Sprintf("sent %d times without an answer, and SSM holds no such association", it.Attempts))
		case d == nil:
			it.Stage = plan.Ready
			again = append(again, it)
		case createdSince(d, []plan.Item{it}):
			mine = append(mine, createdEntry{item: it, desc: *d})
		default:
			r.existing(ctx, it, aws.ToString(d.AssociationId))
		}
	}
	r.created(ctx, mine)
	return again, nil
}

// findCovering settles an entry SSM refused as already existing, node by
// node: a node SSM has an association of the document for is settled with
// that association (update.go: "already exists in SSM" with its ID, or
// "associated with different settings", or updated); the nodes without one
// are sent again.
func (r *run) findCovering(ctx context.Context, it plan.Item) (again, still []plan.Item) {
	nodes := it.Nodes
	if len(nodes) == 0 {
		// Not node-targeted: the whole entry is what exists.
		a, s := r.findSent(ctx, []plan.Item{it})
		return a, s
	}
	covering, err := r.reader.Covering(ctx, it.Entry.Name, nodes)
	if err != nil {
		r.log.WarnContext(ctx, "SSM could not be read for existing associations; the entry stays in doubt", "error", err.Error())
		return nil, []plan.Item{it}
	}
	var missing []int
	for k, n := range nodes {
		id, ok := covering[n]
		if !ok {
			missing = append(missing, k)
			continue
		}
		// Read it before saying what it is: the same settings, or other
		// ones (reported, or updated).
		r.existingAssociation(it.Single(k), id, true, true)
	}
	if len(missing) == 0 {
		return nil, nil
	}
	rest := narrow(it, missing)
	if rest.Attempts >= r.set.MaxAttempts {
		r.failed(ctx, rest, report.FaultClient, "SSM answered \"Association Already Exists\" but holds no association of this document for the node")
		return nil, nil
	}
	rest.Stage = plan.Ready
	return []plan.Item{rest}, nil
}

// createdSince says whether d was created after this invocation first sent
// every one of nodes.
func createdSince(d *ssmtypes.AssociationDescription, nodes []plan.Item) bool {
	if d.Date == nil {
		return false
	}
	for _, it := range nodes {
		if it.FirstSent.IsZero() || d.Date.Before(it.FirstSent.Add(-clockSkew)) {
			return false
		}
	}
	return true
}

// settling is how long entries in doubt still need before SSM is read for
// them (Settings.ReconcileDelay after the last one fell in doubt).
func (r *run) settling(doubt []plan.Item) time.Duration {
	if len(doubt) == 0 || r.set.ReconcileDelay <= 0 {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(0, time.Until(r.lastDoubt.Add(r.set.ReconcileDelay)))
}

// waitRead paces the reads like the calls.
func (r *run) waitRead(ctx context.Context) error {
	if err := r.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the call rate: %w", err)
	}
	return nil
}
