package associate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func node(n int) string { return fmt.Sprintf("i-%017d", n) }

// nodeRequest makes a request of one InstanceId entry per node.
func nodeRequest(doc string, nodes ...int) *request.Request {
	req := &request.Request{}
	for i, n := range nodes {
		req.Items = append(req.Items, request.Item{
			Entry: request.Entry{Name: doc, InstanceId: aws.String(node(n))},
			Path:  fmt.Sprintf("Entries[%d]", i),
		})
	}
	return req
}

func settings() Settings {
	return Settings{BatchSize: 3, MaxConcurrency: 2, MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, CallEstimate: 10 * time.Millisecond}
}

func job(req *request.Request) Job {
	return Job{Request: req, Owner: "test/1", Deadline: time.Now().Add(10 * time.Second), LeaseUntil: time.Now().Add(time.Minute)}
}

func runJob(t *testing.T, s *fakeSSM, c *fakeClaims, set Settings, j Job) report.Result {
	t.Helper()
	res, err := New(s, c, set, nil).Run(context.Background(), j)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// outcomeOf maps every node to the list it ended in.
func outcomeOf(t *testing.T, res report.Result) map[string]string {
	t.Helper()
	out := map[string]string{}
	put := func(n, list string) {
		if prev, dup := out[n]; dup {
			t.Errorf("node %s is in %s and in %s", n, prev, list)
		}
		out[n] = list
	}
	for _, a := range res.Successful {
		put(a.InstanceId, "Successful")
	}
	for _, f := range res.Failed {
		put(*f.Entry.InstanceId, "Failed")
	}
	for _, d := range res.Deduplicated {
		put(*d.Entry.InstanceId, "Deduplicated")
	}
	for _, u := range res.Unprocessed {
		put(*u.Entry.InstanceId, "Unprocessed")
	}
	return out
}

func TestAllSucceed(t *testing.T) {
	s, c := &fakeSSM{latency: time.Millisecond}, newFakeClaims()
	res := runJob(t, s, c, settings(), job(nodeRequest("AWS-UpdateSSMAgent", 1, 2, 3, 4, 5, 6, 7)))
	if res.Summary.Successful != 7 || res.Summary.Calls != 3 || res.Summary.Retries != 0 {
		t.Fatalf("summary %+v", res.Summary)
	}
	for n, list := range outcomeOf(t, res) {
		if list != "Successful" {
			t.Errorf("%s: %s", n, list)
		}
	}
	if s.maxIn > 2 {
		t.Errorf("%d calls in flight, MaxConcurrency is 2", s.maxIn)
	}
	if left := c.inProgress(); len(left) != 0 {
		t.Errorf("claims left in progress: %v", left)
	}
	// The claims a call settles are closed together, one write per call.
	if c.ops["completeAll"] != s.calls || c.ops["release"] != 0 || c.ops["mark"] != 0 {
		t.Errorf("completion writes %v for %d calls, want one CompleteAll per call", c.ops, s.calls)
	}
	// A second run of the same request makes no call.
	s2 := &fakeSSM{}
	res = runJob(t, s2, c, settings(), job(nodeRequest("AWS-UpdateSSMAgent", 1, 2, 3, 4, 5, 6, 7)))
	if s2.calls != 0 || res.Summary.Deduplicated != 7 {
		t.Fatalf("second run: calls %d, summary %+v", s2.calls, res.Summary)
	}
	if res.Deduplicated[0].Reason != report.ReasonAlreadyAssociated || res.Deduplicated[0].AssociationId == "" {
		t.Errorf("deduplicated %+v", res.Deduplicated[0])
	}
}

// failEntries makes the listed nodes fail with fault on the attempts given.
func failEntries(fault ssmtypes.Fault, msg string, failures map[string]int) func(int, []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
	seen := map[string]int{}
	return func(_ int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		out := &ssm.CreateAssociationBatchOutput{}
		for _, e := range entries {
			n := entryNode(e)
			seen[n]++
			if seen[n] <= failures[n] {
				e := e
				out.Failed = append(out.Failed, ssmtypes.FailedCreateAssociation{Entry: &e, Fault: fault, Message: aws.String(msg)})
				continue
			}
			out.Successful = append(out.Successful, success(e))
		}
		return out, nil
	}
}

func TestRetryOnlyFailed(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = failEntries(ssmtypes.FaultServer, "Internal error", map[string]int{node(2): 1, node(5): 2})
	res := runJob(t, s, c, settings(), job(nodeRequest("D1", 1, 2, 3, 4, 5, 6)))
	if res.Summary.Successful != 6 {
		t.Fatalf("summary %+v", res.Summary)
	}
	for n, times := range s.sent {
		want := 1
		switch n {
		case node(2):
			want = 2
		case node(5):
			want = 3
		}
		if times != want {
			t.Errorf("%s sent %d times, want %d", n, times, want)
		}
	}
	if res.Summary.Retries != 3 {
		t.Errorf("Retries = %d, want 3", res.Summary.Retries)
	}
}

func TestFaultOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		fault      ssmtypes.Fault
		message    string
		fails      int
		wantList   string
		wantSent   int
		wantReason string
	}{
		{"client fault is final", ssmtypes.FaultClient, "Unsupported platform", 1, "Failed", 1, ""},
		{"server fault exhausts attempts", ssmtypes.FaultServer, "Internal error", 99, "Failed", 3, ""},
		// SSM does not know either: read back before every resend, and
		// the claim is kept.
		{"unknown fault exhausts attempts", ssmtypes.FaultUnknown, "sent 3 times without an answer, and SSM holds no such association", 99, "Failed", 3, ""},
		{"already exists is deduplicated", ssmtypes.FaultClient, "Association Already Exists", 1, "Deduplicated", 1, report.ReasonAlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := &fakeSSM{}, newFakeClaims()
			existing := success(nodeRequest("D1", 1).Items[0].Entry.SDK())
			existing.Date = aws.Time(time.Now().Add(-time.Hour)) // made long before this run
			if tt.wantReason == report.ReasonAlreadyExists {
				s.keep(existing)
			}
			s.respond = failEntries(tt.fault, tt.message, map[string]int{node(1): tt.fails})
			res := runJob(t, s, c, settings(), job(nodeRequest("D1", 1, 2)))
			got := outcomeOf(t, res)
			if got[node(1)] != tt.wantList || got[node(2)] != "Successful" {
				t.Fatalf("outcomes %v", got)
			}
			if s.sent[node(1)] != tt.wantSent {
				t.Errorf("sent %d times, want %d", s.sent[node(1)], tt.wantSent)
			}
			if tt.wantList == "Failed" {
				f := res.Failed[0]
				if f.Fault != string(tt.fault) || f.Message != tt.message || f.Attempts != tt.wantSent {
					t.Errorf("failure %+v", f)
				}
			}
			if tt.wantReason != "" {
				if d := res.Deduplicated[0]; d.Reason != tt.wantReason || d.AssociationId != aws.ToString(existing.AssociationId) {
					t.Errorf("deduplicated %q with %q, want the existing association's ID", d.Reason, d.AssociationId)
				}
			}
			// What SSM has (associated, or already existing) is remembered;
			// what failed is released so a later run can try again, unless
			// it may be in SSM: then its claim is kept, marked.
			claim, remembered := c.items["node#D1#"+node(1)]
			switch {
			case tt.fault == ssmtypes.FaultUnknown:
				if !remembered || !claim.sent || claim.associated {
					t.Errorf("claim of node 1 %+v, want kept and marked possibly sent", claim)
				}
			case remembered != (tt.wantList == "Deduplicated"):
				t.Errorf("claim of node 1 remembered = %v", remembered)
			}
		})
	}
}

