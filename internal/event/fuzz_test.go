package event

import (
	"errors"
	"net/http"
	"testing"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// FuzzDecode checks that no payload panics Decode, that the caller is the
// trigger's and clean (see checkCaller), that every error is a
// *request.Error with status 400 or 413, and that a successful decode yields
// a recognised source and a non-empty body within MaxBodyBytes. Seeds live in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, payload []byte) {
		inv, err := Decode(payload)
		switch inv.Source {
		case Direct, RESTAPI, HTTPAPI, EventBridge:
		default:
			t.Fatalf("source %q", inv.Source)
		}
		checkCaller(t, inv)
		if err != nil {
			var re *request.Error
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not a *request.Error: %v", err, err)
			}
			if re.Status != http.StatusBadRequest && re.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", re.Status)
			}
			return
		}
		if len(inv.Body) == 0 || len(inv.Body) > MaxBodyBytes {
			t.Fatalf("body of %d bytes accepted", len(inv.Body))
		}
		// Whatever came out must be safe to hand to request.Parse.
		if _, err := request.Parse(inv.Body, request.Limits{MaxEntries: 10}); err != nil {
			var re *request.Error
			if !errors.As(err, &re) {
				t.Fatalf("Parse error %T", err)
			}
		}
	})
}
