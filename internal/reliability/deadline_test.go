package reliability_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// TestReliabilityDeadline gives the real function (under the RIE) a
// 5-second timeout and, through API Gateway, a request that needs far
// longer — because SSM calls are slow and rate-limited (SlowCalls), or
// because DynamoDB answers claims slowly (SlowClaims). The answer must be a
// 200 whose Unprocessed list holds what was not done, every entry in
// exactly one list; no claim may stay IN_PROGRESS; and sending the request
// again finishes it with every node associated once.
func TestReliabilityDeadline(t *testing.T) {
	t.Run("SlowCalls", func(t *testing.T) {
		// 300 entries at 2 calls per second need 15 s.
		testDeadline(t, size(300, 1000), "CALLS_PER_SECOND=2", 0)
	})
	t.Run("SlowClaims", func(t *testing.T) {
		// 1,000 claims at 100 ms each, 16 at a time, need over 6 s.
		testDeadline(t, size(1000, 3000), "CALLS_PER_SECOND=0", 100*time.Millisecond)
	})
}

func testDeadline(t *testing.T, n int, rate string, putDelay time.Duration) {
	needServices(t, testinfra.ToolRIE, testinfra.ToolGo)
	opts := ssmlocal.DefaultOptions()
	opts.MaxAssociations = 0
	opts.Latency = 100 * time.Millisecond
	var slow atomic.Bool
	w := newWorld(t, opts, worldOpt{ddbFront: slowOp(&slow, ".PutItem", putDelay)})
	rq := plainRequest(span(0, n))
	common := []string{"MAX_ENTRIES=" + strconv.Itoa(n), "BATCH_SIZE=10", "MAX_CONCURRENCY=4"}

	slow.Store(true)
	rie := startFunction(t, w, 5*time.Second, append(common, rate)...)
	began := time.Now()
	a := invoke(t, rie, restEvent(rq.body), 2*time.Minute)
	took := time.Since(began)
	slow.Store(false)
	if a.ErrorType != "" || a.StatusCode != http.StatusOK {
		settle(w)
		c := w.claims(t)
		t.Fatalf("the function did not answer within its timeout: after %v: %.300s; the table holds %d IN_PROGRESS and %d ASSOCIATED claims of %d",
			took.Round(time.Millisecond), a.raw, len(c["IN_PROGRESS"]), len(c["ASSOCIATED"]), n)
	}
	res := a.Result
	final := checkRun(t, "short run", rq, res)
	if len(res.Unprocessed) == 0 {
		t.Fatalf("nothing Unprocessed in 5 s: %+v", res.Summary)
	}
	for _, u := range res.Unprocessed {
		if !strings.Contains(u.Reason, "time budget") && !strings.Contains(u.Reason, "deadline") {
			t.Errorf("Unprocessed reason %q does not say the time ran out", u.Reason)
			break
		}
	}
	if !res.Retryable() {
		t.Errorf("result with %d Unprocessed is not Retryable()", len(res.Unprocessed))
	}
	w.assertNoStuckClaims(t, "after the timed-out run")
	t.Logf("5 s function timeout: answered after %v: %s; summary %+v", took.Round(time.Millisecond), fmtTally(tally(final)), res.Summary)

	rie2 := startFunction(t, w, 2*time.Minute, append(common, "CALLS_PER_SECOND=0")...)
	a2 := invoke(t, rie2, restEvent(rq.body), 3*time.Minute)
	if a2.StatusCode != http.StatusOK {
		t.Fatalf("second run: %.500s", a2.raw)
	}
	for k, o := range checkRun(t, "second run", rq, a2.Result) {
		switch first := final[k]; {
		case first == oSuccessful && o != oDedup(report.ReasonAlreadyAssociated):
			t.Errorf("%s: Successful, then %s", k, o)
		case first == oUnprocessed && o != oSuccessful && o != oDedup(report.ReasonAlreadyExists):
			t.Errorf("%s: Unprocessed, then %s", k, o)
		}
	}
	if l := ledger(t, w.emu); len(l) != n {
		t.Errorf("ledger holds %d pairs, want %d", len(l), n)
	}
	w.assertNoStuckClaims(t, "after the second run")
	t.Logf("second run: %s", fmtTally(tally(outcomes1(a2.Result))))
}
