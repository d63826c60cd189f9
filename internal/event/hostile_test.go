package event_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/handler"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// refusingEngine is the engine of the hostile-input tests: no malformed
// request may reach it.
type refusingEngine struct{ calls int }

func (e *refusingEngine) Run(_ context.Context, j associate.Job) (report.Result, error) {
	e.calls++
	r := report.Result{Summary: report.Summary{Requested: len(j.Request.Items)}}
	for _, it := range j.Request.Items {
		r.Failed = append(r.Failed, report.Failure{Entry: it.Entry.Redacted(), Fault: report.FaultClient, Message: "fake"})
	}
	r.Tally()
	return r, nil
}

func (e *refusingEngine) DryRun(_ context.Context, req *request.Request) (report.Plan, error) {
	e.calls++
	return report.Plan{DryRun: true, Summary: report.PlanSummary{Requested: len(req.Items)}}, nil
}

func hostileHandler(t testing.TB) (*handler.Handler, *refusingEngine) {
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
	eng := &refusingEngine{}
	return handler.New(eng, cfg, slog.New(slog.DiscardHandler), &bytes.Buffer{}), eng
}

// rejection is what an invocation was answered, when it was a rejection.
type rejection struct {
	status int
	text   string // the message and every path and message, for matching
}

// invokeHostile runs payload through the handler and checks that it was
// rejected as the caller's mistake: a *handler.InvalidRequestError with
// status 400/413 for direct and EventBridge invocations, an HTTP 400/413
// with a JSON {"message", "errors"} body, errors never empty, for API ones —
// never a panic, a 5xx, another error, or a call to the engine.
func invokeHostile(t *testing.T, h *handler.Handler, eng *refusingEngine, what string, payload []byte) (rej rejection) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s: panic: %v", what, p)
		}
	}()
	calls := eng.calls
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.Invoke(ctx, payload)
	if eng.calls != calls {
		t.Errorf("%s: the request reached the engine", what)
	}
	if err != nil {
		var ire *handler.InvalidRequestError
		if !errors.As(err, &ire) {
			t.Errorf("%s: error %T (%v), want *handler.InvalidRequestError", what, err, err)
			return
		}
		if ire.Status != http.StatusBadRequest && ire.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: InvalidRequestError status %d", what, ire.Status)
		}
		if strings.TrimSpace(ire.Msg) == "" {
			t.Errorf("%s: InvalidRequestError without a message", what)
		}
		text := ire.Msg
		for _, fe := range ire.Errors {
			text += " | " + fe.Path + ": " + fe.Message
		}
		return rejection{ire.Status, text}
	}
	var status int
	var body string
	switch r := out.(type) {
	case events.APIGatewayProxyResponse:
		status, body = r.StatusCode, r.Body
	case events.APIGatewayV2HTTPResponse:
		status, body = r.StatusCode, r.Body
	default:
		b, _ := json.Marshal(out)
		t.Errorf("%s: answered %T %.300s, want a rejection", what, out, b)
		return
	}
	if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
		t.Errorf("%s: HTTP %d %.300s, want 400 or 413", what, status, body)
	}
	var eb struct {
		Message string `json:"message"`
		Errors  []struct {
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &eb); err != nil || strings.TrimSpace(eb.Message) == "" {
		t.Errorf("%s: body %.300q is not {\"message\": …}", what, body)
	}
	if len(eb.Errors) == 0 {
		t.Errorf("%s: HTTP %d %.300s lists no errors", what, status, body)
	}
	text := eb.Message
	for _, fe := range eb.Errors {
		if fe.Message == "" {
			t.Errorf("%s: problem at %q without a message", what, fe.Path)
		}
		text += " | " + fe.Path + ": " + fe.Message
	}
	if len(body) > 64<<10 {
		t.Errorf("%s: a %d-byte error body", what, len(body))
	}
	return rejection{status, text}
}

func restPost(body string, b64 bool) []byte {
	b, _ := json.Marshal(events.APIGatewayProxyRequest{
		Resource: "/associations", Path: "/associations", HTTPMethod: "POST",
		Headers:        map[string]string{"Content-Type": "application/json"},
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "hostile", Stage: "prod", HTTPMethod: "POST"},
		Body:           body, IsBase64Encoded: b64,
	})
	return b
}

func httpPost(body string, b64 bool) []byte {
	b, _ := json.Marshal(events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /associations", RawPath: "/associations",
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "hostile",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/associations"}},
		Body: body, IsBase64Encoded: b64,
	})
	return b
}

func eventBridge(detail []byte) []byte {
	return []byte(`{"version":"0","id":"hostile","detail-type":"Associate Nodes","source":"ssm-association-batcher","account":"123456789012","time":"2024-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":` + string(detail) + `}`)
}

