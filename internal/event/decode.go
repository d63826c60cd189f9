package event

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Decode recognises the envelope of payload and extracts the request body.
// Errors are *request.Error with status 400, or 413 for a body over
// MaxBodyBytes (which Lambda never delivers). Source is set whenever
// the envelope was recognised, even with an error, so an API caller can be
// answered with an HTTP response; a payload that matches no envelope is
// Direct.
func Decode(payload []byte) (Invocation, error) {
	inv := Invocation{Source: Direct, Caller: Caller{Kind: Direct}}
	if len(bytes.TrimSpace(payload)) == 0 {
		return inv, badRequest("payload is empty", nil)
	}
	if err := request.CheckJSON(payload, "payload"); err != nil {
		return inv, err
	}
	// Members by exact name: the envelopes are recognised by their own
	// spelling, and a request that merely resembles one stays Direct.
	var top map[string]json.RawMessage
	if json.Unmarshal(payload, &top) != nil || top == nil {
		// Valid JSON but not an object: only a direct request can be
		// that; request.Parse explains what is wrong with it.
		return direct(payload)
	}
	switch {
	case isHTTPAPI(top):
		return decodeHTTPAPI(payload)
	case isRESTAPI(top):
		return decodeRESTAPI(payload)
	case isEventBridge(top):
		return decodeEventBridge(payload, top)
	}
	return direct(payload)
}

func direct(payload []byte) (Invocation, error) {
	inv := Invocation{Source: Direct, Caller: Caller{Kind: Direct}, Body: payload}
	if len(payload) > MaxBodyBytes {
		inv.Body = nil
		return inv, tooLarge(len(payload))
	}
	return inv, nil
}

func has(top map[string]json.RawMessage, names ...string) bool {
	for _, n := range names {
		if _, ok := top[n]; !ok {
			return false
		}
	}
	return true
}

// isObject reports whether raw is a JSON object, optionally holding member.
func isObject(raw json.RawMessage, member string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return false
	}
	if member == "" {
		return true
	}
	_, ok := m[member]
	return ok
}

// isHTTPAPI recognises payload format 2.0: version "2.0", a routeKey or
// rawPath, and requestContext.http.
func isHTTPAPI(top map[string]json.RawMessage) bool {
	var version string
	return json.Unmarshal(top["version"], &version) == nil && version == "2.0" &&
		(has(top, "routeKey") || has(top, "rawPath")) &&
		isObject(top["requestContext"], "http")
}

// isRESTAPI recognises the proxy integration's payload 1.0 (REST APIs, and
// HTTP APIs configured for payload 1.0, which share the shape).
func isRESTAPI(top map[string]json.RawMessage) bool {
	return has(top, "httpMethod", "requestContext") && (has(top, "resource") || has(top, "path"))
}

func isEventBridge(top map[string]json.RawMessage) bool {
	return has(top, "detail-type", "source", "detail")
}

func decodeRESTAPI(payload []byte) (Invocation, error) {
	inv := Invocation{Source: RESTAPI, Caller: Caller{Kind: RESTAPI}}
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return inv, malformed("API Gateway REST event", err)
	}
	inv.Caller = apiCaller(RESTAPI, req.RequestContext.Identity.UserArn, req.RequestContext.Identity.AccountID)
	inv.RequestID = req.RequestContext.RequestID
	inv.StatusBase = statusBase(req.Headers, req.RequestContext.Stage, req.Path, req.PathParameters)
	inv.Query = req.QueryStringParameters
	return apiBody(inv, req.HTTPMethod, req.Body, req.IsBase64Encoded, req.PathParameters)
}

func decodeHTTPAPI(payload []byte) (Invocation, error) {
	inv := Invocation{Source: HTTPAPI, Caller: Caller{Kind: HTTPAPI}}
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return inv, malformed("API Gateway HTTP API event", err)
	}
	if a := req.RequestContext.Authorizer; a != nil && a.IAM != nil {
		inv.Caller = apiCaller(HTTPAPI, a.IAM.UserARN, a.IAM.AccountID)
	}
	inv.RequestID = req.RequestContext.RequestID
	inv.StatusBase = statusBase(req.Headers, "", req.RawPath, req.PathParameters)
	inv.Query = req.QueryStringParameters
	if req.RequestContext.DomainName != "" {
		inv.StatusBase = "https://" + req.RequestContext.DomainName + strings.TrimSuffix(req.RawPath, "/"+req.PathParameters[JobIDParameter])
	}
	return apiBody(inv, req.RequestContext.HTTP.Method, req.Body, req.IsBase64Encoded, req.PathParameters)
}

