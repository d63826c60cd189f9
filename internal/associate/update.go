package associate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/reconcile"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Changing an existing association ("OnExisting": "update"), one
// association at a time, after the creates:
//
//	recorded with other settings ──ClaimUpdate──► ours ──Describe──┬─ already as wanted ─► recorded (new settings)
//	taken over while another was changing it ─────► ours           └─ UpdateAssociation(version) ─┬─ done ─► Updated
//	                                                                     ▲                         ├─ version moved, throttled,
//	                                                                     └──── Describe again ◄────┤  never sent, no answer
//	                                                                                               └─ refused ─► Failed, record restored
//
// Every resend is preceded by a DescribeAssociation, so an update whose
// answer was lost is never sent twice for the same settings, and the
// AssociationVersion of the describe makes SSM refuse an update over a
// version someone else wrote meanwhile.

// pendingUpdate is one existing association and the nodes (keys) that lead
// to it.
type pendingUpdate struct {
	id       string
	entry    request.Entry // the wanted settings
	settings dedupe.Settings
	nodes    []plan.Item // one per key
	claimed  []bool      // per node: its key is ours already (taken over, or claimed to create)
	// conflicts are nodes whose entries want this association with other
	// settings than the first one's: which to apply is not ours to guess.
	conflicts []plan.Item
	change    bool // update it if it differs; otherwise report the difference
	// inSSM: found in SSM, not in the claim table: as wanted, it is
	// "already exists in SSM" rather than "already associated".
	inSSM bool
	// diff names the settings the last UpdateAssociation sent was to
	// change: what Updated reports when that update is found done by a
	// read after its answer was lost.
	diff []string
}

// existingAssociation queues an existing association to settle once the
// creates are done: id names it; claimed says the keys of it are this
// invocation's already; inSSM, that it was found in SSM rather than in the
// table.
func (r *run) existingAssociation(it plan.Item, id string, claimed, inSSM bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.updates == nil {
		r.updates = map[string]*pendingUpdate{}
	}
	u := r.updates[id]
	if u == nil {
		u = &pendingUpdate{id: id, entry: it.Entry, settings: it.Settings, inSSM: inSSM,
			change: r.job.Request.OnExisting == request.OnExistingUpdate}
		r.updates[id] = u
	}
	if len(u.settings.Differences(it.Settings)) > 0 {
		u.conflicts = append(u.conflicts, it)
		return
	}
	u.nodes = append(u.nodes, it)
	u.claimed = append(u.claimed, claimed)
}

// updateAll settles every queued association, MaxConcurrency at a time.
func (r *run) updateAll(ctx context.Context) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.set.MaxConcurrency)
	for _, u := range r.updates {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.settleExisting(ctx, u)
		})
	}
	wg.Wait()
}

// settleExisting takes the association's keys, reads it, and updates it
// until it has the entry's settings, or reports why not.
func (r *run) settleExisting(ctx context.Context, u *pendingUpdate) {
	for _, it := range u.conflicts {
		r.failed(ctx, it, report.FaultClient, fmt.Sprintf("another entry of this request wants association %s with other settings; send one setting per association", u.id))
	}
	u.nodes = r.claimForUpdate(ctx, u)
	if len(u.nodes) == 0 {
		return
	}
	var (
		sent     bool   // an update may have reached SSM
		attempts int    // updates sent
		lastErr  string // why the last attempt did not do it
	)
	for reads := 0; reads < 2*r.set.MaxAttempts; reads++ {
		if _, ok := r.waitTurn(ctx); !ok {
			r.leaveExisting(ctx, u, nil, sent)
			return
		}
		cctx, cancel := r.callContext(ctx)
		d, err := r.describe(cctx, u.id)
		cancel()
		var gone *ssmtypes.AssociationDoesNotExist
		switch {
		case errors.As(err, &gone):
			// The record outlived the association: give the keys back, and
			// a rerun creates it.
			r.failExisting(ctx, u, nil, report.FaultClient, fmt.Sprintf("association %s recorded for this node no longer exists in SSM; its record was removed, send the request again to create it", u.id))
			return
		case err != nil:
			lastErr = "DescribeAssociation: " + scrub(apiMessage(err), u.nodes)
			if !r.sleep(ctx, r.backoff(reads+1)) {
				r.leaveExisting(ctx, u, nil, sent)
				return
			}
			continue
		}
		if aws.ToString(d.AssociationName) != aws.ToString(u.entry.AssociationName) {
			// SSM named an association of another name (an InstanceId entry
			// refused because a named one covers the node): another
			// association, neither this entry's nor to be changed for it.
			r.failExisting(ctx, u, nil, report.FaultClient, fmt.Sprintf("SSM refused the entry: association %s (named %q) of this document covers the node, and SSM allows no second one by InstanceId; send it with Targets", u.id, aws.ToString(d.AssociationName)))
			return
		}
		diff := reconcile.Differences(u.entry, *d)
		switch {
		case len(diff) == 0:
			r.existingDone(ctx, u, d, sent)
			return
		case !u.change:
			r.differs(ctx, u, d, diff)
			return
		case attempts >= r.set.MaxAttempts:
			r.failExisting(ctx, u, d, report.FaultServer, fmt.Sprintf("not updated after %d attempts: %s", attempts, lastErr))
			return
		}
		rate, ok := r.waitTurn(ctx)
		if !ok {
			r.leaveExisting(ctx, u, d, sent)
			return
		}
		attempts++
		u.diff = diff
		cctx, cancel = r.callContext(ctx)
		out, err := r.ssm.UpdateAssociation(cctx, updateInput(u.entry, *d, r.job.Request.AssociationDispatchAssumeRole), r.callOptions(rate)...)
		cancel()
		r.record(func(res *report.Result) { res.Summary.Calls++ })
		if err == nil {
			r.updated(ctx, u, out.AssociationDescription, diff)
			return
		}
		c := classify(ctx, err)
		lastErr = "UpdateAssociation: " + scrub(c.message, u.nodes)
		var stale *ssmtypes.InvalidAssociationVersion
		switch {
		case errors.As(err, &stale):
			// Someone else changed it since the describe: read it again.
		case c.verdict == refused:
			r.failExisting(ctx, u, d, report.FaultClient, lastErr)
			return
		case c.verdict == unknown:
			if !sent {
				sent = true
				r.doubtExisting(ctx, u)
			}
			if !r.sleep(ctx, max(r.backoff(attempts), r.set.ReconcileDelay)) {
				r.leaveExisting(ctx, u, d, sent)
				return
			}
		default:
			if !r.sleep(ctx, r.backoff(attempts)) {
				r.leaveExisting(ctx, u, d, sent)
				return
			}
		}
	}
	r.failExisting(ctx, u, nil, report.FaultServer, "SSM could not be read: "+lastErr)
}

