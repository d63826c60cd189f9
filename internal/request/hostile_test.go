package request_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// A lone surrogate escape anywhere is a malformed string and rejects the
// whole request (TestUnpairedSurrogates in parse_test.go).
//
// TestHostileEntriesAreFailedNotSent covers the malformed input that is
// not a whole-request rejection but an invalid entry: it must come out of
// Parse with a problem naming the member, so the engine reports it Failed
// (Client) and never sends it.
func TestHostileEntriesAreFailedNotSent(t *testing.T) {
	for _, tc := range []struct{ name, body, path string }{
		{"5 MB document name", `{"Entries":[{"Name":"` + strings.Repeat("A", 5<<20) + `","InstanceId":"i-0123456789abcdef0"}]}`, "Entries[0].Name"},
		{"node ID of control characters", `{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-\u0000\u0007"}]}`, "Entries[0].InstanceId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := request.Parse([]byte(tc.body), request.Limits{MaxEntries: 10})
			if err != nil {
				t.Fatalf("rejected whole: %v", err)
			}
			it := req.Items[0]
			if it.Valid() {
				t.Fatalf("entry accepted: %+v", it.Entry.Name[:min(40, len(it.Entry.Name))])
			}
			found := false
			for _, p := range it.Problems {
				found = found || p.Path == tc.path
				if len(p.Message) > 1000 {
					t.Errorf("problem message of %d bytes", len(p.Message))
				}
			}
			if !found {
				t.Errorf("problems %v do not name %s", it.Problems, tc.path)
			}
		})
	}
}

// TestHostileLoneSurrogateInParameters: Parse refuses invalid UTF-8 because
// encoding/json would quietly turn it into U+FFFD and SSM would get a value
// nobody sent. A JSON escape of a lone surrogate (\ud800) does the same
// through the back door: the value must not reach SSM altered.
func TestHostileLoneSurrogateInParameters(t *testing.T) {
	body := `{"Entries":[{"Name":"AWS-RunShellScript","InstanceId":"i-0123456789abcdef0","Parameters":{"commands":["echo \ud800 done"]}}]}`
	req, err := request.Parse([]byte(body), request.Limits{MaxEntries: 10})
	if err != nil {
		return // rejected whole: fine
	}
	it := req.Items[0]
	if !it.Valid() {
		return // the entry is refused: fine
	}
	v := it.Entry.Parameters["commands"][0]
	if strings.ContainsRune(v, utf8.RuneError) {
		t.Errorf("the value %q would be sent with U+FFFD in place of the lone surrogate the caller wrote", v)
	}
}

// TestHostileUnknownMembers: suggestions for unknown members are cheap for
// names of any length and for any number of them — a 5 MB name is not
// compared, and past the hundredth problem no suggestion is computed.
func TestHostileUnknownMembers(t *testing.T) {
	long := strings.Repeat("Name", 5<<18)
	var b strings.Builder
	b.WriteString(`{"Entries":[`)
	for i := range 20000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"Nmae":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}`)
	}
	b.WriteString(`],"` + long + `":1}`)
	start := time.Now()
	_, err := request.Parse([]byte(b.String()), request.Limits{MaxEntries: 50000})
	var re *request.Error
	if !errors.As(err, &re) || len(re.Errors) == 0 {
		t.Fatalf("not rejected: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	// The top level is read first: the long name, then the entries.
	if len(re.Errors) < 2 || re.Errors[0].Message != "unknown member" || !strings.Contains(re.Errors[1].Message, `did you mean "Name"?`) {
		t.Errorf("problems %.500q", re.Errors)
	}
	for _, fe := range re.Errors {
		if len(fe.Path) > 200 || len(fe.Message) > 1000 {
			t.Errorf("problem of %d+%d bytes", len(fe.Path), len(fe.Message))
		}
	}
}
