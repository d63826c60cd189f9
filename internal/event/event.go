// Package event recognises what invoked the function — a direct invocation,
// API Gateway (REST or HTTP API), or EventBridge — and extracts the request
// body from its envelope, so the rest of the function sees one JSON request
// whatever the trigger.
package event

// Source names the trigger of an invocation.
type Source string

const (
	// Direct is an invocation whose payload is the request itself: the
	// Invoke API, the console's test events, a Step Functions task, or an
	// EventBridge Scheduler / scheduled rule with a constant Input.
	Direct Source = "direct"
	// RESTAPI is an API Gateway REST API proxy integration (payload 1.0).
	RESTAPI Source = "api-rest"
	// HTTPAPI is an API Gateway HTTP API integration (payload 2.0).
	HTTPAPI Source = "api-http"
	// EventBridge is an event delivered by an EventBridge rule; the request
	// is its detail.
	EventBridge Source = "eventbridge"
)

// MaxBodyBytes bounds a request body: 6 MiB (6,291,456 bytes), Lambda's
// limit for the payload of a synchronous invocation. Lambda refuses a larger
// payload before the function runs — Invoke answers
// RequestEntityTooLargeException (HTTP 413) to its caller, API Gateway
// answers its own caller 500 — and a body is only part of its payload (the
// API Gateway envelope, the EventBridge event around it; a base64 body
// decodes to three quarters of its size), so behind Lambda no body reaches
// this bound and the function never answers 413 itself. The check stays for
// callers of Decode with nothing in front of them (tests, a harness invoking
// the handler directly), so that no body is decoded and validated at any
// cost. (The Runtime Interface Emulator does not refuse large payloads: it
// cuts them at 6,291,556 bytes, and the runtime library then fails to read
// the truncated JSON before the handler is called.)
const MaxBodyBytes = 6 << 20

// Invocation is a recognised invocation and its request body.
type Invocation struct {
	Source Source
	// Body is the request: the API body (base64-decoded if need be), the
	// EventBridge detail, or the direct payload.
	Body []byte
	// RequestID is API Gateway's request ID or the EventBridge event ID,
	// when present, for correlating logs with the caller's view.
	RequestID string
	// Caller is who invoked the function, as the trigger reports it. It
	// is set whenever Source is, even when Decode returns an error.
	Caller Caller
	// JobID is set for GET /associations/{jobId}, a status request; Body
	// is then empty.
	JobID string
	// Query holds the query string parameters of an API request.
	Query map[string]string
	// StatusBase is the API URL the request was sent to, under which
	// {StatusBase}/{jobId} reads a job's status; empty outside API Gateway.
	StatusBase string
}

// JobIDParameter is the path parameter of the status route.
const JobIDParameter = "jobId"

// IsAPI reports whether the invocation came through API Gateway and so
// expects an HTTP response.
func (inv Invocation) IsAPI() bool { return inv.Source == RESTAPI || inv.Source == HTTPAPI }
