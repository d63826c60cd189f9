package ssmlocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// answerLost is one way the answer of an executed create call is lost.
type answerLost struct {
	name   string
	opts   Options       // random form (rate 1)
	script func(*Server) // scripted form
	check  func(*testing.T, error)
	stat   func(Stats) int // the counter it adds to
}

const longHold = time.Minute // far beyond any client timeout of these tests

func answerLosses() []answerLost {
	transport := func(t *testing.T, err error) { t.Helper(); assertTransportError(t, err) }
	internal := func(t *testing.T, err error) {
		t.Helper()
		apiErr(t, err, "InternalServerError")
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError {
			t.Fatalf("want HTTP 500, got %v", err)
		}
	}
	timeout := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want the client's deadline to pass, got %v", err)
		}
	}
	dropped := func(st Stats) int { return st.DroppedConnections }
	errored := func(st Stats) int { return st.ErrorsAfterCreate }
	slow := func(st Stats) int { return st.SlowAnswers }
	return []answerLost{
		{"DropAfterCreate", Options{}, func(s *Server) { s.DropAfterCreate(1) }, transport, dropped},
		{"LostAnswerRate", Options{LostAnswerRate: 1}, nil, transport, dropped},
		{"ErrorAfterCreate", Options{}, func(s *Server) { s.ErrorAfterCreate(1) }, internal, errored},
		{"ErrorAfterCreateRate", Options{ErrorAfterCreateRate: 1}, nil, internal, errored},
		{"DelayAfterCreate", Options{}, func(s *Server) { s.DelayAfterCreate(1, longHold) }, timeout, slow},
		{"SlowAnswerRate", Options{SlowAnswerRate: 1, SlowAnswerDelay: longHold}, nil, timeout, slow},
	}
}

// TestAnswerLostAfterCreate: each fault lets the call execute in full (the
// associations exist and read back by the Name filter and by ID), while the
// client, without retries, sees a connection error, a 500 or a timeout. A
// held answer ends as soon as the client goes away, so the server closes
// at once.
func TestAnswerLostAfterCreate(t *testing.T) {
	for _, tt := range answerLosses() {
		for _, form := range []string{"batch", "single"} {
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				s := New(tt.opts)
				ts := httptest.NewServer(s)
				closed := false
				t.Cleanup(func() {
					if !closed {
						ts.Close()
					}
				})
				c := newClient(ts.URL, aws.NopRetryer{})
				if tt.script != nil {
					tt.script(s)
				}
				callCtx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				entry := shellEntry(node1)
				entry.AssociationName = aws.String("lost-" + form)
				var err error
				if form == "batch" {
					_, err = c.CreateAssociationBatch(callCtx, &ssm.CreateAssociationBatchInput{Entries: []E{entry}})
				} else {
					_, err = c.CreateAssociation(callCtx, &ssm.CreateAssociationInput{Name: entry.Name, Targets: entry.Targets,
						Parameters: entry.Parameters, AssociationName: entry.AssociationName})
				}
				tt.check(t, err)

				list, lerr := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{AssociationFilterList: []types.AssociationFilter{
					{Key: types.AssociationFilterKeyName, Value: aws.String("AWS-RunShellScript")}}})
				if lerr != nil || len(list.Associations) != 1 || aws.ToString(list.Associations[0].AssociationName) != "lost-"+form {
					t.Fatalf("the call did not execute: %v %+v", lerr, list)
				}
				d, derr := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{AssociationId: list.Associations[0].AssociationId})
				if derr != nil || d.AssociationDescription.Parameters["commands"][0] != "echo hi" {
					t.Fatalf("describe: %v", derr)
				}
				st := s.Stats()
				if tt.stat(st) != 1 || st.AssociationsCreated != 1 || st.CallsFailedByInjection != 0 {
					t.Fatalf("stats %+v", st)
				}

				// The fault is used up (scripted) or the hold is over:
				// closing the server does not wait for the held answer.
				start := time.Now()
				ts.Close()
				closed = true
				if el := time.Since(start); el > 5*time.Second {
					t.Fatalf("server took %v to close: the held answer did not end with the client", el)
				}
			})
		}
	}
}