func apiError(code string, fault smithy.ErrorFault) error {
	return &smithy.OperationError{ServiceID: "SSM", OperationName: "CreateAssociationBatch",
		Err: &smithy.GenericAPIError{Code: code, Message: code + " happened", Fault: fault}}
}

func TestWholeCallRefusalIsolatesTheBadEntry(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	bad := node(4)
	s.respond = func(_ int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		for _, e := range entries {
			if entryNode(e) == bad {
				return nil, apiError("InvalidInstanceId", smithy.FaultClient)
			}
		}
		return succeedAll(entries), nil
	}
	set := settings()
	set.BatchSize = 8
	res := runJob(t, s, c, set, job(nodeRequest("D1", 1, 2, 3, 4, 5, 6, 7, 8)))
	got := outcomeOf(t, res)
	for n, list := range got {
		want := "Successful"
		if n == bad {
			want = "Failed"
		}
		if list != want {
			t.Errorf("%s: %s, want %s", n, list, want)
		}
	}
	if f := res.Failed[0]; f.Fault != report.FaultClient || !strings.Contains(f.Message, "InvalidInstanceId") || f.Attempts != 1 {
		t.Errorf("failure %+v", f)
	}
	for n, times := range s.sent {
		if n != bad && times > 1 && got[n] == "Successful" {
			// Neighbours are resent only while still in the refused half,
			// never after they succeeded.
			continue
		}
	}
	if s.calls > 1+2+2+2 { // 8 → 4+4 → 2+2 → 1+1
		t.Errorf("%d calls to isolate one entry in 8", s.calls)
	}
}

