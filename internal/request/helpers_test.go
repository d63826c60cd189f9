package request

import (
	"errors"
	"strings"
	"testing"
)

const (
	node1  = "i-0123456789abcdef0"
	node2  = "i-12345678"
	hybrid = "mi-0123456789abcdef0"
)

// parseOne parses a request holding the single entry given as JSON and
// returns its item; the request itself must be accepted.
func parseOne(t *testing.T, entryJSON string) Item {
	t.Helper()
	req, err := Parse([]byte(`{"Entries":[`+entryJSON+`]}`), Limits{MaxEntries: 100})
	if err != nil {
		t.Fatalf("Parse rejected the request: %v", err)
	}
	if len(req.Items) != 1 {
		t.Fatalf("got %d items, want 1", len(req.Items))
	}
	return req.Items[0]
}

// hasProblem reports whether errs holds one at path whose message contains
// fragment.
func hasProblem(errs []FieldError, path, fragment string) bool {
	for _, e := range errs {
		if e.Path == path && strings.Contains(e.Message, fragment) {
			return true
		}
	}
	return false
}

// rejection asserts err is a *Error with the status and returns it.
func rejection(t *testing.T, err error, status int) *Error {
	t.Helper()
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *Error", err, err)
	}
	if re.Status != status {
		t.Fatalf("status %d, want %d (%v)", re.Status, status, re)
	}
	return re
}
