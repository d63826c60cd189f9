package associate

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
)

// fakeSSM answers CreateAssociationBatch from a script. By default every
// entry succeeds; respond may override per call.
type fakeSSM struct {
	mu        sync.Mutex
	respondMu sync.Mutex
	calls     int
	inFlight  int
	maxIn     int
	sent      map[string]int // node (or name) → times sent
	batches   [][]string
	latency   time.Duration
	respond   func(call int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error)
	// ledger is what SSM holds: every association a call answered
	// Successful, and what a script adds with keep (a lost answer).
	ledger  []ssmtypes.AssociationDescription
	reads   int
	updates int
	// updateFault, when set, may fail the n-th UpdateAssociation (from 1):
	// before it acts (before true: a throttle, or a version someone else
	// moved, which it may do to ledger), or after it acted (before false:
	// an answer lost). It runs under the fake's lock.
	updateFault func(n int, before bool, ledger []ssmtypes.AssociationDescription) error
	// updated counts the UpdateAssociation calls that acted, by association
	// and the settings they wrote.
	updated map[string]int
}

// keep adds associations to the ledger, as SSM does when it executes a
// call whose answer is then lost.
func (f *fakeSSM) keep(ds ...ssmtypes.AssociationDescription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ledger = append(f.ledger, ds...)
}

func (f *fakeSSM) ListAssociations(_ context.Context, in *ssm.ListAssociationsInput, _ ...func(*ssm.Options)) (*ssm.ListAssociationsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := &ssm.ListAssociationsOutput{}
	for _, d := range f.ledger {
		ok := true
		for _, flt := range in.AssociationFilterList {
			switch flt.Key {
			case ssmtypes.AssociationFilterKeyName:
				ok = ok && aws.ToString(d.Name) == aws.ToString(flt.Value)
			case ssmtypes.AssociationFilterKeyAssociationName:
				ok = ok && aws.ToString(d.AssociationName) == aws.ToString(flt.Value)
			}
		}
		if ok {
			out.Associations = append(out.Associations, ssmtypes.Association{
				AssociationId: d.AssociationId, Name: d.Name, InstanceId: d.InstanceId, Targets: d.Targets,
				AssociationName: d.AssociationName, DocumentVersion: d.DocumentVersion, ScheduleExpression: d.ScheduleExpression,
			})
		}
	}
	return out, nil
}

// UpdateAssociation replaces the settings of a ledger association, as SSM
// does: members left out are cleared, and the version goes up.
func (f *fakeSSM) UpdateAssociation(_ context.Context, in *ssm.UpdateAssociationInput, _ ...func(*ssm.Options)) (*ssm.UpdateAssociationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates++
	if f.updateFault != nil {
		if err := f.updateFault(f.updates, true, f.ledger); err != nil {
			return nil, err
		}
	}
	for i, d := range f.ledger {
		if aws.ToString(d.AssociationId) != aws.ToString(in.AssociationId) {
			continue
		}
		if v := aws.ToString(in.AssociationVersion); v != "" && v != "$LATEST" && v != aws.ToString(d.AssociationVersion) {
			return nil, &ssmtypes.InvalidAssociationVersion{Message: aws.String("stale version")}
		}
		version := 1
		fmt.Sscan(aws.ToString(d.AssociationVersion), &version)
		n := ssmtypes.AssociationDescription{
			AssociationId: d.AssociationId, AssociationVersion: aws.String(fmt.Sprint(version + 1)), Name: in.Name,
			InstanceId: d.InstanceId, Targets: in.Targets, AssociationName: in.AssociationName, Date: d.Date,
			Parameters: in.Parameters, ScheduleExpression: in.ScheduleExpression, MaxErrors: in.MaxErrors,
			MaxConcurrency: in.MaxConcurrency, DocumentVersion: in.DocumentVersion, TargetLocations: in.TargetLocations,
		}
		f.ledger[i] = n
		if f.updated == nil {
			f.updated = map[string]int{}
		}
		f.updated[fmt.Sprint(aws.ToString(in.AssociationId), " ", aws.ToString(in.ScheduleExpression), " ", in.Parameters, " ", aws.ToString(in.MaxErrors))]++
		if f.updateFault != nil {
			if err := f.updateFault(f.updates, false, f.ledger); err != nil {
				return nil, err
			}
		}
		return &ssm.UpdateAssociationOutput{AssociationDescription: &n}, nil
	}
	return nil, &ssmtypes.AssociationDoesNotExist{Message: aws.String("Association does not exist")}
}

