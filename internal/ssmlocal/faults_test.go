package ssmlocal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// TestRateLimitThrottles: without retries, calls beyond the bucket get the
// service's throttle (400 ThrottlingException "Rate exceeded"). The rate is
// so low that no token can refill during the test.
func TestRateLimitThrottles(t *testing.T) {
	s, c, _ := newEnv(t, Options{Rate: 0.001, Burst: 2})
	var ok, throttled int
	for i := range 5 {
		_, err := batch(t, c, shellEntry(fmt.Sprintf("i-%017d", i)))
		if err == nil {
			ok++
			continue
		}
		ae := apiErr(t, err, "ThrottlingException")
		if ae.ErrorMessage() != "Rate exceeded" {
			t.Fatalf("message %q", ae.ErrorMessage())
		}
		throttled++
	}
	if ok != 2 || throttled != 3 {
		t.Fatalf("ok %d throttled %d, want 2 and 3", ok, throttled)
	}
	if st := s.Stats(); st.ThrottledCalls != 3 || st.Calls != 5 || st.EntriesReceived != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRateLimitSDKRetries: the SDK's standard retryer treats the throttle
// as retryable; waiting longer than one token's refill between attempts,
// every call succeeds eventually.
func TestRateLimitSDKRetries(t *testing.T) {
	s, _, url := newEnv(t, Options{Rate: 5, Burst: 1})
	r := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 10
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 250 * time.Millisecond, nil })
		o.RateLimiter = noRateLimit{}
	})
	c := newClient(url, r)
	for i := range 3 {
		out, err := batch(t, c, shellEntry(fmt.Sprintf("i-%017d", i)))
		if err != nil || len(out.Successful) != 1 {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	st := s.Stats()
	if st.ThrottledCalls == 0 || st.Calls != 3+st.ThrottledCalls || st.AssociationsCreated != 3 {
		t.Fatalf("stats %+v: want throttles that were retried", st)
	}
}

func TestEntryFaultRate(t *testing.T) {
	s, c, _ := newEnv(t, Options{EntryFaultRate: 1})
	out, err := batch(t, c, shellEntry(node1), shellEntry(node2))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Failed) != 2 || len(out.Successful) != 0 {
		t.Fatalf("failed %v", failedMessages(out))
	}
	for _, f := range out.Failed {
		if f.Fault != types.FaultServer || aws.ToString(f.Message) != DefaultEntryFaultMessage || f.Entry == nil {
			t.Fatalf("failed entry %+v", f)
		}
	}
	if st := s.Stats(); st.EntriesFailedByInjection != 2 || st.EntriesReceived != 2 || st.AssociationsCreated != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestEntryFaultRateSeeded: the same seed fails the same entries.
func TestEntryFaultRateSeeded(t *testing.T) {
	pattern := func() string {
		_, c, _ := newEnv(t, Options{EntryFaultRate: 0.5, Seed: 42})
		var entries []E
		for i := range 20 {
			entries = append(entries, shellEntry(fmt.Sprintf("i-%017d", i)))
		}
		out, err := batch(t, c, entries...)
		if err != nil {
			t.Fatal(err)
		}
		p := ""
		for _, f := range out.Failed {
			p += f.Entry.Targets[0].Values[0] + " "
		}
		if len(out.Failed) == 0 || len(out.Successful) == 0 {
			t.Fatalf("rate 0.5 over 20 entries gave %d failures", len(out.Failed))
		}
		return p
	}
	if a, b := pattern(), pattern(); a != b {
		t.Fatalf("seeded faults differ:\n%s\n%s", a, b)
	}
}

func TestCallFaultRates(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		code   string
		status int
	}{
		{"throttle rate", Options{ThrottleRate: 1}, "ThrottlingException", 400},
		{"error rate", Options{ErrorRate: 1}, "InternalServerError", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, url := newEnv(t, tt.opts)
			_, err := batch(t, c, shellEntry(node1))
			apiErr(t, err, tt.code)
			resp, _ := post(t, url, "AmazonSSM.ListAssociations", "{}")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d", resp.StatusCode)
			}
			st := s.Stats()
			if st.CallsFailedByInjection != 2 || len(s.Ledger()) != 0 {
				t.Fatalf("stats %+v", st)
			}
			if tt.status == 500 && st.ServerErrors != 2 {
				t.Fatalf("server errors %d", st.ServerErrors)
			}
		})
	}
}

