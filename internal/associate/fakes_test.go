package associate

import (
	"context"
	"fmt"
	"sync"
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
	if f.respond != nil {
		f.respondMu.Lock() // scripts keep state of their own
		defer f.respondMu.Unlock()
		return f.respond(call, in.Entries)
	}
	return succeedAll(in.Entries), nil
}

func success(e ssmtypes.CreateAssociationBatchRequestEntry) ssmtypes.AssociationDescription {
	return ssmtypes.AssociationDescription{
		AssociationId: aws.String("assoc-" + entryNode(e)),
		Name:          e.Name,
		InstanceId:    e.InstanceId,
		Targets:       e.Targets,
	}
}

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
}

func newFakeClaims() *fakeClaims {
	return &fakeClaims{items: map[string]fakeClaim{}, ops: map[string]int{}}
}

func (c *fakeClaims) Claim(_ context.Context, key, owner string, lease time.Time) (bool, dedupe.Holder, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["claim"]++
	if c.failAll != nil {
		return false, dedupe.Holder{}, c.failAll
	}
	if old, ok := c.items[key]; ok && (old.associated || old.lease.After(time.Now())) {
		return false, dedupe.Holder{Associated: old.associated, AssociationID: old.assocID, LeaseExpiry: old.lease}, nil
	}
	c.items[key] = fakeClaim{owner: owner, lease: lease}
	return true, dedupe.Holder{}, nil
}

func (c *fakeClaims) Complete(_ context.Context, key, owner, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["complete"]++
	old, ok := c.items[key]
	if !ok || old.owner != owner || old.associated {
		return fmt.Errorf("complete %s: %w", key, dedupe.ErrNotOwner)
	}
	c.items[key] = fakeClaim{associated: true, assocID: id}
	return nil
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
		c.items[a.Key] = fakeClaim{owner: owner, associated: true, assocID: a.AssociationID}
	}
	return nil
}

func (c *fakeClaims) Release(_ context.Context, key, owner string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops["release"]++
	old, ok := c.items[key]
	if !ok || old.owner != owner || old.associated {
		return fmt.Errorf("release %s: %w", key, dedupe.ErrNotOwner)
	}
	delete(c.items, key)
	return nil
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
