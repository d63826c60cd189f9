package ssmlocal

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"
)

// violations collects constraint failures in the service's wording. Like the
// real service, every violation in a request is reported, and any violation
// fails the whole call with ValidationException.
type violations []string

func (v *violations) add(value, path, constraint string) {
	*v = append(*v, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", value, path, constraint))
}

// err turns the collected violations into "N validation error(s) detected:
// …; …", or nil when there are none.
func (v violations) err() *apiError {
	if len(v) == 0 {
		return nil
	}
	noun := "errors"
	if len(v) == 1 {
		noun = "error"
	}
	return &apiError{
		Status:  http.StatusBadRequest,
		Code:    codeValidation,
		Message: fmt.Sprintf("%d validation %s detected: %s", len(v), noun, strings.Join(v, "; ")),
	}
}

// pattern is a model pattern. The service matches the whole value (Java's
// Matcher.matches), so the compiled form is anchored; the message quotes the
// model's text unchanged. match overrides re for patterns RE2 cannot express.
type pattern struct {
	text  string
	re    *regexp.Regexp
	match func(string) bool
}

func newPattern(text string) *pattern {
	return &pattern{text: text, re: regexp.MustCompile(`^(?:` + text + `)$`)}
}

func (p *pattern) matches(s string) bool {
	if p.match != nil {
		return p.match(s)
	}
	return p.re.MatchString(s)
}

// strRule is the set of constraints on one string member.
type strRule struct {
	required bool
	min, max int // max < 0: no maximum
	pattern  *pattern
	enum     []string
}

func quote(s string) string { return "'" + s + "'" }

// str checks one optional string member.
func (v *violations) str(path string, s *string, r strRule) {
	if s == nil {
		if r.required {
			v.add("null", path, "Member must not be null")
		}
		return
	}
	for _, c := range r.check(*s) {
		v.add(quote(*s), path, c)
	}
}

// check returns the constraint texts *s violates, pattern first, then
// length, then enum.
func (r strRule) check(s string) []string {
	var out []string
	if r.pattern != nil && !r.pattern.matches(s) {
		out = append(out, "Member must satisfy regular expression pattern: "+r.pattern.text)
	}
	n := utf8.RuneCountInString(s) // the model counts code points
	if r.max >= 0 && n > r.max {
		out = append(out, fmt.Sprintf("Member must have length less than or equal to %d", r.max))
	}
	if n < r.min {
		out = append(out, fmt.Sprintf("Member must have length greater than or equal to %d", r.min))
	}
	if r.enum != nil && !contains(r.enum, s) {
		out = append(out, "Member must satisfy enum value set: ["+strings.Join(r.enum, ", ")+"]")
	}
	return out
}

// listLen checks the size of a list or map that is present (non-nil).
func (v *violations) listLen(path string, present bool, n, min, max int, render func() string) {
	if !present {
		return
	}
	if max >= 0 && n > max {
		v.add(quote(render()), path, fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
	if n < min {
		v.add(quote(render()), path, fmt.Sprintf("Member must have length greater than or equal to %d", min))
	}
}

// memberStrings checks every string of a list against r, reported once for
// the list as the service does ("Member must satisfy constraint: [...]").
func (v *violations) memberStrings(path string, list []string, r strRule) {
	seen := map[string]bool{}
	var cs []string
	for _, s := range list {
		for _, c := range r.check(s) {
			if !seen[c] {
				seen[c] = true
				cs = append(cs, c)
			}
		}
	}
	if len(cs) > 0 {
		v.add(quote(renderList(list)), path, "Member must satisfy constraint: ["+strings.Join(cs, ", ")+"]")
	}
}

func (v *violations) intRange(path string, n *int32, min, max int32) {
	if n == nil {
		return
	}
	if *n > max {
		v.add(quote(fmt.Sprint(*n)), path, fmt.Sprintf("Member must have value less than or equal to %d", max))
	}
	if *n < min {
		v.add(quote(fmt.Sprint(*n)), path, fmt.Sprintf("Member must have value greater than or equal to %d", min))
	}
}

// renderList and renderMap print values the way the service's Java
// toString does ("[a, b]", "{k=[v]}").
func renderList(l []string) string { return "[" + strings.Join(l, ", ") + "]" }

func renderMap(m map[string][]string) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + renderList(m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func renderTargets(ts []wireTarget) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("Target(key=%s, values=%s)", orNull(t.Key), renderList(t.Values))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// orNull is *s, or "null" as SSM's messages spell a missing member: not
// aws.ToString, which gives "".
func orNull(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
