package handler

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
)

// apiAnswer is the status and body of an API Gateway answer of either
// payload format.
func apiAnswer(t *testing.T, out any, err error) (int, string) {
	t.Helper()
	if err != nil {
		t.Fatalf("error %v, want an HTTP answer", err)
	}
	switch r := out.(type) {
	case events.APIGatewayProxyResponse:
		return r.StatusCode, r.Body
	case events.APIGatewayV2HTTPResponse:
		return r.StatusCode, r.Body
	}
	t.Fatalf("answer %T, want an HTTP answer", out)
	return 0, ""
}

func restWith(method, body string, b64 bool, pathParams map[string]string) json.RawMessage {
	b, _ := json.Marshal(events.APIGatewayProxyRequest{
		HTTPMethod: method, Resource: "/associations", Path: "/associations", Body: body, IsBase64Encoded: b64,
		PathParameters: pathParams,
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "r1", HTTPMethod: method},
	})
	return b
}

// TestEveryRejectionListsErrors: every 4xx API answer is {"message",
// "errors": [≥1 {"path", "message"}]}, whether the body, its JSON, the
// method or the envelope was wrong, so that a client can always read
// errors[0]; a problem of the body as a whole is at path "".
func TestEveryRejectionListsErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload json.RawMessage
		status  int
		path    string
		message string // a fragment of errors[i].message at path
	}{
		{"not JSON", restEvent("{\"Entries\":\n  [1,]}"), 400, "", "unexpected character, expected a value at line 2, column 6 (byte offset 17)"},
		{"not JSON, HTTP API", httpEvent(`{"Entries":[`), 400, "", "unexpected end of JSON input at line 1, column 13 (byte offset 12)"},
		{"trailing data", restEvent(`{"Entries":[]} x`), 400, "", "unexpected data after the JSON value at line 1, column 16 (byte offset 15)"},
		{"not UTF-8", httpEvent("{\"Entries\":[{\"Name\":\"\xff\"}]}"), 400, "", "invalid UTF-8 at line 1, column 22 (byte offset 21)"},
		{"not an object", restEvent(`[]`), 400, "", "expected a JSON object, got array"},
		{"empty body", restEvent(``), 400, "", "request body is empty"},
		{"misspelt member", restEvent(`{"Entries":[{"Nmae":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}]}`), 400, "Entries[0].Nmae", `did you mean "Name"?`},
		{"wrong type", restEvent(`{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":7}]}`), 400, "Entries[0].InstanceId", "expected a string, got number"},
		{"method", restWith("DELETE", validBody, false, nil), 400, "", "method \"DELETE\" not allowed"},
		{"bad base64", restWith("POST", "%%%", true, nil), 400, "", "not valid base64"},
		{"status without jobs", restWith("GET", "", false, map[string]string{"jobId": "j1"}), 404, "", "not configured"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, _, _ := newHandler(t, &fakeEngine{})
			out, err := h.Invoke(context.Background(), tt.payload)
			status, body := apiAnswer(t, out, err)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			var eb struct {
				Message *string `json:"message"`
				Errors  []struct {
					Path    *string `json:"path"`
					Message *string `json:"message"`
				} `json:"errors"`
			}
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Message == nil || *eb.Message == "" {
				t.Fatalf("body %s is not {\"message\", …}", body)
			}
			if len(eb.Errors) == 0 {
				t.Fatalf("body %s has no errors", body)
			}
			found := false
			for _, e := range eb.Errors {
				if e.Path == nil || e.Message == nil || *e.Message == "" {
					t.Fatalf("error entry without path or message: %s", body)
				}
				found = found || (*e.Path == tt.path && strings.Contains(*e.Message, tt.message))
			}
			if !found {
				t.Fatalf("body %s has no error at %q saying %q", body, tt.path, tt.message)
			}
		})
	}
}

// TestSyntaxErrorsNameNoCharacter: the position of a syntax error is given,
// never the offending bytes, which may belong to a parameter value.
func TestSyntaxErrorsNameNoCharacter(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{})
	body := `{"Entries":[{"Name":"AWS-RunShellScript","Parameters":{"password":[` + secret + `]}}]}`
	for _, payload := range []json.RawMessage{restEvent(body), httpEvent(body), json.RawMessage(body)} {
		out, err := h.Invoke(context.Background(), payload)
		text := ""
		if err != nil {
			text = err.Error()
		} else {
			b, _ := json.Marshal(out)
			text = string(b)
		}
		if !strings.Contains(text, "byte offset") {
			t.Errorf("answer %s gives no position", text)
		}
		if strings.Contains(text, secret) || strings.Contains(text, "'s'") {
			t.Errorf("answer %s quotes the body", text)
		}
	}
}

// TestErrorsOnlyOn4xx: the fallback entry is for rejections; a 5xx keeps
// its message alone.
func TestErrorsOnlyOn4xx(t *testing.T) {
	h, _, _ := newHandler(t, &fakeEngine{})
	out, err := h.respond(event.Invocation{Source: event.RESTAPI}, 503, errorBody{Message: "try again"}, nil)
	status, body := apiAnswer(t, out, err)
	if status != 503 || strings.Contains(body, "errors") {
		t.Fatalf("%d %s", status, body)
	}
}
