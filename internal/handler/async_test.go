package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

type fakeJobs struct {
	submitted   *request.Request
	by          event.Caller
	err         error
	metas       map[string]jobs.Meta
	token       string
	metaErr     error // Meta's answer for every job
	outcomesErr error
}

func (f *fakeJobs) Submit(_ context.Context, r *request.Request, by event.Caller) (jobs.Accepted, error) {
	f.submitted, f.by = r, by
	return jobs.Accepted{JobID: "job-1", State: jobs.StateQueued, Chunks: 2, Counts: jobs.Counts{Requested: len(r.Items)}}, f.err
}

func (f *fakeJobs) Meta(_ context.Context, id string) (jobs.Meta, error) {
	if f.metaErr != nil {
		return jobs.Meta{}, f.metaErr
	}
	m, ok := f.metas[id]
	if !ok {
		return jobs.Meta{}, jobs.ErrNoJob
	}
	return m, nil
}

func (f *fakeJobs) Outcomes(_ context.Context, id string, limit int32, token string) (jobs.Page, error) {
	if f.outcomesErr != nil {
		return jobs.Page{}, f.outcomesErr
	}
	if token != "" && token != f.token {
		return jobs.Page{}, jobs.ErrBadToken
	}
	return jobs.Page{Outcomes: report.Result{Successful: []report.Association{{AssociationId: "a", Name: "D"}}}, NextToken: "next"}, nil
}

func bigBody(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("i-%017x", i))
	}
	return `{"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":[` + strings.Join(ids, ",") + `]}`
}

func restEventWithHost(method, body string, pathParams map[string]string, query map[string]string) json.RawMessage {
	b, _ := json.Marshal(events.APIGatewayProxyRequest{
		HTTPMethod: method, Resource: "/associations", Path: "/associations", Body: body,
		Headers: map[string]string{"Host": "abc.execute-api.us-east-1.amazonaws.com"}, PathParameters: pathParams,
		QueryStringParameters: query,
		RequestContext:        events.APIGatewayProxyRequestContext{RequestID: "r1", Stage: "prod"},
	})
	return b
}

func TestLargeRequestsBecomeJobs(t *testing.T) {
	tests := []struct {
		name    string
		payload json.RawMessage
		wantJob bool
	}{
		// Defaults: 10 entries a call, 5 calls a second, 25 s API budget:
		// 1,000 entries take 20 s, over 80 % of 25 s.
		{"small API request runs now", restEventWithHost("POST", bigBody(900), nil, nil), false},
		{"large API request becomes a job", restEventWithHost("POST", bigBody(1100), nil, nil), true},
		{"Async asks for a job", restEventWithHost("POST", `{"Async":true,"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-0123456789abcdef0"]}`, nil, nil), true},
		{"direct request with a long deadline runs now", json.RawMessage(bigBody(1100)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := &fakeEngine{res: succeedAll}
			h, _, _ := newHandler(t, eng)
			fj := &fakeJobs{}
			h.WithJobs(fj, fj)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			out, err := h.Invoke(ctx, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := fj.submitted != nil; got != tt.wantJob {
				t.Fatalf("submitted %v, want %v", got, tt.wantJob)
			}
			if !tt.wantJob {
				return
			}
			r := out.(events.APIGatewayProxyResponse)
			var acc jobs.Accepted
			if err := json.Unmarshal([]byte(r.Body), &acc); err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != 202 || acc.JobID != "job-1" || acc.StatusURL != "https://abc.execute-api.us-east-1.amazonaws.com/prod/associations/job-1" {
				t.Fatalf("answer %d %s", r.StatusCode, r.Body)
			}
		})
	}
}

func TestAsyncWithoutJobsIsRefused(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{})
	out, _ := h.Invoke(context.Background(), restEventWithHost("POST", `{"Async":true,"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-0123456789abcdef0"]}`, nil, nil))
	if r := out.(events.APIGatewayProxyResponse); r.StatusCode != 400 || !strings.Contains(r.Body, "Async") {
		t.Fatalf("answer %d %s", r.StatusCode, r.Body)
	}
}

func TestSubmitFailureIs503(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{})
	fj := &fakeJobs{err: errors.New("queue unreachable")}
	h.WithJobs(fj, fj)
	out, _ := h.Invoke(context.Background(), restEventWithHost("POST", `{"Async":true,"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-0123456789abcdef0"]}`, nil, nil))
	if r := out.(events.APIGatewayProxyResponse); r.StatusCode != 503 {
		t.Fatalf("answer %d %s", r.StatusCode, r.Body)
	}
}

func TestStatusRoute(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{})
	fj := &fakeJobs{metas: map[string]jobs.Meta{"job-1": {JobID: "job-1", State: jobs.StateRunning, Chunks: 3, ChunksDone: 1}}, token: "tok"}
	h.WithJobs(fj, fj)
	tests := []struct {
		id, token, pageSize string
		want                int
	}{
		{"job-1", "", "", 200},
		{"job-1", "tok", "5", 200},
		{"job-1", "forged", "", 400},
		{"job-1", "", "0", 400},
		{"nope", "", "", 404},
	}
	for _, tt := range tests {
		q := map[string]string{}
		if tt.token != "" {
			q["nextToken"] = tt.token
		}
		if tt.pageSize != "" {
			q["pageSize"] = tt.pageSize
		}
		out, err := h.Invoke(context.Background(), restEventWithHost("GET", "", map[string]string{"jobId": tt.id}, q))
		if err != nil {
			t.Fatal(err)
		}
		r := out.(events.APIGatewayProxyResponse)
		if r.StatusCode != tt.want {
			t.Errorf("%+v: %d %s", tt, r.StatusCode, r.Body)
			continue
		}
		if tt.want == 200 {
			var st struct {
				JobId, State, NextToken string
				Outcomes                report.Result
			}
			if err := json.Unmarshal([]byte(r.Body), &st); err != nil || st.JobId != "job-1" || st.State != jobs.StateRunning || st.NextToken != "next" || len(st.Outcomes.Successful) != 1 {
				t.Errorf("status %s (%v)", r.Body, err)
			}
		}
	}
}
