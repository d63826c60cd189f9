package request

import (
	"strings"
	"testing"
)

// TestJPathSpellsEagerPaths checks that a lazily built path spells exactly
// what memberPath and indexPath give step by step, for plain, quoted, empty
// and over-long member names.
func TestJPathSpellsEagerPaths(t *testing.T) {
	long := strings.Repeat("ü", 70)
	for _, root := range []string{"", "Entries[3]", "Association"} {
		r := rootPath(root)
		for _, name := range []string{"Targets", "my param", "", long, "a.b", "日本"} {
			m := r.member(name)
			e := m.elem(7)
			v := e.member("Values")
			w := v.elem(0)
			want := indexPath(memberPath(indexPath(memberPath(root, name), 7), "Values"), 0)
			if got := w.String(); got != want {
				t.Errorf("root %q, name %q: got %q, want %q", root, name, got, want)
			}
			if got, want := m.String(), memberPath(root, name); got != want {
				t.Errorf("root %q, name %q: got %q, want %q", root, name, got, want)
			}
		}
		if got := r.String(); got != root {
			t.Errorf("root: got %q, want %q", got, root)
		}
	}
}

// TestDecodeValidEntryBuildsNoPaths checks that decoding a valid entry
// spells out no member path: paths are built only for problems.
func TestDecodeValidEntryBuildsNoPaths(t *testing.T) {
	raw := []byte(`{"Name":"AWS-RunShellScript","Targets":[{"Key":"InstanceIds","Values":["i-0123456789abcdef0"]}],"Parameters":{"commands":["uptime"]},"ScheduleExpression":"cron(0 2 ? * SUN *)"}`)
	d := &decoder{}
	p := rootPath("Entries[0]")
	d.entryAt(raw, &p) // warm the interned strings
	allocs := testing.AllocsPerRun(100, func() {
		e := d.entryAt(raw, &p)
		if e.Name == "" || len(d.members) != 0 {
			t.Fatal("bad decode")
		}
	})
	// 8 with Go 1.26: the Targets slice, the Values slice, the node ID, the
	// Parameters map (2), its value slice and "uptime", the
	// ScheduleExpression pointer; no paths, no member lists, no names. Eager
	// paths would add 7, so 10 leaves room for a runtime's map layout only.
	if allocs > 10 {
		t.Errorf("%v allocations per valid entry, want at most 10", allocs)
	}
}
