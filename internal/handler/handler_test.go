package handler

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// fakeEngine records the job and answers with a canned result.
type fakeEngine struct {
	dryRuns int
	job     associate.Job
	res     func(associate.Job) report.Result
	err     error
	panic   any // Run panics with it, when set
}

func (f *fakeEngine) Run(_ context.Context, j associate.Job) (report.Result, error) {
	f.job = j
	if f.panic != nil {
		panic(f.panic)
	}
	var r report.Result
	if f.res != nil {
		r = f.res(j)
	}
	r.Summary.Requested = len(j.Request.Items)
	r.Tally()
	return r, f.err
}

func (f *fakeEngine) DryRun(_ context.Context, req *request.Request) (report.Plan, error) {
	f.dryRuns++
	p := report.Plan{DryRun: true}
	for _, it := range req.Items {
		p.Actions = append(p.Actions, report.Action{Entry: it.Entry, Action: report.ActionCreate})
	}
	p.Summary.Requested, p.Summary.Create = len(req.Items), len(req.Items)
	return p, f.err
}

// succeedAll is an engine answer: every item successful.
func succeedAll(j associate.Job) report.Result {
	var r report.Result
	for _, it := range j.Request.Items {
		r.Successful = append(r.Successful, report.Association{AssociationId: "a", Name: it.Entry.Name, Parameters: it.Entry.Parameters})
	}
	return r
}

const secret = "s3cr3t-value-never-logged"

var validBody = `{"Entries":[{"Name":"AWS-RunShellScript","InstanceId":"i-0123456789abcdef0","Parameters":{"commands":["echo ` + secret + `"]}}]}`

func newHandler(t *testing.T, eng *fakeEngine) (*Handler, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		if k == "DEDUPE_TABLE" {
			return "t", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs, metrics bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(eng, cfg, log, &metrics), &logs, &metrics
}

func restEvent(body string) json.RawMessage {
	b, _ := json.Marshal(events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Resource: "/associations", Path: "/associations", Body: body,
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "r1", HTTPMethod: "POST"},
	})
	return b
}

func httpEvent(body string) json.RawMessage {
	b, _ := json.Marshal(events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /associations", RawPath: "/associations",
		Body: base64.StdEncoding.EncodeToString([]byte(body)), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "r2",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/associations"}},
	})
	return b
}