// TestFailEntry: a scripted fault hits only the named (document, node), for
// exactly its first N arrivals.
func TestFailEntry(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	s.FailEntry("AWS-RunShellScript", node1, 2, "", "")
	s.FailEntry("", node3, 1, "Unknown", "try later")
	other := legacy("AWS-UpdateSSMAgent", node1) // same node, other document

	for attempt := 1; attempt <= 3; attempt++ {
		entries := []E{shellEntry(node1)}
		if attempt == 1 {
			entries = append(entries, shellEntry(node2)) // not matched: created
		}
		out, err := batch(t, c, entries...)
		if err != nil {
			t.Fatal(err)
		}
		if attempt <= 2 {
			if len(out.Failed) != 1 || out.Failed[0].Fault != types.FaultServer || aws.ToString(out.Failed[0].Message) != DefaultEntryFaultMessage ||
				out.Failed[0].Entry.Targets[0].Values[0] != node1 {
				t.Fatalf("attempt %d: %v", attempt, failedMessages(out))
			}
			continue
		}
		if len(out.Successful) != 1 || out.Successful[0].Targets[0].Values[0] != node1 {
			t.Fatalf("attempt 3: %v", failedMessages(out))
		}
	}
	if out, err := batch(t, c, other); err != nil || len(out.Successful) != 1 {
		t.Fatalf("other document was affected: %v", err)
	}
	out, err := batch(t, c, shellEntry(node3))
	if err != nil || len(out.Failed) != 1 || out.Failed[0].Fault != types.FaultUnknown || aws.ToString(out.Failed[0].Message) != "try later" {
		t.Fatalf("wildcard document rule: %v %v", err, failedMessages(out))
	}
	if st := s.Stats(); st.EntriesFailedByInjection != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailCalls(t *testing.T) {
	s, _, url := newEnv(t, DefaultOptions())
	s.FailCalls(2, "ThrottlingException", 0)
	s.FailCalls(1, "", 0)
	s.FailCalls(1, "ServiceUnavailable", 503)
	for _, want := range []struct {
		code   string
		status int
	}{{"ThrottlingException", 400}, {"ThrottlingException", 400}, {"InternalServerError", 500}, {"ServiceUnavailable", 503}, {"", 200}} {
		resp, m := post(t, url, "AmazonSSM.CreateAssociationBatch", `{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"`+node1+`"}]}`)
		if resp.StatusCode != want.status || (want.code != "" && m["__type"] != want.code) {
			t.Fatalf("got %d %v, want %d %s", resp.StatusCode, m, want.status, want.code)
		}
	}
	// With retries, the SDK gets through scripted server errors.
	s.FailCalls(2, "InternalServerError", 500)
	before := s.Stats().Calls
	out, err := batch(t, newClient(url, fastRetryer(3)), shellEntry(node2))
	if err != nil || len(out.Successful) != 1 {
		t.Fatalf("retried call: %v", err)
	}
	if got := s.Stats().Calls - before; got != 3 {
		t.Fatalf("%d attempts, want 3", got)
	}
}

// TestDropAfterCreate: the associations exist but the caller sees a
// transport error. A resend in the InstanceId form meets "Association
// Already Exists"; in the Targets form it creates a second association,
// counted as a double.
func TestDropAfterCreate(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	s.DropAfterCreate(2)
	for _, e := range []E{shellEntry(node1), legacy("AWS-UpdateSSMAgent", node2)} {
		_, err := batch(t, c, e)
		assertTransportError(t, err)
	}
	if l := s.Ledger(); len(l) != 2 || l[0].NodeIDs[0] != node1 || l[1].NodeIDs[0] != node2 {
		t.Fatalf("ledger %+v", l)
	}
	out, err := batch(t, c, shellEntry(node1))
	if err != nil || len(out.Successful) != 1 {
		t.Fatalf("Targets resend after drop: %v %v", err, failedMessages(out))
	}
	out, err = batch(t, c, legacy("AWS-UpdateSSMAgent", node2))
	if err != nil || len(out.Failed) != 1 || aws.ToString(out.Failed[0].Message) != "Association Already Exists" {
		t.Fatalf("InstanceId resend after drop: %v %v", err, failedMessages(out))
	}
	if st := s.Stats(); st.DroppedConnections != 2 || st.DuplicatesRefused != 1 || st.DoubleAssociations != 1 || st.AssociationsCreated != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// assertTransportError: the call failed without any HTTP response.
func assertTransportError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("dropped call returned a response")
	}
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		t.Fatalf("want a transport error, got API error %v", err)
	}
	// The SDK wraps a failed send in a ResponseError with no response.
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.HTTPStatusCode() != 0 {
		t.Fatalf("want a transport error, got HTTP %d: %v", re.HTTPStatusCode(), err)
	}
}