// apiBody checks the method and extracts the body of an API request.
func apiBody(inv Invocation, method, body string, isBase64 bool, pathParams map[string]string) (Invocation, error) {
	// GET /associations/{jobId} reads a job's status.
	if strings.EqualFold(method, http.MethodGet) {
		id := pathParams[JobIDParameter]
		if id == "" {
			return inv, badRequest("GET needs a job ID: GET /associations/{jobId}; create associations with POST", nil)
		}
		inv.JobID = id
		return inv, nil
	}
	// Creating associations changes state: only POST may do it, so a GET
	// from a browser or a crawler does not create anything.
	if !strings.EqualFold(method, http.MethodPost) {
		return inv, badRequest(fmt.Sprintf("method %s not allowed; send the request with POST", printable(method)), nil)
	}
	if body == "" {
		return inv, badRequest("request body is empty", nil)
	}
	if isBase64 {
		// Check the size before decoding so an oversized body costs no
		// allocation.
		if base64.StdEncoding.DecodedLen(len(body)) > MaxBodyBytes+2 {
			return inv, tooLarge(base64.StdEncoding.DecodedLen(len(body)))
		}
		raw, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return inv, badRequest("body: isBase64Encoded is true but the body is not valid base64", fmt.Errorf("decoding base64 body: %w", err))
		}
		if len(raw) == 0 {
			return inv, badRequest("request body is empty", nil)
		}
		inv.Body = raw
	} else {
		inv.Body = []byte(body)
	}
	if len(inv.Body) > MaxBodyBytes {
		n := len(inv.Body)
		inv.Body = nil
		return inv, tooLarge(n)
	}
	return inv, nil
}

func decodeEventBridge(payload []byte, top map[string]json.RawMessage) (Invocation, error) {
	inv := Invocation{Source: EventBridge, Caller: Caller{Kind: EventBridge}}
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return inv, malformed("EventBridge event", err)
	}
	inv.RequestID = ev.ID
	inv.Caller = Caller{Kind: EventBridge, Account: identity(ev.AccountID, maxAccount),
		Source: identity(ev.Source, maxSource), EventID: identity(ev.ID, maxEventID)}
	// The rule's target sends the matched event; the request is its detail,
	// which EventBridge guarantees to be an object for events it accepted —
	// anything else was put there by hand.
	if !isObject(ev.Detail, "") {
		return inv, badRequest("EventBridge detail must be a JSON object holding the request, got "+request.JSONKind(top["detail"]), nil)
	}
	if len(ev.Detail) > MaxBodyBytes {
		return inv, tooLarge(len(ev.Detail))
	}
	inv.Body = []byte(ev.Detail)
	return inv, nil
}

// malformed rejects a recognised envelope that does not decode. encoding/json's
// message names the member and the type it expected, never the value, so it
// is safe to pass on.
func malformed(what string, err error) *request.Error {
	return request.NewError(http.StatusBadRequest, what+" is malformed: "+err.Error(), fmt.Errorf("decoding %s: %w", what, err))
}

func badRequest(message string, cause error) *request.Error {
	return request.NewError(http.StatusBadRequest, message, cause)
}

func tooLarge(n int) *request.Error {
	return request.NewError(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("request body is %d bytes; the limit is %d bytes", n, MaxBodyBytes), nil)
}

// printable quotes a caller-supplied method for a message, cut short so a
// hostile value cannot fill the response.
func printable(s string) string {
	if s == "" {
		return `""`
	}
	if len(s) > 16 {
		s = s[:16] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// statusBase is the URL under which a job's status can be read: the
// request's own URL (POST /associations), so that {base}/{jobId} is the
// status route. It is empty when the event does not carry a host.
func statusBase(headers map[string]string, stage, path string, pathParams map[string]string) string {
	host := ""
	for k, v := range headers {
		if strings.EqualFold(k, "Host") {
			host = v
		}
	}
	if host == "" {
		return ""
	}
	path = strings.TrimSuffix(path, "/"+pathParams[JobIDParameter])
	// An execute-api host serves the stage as the first path segment; a
	// custom domain maps it away.
	if stage != "" && strings.Contains(host, ".execute-api.") && !strings.HasPrefix(path, "/"+stage+"/") {
		path = "/" + stage + path
	}
	return "https://" + host + path
}
