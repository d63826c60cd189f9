package event

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

const body = `{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}]}`

// quote makes a JSON string of s.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func restEvent(method, bodyField string, b64 bool) string {
	return `{"resource":"/associations","path":"/associations","httpMethod":"` + method + `",
		"headers":{"Content-Type":"application/json"},"multiValueHeaders":{"Content-Type":["application/json"]},
		"queryStringParameters":null,"pathParameters":null,"stageVariables":null,
		"requestContext":{"accountId":"123456789012","resourceId":"abc","stage":"prod","requestId":"rest-req-1",
			"identity":{"sourceIp":"1.2.3.4"},"resourcePath":"/associations","httpMethod":"` + method + `","apiId":"api1"},
		"body":` + bodyField + `,"isBase64Encoded":` + boolText(b64) + `}`
}

func httpEvent(method, bodyField string, b64 bool) string {
	return `{"version":"2.0","routeKey":"POST /associations","rawPath":"/associations","rawQueryString":"",
		"headers":{"content-type":"application/json"},
		"requestContext":{"accountId":"123456789012","apiId":"api2","domainName":"x.execute-api.us-east-1.amazonaws.com",
			"http":{"method":"` + method + `","path":"/associations","protocol":"HTTP/1.1","sourceIp":"1.2.3.4","userAgent":"curl"},
			"requestId":"http-req-1","routeKey":"POST /associations","stage":"$default","time":"12/Mar/2020:19:03:58 +0000","timeEpoch":1583348638390},
		"body":` + bodyField + `,"isBase64Encoded":` + boolText(b64) + `}`
}