func eventBridgeEvent(detail string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"version":"0","id":"e1","detail-type":"Associate Nodes","source":"ssm-association-batcher","account":"123456789012","time":"2026-11-25T10:00:00Z","region":"us-east-1","resources":[],"detail":%s}`, detail))
}

func TestAnswersPerTrigger(t *testing.T) {
	tests := []struct {
		name       string
		payload    json.RawMessage
		engineErr  error
		res        func(associate.Job) report.Result
		wantStatus int    // API triggers
		wantErr    string // other triggers: error type, "" for none
	}{
		{"rest ok", restEvent(validBody), nil, succeedAll, 200, ""},
		{"rest malformed", restEvent(`{"Entries": [`), nil, nil, 400, ""},
		{"rest no entries", restEvent(`{"Entries": []}`), nil, nil, 400, ""},
		{"rest unavailable", restEvent(validBody), fmt.Errorf("x: %w", associate.ErrUnavailable), nil, 503, ""},
		{"http ok", httpEvent(validBody), nil, succeedAll, 200, ""},
		{"http malformed", httpEvent(`nope`), nil, nil, 400, ""},
		{"direct ok", json.RawMessage(validBody), nil, succeedAll, 0, ""},
		{"direct malformed", json.RawMessage(`{"Entries": 3}`), nil, nil, 0, "*handler.InvalidRequestError"},
		{"direct unavailable", json.RawMessage(validBody), associate.ErrUnavailable, nil, 0, "*handler.UnavailableError"},
		{"eventbridge ok", eventBridgeEvent(validBody), nil, succeedAll, 0, ""},
		{"eventbridge incomplete", eventBridgeEvent(validBody), nil, func(j associate.Job) report.Result {
			return report.Result{Unprocessed: []report.Unprocessed{{Entry: j.Request.Items[0].Entry, Reason: "deadline"}}}
		}, 0, "*handler.IncompleteError"},
		{"eventbridge client failure is final", eventBridgeEvent(validBody), nil, func(j associate.Job) report.Result {
			return report.Result{Failed: []report.Failure{{Entry: j.Request.Items[0].Entry, Fault: report.FaultClient, Message: "no"}}}
		}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs, _ := newHandler(t, &fakeEngine{res: tt.res, err: tt.engineErr})
			out, err := h.Invoke(context.Background(), tt.payload)
			var status int
			var body string
			switch r := out.(type) {
			case events.APIGatewayProxyResponse:
				status, body = r.StatusCode, r.Body
			case events.APIGatewayV2HTTPResponse:
				status, body = r.StatusCode, r.Body
			}
			if tt.wantStatus != 0 {
				if err != nil || status != tt.wantStatus {
					t.Fatalf("status %d err %v, want %d", status, err, tt.wantStatus)
				}
				if !json.Valid([]byte(body)) {
					t.Fatalf("body not JSON: %s", body)
				}
			} else {
				got := ""
				if err != nil {
					got = fmt.Sprintf("%T", err)
				}
				if got != tt.wantErr {
					t.Fatalf("error %s (%v), want %q", got, err, tt.wantErr)
				}
				if err == nil {
					if _, ok := out.(report.Result); !ok {
						t.Fatalf("answer %T, want report.Result", out)
					}
				}
			}
			for _, s := range []string{body, logs.String(), fmt.Sprint(err)} {
				if strings.Contains(s, secret) {
					t.Fatalf("a parameter value leaked: %s", s)
				}
			}
		})
	}
}

func TestBadRequestNamesTheField(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{})
	out, _ := h.Invoke(context.Background(), restEvent(`{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":7}]}`))
	r := out.(events.APIGatewayProxyResponse)
	var body errorBody
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 400 || len(body.Errors) == 0 || body.Errors[0].Path != "Entries[0].InstanceId" {
		t.Fatalf("answer %d %s", r.StatusCode, r.Body)
	}
}

func TestParametersAreRedactedInAnswers(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{res: succeedAll})
	out, err := h.Invoke(context.Background(), json.RawMessage(validBody))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	if strings.Contains(string(b), secret) || !strings.Contains(string(b), `"commands":["****"]`) {
		t.Fatalf("answer %s", b)
	}
}

func TestBudgets(t *testing.T) {
	eng := &fakeEngine{res: succeedAll}
	h, _, _ := newHandler(t, eng)
	lc := &lambdacontext.LambdaContext{AwsRequestID: "req-1"}
	ctx, cancel := context.WithTimeout(lambdacontext.NewContext(context.Background(), lc), 5*time.Minute)
	defer cancel()
	lambdaEnd, _ := ctx.Deadline()

	start := time.Now()
	if _, err := h.Invoke(ctx, restEvent(validBody)); err != nil {
		t.Fatal(err)
	}
	// API Gateway gives up long before the Lambda: work to API_TIMEOUT.
	if d := eng.job.Deadline.Sub(start); d > 25*time.Second || d < 20*time.Second {
		t.Errorf("API deadline %s after start, want just under 25s", d)
	}
	// Its claims end with its budget plus a margin, not with the Lambda.
	if d := eng.job.LeaseUntil.Sub(start); d < 25*time.Second || d > 31*time.Second {
		t.Errorf("API lease %s after start, want the 25s budget plus a margin", d)
	}
	if !strings.HasPrefix(eng.job.Owner, "req-1/") {
		t.Errorf("owner %q", eng.job.Owner)
	}
	first := eng.job.Owner

	if _, err := h.Invoke(ctx, json.RawMessage(validBody)); err != nil {
		t.Fatal(err)
	}
	if d := lambdaEnd.Sub(eng.job.Deadline); d <= 0 || d > 2*time.Second {
		t.Errorf("direct deadline %s before the Lambda's, want at most 2s", d)
	}
	if !eng.job.LeaseUntil.Equal(lambdaEnd) {
		t.Errorf("direct lease %v, want the Lambda deadline %v", eng.job.LeaseUntil, lambdaEnd)
	}
	if eng.job.Owner == first {
		t.Error("two invocations with one request ID share an owner")
	}
}

func TestSummaryLogAndMetrics(t *testing.T) {
	h, logs, metrics := newHandler(t, &fakeEngine{res: succeedAll})
	if _, err := h.Invoke(context.Background(), json.RawMessage(validBody)); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatalf("want one JSON log line, got %q: %v", logs.String(), err)
	}
	if line["msg"] != "association request done" || line["successful"] != float64(1) || line["source"] != "direct" {
		t.Errorf("log line %v", line)
	}
	if !strings.Contains(metrics.String(), `"Successful":1`) || strings.Count(metrics.String(), "\n") != 1 {
		t.Errorf("metrics %q", metrics.String())
	}
}

