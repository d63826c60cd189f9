package main

import (
	"context"
	"sync"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
)

// diagnosticStrategy is the engine run on memoryClaims.
const diagnosticStrategy = "engine-claims-in-memory"

// memoryClaims keeps claims in a map: the engine-claims-in-memory
// diagnostic, which shows what the engine does when the dedupe table costs
// nothing. It keeps the store's outcomes for one run (a key is claimed once,
// associated keys stay taken, released keys are free) and nothing else.
type memoryClaims struct {
	mu    sync.Mutex
	taken map[string]bool
}

func newMemoryClaims() *memoryClaims { return &memoryClaims{taken: map[string]bool{}} }

func (c *memoryClaims) Claim(_ context.Context, key, _ string, _ time.Time) (dedupe.Claim, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.taken[key] {
		return dedupe.Claim{Outcome: dedupe.Held}, nil
	}
	c.taken[key] = true
	return dedupe.Claim{Outcome: dedupe.Claimed}, nil
}

func (c *memoryClaims) Peek(_ context.Context, keys []string) ([]dedupe.Claim, error) {
	return make([]dedupe.Claim, len(keys)), nil
}

func (c *memoryClaims) Complete(context.Context, string, string, dedupe.Association) error {
	return nil
}

func (c *memoryClaims) ClaimUpdate(context.Context, string, string, time.Time, string) (bool, error) {
	return false, nil
}

func (c *memoryClaims) MarkPossiblySent(context.Context, string, string) error { return nil }

func (c *memoryClaims) StartOwner(context.Context, string, time.Time) error { return nil }

func (c *memoryClaims) RenewOwner(context.Context, string, time.Time) error { return nil }

func (c *memoryClaims) CompleteAll(context.Context, string, []dedupe.Association) error { return nil }

func (c *memoryClaims) Release(_ context.Context, key, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.taken, key)
	return nil
}