func eventBridgeEvent(detail string) string {
	return `{"version":"0","id":"eb-id-1","detail-type":"Create associations","source":"my.app","account":"123456789012",
		"time":"2024-01-02T03:04:05Z","region":"us-east-1","resources":[],"detail":` + detail + `}`
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestDecode(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(body))
	tests := []struct {
		name      string
		payload   string
		source    Source
		body      string // expected body when ok
		requestID string
		status    int    // 0 means success
		fragment  string // in the error message
	}{
		{"direct", body, Direct, body, "", 0, ""},
		{"direct fan-out", `{"Association":{"Name":"AWS-X"},"InstanceIds":["i-12345678"]}`, Direct, `{"Association":{"Name":"AWS-X"},"InstanceIds":["i-12345678"]}`, "", 0, ""},
		{"direct array passes through", `[1,2]`, Direct, `[1,2]`, "", 0, ""},
		{"direct resembling an envelope", `{"httpMethod":"POST","Entries":[]}`, Direct, `{"httpMethod":"POST","Entries":[]}`, "", 0, ""},
		{"rest", restEvent("POST", quote(body), false), RESTAPI, body, "rest-req-1", 0, ""},
		{"rest base64", restEvent("POST", quote(b64), true), RESTAPI, body, "rest-req-1", 0, ""},
		{"http", httpEvent("POST", quote(body), false), HTTPAPI, body, "http-req-1", 0, ""},
		{"http base64", httpEvent("POST", quote(b64), true), HTTPAPI, body, "http-req-1", 0, ""},
		{"eventbridge", eventBridgeEvent(body), EventBridge, body, "eb-id-1", 0, ""},

		{"empty payload", ``, Direct, "", "", 400, "payload is empty"},
		{"not json", `{"Entries":`, Direct, "", "", 400, "payload is not valid JSON; unexpected end of JSON input at line 1, column 12 (byte offset 11)"},
		{"not json, second line", "{\"Entries\":\n[}", Direct, "", "", 400, "payload is not valid JSON; unexpected character, expected a value at line 2, column 2 (byte offset 13)"},
		{"not json at all", `hello`, Direct, "", "", 400, "not valid JSON"},
		{"rest get", restEvent("GET", `null`, false), RESTAPI, "", "rest-req-1", 400, `GET needs a job ID`},
		{"http put", httpEvent("PUT", quote(body), false), HTTPAPI, "", "http-req-1", 400, `method "PUT" not allowed`},
		{"rest empty body", restEvent("POST", `""`, false), RESTAPI, "", "rest-req-1", 400, "request body is empty"},
		{"rest null body", restEvent("POST", `null`, false), RESTAPI, "", "rest-req-1", 400, "request body is empty"},
		{"http missing body", strings.Replace(httpEvent("POST", `""`, false), `"body":"",`, ``, 1), HTTPAPI, "", "http-req-1", 400, "request body is empty"},
		{"rest bad base64", restEvent("POST", quote("not base64!!"), true), RESTAPI, "", "rest-req-1", 400, "isBase64Encoded is true but the body is not valid base64"},
		{"http bad base64", httpEvent("POST", quote("QUJD="), true), HTTPAPI, "", "http-req-1", 400, "not valid base64"},
		{"base64 of nothing", restEvent("POST", quote(""), true), RESTAPI, "", "rest-req-1", 400, "request body is empty"},
		{"rest malformed envelope", `{"resource":"/","path":"/","httpMethod":"POST","requestContext":{"requestTimeEpoch":"soon"},"body":"{}"}`, RESTAPI, "", "", 400, "API Gateway REST event is malformed"},
		{"http malformed envelope", `{"version":"2.0","routeKey":"$default","requestContext":{"http":{"method":5}},"body":"{}"}`, HTTPAPI, "", "", 400, "API Gateway HTTP API event is malformed"},
		{"eventbridge detail array", eventBridgeEvent(`[1]`), EventBridge, "", "eb-id-1", 400, "EventBridge detail must be a JSON object holding the request, got array"},
		{"eventbridge detail string", eventBridgeEvent(quote(body)), EventBridge, "", "eb-id-1", 400, "got string"},
		{"eventbridge detail null", eventBridgeEvent(`null`), EventBridge, "", "eb-id-1", 400, "got null"},
		{"eventbridge bad time", strings.Replace(eventBridgeEvent(body), `"2024-01-02T03:04:05Z"`, `"yesterday"`, 1), EventBridge, "", "", 400, "EventBridge event is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Decode([]byte(tt.payload))
			if inv.Source != tt.source {
				t.Errorf("source %q, want %q", inv.Source, tt.source)
			}
			if inv.RequestID != tt.requestID {
				t.Errorf("request id %q, want %q", inv.RequestID, tt.requestID)
			}
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if string(inv.Body) != tt.body {
					t.Fatalf("body %s, want %s", inv.Body, tt.body)
				}
				return
			}
			var re *request.Error
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *request.Error", err, err)
			}
			if re.Status != tt.status {
				t.Fatalf("status %d, want %d", re.Status, tt.status)
			}
			// The message and the problems, as a direct invocation's
			// error reads them.
			text := re.Message
			for _, fe := range re.Errors {
				text += "; " + fe.Error()
			}
			if !strings.Contains(text, tt.fragment) {
				t.Fatalf("message %q does not contain %q", text, tt.fragment)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	big := `{"Entries":[],"pad":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	b64 := base64.StdEncoding.EncodeToString([]byte(big))
	tests := []struct {
		name    string
		payload string
		source  Source
	}{
		{"direct", big, Direct},
		{"rest", restEvent("POST", quote(big), false), RESTAPI},
		{"rest base64", restEvent("POST", quote(b64), true), RESTAPI},
		{"http", httpEvent("POST", quote(big), false), HTTPAPI},
		{"eventbridge", eventBridgeEvent(big), EventBridge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Decode([]byte(tt.payload))
			var re *request.Error
			if !errors.As(err, &re) || re.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("want 413, got %v", err)
			}
			if inv.Source != tt.source {
				t.Fatalf("source %q, want %q", inv.Source, tt.source)
			}
			if !strings.Contains(re.Message, "the limit is 6291456 bytes") {
				t.Fatalf("message %q", re.Message)
			}
		})
	}
	// Exactly at the limit is accepted.
	exact := `{"p":"` + strings.Repeat("x", MaxBodyBytes-8) + `"}`
	if len(exact) != MaxBodyBytes {
		t.Fatalf("test body is %d bytes", len(exact))
	}
	if _, err := Decode([]byte(restEvent("POST", quote(exact), false))); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
}

func TestIsAPI(t *testing.T) {
	for src, want := range map[Source]bool{Direct: false, RESTAPI: true, HTTPAPI: true, EventBridge: false, "": false} {
		if got := (Invocation{Source: src}).IsAPI(); got != want {
			t.Errorf("%q: IsAPI %v, want %v", src, got, want)
		}
	}
}

// HTTP APIs configured for payload format 1.0 send the REST shape.
func TestDecodeHTTPAPIPayload10(t *testing.T) {
	p := strings.Replace(restEvent("POST", quote(body), false), `{"resource"`, `{"version":"1.0","resource"`, 1)
	inv, err := Decode([]byte(p))
	if err != nil || inv.Source != RESTAPI || string(inv.Body) != body {
		t.Fatalf("got %+v, %v", inv, err)
	}
}

func TestStatusRoute(t *testing.T) {
	rest := `{"resource":"/associations/{jobId}","path":"/associations/job-1","httpMethod":"GET","headers":{"Host":"abc.execute-api.us-east-1.amazonaws.com"},"pathParameters":{"jobId":"job-1"},"requestContext":{"stage":"prod","requestId":"r"}}`
	inv, err := Decode([]byte(rest))
	if err != nil || inv.JobID != "job-1" || inv.Source != RESTAPI {
		t.Fatalf("REST GET: %+v %v", inv, err)
	}
	post := `{"resource":"/associations","path":"/associations","httpMethod":"POST","headers":{"host":"abc.execute-api.us-east-1.amazonaws.com"},"body":"{}","requestContext":{"stage":"prod","requestId":"r"}}`
	inv, err = Decode([]byte(post))
	if err != nil || inv.StatusBase != "https://abc.execute-api.us-east-1.amazonaws.com/prod/associations" {
		t.Fatalf("REST POST status base %q %v", inv.StatusBase, err)
	}
	httpGet := `{"version":"2.0","routeKey":"GET /associations/{jobId}","rawPath":"/associations/job-2","pathParameters":{"jobId":"job-2"},"requestContext":{"domainName":"xyz.execute-api.us-east-1.amazonaws.com","http":{"method":"GET","path":"/associations/job-2"}}}`
	inv, err = Decode([]byte(httpGet))
	if err != nil || inv.JobID != "job-2" || inv.StatusBase != "https://xyz.execute-api.us-east-1.amazonaws.com/associations" {
		t.Fatalf("HTTP GET: %+v %v", inv, err)
	}
}
