package request

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
)

// FuzzParse checks that no input panics Parse, that every rejection is a
// *Error with a status the API can return, and that an accepted request is
// consistent: in order, within the limit, and with Problems matching what
// ValidateEntry says about each entry. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	lim := Limits{MaxEntries: 50}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := Parse(body, lim)
		if err != nil {
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not a *Error: %v", err, err)
			}
			if re.Status != http.StatusBadRequest && re.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d", re.Status)
			}
			if req != nil {
				t.Fatal("request returned with an error")
			}
			_ = re.Error()
			return
		}
		if req == nil || len(req.Items) == 0 || len(req.Items) > lim.MaxEntries {
			t.Fatalf("accepted request with %v items", req)
		}
		// Differential check of the hand-rolled reader: on an accepted batch
		// request (exact member names only), encoding/json must decode the
		// same entries.
		if req.Items[0].Path[0] == 'E' {
			var std struct{ Entries []Entry }
			if err := json.Unmarshal(body, &std); err != nil {
				t.Fatalf("accepted, but encoding/json fails: %v", err)
			}
			for i, it := range req.Items {
				if !reflect.DeepEqual(std.Entries[i], it.Entry) {
					t.Fatalf("%s decoded as\n%+v\nencoding/json says\n%+v", it.Path, it.Entry, std.Entries[i])
				}
			}
		}
		for _, it := range req.Items {
			if _, err := json.Marshal(it.Entry); err != nil {
				t.Fatalf("entry does not marshal: %v", err)
			}
			if it.Path[0] == 'E' { // Entries[i]: Problems are ValidateEntry's verdict
				if got := ValidateEntry(it.Path, it.Entry); len(got) != len(it.Problems) {
					t.Fatalf("%s: problems %v, ValidateEntry says %v", it.Path, it.Problems, got)
				}
			}
			_ = it.Entry.SDK()
		}
	})
}
