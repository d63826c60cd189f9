package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// errorBody is the body of a 4xx/5xx API answer. A 4xx always carries at
// least one entry in errors (respond sees to it), so that a client can read
// errors[0] whatever went wrong; path "" is the request as a whole.
type errorBody struct {
	Message string      `json:"message"`
	Errors  []pathError `json:"errors,omitempty"`
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