// TestSlowAnswerHTTPTimeout: a client whose HTTP client times out (rather
// than its context) sees a timeout too; the association exists, and a
// patient client gets the held answer once the delay is over.
func TestSlowAnswerHTTPTimeout(t *testing.T) {
	s, _, url := newEnv(t, Options{SlowAnswerRate: 1, SlowAnswerDelay: 400 * time.Millisecond})
	impatient := ssm.New(newClient(url, aws.NopRetryer{}).Options(), func(o *ssm.Options) {
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(100 * time.Millisecond)
	})
	_, err := batch(t, impatient, shellEntry(node1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a timeout, got %v", err)
	}
	patient := newClient(url, aws.NopRetryer{})
	start := time.Now()
	out, err := batch(t, patient, shellEntry(node2))
	if err != nil || len(out.Successful) != 1 {
		t.Fatalf("patient client: %v", err)
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("answer came after %v, want it held 400ms", el)
	}
	if st := s.Stats(); st.SlowAnswers != 2 || st.AssociationsCreated != 2 || len(s.Ledger()) != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestErrorAfterCreateWire: the 500 has the usual error shape, header and
// body, and a resend by the SDK's own retryer makes a second Targets-form
// association: the double the function must avoid.
func TestErrorAfterCreateWire(t *testing.T) {
	s, _, url := newEnv(t, DefaultOptions())
	s.ErrorAfterCreate(1)
	resp, m := post(t, url, "AmazonSSM.CreateAssociationBatch", `{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"`+node1+`"}]}`)
	if resp.StatusCode != 500 || resp.Header.Get("X-Amzn-ErrorType") != "InternalServerError" || m["__type"] != "InternalServerError" || m["message"] == "" {
		t.Fatalf("got %d %q %v", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), m)
	}
	if len(s.Ledger()) != 1 {
		t.Fatal("the call did not execute")
	}

	s.ErrorAfterCreate(1)
	out, err := batch(t, newClient(url, fastRetryer(3)), shellEntry(node2))
	if err != nil || len(out.Successful) != 1 {
		t.Fatalf("retried call: %v", err)
	}
	if st := s.Stats(); st.ErrorsAfterCreate != 2 || st.ServerErrors != 2 || st.DoubleAssociations != 1 || len(s.Ledger()) != 3 {
		t.Fatalf("stats %+v, doubles %+v", st, s.Doubles())
	}
}

// TestAfterCreateOnlyWhenExecuted: a call refused as a whole (throttled,
// invalid, a node twice) executes nothing and consumes no after-create
// fault; other operations never get one.
func TestAfterCreateOnlyWhenExecuted(t *testing.T) {
	t.Run("scripted", func(t *testing.T) {
		s, c, _ := newEnv(t, DefaultOptions())
		s.DropAfterCreate(1)
		s.ErrorAfterCreate(1)
		s.FailCalls(1, "ThrottlingException", 0)
		_, err := batch(t, c, shellEntry(node1))
		apiErr(t, err, "ThrottlingException")
		bad := shellEntry(node1)
		bad.Name = aws.String("x") // too short: ValidationException
		_, err = batch(t, c, bad)
		apiErr(t, err, "ValidationException")
		_, err = batch(t, c, shellEntry(node1), shellEntry(node1))
		apiErr(t, err, "DuplicateInstanceId")
		_, err = c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("x")})
		apiErr(t, err, "ValidationException")
		if _, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{}); err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(s.Ledger()) != 0 {
			t.Fatal("a refused call executed")
		}
		// The queue is intact and consumed in order: drop, then 500.
		_, err = batch(t, c, shellEntry(node1))
		assertTransportError(t, err)
		_, err = batch(t, c, shellEntry(node2))
		apiErr(t, err, "InternalServerError")
		if out, err := batch(t, c, shellEntry(node3)); err != nil || len(out.Successful) != 1 {
			t.Fatalf("third call: %v", err)
		}
		if st := s.Stats(); st.DroppedConnections != 1 || st.ErrorsAfterCreate != 1 || len(s.Ledger()) != 3 {
			t.Fatalf("stats %+v", st)
		}
	})
	for _, tt := range answerLosses() {
		if tt.script != nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.ThrottleRate = 1
			s, c, _ := newEnv(t, opts)
			_, err := batch(t, c, shellEntry(node1))
			apiErr(t, err, "ThrottlingException")

			opts.ThrottleRate = 0
			s, c, _ = newEnv(t, opts)
			bad := shellEntry(node1)
			bad.Name = aws.String("x")
			_, err = batch(t, c, bad)
			apiErr(t, err, "ValidationException")
			if _, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{}); err != nil {
				t.Fatalf("list: %v", err)
			}
			if st := s.Stats(); tt.stat(st) != 0 || len(s.Ledger()) != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestLostAnswerRateSeeded: the same seed loses the same answers.
func TestLostAnswerRateSeeded(t *testing.T) {
	pattern := func() string {
		s, c, _ := newEnv(t, Options{LostAnswerRate: 0.5, Seed: 9})
		p := ""
		for i := range 12 {
			_, err := batch(t, c, shellEntry(fmt.Sprintf("i-%017d", i)))
			p += map[bool]string{true: "x", false: "."}[err != nil]
		}
		if st := s.Stats(); st.DroppedConnections == 0 || st.DroppedConnections == 12 || st.AssociationsCreated != 12 {
			t.Fatalf("rate 0.5 over 12 calls: %+v", st)
		}
		return p
	}
	if a, b := pattern(), pattern(); a != b {
		t.Fatalf("seeded lost answers differ: %s %s", a, b)
	}
}
