package main

import (
	"context"
	"fmt"
	"math"
	"strings"
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

// writeReconcile is the section on what settling lost answers costs.
func writeReconcile(b *strings.Builder, res Results) {
	if len(res.Reconcile) == 0 {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p, rp := res.Params, res.Params.Reconcile
	w("## Reconciling lost answers\n\n")
	w("`CreateAssociationBatch` has no client token, so a call whose answer is lost after SSM executed it (connection closed, HTTP 500, timeout) leaves its entries **in doubt**: the engine never sends them again blind, it reads SSM back first (`internal/reconcile`: `ListAssociations` of the document, %d a page, then `DescribeAssociation` of each candidate) and sends again only what SSM proves absent. ", 50)
	w("Measured here: the engine as in the other runs (real `ssm.Client` from `awsclient.SSM`, claims in DynamoDB Local, the emulator in process) on a fan-out request of **n = %s nodes** (Targets form: an entry sent again after SSM created it would be a second association, counted by the emulator as a double), R = %g calls/s (burst %d), L = %g ms + [0, %g ms), %g %% entry faults, `BATCH_SIZE` = the emulator's E, each batch size once **without** lost answers and once **with %g %%** of `CreateAssociationBatch` calls executed and then answered with a closed connection (`LostAnswerRate` %.3f) or HTTP 500 (`ErrorAfterCreateRate` %.4f; half the lost answers each way), at **`RECONCILE_DELAY` = %v** (small, so that the reads' own cost shows)",
		num(rp.N), p.Rate, p.Burst, p.LatencyMs, p.JitterMs, p.FaultRate*100, rp.LostRate*100, rp.LostRate/2, rp.LostRate/2/(1-rp.LostRate/2), durMs(rp.DelayMs))
	if rp.DefaultDelayMs > 0 {
		w(" and once more at the shipped **%v**", durMs(rp.DefaultDelayMs))
	}
	w(". Reads share the call rate limiter and the emulator's bucket with the calls.\n\n")
	w("| BATCH_SIZE | answers lost | RECONCILE_DELAY | wall s | × ideal | CreateAssociationBatch calls | lost answers (closed + 500) | read-back rounds | wait before the first read s | SSM reads (pages + describes) | reads / lost answer | reads per s | extra s | extra s / lost answer | double associations | resent after success | successful | failed / unprocessed | DynamoDB writes (owner record) |\n")
	w("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range res.Reconcile {
		base := baseline(res.Reconcile, r.BatchSize)
		perLost, extra, extraPer, rate := "–", "–", "–", "–"
		if r.LostAnswers > 0 {
			perLost = fmt.Sprintf("%.1f", float64(r.SSMReads)/float64(r.LostAnswers))
		}
		if base != nil && r.LostAnswerRate > 0 {
			extra = fmt.Sprintf("%.1f", r.WallSeconds-base.WallSeconds)
			if r.LostAnswers > 0 {
				extraPer = fmt.Sprintf("**%.2f**", (r.WallSeconds-base.WallSeconds)/float64(r.LostAnswers))
			}
		}
		if r.ReadSpanSeconds > 0 {
			rate = fmt.Sprintf("%.1f", float64(r.ReadCalls)/r.ReadSpanSeconds)
		}
		lost := "0"
		if r.LostAnswerRate > 0 {
			lost = fmt.Sprintf("%g %%", r.LostAnswerRate*100)
		}
		wait := "–"
		if r.Listings > 0 {
			wait = fmt.Sprintf("%.2f", r.ReadWaitSeconds)
		}
		w("| %d | %s | %v | %.1f | %.2f | %s | %d (%d + %d) | %d | %s | **%s** (%s + %s) | **%s** | %s | %s | %s | **%d** | **%d** | %s | %d / %d | %s (%d) |\n",
			r.BatchSize, lost, durMs(r.ReconcileDelayMs), r.WallSeconds, r.WallRatio, num(r.CreateCalls),
			r.LostAnswers, r.DroppedConnections, r.ErrorsAfterCreate, r.Listings, wait, num(r.SSMReads), num(r.ListPages), num(r.ReadCalls-r.ListPages),
			perLost, rate, extra, extraPer, r.DoubleAssociations, r.ResentAfterSuccess, num(r.Successful), r.Failed, r.Unprocessed,
			num(r.DynamoDBWriteRequests), r.OwnerWriteRequests)
	}
	w("\n\"Extra s\" is the wall time over the run without lost answers of the same batch size; \"reads per s\" the reads over the span from the first read to the last; \"wait before the first read\" runs from the arrival of the last `CreateAssociationBatch` call before it (that call's latency, then the round's end and the wait before the next round). SSM reads are the engine's count (`Summary.Reads`)")
	same := true
	for _, r := range res.Reconcile {
		same = same && r.SSMReads == r.ReadCalls
	}
	if same {
		w(", equal to the emulator's `ListAssociations` and `DescribeAssociation` calls in every run")
	}
	w(". Every run is checked against what the emulator holds: no double association, no entry refused as existing, one association per node, every node Successful or Deduplicated")
	ok := true
	for _, r := range res.Reconcile {
		ok = ok && r.ExactlyOnce
	}
	if ok {
		w(": **held in every run**.\n\n")
	} else {
		w(": **broken** in the runs marked by a non-zero double or resend count above (the program exits with an error).\n\n")
	}
	w("%s%s", reconcileBaseline, reconcileFirstRun)
	writeReconcileCost(b, res)
}

// reconcileFirstRun is the same section from the first make bench run of
// 2026-12-02 (commit 8b9516f, load average 4–10): a second sample of
// numbers that the load moves from run to run.
const reconcileFirstRun = "An earlier `make bench` run the same day (8b9516f, the same code; load average 4–10) gave, at `RECONCILE_DELAY` 200 ms: BATCH_SIZE 20, 15 lost answers, 353 reads (23.5 per lost answer), 22.0 s over 6.7 s without, **1.47 s per lost answer**; BATCH_SIZE 10, 33 lost answers, 375 reads (11.4 each), 26.8 s over 6.5 s, **0.81 s per lost answer**. At 5 s: 2.12 s (BATCH_SIZE 20: 19 lost answers, and a resend lost its answer again, so 2 read-back rounds, 2 waits of 5 s and 2 listings) and 0.99 s (BATCH_SIZE 10: 35 lost answers, 1 round) per lost answer. No double association and no resend after success in any run.\n\n"

// reconcileBaseline is what the A/B of 2026-12-02 showed about the runs
// without lost answers at n = 3,000 (see readBackAB in report.go).
const reconcileBaseline = "The runs without lost answers are the yardstick of the extra seconds. At `BATCH_SIZE` 20 such a run is slow against its ideal on this machine: its 3,000 claims through DynamoDB Local on the shared cores, not the call rate, set its pace (the engine from before the read-back change took 1.53× and 2.10× at n = 3,000 in the side-by-side runs of [Where the engine's time goes](#where-the-engines-time-goes), the engine after it 1.62× and 1.54×). The reads come after every claim of the round is taken, when no call is going out, so they add to the wall time whole.\n\n"

// writeReconcileCost explains the runs with lost answers: what the reads
// are, what bounds their pace, and what RECONCILE_DELAY adds.
func writeReconcileCost(b *strings.Builder, res Results) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p, rp := res.Params, res.Params.Reconcile
	var short, long *ReconcileRun
	for i := range res.Reconcile {
		r := &res.Reconcile[i]
		if r.LostAnswerRate == 0 || r.BatchSize != rp.Batches[0] {
			continue
		}
		if r.ReconcileDelayMs == rp.DelayMs && short == nil {
			short = r
		} else if r.ReconcileDelayMs != rp.DelayMs && long == nil {
			long = r
		}
	}
	if short == nil || short.LostAnswers == 0 || short.Listings == 0 {
		return
	}
	base := baseline(res.Reconcile, short.BatchSize)
	describes := short.ReadCalls - short.ListPages
	w("**What a lost answer costs.** Reads: one `DescribeAssociation` per entry in doubt that SSM did create (the summaries of the listing rule the others out), so about BATCH_SIZE per lost answer (%s for %d lost answers of %d entries here: %.1f each; the entries SSM failed in those calls were not created and need none), plus one listing of **every** association of the document per read-back round (%s pages of %d in %d round(s) here), shared by the round's lost answers. ",
		num(describes), short.LostAnswers, short.BatchSize, float64(describes)/float64(short.LostAnswers), num(short.ListPages), 50, short.Listings)
	w("The listing grows with the associations the document has in the account, not with the lost answers: at the end of a %s-node request it is the whole request (%.0f pages), and other associations of the same document in the account add theirs. ", num(rp.N), math.Ceil(float64(rp.N)/50))
	if short.ReadSpanSeconds > 0 {
		rate := float64(short.ReadCalls) / short.ReadSpanSeconds
		w("Time: the reads are made **one at a time** (`reconcile.Find` lists, then describes each candidate in turn) and no call goes out while they run (they happen between two rounds), so each read costs a round trip: %s reads took %.1f s, **%.1f reads/s** against R = %g (L = %g ms + [0, %g ms) per call). ", num(short.ReadCalls), short.ReadSpanSeconds, rate, p.Rate, p.LatencyMs, p.JitterMs)
		if base != nil {
			w("The run took %.1f s more than without lost answers, **%.2f s per lost answer** (%.1f reads each). ", short.WallSeconds-base.WallSeconds, (short.WallSeconds-base.WallSeconds)/float64(short.LostAnswers), float64(short.SSMReads)/float64(short.LostAnswers))
		}
		w("At the shipped `CALLS_PER_SECOND=5` the shared limiter, not the latency, is the bound: the same %s reads would take at least %.0f s (%.1f s per lost answer), against %.0f s for the request's %s calls. ",
			num(short.SSMReads), float64(short.SSMReads)/5, float64(short.SSMReads)/5/float64(short.LostAnswers), float64(short.CreateCalls)/5, num(short.CreateCalls))
	}
	if base != nil {
		w("Only what SSM proved absent was sent again (the entries the emulator had failed inside the lost calls): %s `CreateAssociationBatch` calls against %s without lost answers. ", num(short.CreateCalls), num(base.CreateCalls))
		extra := short.DynamoDBWriteRequests - base.DynamoDBWriteRequests
		w("DynamoDB: every entry of a lost answer has its claim marked `possibly_sent` (a conditional `UpdateItem`), so that it is never released and whoever takes it over reads SSM first: %s more write requests than without lost answers, %.1f per lost answer (`UpdateItem` %s against %s).",
			num(extra), float64(extra)/float64(short.LostAnswers), num(short.DynamoDBRequests["UpdateItem"]), num(base.DynamoDBRequests["UpdateItem"]))
	}
	w("\n\n")
	w("**`RECONCILE_DELAY` is paid once per read-back round, not per lost answer.** In `internal/associate`, `dispatch` (dispatch.go) sleeps `max(backoff(round), settling(doubt))` before each retry round, and `settling` (readback.go) is `RECONCILE_DELAY` minus the time since the **last** entry fell in doubt (`run.lastDoubt`, set by `doubt` in lifecycle.go for every entry of a lost answer); the round then reads SSM once for all the entries in doubt. Lost answers of one round therefore share one wait, and those early in the round have aged by the time it ends; a second wait comes only when a later round (resends, or a read that failed) puts entries in doubt again. ")
	if long != nil {
		w("Measured: the first read came %.2f s after the last call before it at `RECONCILE_DELAY` = %v, against %.2f s at %v (%d lost answers in %d read-back round(s) there, %d in %d here): one wait of at most `RECONCILE_DELAY` per round, less the time from the round's last lost answer to its end, not %d × %v. ",
			long.ReadWaitSeconds, durMs(long.ReconcileDelayMs), short.ReadWaitSeconds, durMs(short.ReconcileDelayMs), long.LostAnswers, long.Listings, short.LostAnswers, short.Listings,
			long.LostAnswers, durMs(long.ReconcileDelayMs))
		if base != nil {
			w("That run took %.1f s, %.1f s over the run without lost answers, %.2f s per lost answer (its lost answers and reads differ from the %v run's: the emulator draws them at random). ", long.WallSeconds, long.WallSeconds-base.WallSeconds, (long.WallSeconds-base.WallSeconds)/float64(max(long.LostAnswers, 1)), durMs(short.ReconcileDelayMs))
		}
		if short.ReadSpanSeconds > 0 {
			rate := float64(short.ReadCalls) / short.ReadSpanSeconds
			more := long.SSMReads - short.SSMReads
			predicted := float64(more)/rate + float64(long.Listings)*long.ReadWaitSeconds - float64(short.Listings)*short.ReadWaitSeconds
			w("Against the %v run: %+d reads (%+d listing pages), and %d wait(s) of %.2f s instead of %d of %.2f s; at %.1f reads/s that accounts for %+.1f s, and the run took %+.1f s.",
				durMs(short.ReconcileDelayMs), more, long.ListPages-short.ListPages, long.Listings, long.ReadWaitSeconds, short.Listings, short.ReadWaitSeconds, rate, predicted, long.WallSeconds-short.WallSeconds)
		}
	}
	w("\n\n")
}

// durMs is a duration given in milliseconds.
func durMs(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