func TestUnavailableUnwraps(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{err: associate.ErrUnavailable})
	_, err := h.Invoke(context.Background(), json.RawMessage(validBody))
	if !errors.Is(err, associate.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
}

func TestDryRunRunsNothingAndStartsNoJob(t *testing.T) {
	eng := &fakeEngine{res: succeedAll}
	h, _, _ := newHandler(t, eng)
	jobs := &countingSubmitter{}
	h.WithJobs(jobs, nil)
	body := `{"DryRun":true,"Async":true,"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}]}`
	out, err := h.Invoke(context.Background(), restEvent(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	if eng.dryRuns != 1 || eng.job.Request != nil || jobs.n != 0 {
		t.Fatalf("dry runs %d, run %v, jobs %d: a dry run must only plan", eng.dryRuns, eng.job.Request != nil, jobs.n)
	}
	if !strings.Contains(string(b), `\"DryRun\":true`) || !strings.Contains(string(b), `\"Action\":\"create\"`) {
		t.Errorf("answer %s", b)
	}
}

type countingSubmitter struct{ n int }

func (c *countingSubmitter) Submit(context.Context, *request.Request, event.Caller) (jobs.Accepted, error) {
	c.n++
	return jobs.Accepted{}, nil
}

// A 503 never carries the cause's text: it can name endpoints and keys.
func TestUnavailableHidesTheCause(t *testing.T) {
	cause := errors.Join(associate.ErrUnavailable, errors.New("claim node#AWS-UpdateSSMAgent#i-1: dial tcp 127.0.0.1:8000: connect: connection refused"))
	eng := &fakeEngine{res: succeedAll, err: cause}
	h, logs, _ := newHandler(t, eng)
	out, err := h.Invoke(context.Background(), restEvent(validBody))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	if !strings.Contains(string(b), `"statusCode":503`) || strings.Contains(string(b), "127.0.0.1") || strings.Contains(string(b), "node#") {
		t.Errorf("503 answer %s", b)
	}
	if _, err := h.Invoke(context.Background(), json.RawMessage(validBody)); err == nil || strings.Contains(err.Error(), "127.0.0.1") || !errors.Is(err, associate.ErrUnavailable) {
		t.Errorf("direct invoke error %v", err)
	}
	if !strings.Contains(logs.String(), "127.0.0.1") {
		t.Error("the log lost the cause")
	}
}

// TestMetricsHoldAtScale: an invocation of 1,500 SSM calls writes one EMF
// line whose latency metric has at most 100 values (CloudWatch drops the
// whole line otherwise), with every call counted.
func TestMetricsHoldAtScale(t *testing.T) {
	h, _, metrics := newHandler(t, &fakeEngine{res: func(j associate.Job) report.Result {
		r := succeedAll(j)
		for i := range 1500 {
			r.CallLatencies = append(r.CallLatencies, time.Duration(20+i%700)*time.Millisecond+time.Duration(i)*time.Microsecond)
		}
		return r
	}})
	if _, err := h.Invoke(context.Background(), json.RawMessage(validBody)); err != nil {
		t.Fatal(err)
	}
	if strings.Count(metrics.String(), "\n") != 1 {
		t.Fatalf("want one EMF line, got %q", metrics.String())
	}
	var line struct {
		SSMCallLatency struct {
			Values   []float64
			Counts   []int
			Min, Max float64
			Count    int
		}
	}
	if err := json.Unmarshal(metrics.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	l := line.SSMCallLatency
	total := 0
	for _, c := range l.Counts {
		total += c
	}
	if n := len(l.Values); n == 0 || n > 100 || len(l.Counts) != n || total != 1500 || l.Count != 1500 || l.Min != 20 || l.Max != 720.399 {
		t.Errorf("%d values, %d counts summing to %d, Count %d, Min %v, Max %v", n, len(l.Counts), total, l.Count, l.Min, l.Max)
	}
}
