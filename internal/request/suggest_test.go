package request

import (
	"strings"
	"testing"
)

// shapes are the member lists the decoder checks names against.
var shapes = map[string][]string{
	"request": topLevelMembers, "entry": entryMembers, "target": targetMembers,
	"output location": outputLocationMembers, "S3 location": s3LocationMembers,
	"target location": targetLocationMembers, "alarm configuration": alarmConfigurationMembers,
	"alarm": alarmMembers,
}

// TestSuggestEveryMember: one slip — two neighbours swapped, a letter
// dropped, doubled or replaced, or the case changed — on any member of any
// shape is answered with that member.
func TestSuggestEveryMember(t *testing.T) {
	slips := map[string]func(string) string{
		"swap":    func(s string) string { r := []byte(s); r[1], r[2] = r[2], r[1]; return string(r) },
		"drop":    func(s string) string { return s[:len(s)-1] },
		"double":  func(s string) string { return s[:2] + s[1:] },
		"replace": func(s string) string { return s[:1] + "#" + s[2:] },
		"lower":   strings.ToLower,
	}
	for shape, known := range shapes {
		for _, name := range known {
			for slip, f := range slips {
				typo := f(name)
				if typo == name {
					continue
				}
				got, caseOnly := suggest(typo, known)
				if got != name {
					t.Errorf("%s member %s, %s slip %q: suggested %q", shape, name, slip, typo, got)
				}
				if caseOnly != (slip == "lower") {
					t.Errorf("%s: %q caseOnly %v", shape, typo, caseOnly)
				}
			}
		}
	}
}

func TestSuggest(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"Nmae", "Name"},
		{"nmae", "Name"},
		{"InstanceID", "InstanceId"},
		{"ScheduleExpresion", "ScheduleExpression"},
		{"Paramters", "Parameters"},
		{"AssocationName", "AssociationName"},
		{"Foo", ""},
		{"Colour", ""},
		{"Schedule", ""}, // a prefix is not a slip
		{"N", ""},
		{"", ""},
		{strings.Repeat("Name", 1<<20), ""}, // 4 MB: not compared at all
	} {
		if got, _ := suggest(tt.name, entryMembers); got != tt.want {
			t.Errorf("suggest(%.20q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got, _ := suggest("Entires", topLevelMembers); got != "Entries" {
		t.Errorf("top level: %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"name", "name", 0},
		{"nmae", "name", 1}, {"nam", "name", 1}, {"naame", "name", 1}, {"nbme", "name", 1},
		{"kitten", "sitting", 3}, {"ca", "abc", 3},
	} {
		if got := editDistance([]rune(tt.a), []rune(tt.b)); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
