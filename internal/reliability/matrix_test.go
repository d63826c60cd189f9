package reliability_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/faultproxy"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// cell is one fault of the matrix.
type cell struct {
	name   string
	inject string // what is injected, for the log and RELIABILITY.md
	opts   func(*ssmlocal.Options)
	// start injects faults that are not emulator options; it returns a
	// function that stops them (nil when there is nothing to stop).
	start func(w *world) (stop func())
	// budget is the first run's time budget (default 2 minutes).
	budget time.Duration
	// ambiguous: SSM may have acted on a call whose answer was lost, so
	// a resend may legitimately meet "Association Already Exists".
	ambiguous bool
	// exercised checks that the fault really happened.
	exercised func(t *testing.T, w *world, first report.Result)
}

func ddbRules(rules ...faultproxy.Rule) func(w *world) func() {
	return func(w *world) func() {
		w.proxy.SetRules(rules...)
		return func() { w.proxy.SetRules() }
	}
}

func injected(f faultproxy.Fault) func(t *testing.T, w *world, _ report.Result) {
	return func(t *testing.T, w *world, _ report.Result) {
		if n := w.proxy.Stats().Injected(f); n == 0 {
			t.Errorf("no %s was injected into DynamoDB requests", f)
		} else {
			t.Logf("DynamoDB faults injected: %d %s (%+v)", n, f, w.proxy.Stats())
		}
	}
}

// everyCalls runs inject once at the start and again after every n SSM
// calls, until stopped. (The emulator's scripted faults add up, so they are
// fed a little at a time.)
func everyCalls(n int, inject func(w *world, i int)) func(w *world) func() {
	return func(w *world) func() {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			last := -1
			for {
				if c := w.emu.Stats().Calls / n; c > last {
					last = c
					inject(w, c)
				}
				select {
				case <-done:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		})
		var once sync.Once
		return func() { once.Do(func() { close(done); wg.Wait() }) }
	}
}