func TestCallWideRefusalIsNotSplit(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = func(int, []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		return nil, apiError("AssociationLimitExceeded", smithy.FaultClient)
	}
	res := runJob(t, s, c, settings(), job(nodeRequest("D1", 1, 2, 3)))
	if s.calls != 1 || res.Summary.Failed != 3 {
		t.Fatalf("calls %d, summary %+v", s.calls, res.Summary)
	}
}

func TestRetryableCallErrorRetriesEntries(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = func(call int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		if call == 1 {
			return nil, apiError("ThrottlingException", smithy.FaultClient)
		}
		return succeedAll(entries), nil
	}
	set := settings()
	set.MaxConcurrency = 1
	res := runJob(t, s, c, set, job(nodeRequest("D1", 1, 2, 3, 4)))
	if res.Summary.Successful != 4 || res.Summary.Retries != 3 {
		t.Fatalf("summary %+v", res.Summary)
	}
}

func TestSSMUnreachable(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = func(int, []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	}
	res, err := New(s, c, settings(), nil).Run(context.Background(), job(nodeRequest("D1", 1, 2)))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if res.Summary.Failed != 2 || res.Failed[0].Fault != report.FaultUnknown {
		t.Errorf("summary %+v", res.Summary)
	}
	if left := c.inProgress(); len(left) != 0 {
		t.Errorf("claims left: %v", left)
	}
}

func TestDedupe(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	// Node 3 is being associated by another invocation; node 4 is done.
	c.items["node#D1#"+node(3)] = fakeClaim{owner: "other", lease: time.Now().Add(time.Minute)}
	c.items["node#D1#"+node(4)] = fakeClaim{associated: true, assocID: "a-4"}
	// An expired lease is taken over.
	c.items["node#D1#"+node(5)] = fakeClaim{owner: "crashed", lease: time.Now().Add(-time.Second)}
	res := runJob(t, s, c, settings(), job(nodeRequest("D1", 1, 2, 1, 3, 4, 5)))
	if res.Summary.Successful != 3 || res.Summary.Deduplicated != 3 || res.Summary.Requested != 6 {
		t.Fatalf("summary %+v", res.Summary)
	}
	reasons := map[string]string{}
	for _, d := range res.Deduplicated {
		reasons[*d.Entry.InstanceId] = d.Reason
	}
	want := map[string]string{node(1): report.ReasonDuplicateInRequest, node(3): report.ReasonInProgress, node(4): report.ReasonAlreadyAssociated}
	for n, r := range want {
		if reasons[n] != r {
			t.Errorf("%s: reason %q, want %q", n, reasons[n], r)
		}
	}
	if s.sent[node(1)] != 1 || s.sent[node(3)] != 0 || s.sent[node(4)] != 0 || s.sent[node(5)] != 1 {
		t.Errorf("sent %v", s.sent)
	}
}

