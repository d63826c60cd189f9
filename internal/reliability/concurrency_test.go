package reliability_test

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// TestReliabilityConcurrentInvocations runs several invocations at once
// over overlapping node sets — engines in this process, and copies of the
// real function under their own RIEs — with entry faults and dropped
// connections, and checks that every node is associated exactly once, that
// no node is reported Successful by two invocations, that every other
// outcome is one of "in progress elsewhere", "already associated", "already
// exists in SSM" or something retryable, and that no claim is left behind.
func TestReliabilityConcurrentInvocations(t *testing.T) {
	type invocation func() report.Result
	// check checks each invocation's result against its request (an
	// invocation that answered an error has an empty one of each), then
	// finishes the work over every node requested.
	check := func(t *testing.T, w *world, reqs, requested []*genRequest, results []report.Result) {
		t.Helper()
		successful := map[string]int{}
		union := map[string]bool{}
		for _, rq := range requested {
			for k := range rq.occurrences {
				union[k] = true
			}
		}
		counts := map[string]int{}
		for i, res := range results {
			for k, o := range checkRun(t, fmt.Sprintf("invocation %d", i), reqs[i], res) {
				counts[o]++
				switch o {
				case oSuccessful:
					successful[k]++
				case oDedup(report.ReasonInProgress), oDedup(report.ReasonAlreadyAssociated), oDedup(report.ReasonAlreadyExists),
					oFailed(report.FaultServer), oFailed(report.FaultUnknown), oUnprocessed:
				default:
					t.Errorf("invocation %d: %s ended %s", i, k, o)
				}
			}
		}
		for k, c := range successful {
			if c > 1 {
				t.Errorf("%s reported Successful by %d invocations", k, c)
			}
		}
		w.assertNoStuckClaims(t, "after the concurrent invocations")
		l := ledger(t, w.emu)
		t.Logf("%d invocations over %d distinct nodes: %s; ledger %d; emulator %+v", len(results), len(union), fmtTally(counts), len(l), w.emu.Stats())

		// Whatever is left, one more invocation over the union finishes.
		var all []int
		for k := range union {
			var n int
			fmt.Sscanf(k[len(docAgent)+1:], "i-%x", &n)
			all = append(all, n)
		}
		rq := plainRequest(all)
		res := w.run(t, w.engine(engineSettings), rq.body, "sweep", 2*time.Minute)
		for k, o := range checkRun(t, "sweep", rq, res) {
			if o != oSuccessful && o != oDedup(report.ReasonAlreadyAssociated) && o != oDedup(report.ReasonAlreadyExists) {
				t.Errorf("sweep: %s ended %s", k, o)
			}
		}
		if l := ledger(t, w.emu); len(l) != len(union) {
			t.Errorf("ledger holds %d pairs, want %d", len(l), len(union))
		}
		w.assertNoStuckClaims(t, "after the sweep")
	}
	runAll := func(invs []invocation) []report.Result {
		out := make([]report.Result, len(invs))
		var wg sync.WaitGroup
		for i, inv := range invs {
			wg.Go(func() { out[i] = inv() })
		}
		wg.Wait()
		return out
	}

	t.Run("InProcess", func(t *testing.T) {
		opts := ssmlocal.DefaultOptions()
		opts.MaxAssociations = 0
		opts.Latency, opts.Jitter = 5*time.Millisecond, 10*time.Millisecond
		opts.EntryFaultRate = 0.05
		opts.Seed = 7
		w := newWorld(t, opts)
		stop := everyCalls(15, func(w *world, _ int) { w.emu.DropAfterCreate(1) })(w)
		defer stop()
		m := size(200, 3000)
		ranges := [][2]int{{0, 2 * m}, {m, 3 * m}, {2 * m, 4 * m}, {0, 4 * m}, {m / 2, 3*m + m/2}}
		var reqs []*genRequest
		var invs []invocation
		for i, r := range ranges {
			rq := plainRequest(span(r[0], r[1]))
			reqs = append(reqs, rq)
			eng := w.engine(engineSettings)
			invs = append(invs, func() report.Result { return w.run(t, eng, rq.body, fmt.Sprintf("inv-%d", i), 2*time.Minute) })
		}
		results := runAll(invs)
		stop()
		check(t, w, reqs, reqs, results)
	})

	t.Run("RIE", func(t *testing.T) {
		needServices(t, testinfra.ToolRIE, testinfra.ToolGo)
		opts := ssmlocal.DefaultOptions()
		opts.MaxAssociations = 0
		opts.Latency = 10 * time.Millisecond
		opts.EntryFaultRate = 0.05
		opts.Seed = 8
		w := newWorld(t, opts)
		m := size(200, 1500)
		ranges := [][2]int{{0, 2 * m}, {m, 3 * m}, {0, 3 * m}}
		var reqs []*genRequest
		var invs []invocation
		for _, r := range ranges {
			rq := plainRequest(span(r[0], r[1]))
			reqs = append(reqs, rq)
			rie := startFunction(t, w, 2*time.Minute, "CALLS_PER_SECOND=0", "MAX_ENTRIES="+strconv.Itoa(4*m))
			invs = append(invs, func() report.Result {
				a := invoke(t, rie, rq.body, 3*time.Minute)
				if a.ErrorType != "" {
					// IncompleteError carries counts only; the sweep
					// below finishes the work.
					t.Logf("invocation answered %s: %s", a.ErrorType, a.ErrorMessage)
					if a.ErrorType != "IncompleteError" {
						t.Errorf("unexpected error %s: %s", a.ErrorType, a.ErrorMessage)
					}
				}
				return a.Result
			})
		}
		results := runAll(invs)
		requested := slices.Clone(reqs)
		for i := range results {
			if results[i].Summary.Requested == 0 {
				// An IncompleteError: check what can be checked.
				results[i] = report.Result{}
				reqs[i] = &genRequest{occurrences: map[string]int{}}
			}
		}
		check(t, w, reqs, requested, results)
	})
}
