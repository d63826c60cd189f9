package associate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// DryRun plans the request without running it: it validates, dedupes in
// the request and reads the claim table, and says for every node whether a
// run would create, update or skip it, and what that would cost. Nothing is
// written to SSM or to the table.
func (e *Engine) DryRun(ctx context.Context, req *request.Request) (report.Plan, error) {
	items, settled := Settle(req.Items)
	items = e.allowed(items, &settled)
	p := report.Plan{DryRun: true, Actions: []report.Action{}}
	p.Summary.Requested = settled.Summary.Requested
	for _, f := range settled.Failed {
		p.Actions = append(p.Actions, report.Action{Entry: f.Entry, Action: report.ActionFail, Reason: f.Message})
	}
	for _, d := range settled.Deduplicated {
		p.Actions = append(p.Actions, report.Action{Entry: d.Entry, Action: report.ActionSkip, Reason: d.Reason})
	}
	var keys, legacy []string
	for _, it := range items {
		keys = append(keys, it.Keys...)
	}
	// The keys entries with TargetLocations had before they became a
	// setting, read in the same Peek: a run looks there when the key is
	// free (claim.go, legacyRecord).
	legacyAt := map[int]int{} // index in keys → index in found
	at := 0
	for _, it := range items {
		if l := legacyKey(it); l != "" {
			legacyAt[at] = len(keys) + len(legacy) // its only key
			legacy = append(legacy, l)
		}
		at += len(it.Keys)
	}
	found, err := e.claims.Peek(ctx, append(keys, legacy...))
	if err != nil {
		return report.Plan{}, fmt.Errorf("dry run: %w", errors.Join(ErrUnavailable, err))
	}
	var creates []plan.Item
	next := 0
	for _, it := range items {
		var create []int
		for k := range it.Keys {
			c := found[next]
			if l, ok := legacyAt[next]; ok && c.Outcome == dedupe.Claimed {
				c = found[l]
			}
			next++
			single := it
			if len(it.Nodes) > 0 {
				single = it.Single(k)
			}
			a := planned(single, c, req.OnExisting)
			if a.Action == report.ActionCreate {
				create = append(create, k)
			}
			p.Actions = append(p.Actions, a)
		}
		if len(create) > 0 {
			creates = append(creates, narrow(it, create))
		}
	}
	for _, a := range p.Actions {
		switch a.Action {
		case report.ActionCreate:
			p.Summary.Create++
		case report.ActionUpdate:
			p.Summary.Update++
		case report.ActionSkip:
			p.Summary.Skip++
		case report.ActionFail:
			p.Summary.Fail++
		}
	}
	// A run updates each association once, however many nodes lead to it
	// (update.go keys its work by AssociationId): one DescribeAssociation
	// and one UpdateAssociation each.
	updated := map[string]struct{}{}
	for _, a := range p.Actions {
		if a.Action == report.ActionUpdate {
			updated[a.AssociationId] = struct{}{}
		}
	}
	p.Summary.Calls = len(plan.Batches(creates, e.set.BatchSize)) + 2*len(updated)
	p.Summary.EstimatedSeconds = e.estimate(p.Summary.Calls).Seconds()
	return p, nil
}

// legacyKey is the key a Targets-form entry with TargetLocations had before
// they became a setting (dedupe.LegacyTargetsKey), or "".
func legacyKey(it plan.Item) string {
	if len(it.Nodes) > 0 {
		return ""
	}
	return dedupe.LegacyTargetsKey(it.Entry)
}

// planned is what a run would do with one node (or one entry) whose claim
// finds c: the same decisions as claimItem and associatedBefore.
func planned(it plan.Item, c dedupe.Claim, onExisting string) report.Action {
	a := report.Action{Entry: it.Entry, AssociationId: c.AssociationID}
	switch c.Outcome {
	case dedupe.Claimed:
		a.Action = report.ActionCreate
	case dedupe.TakenOver:
		a.Action = report.ActionCreate
		a.Reason = "left in progress by an invocation that stopped: SSM is read back first, and it is created only if SSM does not have it"
	case dedupe.Held:
		a.Action, a.Reason = report.ActionSkip, report.ReasonInProgress
	default:
		a.Differences = dedupe.Settings(it.Settings).Differences(c.Settings)
		switch {
		case len(a.Differences) == 0:
			a.Action, a.Reason = report.ActionSkip, report.ReasonAlreadyAssociated
		case onExisting == request.OnExistingUpdate:
			a.Action = report.ActionUpdate
		default:
			a.Action, a.Reason = report.ActionSkip, report.ReasonDifferentSettings
		}
	}
	return a
}

// estimate is how long calls take at the configured rate (with AutoRate,
// at its start: the rate found may be higher), or, without one, at
// MaxConcurrency calls of CallEstimate each.
func (e *Engine) estimate(calls int) time.Duration {
	cps := e.set.CallsPerSecond
	if e.set.AutoRate != nil {
		cps = e.set.AutoRate.Start
	}
	if cps > 0 {
		return time.Duration(float64(calls) / cps * float64(time.Second))
	}
	return time.Duration(math.Ceil(float64(calls)/float64(e.set.MaxConcurrency))) * e.set.CallEstimate
}