func TestMultiNodeEntryIsFilteredNodeByNode(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	c.items["node#D1#"+node(2)] = fakeClaim{associated: true, assocID: "a-2"}
	req := &request.Request{Items: []request.Item{{
		Path:  "Entries[0]",
		Entry: request.Entry{Name: "D1", Targets: []request.Target{{Key: "InstanceIds", Values: []string{node(1), node(2), node(3)}}}},
	}}}
	res := runJob(t, s, c, settings(), job(req))
	if len(s.batches) != 1 || len(res.Successful) != 1 || len(res.Deduplicated) != 1 {
		t.Fatalf("batches %v, result %+v", s.batches, res)
	}
	if got := res.Deduplicated[0].Entry.Targets[0].Values; !slices.Equal(got, []string{node(2)}) {
		t.Errorf("deduplicated entry targets %v", got)
	}
	if got := res.Successful[0].Targets[0].Values; !slices.Equal(got, []string{node(1), node(3)}) {
		t.Errorf("sent targets %v", got)
	}
	for _, k := range []string{node(1), node(3)} {
		if v := c.items["node#D1#"+k]; !v.associated || v.assocID == "" {
			t.Errorf("claim of %s = %+v", k, v)
		}
	}
}

func TestDeadline(t *testing.T) {
	s, c := &fakeSSM{latency: 30 * time.Millisecond}, newFakeClaims()
	set := settings()
	set.MaxConcurrency = 1
	set.BatchSize = 1
	j := job(nodeRequest("D1", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	j.Deadline = time.Now().Add(100 * time.Millisecond)
	res := runJob(t, s, c, set, j)
	if res.Summary.Unprocessed == 0 || res.Summary.Successful == 0 {
		t.Fatalf("want some done and some unprocessed, got %+v", res.Summary)
	}
	if res.Summary.Successful+res.Summary.Unprocessed != 10 {
		t.Fatalf("summary %+v", res.Summary)
	}
	if left := c.inProgress(); len(left) != 0 {
		t.Errorf("claims left in progress: %v", left)
	}
	// A second run with time to spare finishes the rest, sending nothing twice.
	s2 := &fakeSSM{}
	res2 := runJob(t, s2, c, settings(), job(nodeRequest("D1", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)))
	if res2.Summary.Successful != res.Summary.Unprocessed || res2.Summary.Deduplicated != res.Summary.Successful {
		t.Fatalf("second run %+v after %+v", res2.Summary, res.Summary)
	}
}

func TestClaimStoreDown(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	c.failAll = errors.New("claims-table: dial tcp 127.0.0.1:8000: connection refused")
	res, err := New(s, c, settings(), nil).Run(context.Background(), job(nodeRequest("D1", 1, 2)))
	if !errors.Is(err, ErrUnavailable) || s.calls != 0 {
		t.Fatalf("err %v, calls %d", err, s.calls)
	}
	if res.Summary.Unprocessed != 2 {
		t.Errorf("summary %+v", res.Summary)
	}
	// The answer says what happened, not DynamoDB's text.
	for _, u := range res.Unprocessed {
		if u.Reason != reasonTableDown {
			t.Errorf("reason %q", u.Reason)
		}
	}
}

func TestInvalidEntriesAreNeverSent(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	req := nodeRequest("D1", 1, 2)
	req.Items[1].Problems = []request.FieldError{{Path: "Entries[1].ScheduleExpression", Message: "rate must be at least 30 minutes"}}
	res := runJob(t, s, c, settings(), job(req))
	if s.sent[node(2)] != 0 || res.Summary.Failed != 1 {
		t.Fatalf("sent %v, summary %+v", s.sent, res.Summary)
	}
	if f := res.Failed[0]; f.Fault != report.FaultClient || f.Message != "Entries[1].ScheduleExpression: rate must be at least 30 minutes" {
		t.Errorf("failure %+v", f)
	}
}

func TestSameNodeTwoDocumentsNeverShareABatch(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	req := nodeRequest("D1", 1, 2, 3)
	req.Items = append(req.Items, nodeRequest("D2", 1, 2, 3).Items...)
	set := settings()
	set.BatchSize = 10
	res := runJob(t, s, c, set, job(req))
	if res.Summary.Successful != 6 {
		t.Fatalf("summary %+v", res.Summary)
	}
	for _, b := range s.batches {
		seen := map[string]bool{}
		for _, n := range b {
			if seen[n] {
				t.Fatalf("batch %v names %s twice", b, n)
			}
			seen[n] = true
		}
	}
}

func TestPaceSlowsOnThrottlesAndRecovers(t *testing.T) {
	r := &run{Engine: New(nil, nil, Settings{CallsPerSecond: 10}, nil)}
	r.startPace(context.Background())
	r.throttled(10)
	r.throttled(10)
	if got := float64(r.limiter.Limit()); got < 7.2 || got > 7.23 {
		t.Errorf("after two throttles the pace is %v, want 10·0.85²", got)
	}
	for range 100 {
		r.throttled(10)
	}
	if got := float64(r.limiter.Limit()); got != 2.5 {
		t.Errorf("the pace falls to %v, want no lower than a quarter of CALLS_PER_SECOND", got)
	}
	for range 100 {
		r.answered()
	}
	if got := float64(r.limiter.Limit()); got != 10 {
		t.Errorf("the pace recovers to %v, want CALLS_PER_SECOND", got)
	}
	if r.throttles.Load() != 102 {
		t.Errorf("throttles counted %d", r.throttles.Load())
	}
}

func TestFullRetryBatchesGoOutDuringTheRound(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = failEntries(ssmtypes.FaultServer, "Internal error", map[string]int{node(1): 1, node(2): 1})
	set := settings()
	set.BatchSize, set.MaxConcurrency, set.ClaimConcurrency = 2, 1, 1 // one order of batches
	res := runJob(t, s, c, set, job(nodeRequest("D1", 1, 2, 3, 4, 5, 6)))
	if res.Summary.Successful != 6 || res.Summary.Retries != 2 {
		t.Fatalf("summary %+v", res.Summary)
	}
	// The two failed entries fill a retry batch, sent at once rather than
	// after the round's last batch.
	if len(s.batches) != 4 || !slices.Equal(s.batches[1], []string{node(1), node(2)}) {
		t.Fatalf("batches %v, want the retry of 1 and 2 second", s.batches)
	}
}

// Each throttled attempt is reported with the rate it went out at: the
// first attempt's turn, then each retry's own.
func TestThrottlesCarryTheRateTheyWentOutAt(t *testing.T) {
	lim := newLimiter(1000, true)
	var got []float64
	p := &pacedRetryer{RetryerV2: retry.NewStandard(), limiter: lim, throttled: func(s float64) { got = append(got, s) }, sent: 7}
	ctx := context.Background()
	throttle := apiError("ThrottlingException", smithy.FaultClient)
	if _, err := p.GetAttemptToken(ctx); err != nil { // the first attempt: its turn was taken at 7
		t.Fatal(err)
	}
	p.IsErrorRetryable(throttle)
	lim.SetLimit(500)
	if _, err := p.GetAttemptToken(ctx); err != nil { // the retry takes a turn at 500
		t.Fatal(err)
	}
	p.IsErrorRetryable(throttle)
	p.IsErrorRetryable(apiError("InternalServerError", smithy.FaultServer))
	if len(got) != 2 || got[0] != 7 || got[1] != 500 {
		t.Errorf("throttles reported at %v, want [7 500]", got)
	}
}

// holdNode holds each call that carries node for hold, and records when
// the calls carrying watch begin, and when the held calls end.
type holdNode struct {
	*fakeSSM
	node, watch string
	hold        time.Duration
	mu          sync.Mutex
	released    time.Time
	watched     []time.Time
}

func (h *holdNode) CreateAssociationBatch(ctx context.Context, in *ssm.CreateAssociationBatchInput, opts ...func(*ssm.Options)) (*ssm.CreateAssociationBatchOutput, error) {
	for _, e := range in.Entries {
		switch entryNode(e) {
		case h.watch:
			h.mu.Lock()
			h.watched = append(h.watched, time.Now())
			h.mu.Unlock()
		case h.node:
			time.Sleep(h.hold)
			defer func() { h.mu.Lock(); h.released = time.Now(); h.mu.Unlock() }()
		}
	}
	return h.fakeSSM.CreateAssociationBatch(ctx, in, opts...)
}

// A round's retries wait for their own backoff, counted from when each
// failed, not for a new one from the round's end: an entry that failed
// early goes again as soon as the round's last call is answered.
func TestLastRetriesWaitOnlyTheirOwnBackoff(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = failEntries(ssmtypes.FaultServer, "Internal error", map[string]int{node(1): 1})
	h := &holdNode{fakeSSM: s, node: node(4), watch: node(1), hold: 1100 * time.Millisecond}
	set := settings()
	set.BatchSize, set.MaxConcurrency, set.ClaimConcurrency = 2, 2, 1 // [1 2] fails 1 at once; [3 4] is held
	set.Backoff, set.MaxBackoff = time.Second, time.Second
	res, err := New(h, c, set, nil).Run(context.Background(), job(nodeRequest("D1", 1, 2, 3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Successful != 4 || res.Summary.Retries != 1 || len(h.watched) != 2 {
		t.Fatalf("summary %+v, %s sent %d times", res.Summary, node(1), len(h.watched))
	}
	// 1's backoff (at most 1 s) ended before the held call did.
	if idle := h.watched[1].Sub(h.released); idle > 150*time.Millisecond {
		t.Errorf("%s went again %v after the round's last answer, want at once", node(1), idle)
	}
}

// A retryable entry is given a backoff, and its resend waits for it.
func TestRetriesWaitTheirBackoff(t *testing.T) {
	set := settings()
	set.Backoff, set.MaxBackoff = 50*time.Millisecond, time.Second
	r := &run{Engine: New(&fakeSSM{}, newFakeClaims(), set, nil), job: job(nodeRequest("D1", 1)), latency: latencyTracker{max: time.Millisecond}}
	for attempts := 1; attempts <= 2; attempts++ {
		before := time.Now()
		it, ok := r.retry(context.Background(), plan.Item{Attempts: attempts}, "Server", "Internal error")
		if !ok || it.Stage != plan.Retryable {
			t.Fatalf("attempt %d: stage %v, %v", attempts, it.Stage, ok)
		}
		if limit := before.Add(set.Backoff << (attempts - 1)); it.RetryAfter.Before(before) || it.RetryAfter.After(limit.Add(time.Millisecond)) {
			t.Errorf("attempt %d: RetryAfter %v after the failure, want within [0, %v]", attempts, it.RetryAfter.Sub(before), set.Backoff<<(attempts-1))
		}
	}
	wait := 60 * time.Millisecond
	start := time.Now()
	if !r.retryNow(context.Background(), plan.Batch{plan.Item{RetryAfter: start}, plan.Item{RetryAfter: start.Add(wait)}}) {
		t.Fatal("retryNow gave up with time left")
	}
	if took := time.Since(start); took < wait {
		t.Errorf("the batch went after %v, before its last entry's backoff of %v", took, wait)
	}
}

// An engine's runs one after another pace under one name in the rate
// memory; runs at once under distinct names.
func TestRunsOneAfterAnotherAreOneMember(t *testing.T) {
	e := New(&fakeSSM{}, newFakeClaims(), settings(), nil).RememberRate(nil)
	first, release := e.members.take()
	release()
	again, releaseAgain := e.members.take()
	meanwhile, releaseMeanwhile := e.members.take()
	defer releaseMeanwhile()
	releaseAgain()
	if again != first || meanwhile == first || !strings.HasPrefix(first, "engine-") {
		t.Errorf("names %q, then %q, and %q at the same time: want the first name again, and another", first, again, meanwhile)
	}
	if other, _ := New(&fakeSSM{}, newFakeClaims(), settings(), nil).RememberRate(nil).members.take(); other == first {
		t.Errorf("two engines share the name %q", other)
	}
}