// names reports whether text contains one of the |-separated words of want
// (any case); an empty want matches anything.
func names(text, want string) bool {
	if want == "" {
		return true
	}
	for _, w := range strings.Split(want, "|") {
		if strings.Contains(strings.ToLower(text), strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// isEnvelope tells the corpus files that are whole events from those that
// are request bodies.
func isEnvelope(name string) bool {
	return strings.HasPrefix(name, "rest_") || strings.HasPrefix(name, "http_") || strings.HasPrefix(name, "eventbridge_")
}

// TestHostileCorpus runs every file of testdata/hostile as the direct
// payload, as the body of a REST API POST, as the base64 body of an HTTP API
// POST and (when it is an object) as an EventBridge detail; each must be
// rejected as the caller's mistake, and the direct answer must name the
// problem (testdata/hostile/expect.json holds a word it must contain).
func TestHostileCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "hostile")
	var expect map[string]string
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &expect); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, eng := hostileHandler(t)
	n := 0
	for _, f := range files {
		name := filepath.Base(f)
		if name == "expect.json" {
			continue
		}
		n++
		want, ok := expect[name]
		if !ok {
			t.Errorf("%s: not in expect.json", name)
		}
		payload, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			rej := invokeHostile(t, h, eng, "direct", payload)
			if !names(rej.text, want) {
				t.Errorf("direct: answer %q does not name %q", rej.text, want)
			}
			if utf8.Valid(payload) {
				rej := invokeHostile(t, h, eng, "REST API body", restPost(string(payload), false))
				if !isEnvelope(name) && !names(rej.text, want) {
					t.Errorf("REST API body: answer %q does not name %q", rej.text, want)
				}
			}
			invokeHostile(t, h, eng, "HTTP API base64 body", httpPost(base64.StdEncoding.EncodeToString(payload), true))
			if !isEnvelope(name) && len(bytes.TrimSpace(payload)) > 0 && bytes.TrimSpace(payload)[0] == '{' && json.Valid(payload) {
				invokeHostile(t, h, eng, "EventBridge detail", eventBridge(payload))
			}
		})
	}
	if n < 50 {
		t.Errorf("the corpus holds %d requests and events, want at least 50", n)
	}
}

// TestHostileLarge sends what is too big to keep in testdata: bodies over
// the size limit through every trigger, more entries or node IDs than
// MAX_ENTRIES, and multi-megabyte strings and arrays within the limit.
func TestHostileLarge(t *testing.T) {
	h, eng := hostileHandler(t)
	over := event.MaxBodyBytes + 1024
	bigBody := `{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0","AssociationName":"` + strings.Repeat("x", over) + `"}]}`
	entries := func(n int, entry string) string {
		return `{"Entries":[` + strings.TrimSuffix(strings.Repeat(entry+",", n), ",") + `]}`
	}
	ids := make([]string, 10001)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("i-%017x", i))
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		status  int
		want    string
	}{
		{"direct over the limit", []byte(bigBody), 413, "limit"},
		{"REST body over the limit", restPost(bigBody, false), 413, "limit"},
		{"REST base64 body over the limit", restPost(base64.StdEncoding.EncodeToString([]byte(bigBody)), true), 413, "limit"},
		{"HTTP base64 body over the limit", httpPost(base64.StdEncoding.EncodeToString([]byte(bigBody)), true), 413, "limit"},
		{"EventBridge detail over the limit", eventBridge([]byte(bigBody)), 413, "limit"},
		{"10,001 entries", []byte(entries(10001, `{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}`)), 400, "Entries"},
		{"10,001 fan-out node IDs", []byte(`{"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":[` + strings.Join(ids, ",") + `]}`), 400, "InstanceIds"},
		{"5,000 null entries", []byte(entries(5000, "null")), 400, "Entries[0]"},
		{"5 MB string of the wrong type", []byte(`{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0","Targets":"` + strings.Repeat("A", 5<<20) + `"}]}`), 400, "Entries[0].Targets"},
		{"array of a million zeros", []byte(`{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0","Targets":[` + strings.TrimSuffix(strings.Repeat("0,", 1<<20), ",") + `]}]}`), 400, "Targets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rej := invokeHostile(t, h, eng, tc.name, tc.payload)
			if rej.status != tc.status {
				t.Errorf("status %d, want %d (%.200s)", rej.status, tc.status, rej.text)
			}
			if !strings.Contains(rej.text, tc.want) {
				t.Errorf("answer %.300q does not name %q", rej.text, tc.want)
			}
		})
	}
}

// FuzzHandler feeds the handler arbitrary payloads (seeded with the hostile
// corpus) and checks that it never panics, never calls the engine with an
// invalid request, and answers either a result, an API response of status
// 200, 400 or 413, or one of the handler's own error types.
func FuzzHandler(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "hostile", "*.json"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil && len(b) < 64<<10 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, _ := hostileHandler(t)
		out, err := h.Invoke(context.Background(), payload)
		if err != nil {
			var ire *handler.InvalidRequestError
			var ie *handler.IncompleteError
			if !errors.As(err, &ire) && !errors.As(err, &ie) {
				t.Fatalf("error %T: %v", err, err)
			}
			return
		}
		switch r := out.(type) {
		case events.APIGatewayProxyResponse:
			if r.StatusCode != 200 && r.StatusCode != 400 && r.StatusCode != 413 {
				t.Fatalf("HTTP %d %s", r.StatusCode, r.Body)
			}
		case events.APIGatewayV2HTTPResponse:
			if r.StatusCode != 200 && r.StatusCode != 400 && r.StatusCode != 413 {
				t.Fatalf("HTTP %d %s", r.StatusCode, r.Body)
			}
		}
	})
}