func matrix() []cell {
	ddbRate := 0.1
	if soak() {
		ddbRate = 0.2
	}
	return []cell{{
		name: "SSMThrottlingStorm", inject: "half of all SSM calls answered 400 ThrottlingException",
		opts: func(o *ssmlocal.Options) { o.ThrottleRate = 0.5 },
		exercised: func(t *testing.T, w *world, first report.Result) {
			if st := w.emu.Stats(); st.ThrottledCalls == 0 || first.Summary.Throttles == 0 {
				t.Errorf("no throttling seen: emulator %d, summary %d", st.ThrottledCalls, first.Summary.Throttles)
			}
		},
	}, {
		name: "SSM5xxBursts", inject: "10% of calls 500 InternalServerError, plus a burst of 6 consecutive 500/503 after every 20 calls",
		opts: func(o *ssmlocal.Options) { o.ErrorRate = 0.1 },
		start: everyCalls(20, func(w *world, i int) {
			code := "InternalServerError"
			if i%2 == 1 {
				code = "ServiceUnavailable"
			}
			w.emu.FailCalls(6, code, 0)
		}),
		exercised: func(t *testing.T, w *world, _ report.Result) {
			if st := w.emu.Stats(); st.ServerErrors == 0 {
				t.Errorf("no 5xx answered: %+v", st)
			}
		},
	}, {
		name: "SSMEntryFaults", inject: "10% of entries Failed with Fault Server",
		opts: func(o *ssmlocal.Options) { o.EntryFaultRate = 0.1 },
		exercised: func(t *testing.T, w *world, first report.Result) {
			st := w.emu.Stats()
			if st.EntriesFailedByInjection == 0 || first.Summary.Retries == 0 {
				t.Errorf("entry faults not exercised: emulator %+v, summary %+v", st, first.Summary)
			}
		},
	}, {
		name: "SSMDropAfterCreate", inject: "connections of 1 in 4 batch calls closed after SSM created the associations",
		start:     everyCalls(4, func(w *world, _ int) { w.emu.DropAfterCreate(1) }),
		exercised: lostAnswers(func(st ssmlocal.Stats) int { return st.DroppedConnections }),
	}, {
		name: "SSMErrorAfterCreate", inject: "1 in 4 batch calls answered HTTP 500 after SSM created the associations",
		start:     everyCalls(4, func(w *world, _ int) { w.emu.ErrorAfterCreate(1) }),
		exercised: lostAnswers(func(st ssmlocal.Stats) int { return st.ErrorsAfterCreate }),
	}, {
		name: "SSMSlowNearDeadline", inject: "every call 300 ms + up to 300 ms jitter, 2.5 s budget",
		opts:      func(o *ssmlocal.Options) { o.Latency, o.Jitter = 300*time.Millisecond, 300*time.Millisecond },
		budget:    2500 * time.Millisecond,
		ambiguous: true,
		exercised: func(t *testing.T, w *world, first report.Result) {
			if len(first.Unprocessed) == 0 {
				t.Errorf("the budget did not run out: %+v", first.Summary)
			}
		},
	}, {
		name: "DynamoDBThrottling", inject: fmt.Sprintf("%.0f%% of DynamoDB requests 400 ProvisionedThroughputExceeded", ddbRate*100),
		start:     ddbRules(faultproxy.Rule{Rate: ddbRate, Fault: faultproxy.Throttle}),
		exercised: injected(faultproxy.Throttle),
	}, {
		name: "DynamoDB5xx", inject: fmt.Sprintf("%.0f%% of DynamoDB requests 500 InternalServerError, %.0f%% 503", ddbRate*100, ddbRate*50),
		start:     ddbRules(faultproxy.Rule{Rate: ddbRate, Fault: faultproxy.ServerError}, faultproxy.Rule{Rate: ddbRate / 2, Fault: faultproxy.Unavailable}),
		exercised: injected(faultproxy.ServerError),
	}, {
		name: "DynamoDBDropBeforeForward", inject: fmt.Sprintf("%.0f%% of DynamoDB connections closed before the request reached DynamoDB", ddbRate*100),
		start:     ddbRules(faultproxy.Rule{Rate: ddbRate, Fault: faultproxy.DropBeforeForward}),
		exercised: injected(faultproxy.DropBeforeForward),
	}, {
		name: "DynamoDBDropAfterForward", inject: fmt.Sprintf("%.0f%% of DynamoDB connections closed after DynamoDB applied the write", ddbRate*100),
		start:     ddbRules(faultproxy.Rule{Rate: ddbRate, Fault: faultproxy.DropAfterForward}),
		exercised: injected(faultproxy.DropAfterForward),
	}, {
		name: "Everything", inject: "5% entry faults, 20% throttles, 5% SSM 500s, drops after create, 5% DynamoDB throttles and drops",
		opts: func(o *ssmlocal.Options) { o.EntryFaultRate, o.ThrottleRate, o.ErrorRate = 0.05, 0.2, 0.05 },
		start: func(w *world) func() {
			w.emu.DropAfterCreate(3)
			w.proxy.SetRules(faultproxy.Rule{Rate: 0.05, Fault: faultproxy.Throttle}, faultproxy.Rule{Rate: 0.05, Fault: faultproxy.DropAfterForward})
			return func() { w.proxy.SetRules() }
		},
		ambiguous: true,
		exercised: func(t *testing.T, w *world, first report.Result) {
			if st := w.emu.Stats(); st.DroppedConnections == 0 || st.EntriesFailedByInjection == 0 || st.ThrottledCalls == 0 {
				t.Errorf("faults not all exercised: %+v", st)
			}
		},
	}}
}

