package request

import (
	"fmt"
	"sync"
	"testing"
)

// ValidInstanceID is patInstanceID matched by hand; the fuzz target and
// this table hold it equal to the model's pattern, compiled.
var instanceIDCases = []string{
	"i-0123abcd", "i-0123456789abcdef0", "mi-0123456789abcdef0", "i-ABCDEF12", "i-____abcd",
	"", "i-", "i-0123abc", "i-0123abcde", "i-0123456789abcdef", "i-0123456789abcdef01",
	"mi-0123abcd", "mi-0123456789abcdef", "x-0123abcd", "I-0123abcd", "i_0123abcd",
	"i-0123abc-", "i-0123abcé", "i-0123\nabc", "mi-0123456789abcdef0 ", " i-0123abcd",
	"i-0123456789abcdef\x00", "mi-01234567-9abcdef0",
}

func TestValidInstanceIDIsThePattern(t *testing.T) {
	for _, id := range instanceIDCases {
		if got, want := ValidInstanceID(id), reInstanceID.MatchString(id); got != want {
			t.Errorf("ValidInstanceID(%q) = %v, the pattern says %v", id, got, want)
		}
	}
}

func FuzzValidInstanceID(f *testing.F) {
	for _, id := range instanceIDCases {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidInstanceID(id), reInstanceID.MatchString(id); got != want {
			t.Fatalf("ValidInstanceID(%q) = %v, the pattern says %v", id, got, want)
		}
	})
}

// validateTargets skips the key pattern for InstanceIds.
func TestInstanceIDsKeyMatchesThePattern(t *testing.T) {
	if !reTargetKey.MatchString(InstanceIDsKey) {
		t.Fatalf("%q does not match %s", InstanceIDsKey, patTargetKey)
	}
}

// Alternating values miss the remembered one every time, and concurrent
// Parses share it: each must still get its own value's answer.
func TestLastResultAnswersForItsValue(t *testing.T) {
	exprs := []string{"cron(0 2 ? * SUN *)", "rate(30 minutes)", "cron(99 2 ? * SUN *)", "at(2026-13-01T00:00:00)"}
	want := make([]scheduleResult, len(exprs))
	for i, e := range exprs {
		k, err := parseSchedule(e)
		want[i] = scheduleResult{k, err}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				k := (i + g) % len(exprs)
				got := schedules.get(exprs[k])
				if got.kind != want[k].kind || fmt.Sprint(got.err) != fmt.Sprint(want[k].err) {
					t.Errorf("%q: got %v %v, want %v %v", exprs[k], got.kind, got.err, want[k].kind, want[k].err)
					return
				}
				if ok := documentNames.get(exprs[k]); ok != reDocumentName.MatchString(exprs[k]) {
					t.Errorf("document name %q: %v", exprs[k], ok)
					return
				}
			}
		})
	}
	wg.Wait()
	if want[0].err != nil || want[1].err != nil || want[2].err == nil || want[0].kind == want[1].kind {
		t.Fatalf("the cases must mix a cron, a rate and invalid schedules: %+v", want)
	}
}
