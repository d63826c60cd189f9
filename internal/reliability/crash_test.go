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
// the middle of a large EventBridge request (the fan-out shape: Targets-form
// entries, which SSM creates a second time if they are sent again), then
// checks that
//   - the same event invoked again at once answers an error while work
//     remains (so Lambda's retry comes back), does the nodes the killed run
//     never claimed, and sends none that it held;
//   - after CLAIM_LEASE (well before the killed run's Lambda timeout), the
//     same event ends with every node associated exactly once: what the
//     killed run recorded is "already associated"; what it created without
//     recording is read back from SSM (claims taken over from a dead owner
//     are in doubt) and reported "already exists in SSM" with SSM's ID,
//     never sent again; the rest is Successful; and no claim stays
//     IN_PROGRESS.
func TestReliabilityCrashRecovery(t *testing.T) {
	needServices(t, testinfra.ToolRIE, testinfra.ToolGo)
	n := size(2000, 5000)
	const (
		timeout    = 2 * time.Minute  // the Lambda timeout: the claims' own lease
		claimLease = 15 * time.Second // how long a dead owner's claims stay its own
	)
	opts := ssmlocal.DefaultOptions()
	opts.MaxAssociations = 0
	opts.Latency = 40 * time.Millisecond
	var slow atomic.Bool
	w := newWorld(t, opts, worldOpt{ddbFront: slowWrites(&slow, 100*time.Millisecond)})
	settings := []string{"BATCH_SIZE=10", "MAX_CONCURRENCY=4", "CALLS_PER_SECOND=0", "MAX_ATTEMPTS=5", "MAX_ENTRIES=" + strconv.Itoa(n),
		"CLAIM_LEASE=" + claimLease.String(), "RECONCILE_DELAY=0s"}
	rq := fanoutEvent(span(0, n))

	// Run 1, killed once a fifth of the nodes are associated.
	slow.Store(true)
	rie1 := startFunction(t, w, timeout, settings...)
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
	// until waits, while run 1 runs, for what the kill needs.
	until := func(what string, ready func(ssmlocal.Stats) bool) {
		t.Helper()
		for !ready(w.emu.Stats()) {
			select {
			case err := <-finished:
				t.Fatalf("run 1 ended before %s (%d associations created): %v", what, w.emu.Stats().AssociationsCreated, err)
			case <-time.After(5 * time.Millisecond):
			}
			if time.Since(started) > 90*time.Second {
				t.Fatalf("run 1: no %s in 90 s (%d associations created)", what, w.emu.Stats().AssociationsCreated)
			}
		}
	}
	until("a fifth of the nodes associated", func(st ssmlocal.Stats) bool { return st.AssociationsCreated >= n/5 })
	// The next call executes and its answer is held until the kill: a call
	// SSM committed whose answer the function never read. Without it, the
	// kill could land when every answered call was recorded (seen in CI),
	// and nothing below would need SSM's word.
	w.emu.DelayAfterCreate(1, time.Minute)
	until("a call committed with its answer held", func(st ssmlocal.Stats) bool { return st.SlowAnswers >= 1 })
	if err := rie1.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	killed := time.Now()
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
	// leaves some nodes claimed (recorded, or held) and the rest untouched.
	if len(held) == 0 || len(recorded)+len(held) > n {
		t.Fatalf("after the kill the table holds %d ASSOCIATED + %d IN_PROGRESS claims of %d nodes; want some held", len(recorded), len(held), n)
	}
	t.Logf("killed after %v with %d associations created: table %d ASSOCIATED, %d IN_PROGRESS, %d never claimed",
		time.Since(started).Round(time.Millisecond), killedAt, len(recorded), len(held), n-len(recorded)-len(held))

	// Run 2, the same event at once, while the dead run's heartbeat has
	// not yet run out: an error, since work remains; nothing held is sent.
	before2 := w.emu.Stats()
	rie2 := startFunction(t, w, time.Minute, settings...)
	a2 := invoke(t, rie2, rq.body, 2*time.Minute)
	if time.Since(killed) > claimLease {
		t.Fatalf("run 2 ended %v after the kill: this machine is too slow for a claim lease of %v", time.Since(killed), claimLease)
	}
	if a2.ErrorType != "IncompleteError" {
		t.Fatalf("run 2 answered %q %s, want IncompleteError while the killed run's nodes are in progress", a2.ErrorType, a2.ErrorMessage)
	}
	after2 := w.emu.Stats()
	if d := after2.DoubleAssociations - before2.DoubleAssociations; d != 0 {
		t.Errorf("run 2 associated %d nodes a second time", d)
	}
	if d := after2.AssociationsCreated - before2.AssociationsCreated; d != n-len(recorded)-len(held) {
		t.Errorf("run 2 created %d associations, want the %d nodes the killed run never claimed", d, n-len(recorded)-len(held))
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
	t.Logf("run 2: %s; SSM holds %d associations, %d of them not recorded in the table", a2.ErrorMessage, len(created), unrecorded)
	if unrecorded == 0 {
		t.Errorf("the kill left no association created but unrecorded; the test did not exercise recovery from SSM")
	}

	// Run 3, the same event once the dead run's heartbeat ran out: less
	// than CLAIM_LEASE after the kill, far less than its Lambda timeout.
	time.Sleep(time.Until(killed.Add(claimLease + time.Second)))
	before := w.emu.Stats()
	rie3 := startFunction(t, w, 2*time.Minute, settings...)
	a3 := invoke(t, rie3, rq.body, 3*time.Minute)
	if a3.ErrorType != "" {
		t.Fatalf("run 3: %s: %s", a3.ErrorType, a3.ErrorMessage)
	}
	if time.Since(killed) > timeout {
		t.Errorf("run 3 finished %v after the kill; it should not have had to wait for the Lambda timeout", time.Since(killed))
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
	for _, d := range a3.Result.Deduplicated {
		if d.AssociationId == "" {
			t.Errorf("run 3: %s without its AssociationId", d.Reason)
			break
		}
	}
	after := w.emu.Stats()
	if d := after.DoubleAssociations - before.DoubleAssociations; d != 0 || after.DoubleAssociations != 0 {
		t.Errorf("run 3 associated %d nodes a second time (%d in all)", d, after.DoubleAssociations)
	}
	if a3.Result.Summary.Reads == 0 {
		t.Error("run 3 took claims over from a dead owner without reading SSM")
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