// TestReliabilityFaultMatrix runs the same mixed request through the engine
// (the function's own clients, the SSM emulator, DynamoDB Local behind the
// fault proxy) under each fault, then runs it again until nothing is left,
// and checks every promise after every run: each node in exactly one list,
// no association created twice, no claim left IN_PROGRESS, the result says
// what to retry, and a rerun finishes the work.
func TestReliabilityFaultMatrix(t *testing.T) {
	n := size(200, 2000)
	for i, c := range matrix() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			opts := ssmlocal.DefaultOptions()
			opts.MaxAssociations = 0
			opts.Seed = int64(100 + i)
			if c.opts != nil {
				c.opts(&opts)
			}
			w := newWorld(t, opts)
			rq := mixedRequest(0, n)
			eng := w.engine(engineSettings)

			var stop func()
			if c.start != nil {
				stop = c.start(w)
			}
			budget := c.budget
			if budget == 0 {
				budget = 2 * time.Minute
			}
			began := time.Now()
			first := w.run(t, eng, rq.body, "run-1", budget)
			took := time.Since(began)
			if stop != nil {
				stop()
			}
			final := checkRun(t, "run 1", rq, first)
			w.assertNoStuckClaims(t, "after run 1")
			ledger(t, w.emu)
			c.exercised(t, w, first)
			st1 := w.emu.Stats()
			t.Logf("run 1 (%s): %v; %s; %s; summary %+v; emulator calls %d throttled %d 5xx %d dropped %d injected entry faults %d already-exists %d",
				c.inject, took.Round(time.Millisecond), fmtTally(tally(final)), reasons(first), first.Summary,
				st1.Calls, st1.ThrottledCalls, st1.ServerErrors, st1.DroppedConnections, st1.EntriesFailedByInjection, st1.DuplicatesRefused)
			if !c.ambiguous && st1.DuplicatesRefused != 0 {
				t.Errorf("%d entries were sent again after SSM had created them", st1.DuplicatesRefused)
			}
			if st1.DoubleAssociations != 0 {
				t.Errorf("%d associations created a second time: %+v", st1.DoubleAssociations, w.emu.Doubles())
			}

			// Send the same request again until nothing is left to retry
			// (the emulator's own fault rates stay on).
			done := map[string]string{}
			record := func(run map[string]string) {
				for k, o := range run {
					switch o {
					case oSuccessful, oDedup(report.ReasonAlreadyExists), oDedup(report.ReasonAlreadyAssociated):
						if prev, ok := done[k]; ok && o == oSuccessful {
							t.Errorf("%s reported Successful after %s", k, prev)
						}
						if _, ok := done[k]; !ok {
							done[k] = o
						}
					}
				}
			}
			record(final)
			res := first
			for run := 2; res.Retryable(); run++ {
				if run > 4 {
					t.Fatalf("still retryable after %d runs: %+v", run-1, res.Summary)
				}
				res = w.run(t, eng, rq.body, fmt.Sprintf("run-%d", run), 2*time.Minute)
				fin := checkRun(t, fmt.Sprintf("run %d", run), rq, res)
				w.assertNoStuckClaims(t, fmt.Sprintf("after run %d", run))
				record(fin)
				for k, o := range fin {
					if o == oDedup(report.ReasonInProgress) {
						t.Errorf("run %d: %s reported %q though no other invocation runs", run, k, report.ReasonInProgress)
					}
				}
				t.Logf("run %d: %s; summary %+v", run, fmtTally(tally(fin)), res.Summary)
			}
			l := ledger(t, w.emu)
			if len(done) != rq.distinct() || len(l) != rq.distinct() {
				t.Errorf("%d of %d (document, node) pairs done, ledger has %d", len(done), rq.distinct(), len(l))
			}
			// One more: everything comes from the table, nothing is sent.
			before := w.emu.Stats().Calls
			last := w.run(t, eng, rq.body, "run-check", time.Minute)
			for k, o := range checkRun(t, "last run", rq, last) {
				if o != oDedup(report.ReasonAlreadyAssociated) {
					t.Errorf("last run: %s ended %s, want %q", k, o, report.ReasonAlreadyAssociated)
				}
			}
			if calls := w.emu.Stats().Calls - before; calls != 0 {
				t.Errorf("last run made %d SSM calls, want none", calls)
			}
		})
	}
}

// lostAnswers checks a cell whose calls lose their answer after SSM acted:
// answers were lost (as counted by lost), the entries were read back from
// SSM rather than sent again (no refusal as existing, no double), and the
// run still associated every node of the request.
func lostAnswers(lost func(ssmlocal.Stats) int) func(*testing.T, *world, report.Result) {
	return func(t *testing.T, w *world, first report.Result) {
		st := w.emu.Stats()
		if lost(st) == 0 || first.Summary.Reads == 0 {
			t.Errorf("answers lost %d, SSM reads %d: want both > 0", lost(st), first.Summary.Reads)
		}
		if st.DuplicatesRefused != 0 || st.DoubleAssociations != 0 {
			t.Errorf("after lost answers: %d resends refused as existing, %d doubles", st.DuplicatesRefused, st.DoubleAssociations)
		}
		if first.Retryable() {
			t.Errorf("lost answers left work for another run: %+v", first.Summary)
		}
		t.Logf("answers lost %d; settled by %d SSM reads", lost(st), first.Summary.Reads)
	}
}
