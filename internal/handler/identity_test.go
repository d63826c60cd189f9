package handler

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
)

const (
	account    = "123456789012"
	opsSession = "arn:aws:sts::123456789012:assumed-role/OpsAdmin/ops-admin"
	ciUser     = "arn:aws:iam::123456789012:user/deploy/ci"
)

// signedREST is a REST API (payload 1.0) event signed by userArn ("" for
// none), for method on /associations or, with a jobID, the status route.
func signedREST(method, body, userArn, jobID string) json.RawMessage {
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: method, Resource: "/associations", Path: "/associations", Body: body,
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "rest-req-1", HTTPMethod: method,
			Identity: events.APIGatewayRequestIdentity{UserArn: userArn, AccountID: account}},
	}
	if jobID != "" {
		ev.Resource, ev.Path, ev.PathParameters = "/associations/{jobId}", "/associations/"+jobID, map[string]string{"jobId": jobID}
	}
	b, _ := json.Marshal(ev)
	return b
}

// signedHTTP is an HTTP API (payload 2.0) event signed by userArn.
func signedHTTP(method, body, userArn, jobID string) json.RawMessage {
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " /associations", RawPath: "/associations",
		Body: base64.StdEncoding.EncodeToString([]byte(body)), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "http-req-1",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: "/associations"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: userArn, AccountID: account}}},
	}
	if jobID != "" {
		ev.RouteKey, ev.RawPath, ev.PathParameters = "GET /associations/{jobId}", "/associations/"+jobID, map[string]string{"jobId": jobID}
	}
	b, _ := json.Marshal(ev)
	return b
}

// logLines parses the handler's JSON log lines.
func logLines(t *testing.T, logs *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func lineWith(t *testing.T, logs *bytes.Buffer, msg string) map[string]any {
	t.Helper()
	for _, l := range logLines(t, logs) {
		if l["msg"] == msg {
			return l
		}
	}
	t.Fatalf("no log line %q in %s", msg, logs)
	return nil
}

var callerCases = []struct {
	trigger string
	payload func(body string) json.RawMessage
	want    event.Caller
	log     string
}{
	{"REST", func(b string) json.RawMessage { return signedREST("POST", b, opsSession, "") },
		event.Caller{Kind: event.RESTAPI, ARN: opsSession, Account: account}, "api-rest " + opsSession + " account " + account},
	{"HTTPAPI", func(b string) json.RawMessage { return signedHTTP("POST", b, ciUser, "") },
		event.Caller{Kind: event.HTTPAPI, ARN: ciUser, Account: account}, "api-http " + ciUser + " account " + account},
	{"EventBridge", func(b string) json.RawMessage { return eventBridgeEvent(b) },
		event.Caller{Kind: event.EventBridge, Account: account, Source: "ssm-association-batcher", EventID: "e1"},
		"eventbridge account " + account + " source ssm-association-batcher event e1"},
	{"Direct", func(b string) json.RawMessage { return json.RawMessage(b) }, event.Caller{Kind: event.Direct}, "direct"},
}

// TestCallerIdentityInTheSummaryLog: the summary line of a request names
// its caller, for each kind of trigger.
func TestCallerIdentityInTheSummaryLog(t *testing.T) {
	for _, tt := range callerCases {
		t.Run(tt.trigger, func(t *testing.T) {
			h, logs, _ := newHandler(t, &fakeEngine{res: succeedAll})
			if _, err := h.Invoke(context.Background(), tt.payload(validBody)); err != nil {
				t.Fatal(err)
			}
			line := lineWith(t, logs, "association request done")
			if line["caller"] != tt.log {
				t.Errorf("caller %q, want %q", line["caller"], tt.log)
			}
			if strings.Contains(logs.String(), secret) {
				t.Error("a parameter value reached the log")
			}
		})
	}
}

// TestCallerIdentityOfAJob: a job is submitted with its caller, and the
// submission's log line names it.
func TestCallerIdentityOfAJob(t *testing.T) {
	const async = `{"Async":true,"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-0123456789abcdef0"]}`
	for _, tt := range callerCases {
		t.Run(tt.trigger, func(t *testing.T) {
			h, logs, _ := newHandler(t, &fakeEngine{})
			fj := &fakeJobs{}
			h.WithJobs(fj, fj)
			if _, err := h.Invoke(context.Background(), tt.payload(async)); err != nil {
				t.Fatal(err)
			}
			if fj.by != tt.want {
				t.Errorf("submitted by %+v, want %+v", fj.by, tt.want)
			}
			if line := lineWith(t, logs, "job submitted"); line["caller"] != tt.log {
				t.Errorf("caller %q, want %q", line["caller"], tt.log)
			}
		})
	}
}

// TestCallerIdentityOfARejection: a rejected request's log line names the
// caller too.
func TestCallerIdentityOfARejection(t *testing.T) {
	h, logs, _ := newHandler(t, &fakeEngine{})
	if _, err := h.Invoke(context.Background(), signedREST("POST", `{"Entries": 3}`, opsSession, "")); err != nil {
		t.Fatal(err)
	}
	if line := lineWith(t, logs, "request rejected"); line["caller"] != "api-rest "+opsSession+" account "+account {
		t.Errorf("caller %q", line["caller"])
	}
}