func (f *fakeSSM) DescribeAssociation(_ context.Context, in *ssm.DescribeAssociationInput, _ ...func(*ssm.Options)) (*ssm.DescribeAssociationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	for _, d := range f.ledger {
		if aws.ToString(d.AssociationId) == aws.ToString(in.AssociationId) {
			return &ssm.DescribeAssociationOutput{AssociationDescription: &d}, nil
		}
	}
	return nil, &ssmtypes.AssociationDoesNotExist{Message: aws.String("Association does not exist")}
}

func entryNode(e ssmtypes.CreateAssociationBatchRequestEntry) string {
	if e.InstanceId != nil {
		return *e.InstanceId
	}
	if len(e.Targets) > 0 && len(e.Targets[0].Values) > 0 {
		return e.Targets[0].Values[0]
	}
	return *e.Name
}

func (f *fakeSSM) CreateAssociationBatch(ctx context.Context, in *ssm.CreateAssociationBatchInput, _ ...func(*ssm.Options)) (*ssm.CreateAssociationBatchOutput, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	if f.sent == nil {
		f.sent = map[string]int{}
	}
	var nodes []string
	for _, e := range in.Entries {
		f.sent[entryNode(e)]++
		nodes = append(nodes, entryNode(e))
	}
	f.batches = append(f.batches, nodes)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
	if f.latency > 0 {
		select {
		case <-time.After(f.latency):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	out, err := succeedAll(in.Entries), error(nil)
	if f.respond != nil {
		f.respondMu.Lock() // scripts keep state of their own
		out, err = f.respond(call, in.Entries)
		f.respondMu.Unlock()
	}
	if err == nil {
		f.keep(out.Successful...)
	}
	return out, err
}

func success(e ssmtypes.CreateAssociationBatchRequestEntry) ssmtypes.AssociationDescription {
	return ssmtypes.AssociationDescription{
		AssociationId:      aws.String(fmt.Sprintf("assoc-%s-%d", entryNode(e), assocSeq.Add(1))),
		Name:               e.Name,
		InstanceId:         e.InstanceId,
		Targets:            e.Targets,
		AssociationName:    e.AssociationName,
		Parameters:         e.Parameters,
		TargetLocations:    e.TargetLocations,
		ScheduleExpression: e.ScheduleExpression,
		AssociationVersion: aws.String("1"),
		Date:               aws.Time(time.Now()),
	}
}

var assocSeq atomic.Int64

func succeedAll(entries []ssmtypes.CreateAssociationBatchRequestEntry) *ssm.CreateAssociationBatchOutput {
	out := &ssm.CreateAssociationBatchOutput{}
	for _, e := range entries {
		out.Successful = append(out.Successful, success(e))
	}
	return out
}

// fakeClaims is an in-memory claim store with the DynamoDB store's rules.
type fakeClaims struct {
	mu      sync.Mutex
	items   map[string]fakeClaim
	failAll error
	ops     map[string]int
}

type fakeClaim struct {
	owner      string
	associated bool
	assocID    string
	lease      time.Time
	sent       bool // marked possibly sent
	settings   dedupe.Settings
}

func newFakeClaims() *fakeClaims {
	return &fakeClaims{items: map[string]fakeClaim{}, ops: map[string]int{}}
}

func (c *fakeClaims) Claim(_ context.Context, key, owner string, lease time.Time) (dedupe.Claim, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["claim"]++
	if c.failAll != nil {
		return dedupe.Claim{}, c.failAll
	}
	old, ok := c.items[key]
	switch {
	case ok && old.associated:
		return dedupe.Claim{Outcome: dedupe.Associated, AssociationID: old.assocID, Settings: old.settings}, nil
	case ok && old.lease.After(time.Now()):
		return dedupe.Claim{Outcome: dedupe.Held, Owner: old.owner, LeaseExpiry: old.lease}, nil
	}
	c.items[key] = fakeClaim{owner: owner, lease: lease}
	if ok {
		return dedupe.Claim{Outcome: dedupe.TakenOver, Owner: old.owner}, nil
	}
	return dedupe.Claim{Outcome: dedupe.Claimed}, nil
}

func (c *fakeClaims) CompleteAll(_ context.Context, owner string, done []dedupe.Association) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["completeAll"]++
	for _, a := range done {
		// Unconditional, as the store's BatchWriteItem is; but completing a
		// key this invocation never claimed is a bug the fake reports.
		if old, ok := c.items[a.Key]; !ok || old.owner != owner {
			return fmt.Errorf("complete %s: not claimed by %s", a.Key, owner)
		}
		c.items[a.Key] = fakeClaim{owner: owner, associated: true, assocID: a.AssociationID, settings: a.Settings}
	}
	return nil
}

func (c *fakeClaims) Release(_ context.Context, key, owner string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["release"]++
	old, ok := c.items[key]
	if !ok || old.owner != owner || old.associated || old.sent {
		return fmt.Errorf("release %s: %w", key, dedupe.ErrNotOwner)
	}
	delete(c.items, key)
	return nil
}

func (c *fakeClaims) Complete(_ context.Context, key, owner string, a dedupe.Association) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["complete"]++
	old, ok := c.items[key]
	if !ok || old.owner != owner || old.associated {
		return fmt.Errorf("complete %s: %w", key, dedupe.ErrNotOwner)
	}
	c.items[key] = fakeClaim{owner: owner, associated: true, assocID: a.AssociationID, settings: a.Settings}
	return nil
}

