package main

import (
	"context"
	"fmt"
	"math"
	"time"
)

// reconcileParams shape the read-back runs: the engine on a fan-out request
// of N nodes (Targets form, which SSM creates a second time if it is sent
// again) with and without lost answers, to show what settling a lost
// answer costs. LostRate is the share of CreateAssociationBatch calls that
// execute and then lose their answer, half by a closed connection
// (ssmlocal LostAnswerRate), half by HTTP 500 (ErrorAfterCreateRate).
type reconcileParams struct {
	N        int     `json:"n"`
	LostRate float64 `json:"lostAnswerRate"`
	// Delay is the engine's ReconcileDelay in the runs; DefaultDelay, when
	// positive and different, is run once more with lost answers (the
	// shipped RECONCILE_DELAY).
	Delay          time.Duration `json:"-"`
	DelayMs        float64       `json:"reconcileDelayMs"`
	DefaultDelay   time.Duration `json:"-"`
	DefaultDelayMs float64       `json:"defaultReconcileDelayMs"`
	// Batches are the BATCH_SIZEs run (the emulator's E is set to each).
	Batches []int `json:"batchSizes"`
}

// ReconcileRun is one read-back run: the usual record and its shape.
type ReconcileRun struct {
	Record
	BatchSize int `json:"batchSize"`
	// LostAnswerRate is the configured share of calls whose answer is lost
	// (0: the run without).
	LostAnswerRate   float64 `json:"lostAnswerRate"`
	ReconcileDelayMs float64 `json:"reconcileDelayMs"`
	// ExactlyOnce: no double association, no entry refused as existing,
	// every node associated once and reported Successful or Deduplicated.
	ExactlyOnce bool `json:"exactlyOnce"`
}

// half splits a total lost-answer rate between the emulator's two ways,
// which it draws in order (closed connection first, then HTTP 500 among
// the rest), so that each takes half of the calls.
func half(total float64) (drop, errAfter float64) {
	drop = total / 2
	if drop >= 1 {
		return 1, 0
	}
	return drop, drop / (1 - drop)
}

// measureReconcile runs, for each batch size, the engine without lost
// answers, with them at rp.Delay, and with them at rp.DefaultDelay. It
// returns the runs and a line for every run that broke exactly once.
func (b *bench) measureReconcile(ctx context.Context, p params) ([]ReconcileRun, []string, error) {
	rp := p.Reconcile
	defer b.setEmulator(p)
	var (
		runs []ReconcileRun
		bad  []string
	)
	for _, batch := range rp.Batches {
		tp := p
		tp.MaxBatch = batch
		set := tp.tuned()
		set.ClaimLease = time.Minute // CLAIM_LEASE's default, as the other runs
		type variant struct {
			lost  float64
			delay time.Duration
		}
		variants := []variant{{0, rp.Delay}, {rp.LostRate, rp.Delay}}
		if rp.DefaultDelay > 0 && rp.DefaultDelay != rp.Delay {
			variants = append(variants, variant{rp.LostRate, rp.DefaultDelay})
		}
		for _, v := range variants {
			if err := ctx.Err(); err != nil {
				return runs, bad, err
			}
			ep := tp
			ep.lostAnswerRate, ep.errorAfterCreateRate = half(v.lost)
			b.setEmulator(ep)
			s := set
			s.ReconcileDelay = v.delay
			sm := settingsMap(s)
			sm["RECONCILE_DELAY"] = s.ReconcileDelay.String()
			sm["CLAIM_LEASE"] = s.ClaimLease.String()
			name := fmt.Sprintf("engine-b%d-none", batch)
			desc := "the engine tuned to the emulator, no answer lost"
			if v.lost > 0 {
				name = fmt.Sprintf("engine-b%d-lost-%v", batch, v.delay)
				desc = fmt.Sprintf("the engine tuned to the emulator, %g %% of answers lost (half closed connections, half HTTP 500 after SSM executed the call)", v.lost*100)
			}
			logf("reconcile: n=%d BATCH_SIZE=%d, answers lost %g %%, RECONCILE_DELAY %v …", rp.N, batch, v.lost*100, v.delay)
			rec, err := b.measure(ctx, name, desc, rp.N, sm, b.runEngine(s)(ctx, rp.N))
			if err != nil {
				return runs, bad, err
			}
			run := ReconcileRun{Record: rec, BatchSize: batch, LostAnswerRate: v.lost, ReconcileDelayMs: float64(v.delay) / float64(time.Millisecond)}
			run.ExactlyOnce = rec.DoubleAssociations == 0 && rec.ResentAfterSuccess == 0 && rec.ActiveAssociations == rec.N &&
				rec.Successful+rec.Deduplicated == rec.N
			if !run.ExactlyOnce {
				line := fmt.Sprintf("%s: %d double associations, %d entries refused as existing, %d associations for %d nodes, %d successful + %d deduplicated (%d failed, %d unprocessed)",
					name, rec.DoubleAssociations, rec.ResentAfterSuccess, rec.ActiveAssociations, rec.N, rec.Successful, rec.Deduplicated, rec.Failed, rec.Unprocessed)
				logf("reconcile: EXACTLY ONCE BROKEN: %s", line)
				bad = append(bad, line)
			}
			logf("reconcile: %.1f s = %.2f× ideal %.1f s; %d CreateAssociationBatch calls, %d answers lost (%d closed, %d HTTP 500), %d reads (engine: %d; %d listing(s)), %d double associations, %d refused as existing; %d successful, %d deduplicated, %d failed, %d unprocessed",
				rec.WallSeconds, rec.WallRatio, rec.IdealSeconds, rec.CreateCalls, rec.LostAnswers, rec.DroppedConnections, rec.ErrorsAfterCreate,
				rec.ReadCalls, rec.SSMReads, rec.Listings, rec.DoubleAssociations, rec.ResentAfterSuccess, rec.Successful, rec.Deduplicated, rec.Failed, rec.Unprocessed)
			runs = append(runs, run)
		}
	}
	return runs, bad, nil
}

