package request

import (
	"fmt"
	"net/http"
	"strings"
)

// FieldError is one problem with one member of a request. Path names the
// member the way an operator would find it in the JSON they sent
// ("Entries[3].Targets[0].Values"), so a rejection can be acted on without
// guessing; Message names the rule that was broken, never the offending
// value, because values can be Parameters that carry secrets.
type FieldError struct {
	Path    string `json:"Path"`
	Message string `json:"Message"`
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Error rejects a whole request: nothing in it is sent to SSM. Status is
// http.StatusBadRequest or http.StatusRequestEntityTooLarge so an API caller
// can be answered with it directly.
type Error struct {
	Status  int
	Message string
	Errors  []FieldError

	// cause is the low-level error (a JSON syntax error, a base64 error)
	// kept for errors.Is/As; its text is not shown to callers because it
	// can quote bytes of the body.
	cause error
}

// NewError builds a whole-request rejection. cause may be nil; it is kept
// for errors.As/Is only.
func NewError(status int, message string, cause error, errs ...FieldError) *Error {
	return &Error{Status: status, Message: message, Errors: errs, cause: cause}
}

// shownErrors is how many field errors Error() spells out; the rest are
// counted, so a log line stays readable when a request is wrong everywhere.
const shownErrors = 3

func (e *Error) Error() string {
	var b strings.Builder
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(strings.ToLower(http.StatusText(e.Status)))
	}
	for i, fe := range e.Errors {
		if i == shownErrors {
			fmt.Fprintf(&b, " (and %d more)", len(e.Errors)-shownErrors)
			break
		}
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Unwrap returns the low-level cause, if any.
func (e *Error) Unwrap() error { return e.cause }

func badRequest(message string, errs ...FieldError) *Error {
	return NewError(http.StatusBadRequest, message, nil, errs...)
}

// maxFieldErrors bounds the problems collected for one request (and for one
// entry): a 6 MB body of wrong types would otherwise produce a rejection
// larger than the request, and the first hundred are enough to act on.
const maxFieldErrors = 100

// problemList collects FieldErrors up to maxFieldErrors and counts the rest.
type problemList struct {
	list    []FieldError
	dropped int
}

func (p *problemList) add(path, format string, args ...any) {
	if len(p.list) >= maxFieldErrors {
		p.dropped++
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	p.list = append(p.list, FieldError{Path: path, Message: msg})
}

// result returns the collected problems, with a final note when some were
// dropped.
func (p *problemList) result() []FieldError {
	if p.dropped > 0 {
		return append(p.list, FieldError{Message: fmt.Sprintf("%d more problems not shown", p.dropped)})
	}
	return p.list
}

func (p *problemList) empty() bool { return len(p.list) == 0 && p.dropped == 0 }

func (p *problemList) count() int { return len(p.list) + p.dropped }
