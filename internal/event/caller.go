package event

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Caller is who invoked the function, as its trigger reports it:
//
//   - API Gateway with IAM authorisation: the signer's ARN (REST proxy 1.0:
//     requestContext.identity.userArn; HTTP API 2.0:
//     requestContext.authorizer.iam.userArn) and its account;
//   - EventBridge: the account and source of the event, and its ID;
//   - anything else (the Invoke API, a schedule with a constant input, Step
//     Functions): Kind Direct only — Lambda tells the function nothing about
//     who called Invoke; CloudTrail's Invoke data events do.
//
// The trigger vouches for these values only as far as the path in is
// guarded: whoever may call lambda:InvokeFunction can send an API Gateway
// or EventBridge envelope naming anyone. The values are cleaned (valid
// UTF-8, no control characters, bounded) so that a forged envelope cannot
// bloat or garble a log line or a job record.
type Caller struct {
	// Kind is the trigger: Direct, RESTAPI, HTTPAPI or EventBridge.
	Kind Source `json:"Kind" dynamodbav:"kind"`
	// ARN is the IAM principal that signed an API request (an IAM user,
	// an assumed-role session, …); empty for other triggers, and for an API
	// without IAM authorisation (local runs).
	ARN string `json:"Arn,omitempty" dynamodbav:"arn,omitempty"`
	// Account is the caller's account (API) or the event's (EventBridge).
	Account string `json:"Account,omitempty" dynamodbav:"account,omitempty"`
	// Source is an EventBridge event's source.
	Source string `json:"Source,omitempty" dynamodbav:"source,omitempty"`
	// EventID is an EventBridge event's ID.
	EventID string `json:"EventId,omitempty" dynamodbav:"eventId,omitempty"`
}

// String is the caller for a log line: "api-rest arn:aws:sts::…",
// "eventbridge account 123456789012 source my.app event 1a2b…", "direct".
func (c Caller) String() string {
	kind := string(c.Kind)
	if kind == "" {
		kind = "unknown"
	}
	parts := []string{kind}
	add := func(label, v string) {
		if v != "" {
			parts = append(parts, label+v)
		}
	}
	add("", c.ARN)
	if c.ARN == "" && (c.Kind == RESTAPI || c.Kind == HTTPAPI) {
		parts = append(parts, "(no user ARN)")
	}
	add("account ", c.Account)
	add("source ", c.Source)
	add("event ", c.EventID)
	return strings.Join(parts, " ")
}

// Bounds of the identity values kept: IAM ARNs are at most 2,048
// characters, account IDs 12 digits, EventBridge sources 256 characters,
// event IDs a UUID.
const (
	maxARN     = 2048
	maxAccount = 32
	maxSource  = 256
	maxEventID = 128
)

// identity cleans a value of the envelope for the logs and the job record:
// invalid UTF-8 and control characters are replaced, and a value longer
// than max bytes is cut and ends in "…" (so a cut ARN names no principal).
func identity(s string, max int) string {
	if s == "" {
		return ""
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func apiCaller(kind Source, arn, account string) Caller {
	return Caller{Kind: kind, ARN: identity(arn, maxARN), Account: identity(account, maxAccount)}
}