// claimForUpdate takes the keys of u for this invocation, and returns the
// nodes whose keys it got; the others are being changed elsewhere.
func (r *run) claimForUpdate(ctx context.Context, u *pendingUpdate) []plan.Item {
	var mine []plan.Item
	for i, it := range u.nodes {
		if u.claimed[i] {
			mine = append(mine, it)
			continue
		}
		ok, err := r.claims.ClaimUpdate(ctx, it.Keys[0], r.job.Owner, r.job.LeaseUntil, u.id)
		switch {
		case err != nil:
			r.log.WarnContext(ctx, "claim to update failed", "key", it.Keys[0], "error", err.Error())
			r.record(func(res *report.Result) {
				res.Unprocessed = append(res.Unprocessed, report.Unprocessed{Entry: it.Entry, Reason: reasonTableDown})
			})
		case !ok:
			r.record(func(res *report.Result) {
				res.Deduplicated = append(res.Deduplicated, report.Deduplicated{Entry: it.Entry, Reason: report.ReasonInProgress, AssociationId: u.id})
			})
		default:
			mine = append(mine, it)
		}
	}
	return mine
}

func (r *run) describe(ctx context.Context, id string) (*ssmtypes.AssociationDescription, error) {
	out, err := r.ssm.DescribeAssociation(ctx, &ssm.DescribeAssociationInput{AssociationId: aws.String(id)})
	r.record(func(res *report.Result) { res.Summary.Reads++ })
	if err != nil {
		return nil, err
	}
	if out.AssociationDescription == nil {
		return nil, &smithy.GenericAPIError{Code: "EmptyAnswer", Message: "DescribeAssociation answered no association"}
	}
	return out.AssociationDescription, nil
}

// updateInput is the whole association as wanted: UpdateAssociation clears
// every optional member it is not given, so what tells the association
// apart (document, targets, name, target maps) comes from SSM, every
// setting from the entry, and the dispatch role from the request, or SSM
// when the request names none. AssociationVersion makes SSM refuse the update if
// the association changed since it was read.
func updateInput(e request.Entry, d ssmtypes.AssociationDescription, role *string) *ssm.UpdateAssociationInput {
	s := e.SDK()
	if role == nil {
		role = d.AssociationDispatchAssumeRole // left out, it would be cleared
	}
	return &ssm.UpdateAssociationInput{
		AssociationDispatchAssumeRole: role,
		AssociationId:                 d.AssociationId,
		AssociationVersion:            d.AssociationVersion,
		Name:                          d.Name,
		Targets:                       d.Targets,
		TargetMaps:                    d.TargetMaps,
		AssociationName:               d.AssociationName,
		DocumentVersion:               s.DocumentVersion,
		Parameters:                    s.Parameters,
		ScheduleExpression:            s.ScheduleExpression,
		ScheduleOffset:                s.ScheduleOffset,
		Duration:                      s.Duration,
		ApplyOnlyAtCronInterval:       s.ApplyOnlyAtCronInterval,
		OutputLocation:                s.OutputLocation,
		MaxErrors:                     s.MaxErrors,
		MaxConcurrency:                s.MaxConcurrency,
		ComplianceSeverity:            s.ComplianceSeverity,
		SyncCompliance:                s.SyncCompliance,
		CalendarNames:                 s.CalendarNames,
		AlarmConfiguration:            s.AlarmConfiguration,
		TargetLocations:               s.TargetLocations,
		AutomationTargetParameterName: s.AutomationTargetParameterName,
	}
}

