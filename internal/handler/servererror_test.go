package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

// dynamoDown is DynamoDB unreachable as the SDK reports it: the error text
// names the table's ARN, the endpoint and a claim key.
var dynamoDown = errors.Join(associate.ErrUnavailable, errors.New(
	`claim node#AWS-UpdateSSMAgent#i-0123456789abcdef0: operation error DynamoDB: UpdateItem, `+
		`https response error StatusCode: 0, RequestID: , ResourceNotFoundException: arn:aws:dynamodb:us-east-1:123456789012:table/claims: `+
		`dial tcp 127.0.0.1:8000: connect: connection refused`))

var leaks = []string{"arn:aws:dynamodb:", "127.0.0.1:8000", "node#", "ResourceNotFoundException", "connection refused", "123456789012"}

// TestServerErrorBody: every 5xx says what happened in one fixed sentence
// and gives the request IDs, and carries no AWS error text, ARN, endpoint
// or key, whichever route failed; the log line has the details.
func TestServerErrorBody(t *testing.T) {
	const asyncBody = `{"Async":true,"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-0123456789abcdef0"]}`
	const dryBody = `{"DryRun":true,"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-0123456789abcdef0"]}`
	tests := []struct {
		name    string
		eng     *fakeEngine
		jobs    *fakeJobs
		payload json.RawMessage
		status  int
		message string
		apiReq  string
	}{
		{"DynamoDB unreachable, REST", &fakeEngine{err: dynamoDown}, nil, signedREST("POST", validBody, opsSession, ""), 503, "a dependency (DynamoDB or SSM) could not be reached and nothing was done; send the request again", "rest-req-1"},
		{"DynamoDB unreachable, HTTP API", &fakeEngine{err: dynamoDown}, nil, signedHTTP("POST", validBody, ciUser, ""), 503, "a dependency (DynamoDB or SSM) could not be reached and nothing was done; send the request again", "http-req-1"},
		{"dry run", &fakeEngine{err: dynamoDown}, nil, signedREST("POST", dryBody, opsSession, ""), 503, "the dedupe table could not be read; nothing was done, send the request again", "rest-req-1"},
		{"job submission", &fakeEngine{}, &fakeJobs{err: dynamoDown}, signedREST("POST", asyncBody, opsSession, ""), 503, "the job could not be submitted; send the request again", "rest-req-1"},
		{"job status", &fakeEngine{}, &fakeJobs{metaErr: dynamoDown}, signedREST("GET", "", opsSession, "job-1"), 503, "job status unavailable; try again", "rest-req-1"},
		{"job outcomes", &fakeEngine{}, &fakeJobs{outcomesErr: dynamoDown, metas: map[string]jobs.Meta{"job-1": {JobID: "job-1",
			SubmittedBy: event.Caller{Kind: event.RESTAPI, ARN: opsSession}}}}, signedREST("GET", "", opsSession, "job-1"), 503, "job outcomes unavailable; try again", "rest-req-1"},
		{"another engine error", &fakeEngine{err: errors.New("unexpected: " + dynamoDown.Error())}, nil, signedHTTP("POST", validBody, ciUser, ""), 500, internalMessage, "http-req-1"},
		{"panic", &fakeEngine{panic: fmt.Sprintf("boom %s %s", dynamoDown, secret)}, nil, signedREST("POST", validBody, opsSession, ""), 500, internalMessage, "rest-req-1"},
		{"runtime panic", &fakeEngine{panic: runtimeError()}, nil, signedREST("POST", validBody, opsSession, ""), 500, internalMessage, "rest-req-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, logs, _ := newHandler(t, tt.eng)
			if tt.jobs != nil {
				h.WithJobs(tt.jobs, tt.jobs)
			}
			ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-req-7"})
			out, err := h.Invoke(ctx, tt.payload)
			status, body := apiAnswer(t, out, err)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"message": tt.message, "requestId": "lambda-req-7", "apiRequestId": tt.apiReq}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("body %s, want %v", body, want)
			}
			for _, s := range append(leaks, secret) {
				if strings.Contains(body, s) {
					t.Errorf("body %s holds %q", body, s)
				}
			}
			// The log keeps the cause (a panic's stack; a runtime error's
			// text), never a parameter value.
			text := logs.String()
			switch tt.name {
			case "panic":
				if !strings.Contains(text, "panic of type string") || !strings.Contains(text, "goroutine") {
					t.Errorf("log %s", text)
				}
			case "runtime panic":
				if !strings.Contains(text, "index out of range") {
					t.Errorf("log %s", text)
				}
			default:
				for _, s := range []string{"arn:aws:dynamodb:", "127.0.0.1:8000", "node#"} {
					if !strings.Contains(text, s) {
						t.Errorf("the log lost %q: %s", s, text)
					}
				}
			}
			if strings.Contains(text, secret) {
				t.Errorf("a parameter value reached the log: %s", text)
			}
		})
	}
}

// TestServerErrorBodyOfADirectInvocation: a direct or EventBridge
// invocation gets an error of a fixed text, which reaches the invoker and
// Lambda's failure destinations.
func TestServerErrorBodyOfADirectInvocation(t *testing.T) {
	for _, eng := range []*fakeEngine{{err: dynamoDown}, {err: errors.New(dynamoDown.Error())}, {panic: dynamoDown.Error()}} {
		for _, payload := range []json.RawMessage{json.RawMessage(validBody), eventBridgeEvent(validBody)} {
			h, _, _ := newHandler(t, eng)
			out, err := h.Invoke(context.Background(), payload)
			if out != nil || err == nil {
				t.Fatalf("answer %v, error %v", out, err)
			}
			var ue *UnavailableError
			var ie *InternalError
			if !errors.As(err, &ue) && !errors.As(err, &ie) {
				t.Errorf("error %T", err)
			}
			for _, s := range leaks {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q holds %q", err, s)
				}
			}
		}
	}
}

// A 4xx keeps its field-level messages and gets no request IDs.
func TestServerErrorBodyNotOn4xx(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{})
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-req-7"})
	out, err := h.Invoke(ctx, signedREST("POST", `{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":7}]}`, opsSession, ""))
	status, body := apiAnswer(t, out, err)
	if status != 400 || !strings.Contains(body, `"path":"Entries[0].InstanceId"`) || strings.Contains(body, "requestId") {
		t.Fatalf("%d %s", status, body)
	}
}

func runtimeError() (err any) {
	defer func() { err = recover() }()
	var s []int
	_ = s[len(s)+1]
	return nil
}