// baseline is the run without lost answers of the same batch size.
func baseline(runs []ReconcileRun, batch int) *ReconcileRun {
	for i := range runs {
		if runs[i].BatchSize == batch && runs[i].LostAnswerRate == 0 {
			return &runs[i]
		}
	}
	return nil
}

// readBack is what the report says of the read-back runs.
type readBack struct {
	Rows []readBackRow
	// PageSize is ListAssociations' page (internal/reconcile asks for 50).
	PageSize int
	// LostPercent is the share of calls whose answer is lost, in %; they
	// are lost half by a closed connection (DropRate of the calls), half by
	// HTTP 500 (ErrorRate of the rest).
	LostPercent, DropRate, ErrorRate float64
	Delay, DefaultDelay              time.Duration
	// ReadsCounted: the engine's reads equal the emulator's read calls in
	// every run; ExactlyOnce: every run held exactly once.
	ReadsCounted, ExactlyOnce bool
	// Cost is the first batch size's run with lost answers at Delay (Short)
	// and at DefaultDelay (Long), beside the run without (Base); nil when
	// no read-back round ran.
	Cost *readBackCost
}

// readBackRow is a read-back run beside the run without lost answers of
// its batch size (Base, nil when there is none).
type readBackRow struct {
	ReconcileRun
	Base *ReconcileRun
}

// Lossy: answers were lost in this run.
func (r ReconcileRun) Lossy() bool { return r.LostAnswerRate > 0 }

// LostPercent is the share of calls whose answer was to be lost, in %.
func (r ReconcileRun) LostPercent() float64 { return r.LostAnswerRate * 100 }

// Delay is the run's RECONCILE_DELAY.
func (r ReconcileRun) Delay() time.Duration { return durMs(r.ReconcileDelayMs) }

// Describes are the DescribeAssociation calls among the reads.
func (r ReconcileRun) Describes() int { return r.ReadCalls - r.ListPages }

// ReadsPerLost is the engine's reads per lost answer.
func (r ReconcileRun) ReadsPerLost() float64 { return float64(r.SSMReads) / float64(r.LostAnswers) }

// ReadSpanned: the run read, over a measured span.
func (r ReconcileRun) ReadSpanned() bool { return r.ReadSpanSeconds > 0 }

// ReadRate is the reads per second from the first read to the last.
func (r ReconcileRun) ReadRate() float64 { return float64(r.ReadCalls) / r.ReadSpanSeconds }

// Extra is the wall time over the run without lost answers.
func (r readBackRow) Extra() float64 { return r.WallSeconds - r.Base.WallSeconds }

// ExtraPerLost is Extra per lost answer.
func (r readBackRow) ExtraPerLost() float64 { return r.Extra() / float64(r.LostAnswers) }

// readBackCost explains the runs with lost answers: what the reads are,
// what bounds their pace, and what RECONCILE_DELAY adds.
type readBackCost struct {
	Short, Long, Base *ReconcileRun
	// Pages is the listing of the request's own associations, in pages.
	Pages float64
	// ShippedRate is the shipped CALLS_PER_SECOND, which bounds the reads.
	ShippedRate float64
}