// updated files the nodes of an association this invocation updated.
func (r *run) updated(ctx context.Context, u *pendingUpdate, d *ssmtypes.AssociationDescription, diff []string) {
	version := ""
	if d != nil {
		version = aws.ToString(d.AssociationVersion)
	}
	r.record(func(res *report.Result) {
		for _, it := range u.nodes {
			res.Updated = append(res.Updated, report.Updated{Entry: it.Entry, AssociationId: u.id, AssociationVersion: version, Differences: diff})
		}
	})
	r.recordExisting(ctx, u, dedupe.SettingsOf(u.entry))
}

// existingDone files an association found with the entry's settings: our
// own update whose answer was lost, or one already as wanted.
func (r *run) existingDone(ctx context.Context, u *pendingUpdate, d *ssmtypes.AssociationDescription, sent bool) {
	if sent {
		r.updated(ctx, u, d, u.diff)
		return
	}
	if u.inSSM && createdSince(d, u.nodes) {
		// Found by the read back after SSM refused a resend as existing:
		// made after this invocation first sent it, by a call whose answer
		// was lost.
		var done []createdEntry
		for _, it := range u.nodes {
			done = append(done, createdEntry{item: it, desc: *d})
		}
		r.created(ctx, done)
		return
	}
	reason := report.ReasonAlreadyAssociated
	if u.inSSM {
		reason = report.ReasonAlreadyExists
	}
	r.record(func(res *report.Result) {
		for _, it := range u.nodes {
			res.Deduplicated = append(res.Deduplicated, report.Deduplicated{Entry: it.Entry, Reason: reason, AssociationId: u.id})
		}
	})
	r.recordExisting(ctx, u, dedupe.SettingsOf(u.entry))
}

// differs files an association left as it is, with what differs.
func (r *run) differs(ctx context.Context, u *pendingUpdate, d *ssmtypes.AssociationDescription, diff []string) {
	r.record(func(res *report.Result) {
		for _, it := range u.nodes {
			res.Deduplicated = append(res.Deduplicated, report.Deduplicated{Entry: it.Entry, Reason: report.ReasonDifferentSettings, AssociationId: u.id, Differences: diff})
		}
	})
	r.recordExisting(ctx, u, settingsOf(d))
}

// failExisting files an association that was not changed, and gives its
// keys back as they were (recorded with the settings SSM shows), or, with
// d nil, releases them.
func (r *run) failExisting(ctx context.Context, u *pendingUpdate, d *ssmtypes.AssociationDescription, fault, message string) {
	r.record(func(res *report.Result) {
		for _, it := range u.nodes {
			res.Failed = append(res.Failed, report.Failure{Entry: it.Entry, Fault: fault, Message: message})
		}
	})
	if d != nil {
		r.recordExisting(ctx, u, settingsOf(d))
		return
	}
	for _, it := range u.nodes {
		r.letGo(ctx, it)
	}
}

// leaveExisting files an association left when time ran out: its keys are
// kept if an update may be in flight, otherwise given back as they were.
func (r *run) leaveExisting(ctx context.Context, u *pendingUpdate, d *ssmtypes.AssociationDescription, sent bool) {
	r.record(func(res *report.Result) {
		for _, it := range u.nodes {
			reason := reasonDeadline
			if sent || it.PossiblySent {
				reason = reasonUnknown
			}
			res.Unprocessed = append(res.Unprocessed, report.Unprocessed{Entry: it.Entry, Reason: reason})
		}
	})
	if !sent && d != nil {
		r.recordExisting(ctx, u, settingsOf(d))
	}
}

// doubtExisting marks the keys of an association whose update may have
// reached SSM without an answer.
func (r *run) doubtExisting(ctx context.Context, u *pendingUpdate) {
	for i := range u.nodes {
		u.nodes[i] = r.doubt(ctx, u.nodes[i], plan.Unknown)
	}
}

// recordExisting closes the keys of an association, recorded with the
// settings it has now.
func (r *run) recordExisting(ctx context.Context, u *pendingUpdate, settings dedupe.Settings) {
	for _, it := range u.nodes {
		key := it.Keys[0]
		r.book.do(ctx, key, r.job.AnswerBy, func(ctx context.Context) error {
			return r.claims.Complete(ctx, key, r.job.Owner, dedupe.Association{Key: key, AssociationID: u.id, Settings: settings})
		})
	}
}

// settingsOf fingerprints an association as SSM describes it. The SDK's
// description and request.Entry share the SSM API's member names, so JSON
// carries one into the other; members an entry lacks are dropped.
func settingsOf(d *ssmtypes.AssociationDescription) dedupe.Settings {
	b, err := json.Marshal(d)
	if err != nil {
		return nil
	}
	var e request.Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil
	}
	return dedupe.SettingsOf(e)
}

// takenOverUpdate is true for a claim taken over from an invocation that
// was changing an existing association (its record named one).
func takenOverUpdate(c dedupe.Claim) bool {
	return c.Outcome == dedupe.TakenOver && c.AssociationID != ""
}