func (c *fakeClaims) ClaimUpdate(_ context.Context, key, owner string, lease time.Time, id string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["claimUpdate"]++
	old, ok := c.items[key]
	if !ok || !old.associated || old.assocID != id {
		return false, nil
	}
	c.items[key] = fakeClaim{owner: owner, lease: lease, assocID: id, settings: old.settings}
	return true, nil
}

func (c *fakeClaims) MarkPossiblySent(_ context.Context, key, owner string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["mark"]++
	old, ok := c.items[key]
	if !ok || old.owner != owner || old.associated {
		return fmt.Errorf("mark %s: %w", key, dedupe.ErrNotOwner)
	}
	old.sent = true
	c.items[key] = old
	return nil
}

func (c *fakeClaims) StartOwner(context.Context, string, time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["owner"]++
	return c.failAll
}

func (c *fakeClaims) RenewOwner(context.Context, string, time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["owner"]++
	return nil
}

func (c *fakeClaims) Peek(_ context.Context, keys []string) ([]dedupe.Claim, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["peek"]++
	out := make([]dedupe.Claim, len(keys))
	for i, key := range keys {
		old, ok := c.items[key]
		switch {
		case !ok:
			out[i] = dedupe.Claim{Outcome: dedupe.Claimed}
		case old.associated:
			out[i] = dedupe.Claim{Outcome: dedupe.Associated, AssociationID: old.assocID, Settings: old.settings}
		case old.lease.After(time.Now()):
			out[i] = dedupe.Claim{Outcome: dedupe.Held, Owner: old.owner}
		default:
			out[i] = dedupe.Claim{Outcome: dedupe.TakenOver, Owner: old.owner}
		}
	}
	return out, nil
}

// inProgress lists keys still claimed and not associated.
func (c *fakeClaims) inProgress() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k, v := range c.items {
		if !v.associated {
			out = append(out, k)
		}
	}
	return out
}