func TestStatsAndResetEndpoints(t *testing.T) {
	s, c, url := newEnv(t, Options{Latency: time.Millisecond, Jitter: time.Millisecond})
	s.FailCalls(5, "", 0)
	s.FailEntry("", "", 5, "", "")
	for range 5 {
		_, _ = batch(t, c, shellEntry(node1))
	}
	if _, err := batch(t, c, shellEntry(node1)); err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	getJSON(t, url+"/_ssm-local/stats", &st)
	for k, want := range map[string]float64{"calls": 6, "serverErrors": 5, "entriesReceived": 1, "entriesFailedByInjection": 1, "callsFailedByInjection": 5} {
		if st[k] != want {
			t.Fatalf("stats[%s] = %v, want %v (%v)", k, st[k], want, st)
		}
	}
	resp, err := http.Post(url+"/_ssm-local/reset", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("reset status %d", resp.StatusCode)
	}
	// Scripted faults are gone too: the next entry succeeds.
	out, err := batch(t, c, shellEntry(node1))
	if err != nil || len(out.Successful) != 1 {
		t.Fatalf("after reset: %v %v", err, failedMessages(out))
	}
	if got := s.Stats(); got.Calls != 1 || got.AssociationsCreated != 1 || got.ActiveAssociations != 1 || len(s.Ledger()) != 1 {
		t.Fatalf("after reset: %+v", got)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCreates: many concurrent InstanceId-form calls for the same
// pairs create exactly one association per (document, node); the same in the
// Targets form creates every one and counts all but the first per node as
// doubles.
func TestConcurrentCreates(t *testing.T) {
	for _, tt := range []struct {
		name        string
		entry       func(node string) E
		targetsForm bool
	}{
		{"InstanceId form", func(n string) E { return legacy("AWS-UpdateSSMAgent", n) }, false},
		{"Targets form", shellEntry, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, c, _ := newEnv(t, DefaultOptions())
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var entries []E
					for n := range 5 {
						entries = append(entries, tt.entry(fmt.Sprintf("i-%017d", (n+g)%5)))
					}
					if _, err := batch(t, c, entries...); err != nil {
						t.Error(err)
					}
					_ = s.Stats()
				}()
			}
			wg.Wait()
			pairs := s.AssociationsByNode()
			st := s.Stats()
			if tt.targetsForm {
				if len(pairs) != 5 || st.AssociationsCreated != 80 || st.DuplicatesRefused != 0 || st.DoubleAssociations != 75 || len(s.Doubles()) != 75 {
					t.Fatalf("%d pairs, stats %+v", len(pairs), st)
				}
				return
			}
			for k, ids := range pairs {
				if len(ids) != 1 {
					t.Fatalf("two associations for %s", k)
				}
			}
			if len(pairs) != 5 || st.AssociationsCreated != 5 || st.DuplicatesRefused != 16*5-5 || st.DoubleAssociations != 0 {
				t.Fatalf("%d pairs, stats %+v", len(pairs), st)
			}
		})
	}
}
