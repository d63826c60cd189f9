package associate

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// The life of an entry in one invocation. The stages in between are
// plan.Stage; the outcomes, at the right, are final and every entry (every
// node of a node-targeted entry) reaches exactly one. This file holds every
// move to an outcome, and what each does to the claim.
//
//	claim ──► Ready ──send──► Sent ──┬─ in Successful ───────────────────────────► Successful    claim ASSOCIATED
//	  │         ▲                    ├─ Failed Client, or attempts spent ──────────► Failed        released¹
//	  │         ├─── Retryable ◄─────┼─ Failed Server, throttled, never left
//	  │         │                    ├─ "already exists" ─► Exists ──read SSM──┬──► its association, node by node (update.go)
//	  │         │                    │                                         └─ nodes without one ─► Retryable
//	  │         │                    └─ no answer: lost, 5xx, timeout, cut, Fault Unknown, unanswered
//	  │         │                          ─► Unknown (possibly sent) ──read SSM──┬──► Successful, or Deduplicated if
//	  │         │                                                                 │    not ours; ASSOCIATED, SSM's ID
//	  │         │                                                                 ├──► same association, other settings:
//	  │         │                                                                 │    reported or updated (update.go)
//	  │         └──────────────────────────────────────────── absent ◄────────────┘
//	  └─ taken over from a dead owner ─► Unknown
//	time runs out: Ready, Retryable ─► Unprocessed, released¹; Unknown, Exists ─► Unprocessed, claim kept
//
//	¹ never for an entry possibly sent: its claim is kept, and whoever takes it over reads SSM first.

// Reasons for Unprocessed entries.
const (
	reasonDeadline = "not sent: the invocation's time budget ran out; its claims were released, send the request again to finish"
	reasonUnknown  = "outcome unknown: SSM's answer was lost and SSM could not be read back in time; the claims are kept, " +
		"and the invocation that takes them over reads SSM before sending again: send the request again to finish"
	reasonNotClaimed = "not claimed before the invocation's time budget ran out (the dedupe table was slow); send the request again to finish"
	// reasonTableDown keeps DynamoDB's error text (table names, keys,
	// endpoints) out of the answer; the log has it.
	reasonTableDown = "not claimed: the dedupe table could not be reached; nothing was sent for it, send the request again to finish"
)

// created files entries SSM created, and records their keys as associated
// together.
func (r *run) created(ctx context.Context, done []createdEntry) {
	var keys []dedupe.Association
	r.record(func(res *report.Result) {
		for _, c := range done {
			res.Successful = append(res.Successful, report.FromSDK(c.desc))
		}
	})
	for _, c := range done {
		for _, key := range c.item.Keys {
			keys = append(keys, dedupe.Association{Key: key, AssociationID: aws.ToString(c.desc.AssociationId), Settings: c.item.Settings})
		}
	}
	r.completeAll(ctx, keys)
}

type createdEntry struct {
	item plan.Item
	desc ssmtypes.AssociationDescription
}

// existing files an entry SSM already had, equal to it, with the ID of its
// association: every node Deduplicated "already exists in SSM".
func (r *run) existing(ctx context.Context, it plan.Item, id string) {
	keys := make([]dedupe.Association, len(it.Keys))
	r.record(func(res *report.Result) {
		for k, key := range it.Keys {
			single := it
			if len(it.Nodes) > 0 {
				single = it.Single(k)
			}
			res.Deduplicated = append(res.Deduplicated, report.Deduplicated{Entry: single.Entry, Reason: report.ReasonAlreadyExists, AssociationId: id})
			keys[k] = dedupe.Association{Key: key, AssociationID: id, Settings: it.Settings}
		}
	})
	r.completeAll(ctx, keys)
}

// failed files an entry that will not be associated.
func (r *run) failed(ctx context.Context, it plan.Item, fault, message string) {
	if fault == "" {
		fault = report.FaultUnknown
	}
	r.record(func(res *report.Result) {
		res.Failed = append(res.Failed, report.Failure{Entry: it.Entry, Fault: fault, Message: message, Attempts: it.Attempts})
	})
	r.letGo(ctx, it)
}

// unprocessed files an entry left when time ran out.
func (r *run) unprocessed(ctx context.Context, it plan.Item) {
	reason := reasonDeadline
	if it.PossiblySent {
		reason = reasonUnknown
	}
	r.record(func(res *report.Result) {
		res.Unprocessed = append(res.Unprocessed, report.Unprocessed{Entry: it.Entry, Reason: reason})
	})
	r.letGo(ctx, it)
}

// doubt moves an entry to Unknown or Exists: it may be in SSM. The first
// time, its claims are marked possibly sent, so that they are never
// released, here or by a later invocation.
func (r *run) doubt(ctx context.Context, it plan.Item, stage plan.Stage) plan.Item {
	it.Stage = stage
	r.mu.Lock()
	r.lastDoubt = time.Now()
	r.mu.Unlock()
	if it.PossiblySent {
		return it
	}
	it.PossiblySent = true
	r.possiblySent.Add(1)
	for _, key := range it.Keys {
		r.book.do(ctx, key, r.job.AnswerBy, func(ctx context.Context) error {
			return r.claims.MarkPossiblySent(ctx, key, r.job.Owner)
		})
	}
	return it
}

// letGo gives up the claims of an entry this invocation will not associate,
// unless the entry may be in SSM: then they are kept.
func (r *run) letGo(ctx context.Context, it plan.Item) {
	if it.PossiblySent {
		return
	}
	for _, key := range it.Keys {
		r.book.do(ctx, key, r.job.AnswerBy, func(ctx context.Context) error {
			return r.claims.Release(ctx, key, r.job.Owner)
		})
	}
}
