package reliability_test

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// TestReliabilityCrashRecovery SIGKILLs the real function under the RIE in
// the middle of a large request, then checks that
//   - a second invocation before the killed one's lease has passed reports
//     its nodes "in progress elsewhere" (or "already associated") and sends
//     nothing;
//   - after the lease, the same request ends with every node associated
//     exactly once: what the killed run recorded is "already associated",
//     what it created without recording comes back from SSM as "already
//     exists in SSM", the rest is Successful; and no claim stays
//     IN_PROGRESS.
func TestReliabilityCrashRecovery(t *testing.T) {
	needServices(t, testinfra.ToolRIE, testinfra.ToolGo)
	n := size(2000, 5000)
	const lease = 25 * time.Second // the first invocation's timeout, so its lease
	opts := ssmlocal.DefaultOptions()
	opts.MaxAssociations = 0
	opts.Latency = 40 * time.Millisecond
	var slow atomic.Bool
	w := newWorld(t, opts, worldOpt{ddbFront: slowWrites(&slow, 100*time.Millisecond)})
	settings := []string{"BATCH_SIZE=10", "MAX_CONCURRENCY=4", "CALLS_PER_SECOND=0", "MAX_ATTEMPTS=5", "MAX_ENTRIES=" + strconv.Itoa(n)}
	rq := plainRequest(span(0, n))

	// Run 1, killed once a fifth of the nodes are associated.
	slow.Store(true)
	rie1 := startFunction(t, w, lease, settings...)
	started := time.Now()
	finished := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		raw, err := rie1.Invoke(ctx, rq.body)
		if err == nil {
			err = fmt.Errorf("answered: %.200s", raw)
		}
		finished <- err
	}()
	for w.emu.Stats().AssociationsCreated < n/5 {
		select {
		case err := <-finished:
			t.Fatalf("run 1 ended before it could be killed (%d associations created): %v", w.emu.Stats().AssociationsCreated, err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(started) > 90*time.Second {
			t.Fatalf("run 1 created only %d associations in 90 s", w.emu.Stats().AssociationsCreated)
		}
	}
	if err := rie1.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	killedAt := w.emu.Stats().AssociationsCreated
	<-finished
	slow.Store(false)
	// Let the requests the dead function left in flight settle (a write
	// DynamoDB Local already took, a call SSM is answering) before taking
	// stock.
	settle(w)

	claims := w.claims(t)
	recorded := keysOf(claims["ASSOCIATED"])
	held := keysOf(claims["IN_PROGRESS"])
	// Claims are taken batch by batch as the calls go out, so the kill
	// leaves some nodes claimed (recorded, or held under a live lease) and
	// the rest untouched.
	if len(held) == 0 || len(recorded)+len(held) > n {
		t.Fatalf("after the kill the table holds %d ASSOCIATED + %d IN_PROGRESS claims of %d nodes; want some held", len(recorded), len(held), n)
	}
	earliest := time.Time{}
	for _, c := range claims["IN_PROGRESS"] {
		if earliest.IsZero() || c.Lease.Before(earliest) {
			earliest = c.Lease
		}
	}
	t.Logf("killed after %v with %d associations created: table %d ASSOCIATED, %d IN_PROGRESS, %d never claimed (earliest lease in %v)",
		time.Since(started).Round(time.Millisecond), killedAt, len(recorded), len(held), n-len(recorded)-len(held), time.Until(earliest).Round(time.Millisecond))

	// Run 2, before the lease has passed: no node the killed run holds may
	// be sent; the nodes it never claimed are done now.
	before2 := w.emu.Stats()
	rie2 := startFunction(t, w, time.Minute, settings...)
	a2 := invoke(t, rie2, rq.body, 2*time.Minute)
	if time.Now().After(earliest) {
		t.Fatalf("run 2 ended %v after the killed run's lease: this machine is too slow for the lease of %v", time.Since(earliest), lease)
	}
	if a2.ErrorType != "" {
		t.Fatalf("run 2: %s: %s", a2.ErrorType, a2.ErrorMessage)
	}
	for k, o := range checkRun(t, "run 2", rq, a2.Result) {
		want := oSuccessful
		switch {
		case recorded[claimKey(k)]:
			want = oDedup(report.ReasonAlreadyAssociated)
		case held[claimKey(k)]:
			want = oDedup(report.ReasonInProgress)
		}
		if o != want {
			t.Errorf("run 2: %s ended %s, want %s", k, o, want)
		}
	}
	if d := w.emu.Stats().DuplicatesRefused - before2.DuplicatesRefused; d != 0 {
		t.Errorf("run 2 sent %d entries SSM already had, while the killed run's claims were live", d)
	}
	_ = rie2.Close()

	// The killed run's calls have settled: what SSM created but the table
	// does not record.
	created := ledger(t, w.emu)
	recorded = keysOf(w.claims(t)["ASSOCIATED"])
	unrecorded := 0
	for k := range created {
		if !recorded[claimKey(k)] {
			unrecorded++
		}
	}
	t.Logf("run 2: %s; SSM holds %d associations, %d of them not recorded in the table", fmtTally(tally(outcomes1(a2.Result))), len(created), unrecorded)
	if unrecorded == 0 {
		t.Errorf("the kill left no association created but unrecorded; the test did not exercise recovery from SSM")
	}

	// Run 3, after the lease: everything finishes, once.
	time.Sleep(time.Until(earliest.Add(500 * time.Millisecond)))
	for _, c := range w.claims(t)["IN_PROGRESS"] {
		if time.Now().Before(c.Lease) {
			time.Sleep(time.Until(c.Lease.Add(500 * time.Millisecond)))
		}
	}
	before := w.emu.Stats()
	rie3 := startFunction(t, w, 2*time.Minute, settings...)
	a3 := invoke(t, rie3, rq.body, 3*time.Minute)
	if a3.ErrorType != "" {
		t.Fatalf("run 3: %s: %s", a3.ErrorType, a3.ErrorMessage)
	}
	got := tally(checkRun(t, "run 3", rq, a3.Result))
	want := map[string]int{
		oDedup(report.ReasonAlreadyAssociated): len(recorded),
		oDedup(report.ReasonAlreadyExists):     unrecorded,
		oSuccessful:                            n - len(created),
	}
	for o, c := range want {
		if got[o] != c {
			t.Errorf("run 3: %d nodes %s, want %d (all: %s)", got[o], o, c, fmtTally(got))
		}
	}
	after := w.emu.Stats()
	if d := after.DuplicatesRefused - before.DuplicatesRefused; d != unrecorded {
		t.Errorf("run 3: SSM refused %d entries as already existing, want the %d unrecorded", d, unrecorded)
	}
	if l := ledger(t, w.emu); len(l) != n {
		t.Errorf("ledger holds %d (document, node) pairs, want %d", len(l), n)
	}
	w.assertNoStuckClaims(t, "after run 3")
	t.Logf("run 3: %s; summary %+v", fmtTally(got), a3.Result.Summary)
}

func outcomes1(res report.Result) map[string]string {
	out := map[string]string{}
	for k, l := range outcomes(res) {
		out[k] = l[0]
	}
	return out
}

// settle waits until the emulator's and the proxy's counters stop moving
// for half a second.
func settle(w *world) {
	last := ""
	for i := 0; i < 100; i++ {
		now := fmt.Sprintf("%+v %+v", w.emu.Stats(), w.proxy.Stats())
		if now == last {
			return
		}
		last = now
		time.Sleep(500 * time.Millisecond)
	}
}
