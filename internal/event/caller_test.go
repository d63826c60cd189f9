package event

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkCaller: the caller is always set, of the invocation's kind, and its
// values are valid UTF-8 without control characters and bounded, whatever
// the envelope held.
func checkCaller(t *testing.T, inv Invocation) {
	t.Helper()
	c := inv.Caller
	if c.Kind != inv.Source {
		t.Fatalf("caller kind %q, source %q", c.Kind, inv.Source)
	}
	for _, f := range []struct {
		v   string
		max int
	}{{c.ARN, maxARN}, {c.Account, maxAccount}, {c.Source, maxSource}, {c.EventID, maxEventID}} {
		if !utf8.ValidString(f.v) || len(f.v) > f.max+len("…") || strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			t.Fatalf("caller value %q not clean", f.v)
		}
	}
}

func TestDecodeCaller(t *testing.T) {
	const (
		session = "arn:aws:sts::123456789012:assumed-role/OpsAdmin/ops-admin"
		user    = "arn:aws:iam::123456789012:user/deploy/ci"
	)
	rest := strings.Replace(restEvent("POST", quote(body), false), `"identity":{"sourceIp":"1.2.3.4"}`,
		`"identity":{"sourceIp":"1.2.3.4","accountId":"123456789012","userArn":"`+session+`"}`, 1)
	http := strings.Replace(httpEvent("POST", quote(body), false), `"requestId":"http-req-1"`,
		`"requestId":"http-req-1","authorizer":{"iam":{"accessKey":"AKIA","accountId":"210987654321","callerId":"AIDA","userArn":"`+user+`","userId":"AIDA"}}`, 1)
	tests := []struct {
		name, payload string
		want          Caller
		log           string
	}{
		{"REST", rest, Caller{Kind: RESTAPI, ARN: session, Account: "123456789012"}, "api-rest " + session + " account 123456789012"},
		{"REST without IAM", restEvent("POST", quote(body), false), Caller{Kind: RESTAPI}, "api-rest (no user ARN)"},
		{"HTTP API", http, Caller{Kind: HTTPAPI, ARN: user, Account: "210987654321"}, "api-http " + user + " account 210987654321"},
		{"HTTP API without IAM", httpEvent("POST", quote(body), false), Caller{Kind: HTTPAPI}, "api-http (no user ARN)"},
		{"EventBridge", eventBridgeEvent(body), Caller{Kind: EventBridge, Account: "123456789012", Source: "my.app", EventID: "eb-id-1"},
			"eventbridge account 123456789012 source my.app event eb-id-1"},
		{"direct", body, Caller{Kind: Direct}, "direct"},
		{"REST, rejected", strings.Replace(rest, `"POST"`, `"PUT"`, 1), Caller{Kind: RESTAPI, ARN: session, Account: "123456789012"}, ""},
		{"REST, malformed", `{"resource":"/a","httpMethod":"POST","requestContext":{"identity":7}}`, Caller{Kind: RESTAPI}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, _ := Decode([]byte(tt.payload))
			checkCaller(t, inv)
			if inv.Caller != tt.want {
				t.Fatalf("caller %+v, want %+v", inv.Caller, tt.want)
			}
			if tt.log != "" && inv.Caller.String() != tt.log {
				t.Errorf("String() %q, want %q", inv.Caller.String(), tt.log)
			}
		})
	}
}

// A forged envelope (only a direct invoker can send one) cannot put control
// characters or megabytes into the log line and the job record.
func TestDecodeCallerIsCleaned(t *testing.T) {
	long := strings.Repeat("a", 100_000)
	payload := strings.Replace(restEvent("POST", quote(body), false), `"identity":{"sourceIp":"1.2.3.4"}`,
		`"identity":{"accountId":"1\n2","userArn":"arn:aws:iam::1:user/x\u001b[31m`+long+`"}`, 1)
	inv, err := Decode([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	checkCaller(t, inv)
	if !strings.HasSuffix(inv.Caller.ARN, "…") || strings.Contains(inv.Caller.ARN, "\x1b") || inv.Caller.Account != "1\uFFFD2" {
		t.Fatalf("caller %q / %q", inv.Caller.ARN[:40], inv.Caller.Account)
	}
	eb := strings.Replace(eventBridgeEvent(body), `"source":"my.app"`, `"source":"`+long+`"`, 1)
	inv, err = Decode([]byte(eb))
	if err != nil {
		t.Fatal(err)
	}
	checkCaller(t, inv)
}