// DescribesPerLost are the DescribeAssociation calls per lost answer.
func (c readBackCost) DescribesPerLost() float64 {
	return float64(c.Short.Describes()) / float64(c.Short.LostAnswers)
}

// Extra is the wall time over the run without lost answers, PerLost that
// per lost answer.
func (c readBackCost) Extra() float64   { return c.Short.WallSeconds - c.Base.WallSeconds }
func (c readBackCost) PerLost() float64 { return c.Extra() / float64(c.Short.LostAnswers) }

// ShippedReads is the time the reads take at least at the shipped rate,
// ShippedPerLost that per lost answer, ShippedCalls the request's calls'.
func (c readBackCost) ShippedReads() float64 { return float64(c.Short.SSMReads) / c.ShippedRate }
func (c readBackCost) ShippedPerLost() float64 {
	return c.ShippedReads() / float64(c.Short.LostAnswers)
}
func (c readBackCost) ShippedCalls() float64 { return float64(c.Short.CreateCalls) / c.ShippedRate }

// ExtraWrites are the DynamoDB write requests over the run without lost
// answers, ExtraWritesPerLost those per lost answer.
func (c readBackCost) ExtraWrites() int {
	return c.Short.DynamoDBWriteRequests - c.Base.DynamoDBWriteRequests
}
func (c readBackCost) ExtraWritesPerLost() float64 {
	return float64(c.ExtraWrites()) / float64(c.Short.LostAnswers)
}

// LongExtra is the long-delay run's wall time over the run without lost
// answers, LongPerLost that per lost answer.
func (c readBackCost) LongExtra() float64 { return c.Long.WallSeconds - c.Base.WallSeconds }
func (c readBackCost) LongPerLost() float64 {
	return c.LongExtra() / float64(max(c.Long.LostAnswers, 1))
}

// MoreReads and MorePages are the long-delay run's reads and listing
// pages over the short one's; Predicted the seconds they and its waits
// account for at the short run's read rate; WallDiff the seconds it took
// over the short run.
func (c readBackCost) MoreReads() int { return c.Long.SSMReads - c.Short.SSMReads }
func (c readBackCost) MorePages() int { return c.Long.ListPages - c.Short.ListPages }
func (c readBackCost) Predicted() float64 {
	return float64(c.MoreReads())/c.Short.ReadRate() + float64(c.Long.Listings)*c.Long.ReadWaitSeconds - float64(c.Short.Listings)*c.Short.ReadWaitSeconds
}
func (c readBackCost) WallDiff() float64 { return c.Long.WallSeconds - c.Short.WallSeconds }

// newReadBack computes the read-back section's numbers (nil: no runs).
func newReadBack(res Results) *readBack {
	if len(res.Reconcile) == 0 {
		return nil
	}
	rp := res.Params.Reconcile
	rb := &readBack{
		PageSize:     50,
		LostPercent:  rp.LostRate * 100,
		DropRate:     rp.LostRate / 2,
		ErrorRate:    rp.LostRate / 2 / (1 - rp.LostRate/2),
		Delay:        durMs(rp.DelayMs),
		DefaultDelay: durMs(rp.DefaultDelayMs),
		ReadsCounted: true,
		ExactlyOnce:  true,
	}
	for _, r := range res.Reconcile {
		rb.Rows = append(rb.Rows, readBackRow{ReconcileRun: r, Base: baseline(res.Reconcile, r.BatchSize)})
		rb.ReadsCounted = rb.ReadsCounted && r.SSMReads == r.ReadCalls
		rb.ExactlyOnce = rb.ExactlyOnce && r.ExactlyOnce
	}
	var short, long *ReconcileRun
	for i := range res.Reconcile {
		r := &res.Reconcile[i]
		if r.LostAnswerRate == 0 || len(rp.Batches) == 0 || r.BatchSize != rp.Batches[0] {
			continue
		}
		if r.ReconcileDelayMs == rp.DelayMs && short == nil {
			short = r
		} else if r.ReconcileDelayMs != rp.DelayMs && long == nil {
			long = r
		}
	}
	if short != nil && short.LostAnswers > 0 && short.Listings > 0 {
		rb.Cost = &readBackCost{Short: short, Long: long, Base: baseline(res.Reconcile, short.BatchSize),
			Pages: math.Ceil(float64(rp.N) / 50), ShippedRate: shipped.CallsPerSecond}
	}
	return rb
}

// durMs is a duration given in milliseconds.
func durMs(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
