package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// errorBody is the body of a 4xx/5xx API answer. A 4xx always carries at
// least one entry in errors (respond sees to it), so that a client can read
// errors[0] whatever went wrong; path "" is the request as a whole. A 5xx
// (serverError) carries one fixed sentence and the request IDs instead.
type errorBody struct {
	Message string      `json:"message"`
	Errors  []pathError `json:"errors,omitempty"`
	// RequestID is the Lambda request ID of the invocation, under which
	// its log lines are.
	RequestID string `json:"requestId,omitempty"`
	// APIRequestID is API Gateway's request ID (its access log's).
	APIRequestID string `json:"apiRequestId,omitempty"`
}

type pathError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// InvalidRequestError is returned to direct and EventBridge invocations
// whose request is malformed; Lambda reports its type as errorType.
type InvalidRequestError struct {
	Status int
	Msg    string
	Errors []request.FieldError
}

func (e *InvalidRequestError) Error() string {
	msg := e.Msg
	for i, fe := range e.Errors {
		if i == 5 {
			msg += fmt.Sprintf("; and %d more", len(e.Errors)-5)
			break
		}
		msg += "; " + fe.Error()
	}
	return msg
}

// IncompleteError is returned to direct and EventBridge invocations when
// entries are left that another attempt could finish (retryable Failed,
// Unprocessed, or in progress elsewhere). It carries counts only.
type IncompleteError struct{ Summary report.Summary }

func (e *IncompleteError) Error() string {
	s := e.Summary
	return fmt.Sprintf("incomplete: entries left to retry (failed %d, unprocessed %d, or in progress elsewhere among deduplicated %d; successful %d of %d); invoking again with the same request is safe",
		s.Failed, s.Unprocessed, s.Deduplicated, s.Successful, s.Requested)
}

// UnavailableError means DynamoDB or SSM could not be reached and nothing
// was done.
type UnavailableError struct{ Cause error }

// Error says what happened without the cause's text, which can name
// endpoints, tables and keys: it reaches the invoker and the dead-letter
// queue. The cause is logged, and kept for errors.Is/As.
func (e *UnavailableError) Error() string {
	return "unavailable: a dependency (DynamoDB or SSM) could not be reached and nothing was done; invoking again is safe"
}
func (e *UnavailableError) Unwrap() error { return e.Cause }

// InternalError is returned to direct and EventBridge invocations when the
// function failed for a reason of its own (a bug, a panic) rather than a
// dependency's; Lambda retries an asynchronous event.
type InternalError struct{ Cause error }

// Error says what happened without the cause's text, as UnavailableError
// does; the cause is logged.
func (e *InternalError) Error() string {
	return "internal error: the function failed; invoking again is safe (entries already done are deduplicated)"
}
func (e *InternalError) Unwrap() error { return e.Cause }

// internalMessage is the body of a 500.
const internalMessage = "the function failed on an internal error; send the request again (entries already done are deduplicated)"

// serverError answers a failure of the function or of a dependency: to an
// API caller, status (5xx) with message — one fixed sentence — and the
// request IDs; to others, errIfNotAPI. The cause never reaches the answer:
// its text can name ARNs, endpoints, tables and keys (claim node#…, dial
// tcp 127.0.0.1:8000). The caller of serverError logs it.
func (h *Handler) serverError(ctx context.Context, inv event.Invocation, status int, message string, errIfNotAPI error) (any, error) {
	body := errorBody{Message: message}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		body.RequestID = lc.AwsRequestID
	}
	if inv.IsAPI() {
		// From the envelope: bounded, as a forged one could hold anything.
		body.APIRequestID = cut(inv.RequestID, 128)
	}
	return h.respond(inv, status, body, errIfNotAPI)
}

// panicked answers an invocation that panicked, as a 500 or an
// InternalError. The log gets the panic and the stack; the panic's value
// only when it is a runtime error (index out of range, nil map, …), whose
// text is the runtime's own — any other value could hold request data.
func (h *Handler) panicked(ctx context.Context, inv event.Invocation, p any) (any, error) {
	what := fmt.Sprintf("panic of type %T", p)
	if re, ok := p.(runtime.Error); ok {
		what = "panic: " + re.Error()
	}
	attrs := []any{"source", string(inv.Source), "caller", inv.Caller.String(), "error", what, "stack", string(debug.Stack())}
	if inv.IsAPI() && inv.RequestID != "" {
		attrs = append(attrs, "apiRequestId", inv.RequestID)
	}
	h.log.ErrorContext(ctx, "invocation panicked", attrs...)
	return h.serverError(ctx, inv, http.StatusInternalServerError, internalMessage, &InternalError{Cause: errors.New(what)})
}

// cut bounds s to n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// reject answers a request that could not be decoded or parsed.
func (h *Handler) reject(ctx context.Context, inv event.Invocation, err error) (any, error) {
	var rerr *request.Error
	if !errors.As(err, &rerr) {
		rerr = &request.Error{Status: http.StatusBadRequest, Message: err.Error()}
	}
	h.log.WarnContext(ctx, "request rejected", "source", string(inv.Source), "caller", inv.Caller.String(), "status", rerr.Status, "error", rerr.Message, "problems", len(rerr.Errors))
	body := errorBody{Message: rerr.Message}
	for _, fe := range rerr.Errors {
		body.Errors = append(body.Errors, pathError{Path: fe.Path, Message: fe.Message})
	}
	return h.respond(inv, rerr.Status, body, &InvalidRequestError{Status: rerr.Status, Msg: rerr.Message, Errors: rerr.Errors})
}

// respond shapes an answer for the trigger: an HTTP response for API
// Gateway, otherwise the body itself, or errIfNotAPI when there is one.
func (h *Handler) respond(inv event.Invocation, status int, body any, errIfNotAPI error) (any, error) {
	if !inv.IsAPI() {
		if errIfNotAPI != nil {
			return nil, errIfNotAPI
		}
		return body, nil
	}
	if eb, ok := body.(errorBody); ok && status >= 400 && status < 500 && len(eb.Errors) == 0 {
		// A rejection that names no member (a method, an empty body, an
		// envelope that does not decode) is one problem with the request as
		// a whole.
		eb.Errors = []pathError{{Path: "", Message: eb.Message}}
		body = eb
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	headers := map[string]string{"Content-Type": "application/json"}
	if inv.Source == event.HTTPAPI {
		return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: headers, Body: string(b)}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: status, Headers: headers, Body: string(b)}, nil
}
