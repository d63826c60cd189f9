package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads JSON one level at a time instead of unmarshalling into the
// Entry struct in one go. encoding/json would do the job in one call, but it
// matches member names case-insensitively (AWS does not: "instanceId" is an
// unknown member to SSM), keeps the last of duplicate members silently, and
// reports a type error as "Entries.Targets.Values" without the array indexes
// an operator needs to find entry 2718 of 10 000. Reading level by level
// gives every problem its exact path.

// member is one name/value pair of a JSON object, in document order.
type member struct {
	name  string
	value json.RawMessage
}

// decoder reads an already syntax-checked document and collects type errors.
type decoder struct {
	problems problemList

	// members is a stack of the members of the objects being read, shared
	// by all of them: an object's members are pushed on top, and popped
	// (release) once its reader is done with them, so a request of 100,000
	// entries reuses one slice instead of allocating one per JSON object.
	members []member
	// interned holds strings that repeat across entries (document names,
	// target keys, parameter names), so each is allocated once per request.
	interned map[string]string
	// lastParamsRaw and lastParams are the previous entry's Parameters, raw
	// and decoded (see parameters).
	lastParamsRaw json.RawMessage
	lastParams    map[string][]string
}

func (d *decoder) fail(path, format string, args ...any) { d.problems.add(path, format, args...) }

// failAt is fail at a lazily built path: the path is spelled out only here.
func (d *decoder) failAt(p *jpath, format string, args ...any) {
	if len(d.problems.list) >= maxFieldErrors {
		d.problems.dropped++ // what add would do, without building the path
		return
	}
	d.problems.add(p.String(), format, args...)
}

// jpath is a path into the request that is spelled out (String) only when a
// problem is reported there. Decoding 100,000 entries visits about a million
// members and elements; building each one's path string up front, error or
// not, cost more allocations than the entries themselves. A jpath lives on
// the stack of the reader of its value and points at its parent's, so making
// one allocates nothing. String gives exactly what memberPath and indexPath
// give when applied step by step.
type jpath struct {
	parent *jpath
	// s is the whole path when parent is nil, else the member name.
	s string
	// index is the element index, or -1 for a member (or a root).
	index int
}

// rootPath is a path already spelled out ("Entries[3]", "" for the body).
func rootPath(path string) jpath { return jpath{s: path, index: -1} }

// member is the path of member name of the object at p.
func (p *jpath) member(name string) jpath { return jpath{parent: p, s: name, index: -1} }

// elem is the path of element i of the array at p.
func (p *jpath) elem(i int) jpath { return jpath{parent: p, index: i} }

func (p *jpath) String() string {
	// The copy keeps the result from sharing memory with *p, so that to the
	// compiler's escape analysis, which does not tell fields apart, the
	// parent pointers do not flow into the problem list: a jpath and its
	// parents stay on the stack. It costs one allocation per problem.
	return strings.Clone(p.spell())
}

func (p *jpath) spell() string {
	switch {
	case p.parent == nil:
		return p.s
	case p.index >= 0:
		return indexPath(p.parent.spell(), p.index)
	default:
		return memberPath(p.parent.spell(), p.s)
	}
}

// intern returns s's bytes as a string, allocating it only the first time
// this decoder sees it. It is for values that repeat from entry to entry;
// the table is bounded so that values that do not repeat cost a lookup only.
func (d *decoder) intern(b []byte) string {
	if s, ok := d.interned[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	const maxInterned = 256
	if len(d.interned) < maxInterned {
		if d.interned == nil {
			d.interned = make(map[string]string)
		}
		d.interned[s] = s
	}
	return s
}

// JSONKind names the JSON type of raw (object, array, string, boolean,
// null, number, or nothing) for "expected X, got Y" messages.
func JSONKind(raw json.RawMessage) string { return kindOf(raw) }

// kindOf names the JSON type of raw for "expected X, got Y" messages.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func isNull(raw json.RawMessage) bool { return kindOf(raw) == "null" }

func (d *decoder) typeError(path, want string, raw json.RawMessage) {
	d.fail(path, "expected %s, got %s", want, kindOf(raw))
}

func (d *decoder) typeErrorAt(p *jpath, want string, raw json.RawMessage) {
	d.failAt(p, "expected %s, got %s", want, kindOf(raw))
}

// object returns the members of the object raw, reporting a type error, a
// duplicate member or (should the document be malformed after all) a syntax
// error at path. ok is false when raw is not an object. The members stay on
// the decoder's stack for the rest of the decoding (Parse's top level).
func (d *decoder) object(raw json.RawMessage, path, want string) (members []member, ok bool) {
	p := rootPath(path)
	return d.objectAt(raw, &p, want)
}

// objectAt is object at a lazily built path. The members it returns are on
// top of the decoder's member stack: the caller reads them (decoding nested
// objects pushes and pops above them) and then calls release. When ok is
// false nothing is left on the stack and members is nil.
func (d *decoder) objectAt(raw json.RawMessage, path *jpath, want string) (members []member, ok bool) {
	if kindOf(raw) != "object" {
		d.typeErrorAt(path, want, raw)
		return nil, false
	}
	b := bytes.TrimSpace(raw)
	mark := len(d.members)
	var seen map[string]bool
	i := skipSpace(b, 1)
	if i < len(b) && b[i] == '}' {
		return nil, true
	}
	for i < len(b) {
		if b[i] != '"' {
			break
		}
		end, okEnd := stringEnd(b, i)
		if !okEnd {
			break
		}
		name, okName := d.unquoteName(b[i:end])
		if !okName {
			break
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			break
		}
		i = skipSpace(b, i+1)
		vend, okValue := valueEnd(b, i)
		if !okValue {
			break
		}
		value := json.RawMessage(b[i:vend])
		if isDuplicate(d.members[mark:], name, &seen) {
			// encoding/json would keep the last one silently; which of two
			// Names the operator meant is a guess we should not make.
			p := path.member(name)
			d.failAt(&p, "duplicate member")
		} else {
			d.members = append(d.members, member{name: name, value: value})
		}
		i = skipSpace(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i == len(b)-1 && b[i] == '}' {
			n := len(d.members)
			return d.members[mark:n:n], true
		}
		break
	}
	d.failAt(path, "malformed JSON object")
	d.members = d.members[:mark]
	return nil, false
}

// release pops the members objectAt returned off the decoder's stack, once
// their reader is done with them (the objects nested in them already popped).
func (d *decoder) release(members []member) {
	d.members = d.members[:len(d.members)-len(members)]
}

// knownNames are the member names of every shape, so that reading a member
// name allocates nothing in the usual case.
var knownNames = func() map[string]string {
	m := map[string]string{}
	for _, list := range [][]string{
		topLevelMembers, entryMembers, targetMembers, outputLocationMembers,
		s3LocationMembers, targetLocationMembers, alarmConfigurationMembers, alarmMembers,
	} {
		for _, name := range list {
			m[name] = name
		}
	}
	return m
}()

// unquoteName is unquote for a member name: a known name written without
// escapes comes from knownNames, and other names (parameter names, which
// repeat in every entry) are interned, instead of being allocated each time.
func (d *decoder) unquoteName(lit []byte) (string, bool) {
	if simpleString(lit) {
		inner := lit[1 : len(lit)-1]
		if s, ok := knownNames[string(inner)]; ok {
			return s, true
		}
		return d.intern(inner), true
	}
	return unquote(lit)
}

// isDuplicate reports whether name is already among members. Entries have a
// handful of members, where a linear scan beats a map; objects with many
// (Parameters, TargetMaps) switch to the map seen.
func isDuplicate(members []member, name string, seen *map[string]bool) bool {
	const linear = 16
	if len(members) < linear {
		for _, m := range members {
			if m.name == name {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*len(members))
		for _, m := range members {
			(*seen)[m.name] = true
		}
	}
	if (*seen)[name] {
		return true
	}
	(*seen)[name] = true
	return false
}

// elements calls each for every element of the array raw, stopping early
// (and returning false) when each returns false. It reports a type error at
// path when raw is not an array.
func (d *decoder) elements(raw json.RawMessage, path, want string, each func(i int, value json.RawMessage) bool) bool {
	p := rootPath(path)
	return d.elementsAt(raw, &p, want, each)
}

// elementsAt is elements at a lazily built path.
func (d *decoder) elementsAt(raw json.RawMessage, path *jpath, want string, each func(i int, value json.RawMessage) bool) bool {
	if kindOf(raw) != "array" {
		d.typeErrorAt(path, want, raw)
		return false
	}
	b := bytes.TrimSpace(raw)
	i := skipSpace(b, 1)
	if i < len(b) && b[i] == ']' {
		return true
	}
	for n := 0; i < len(b); n++ {
		end, ok := valueEnd(b, i)
		if !ok {
			break
		}
		if !each(n, json.RawMessage(b[i:end])) {
			return false
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i == len(b)-1 && b[i] == ']' {
			return true
		}
		break
	}
	d.failAt(path, "malformed JSON array")
	return false
}

// The scanning below walks a document that checkSyntax has already accepted,
// so it only needs to find where each value ends; it still checks bounds
// everywhere, so a malformed input is reported rather than a panic. It is
// iterative, so nesting depth costs no stack, and it slices the body instead
// of copying it: a 6 MB request of 10 000 entries is read without a
// json.Decoder (and its buffer) per object.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// valueEnd returns the index just past the value starting at b[i].
func valueEnd(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, ok := stringEnd(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	case ',', ':', '}', ']':
		return 0, false
	}
	j := i
	for j < len(b) && !strings.ContainsRune(" \t\r\n,:{}[]\"", rune(b[j])) {
		j++
	}
	return j, true
}

// unquote decodes a JSON string literal, without encoding/json when it has
// no escapes (the common case).
func unquote(lit []byte) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		for _, c := range inner {
			if c < 0x20 {
				return "", false
			}
		}
		return string(inner), true
	}
	// encoding/json turns an unpaired surrogate escape (\ud800) into
	// U+FFFD: the value sent would not be the value written.
	if unpairedSurrogate(inner) {
		return "", false
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return "", false
	}
	return s, true
}

// malformedString names what unquote refuses, without the value.
const malformedString = "malformed JSON string (a bad escape, or an unpaired UTF-16 surrogate such as \\ud800)"

// unpairedSurrogate reports whether a string literal's body holds a \uXXXX
// escape of a UTF-16 surrogate that is not part of a high-low pair.
func unpairedSurrogate(inner []byte) bool {
	escape := func(i int) (rune, bool) { // the \uXXXX at i, if any
		if i+6 > len(inner) || inner[i] != '\\' || inner[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(inner[i+2:i+6]), 16, 32)
		return rune(n), err == nil
	}
	for i := 0; i < len(inner); i++ {
		if inner[i] != '\\' {
			continue
		}
		r, ok := escape(i)
		if !ok {
			i++ // some other escape: skip its second byte
			continue
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			low, ok := escape(i + 6)
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

// unknownAt reports a member that the shape of the object at path does not
// have, with a suggestion when the name is close to one it has (see suggest).
func (d *decoder) unknownAt(path *jpath, name string, known []string) {
	d.unknownHinted(path, name, known, nil)
}

// unknownHinted is unknownAt for a shape with members that are often put
// one level off (an entry's Name at the top level, DryRun in an entry): a
// name in elsewhere gets that hint instead of a suggestion.
func (d *decoder) unknownHinted(path *jpath, name string, known []string, elsewhere map[string]string) {
	p := path.member(name)
	if len(d.problems.list) >= maxFieldErrors {
		d.failAt(&p, "unknown member") // only counted: no suggestion to compute
		return
	}
	if hint, ok := elsewhere[name]; ok {
		d.failAt(&p, "unknown member here; %s", hint)
		return
	}
	d.failAt(&p, "%s", unknownMessage(name, known))
}

// Hints for members put one level off.
var (
	// topLevelElsewhere: a bare entry sent as the request.
	topLevelElsewhere = func() map[string]string {
		m := map[string]string{}
		for _, name := range entryMembers {
			if !slices.Contains(topLevelMembers, name) {
				m[name] = name + ` is a member of an entry: send {"Entries": [{…}]}, or {"Association": {…}, "InstanceIds": […]} for a fan-out request`
			}
		}
		return m
	}()
	// entryElsewhere: request members written inside an entry or the
	// fan-out template.
	entryElsewhere = func() map[string]string {
		m := map[string]string{}
		for _, name := range topLevelMembers {
			m[name] = name + " is a member of the request, next to Entries or Association, not of an entry"
		}
		m["InstanceIds"] = `InstanceIds is a member of a fan-out request, next to Association; an entry names its nodes with InstanceId, or with Targets [{"Key": "InstanceIds", "Values": […]}]`
		return m
	}()
)

// unknownMessage says that name is not a member, and which one was probably
// meant: "unknown member; member names are case-sensitive, did you mean
// \"InstanceId\"?" for a name that differs in case only, "unknown member; did
// you mean \"Name\"?" for a near miss ("Nmae").
func unknownMessage(name string, known []string) string {
	best, caseOnly := suggest(name, known)
	switch {
	case best == "":
		return "unknown member"
	case caseOnly:
		return fmt.Sprintf("unknown member; member names are case-sensitive, did you mean %q?", best)
	}
	return fmt.Sprintf("unknown member; did you mean %q?", best)
}

// maxSuggestLen bounds the names suggest compares: the longest member name
// of any shape has 32 characters, and a hostile 5 MB name must cost nothing.
const maxSuggestLen = 64

// suggest returns the member of known that name most probably meant: one
// equal but for case (caseOnly), else the closest within a small edit
// distance, ignoring case — one edit for names of up to 4 characters, two up
// to 10, three beyond — or "" when none is that close. Ties go to the first
// in known. Each comparison is a 33×33 table at most, and only names within
// the distance in length are compared.
func suggest(name string, known []string) (best string, caseOnly bool) {
	if name == "" || len(name) > maxSuggestLen {
		return "", false
	}
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	lower := []rune(strings.ToLower(name))
	limit := 3
	switch n := len(lower); {
	case n <= 4:
		limit = 1
	case n <= 10:
		limit = 2
	}
	bestDist := limit + 1
	for _, k := range known {
		kl := []rune(strings.ToLower(k))
		if diff := len(kl) - len(lower); diff > limit || -diff > limit {
			continue
		}
		if dist := editDistance(lower, kl); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best, false
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of two adjacent
// characters ("Nmae" is one edit from "name") each count one.
func editDistance(a, b []rune) int {
	// Three rows of the table: two back (for transpositions), previous, current.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// str reads an optional string; null means absent.
func (d *decoder) str(raw json.RawMessage, path string) *string {
	p := rootPath(path)
	return d.strAt(raw, &p)
}

// strAt is str at a lazily built path.
func (d *decoder) strAt(raw json.RawMessage, path *jpath) *string {
	s, ok := d.stringAt(raw, path, false)
	if !ok {
		return nil
	}
	return &s
}

// stringAt reads an optional string as strAt does, without the pointer;
// ok is false when it is absent (null) or not a string. With intern, a value
// seen before in this request is not allocated again: for members whose
// values repeat from entry to entry (document name, schedule, target key).
func (d *decoder) stringAt(raw json.RawMessage, path *jpath, intern bool) (string, bool) {
	if isNull(raw) {
		return "", false
	}
	if kindOf(raw) != "string" {
		d.typeErrorAt(path, "a string", raw)
		return "", false
	}
	lit := bytes.TrimSpace(raw)
	if intern && simpleString(lit) {
		return d.intern(lit[1 : len(lit)-1]), true
	}
	s, ok := unquote(lit)
	if !ok {
		d.failAt(path, malformedString)
		return "", false
	}
	return s, true
}

// simpleString reports whether a string literal is one unquote would return
// byte for byte: no escapes, valid UTF-8, no control characters.
func simpleString(lit []byte) bool {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return false
	}
	inner := lit[1 : len(lit)-1]
	for _, c := range inner {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return utf8.Valid(inner)
}

// boolean reads an optional boolean; null means false, the model's default.
func (d *decoder) boolean(raw json.RawMessage, path string) bool {
	p := rootPath(path)
	return d.booleanAt(raw, &p)
}

// booleanAt is boolean at a lazily built path.
func (d *decoder) booleanAt(raw json.RawMessage, path *jpath) bool {
	switch kindOf(raw) {
	case "null":
		return false
	case "boolean":
		return bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("true"))
	}
	d.typeErrorAt(path, "a boolean", raw)
	return false
}

// int32At reads an optional integer; null means absent. Fractions and values
// that do not fit the model's 32-bit integer are type errors: there is no
// Entry to carry them to the range check.
func (d *decoder) int32At(raw json.RawMessage, path *jpath) *int32 {
	if isNull(raw) {
		return nil
	}
	if kindOf(raw) != "number" {
		d.typeErrorAt(path, "an integer", raw)
		return nil
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
	if err != nil {
		d.failAt(path, "expected a 32-bit integer, got a number that is not one")
		return nil
	}
	v := int32(n)
	return &v
}

// strings reads an optional array of strings; null means absent, a null
// element is a type error (there is no "absent" inside a list).
func (d *decoder) strings(raw json.RawMessage, path string) []string {
	p := rootPath(path)
	return d.stringsAt(raw, &p)
}

// stringsAt is strings at a lazily built path.
func (d *decoder) stringsAt(raw json.RawMessage, path *jpath) []string {
	if isNull(raw) {
		return nil
	}
	out := []string{}
	d.elementsAt(raw, path, "an array of strings", func(i int, v json.RawMessage) bool {
		if kindOf(v) != "string" {
			p := path.elem(i)
			d.typeErrorAt(&p, "a string", v)
			return true
		}
		s, ok := unquote(bytes.TrimSpace(v))
		if !ok {
			p := path.elem(i)
			d.failAt(&p, malformedString)
			return true
		}
		out = append(out, s)
		return true
	})
	return out
}

// stringListMapAt reads an optional object of string arrays (Parameters, a
// TargetMap); null means absent.
// parameters decodes an entry's Parameters. The entries of one request
// nearly always carry the same Parameters, so when the raw JSON is the
// previous entry's, that entry's map is shared instead of building one more
// (a map per entry was a fifth of a 100,000-entry request's allocations).
// Sharing is safe because nothing writes to a decoded Parameters map:
// Redacted copies it, and the SDK only reads it.
func (d *decoder) parameters(raw json.RawMessage, p *jpath) map[string][]string {
	if d.lastParams != nil && bytes.Equal(raw, d.lastParamsRaw) {
		return d.lastParams
	}
	problems := len(d.problems.list) + d.problems.dropped
	m := d.stringListMapAt(raw, p)
	d.lastParamsRaw, d.lastParams = nil, nil
	if m != nil && len(d.problems.list)+d.problems.dropped == problems {
		// Only a clean decode is shared: a problem belongs to its entry.
		d.lastParamsRaw, d.lastParams = raw, m
	}
	return m
}

func (d *decoder) stringListMapAt(raw json.RawMessage, path *jpath) map[string][]string {
	if isNull(raw) {
		return nil
	}
	members, ok := d.objectAt(raw, path, "an object of string arrays")
	if !ok {
		return nil
	}
	out := make(map[string][]string, len(members))
	for _, m := range members {
		p := path.member(m.name)
		if isNull(m.value) {
			d.typeErrorAt(&p, "an array of strings", m.value)
			continue
		}
		out[m.name] = d.stringsAt(m.value, &p)
	}
	d.release(members)
	return out
}

// CheckJSON rejects data that is not exactly one JSON value: a *Error with
// status 400, the message "<what> is not valid JSON", and one FieldError at
// path "" (the document as a whole) saying what is wrong and where, as a line,
// a column and a byte offset. It names the position but never the offending
// character, which may belong to a parameter value; the error it wraps keeps
// encoding/json's own text for logs that opt into it through errors.As. It
// returns nil for valid JSON, at the cost of one json.Valid.
func CheckJSON(data []byte, what string) *Error {
	if json.Valid(data) {
		return nil
	}
	// Slow path, for the message only. Unmarshal checks the whole input
	// before decoding anything, so every problem is a *json.SyntaxError:
	// trailing data and a truncated document included.
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		// Not expected; still a rejection, without a position.
		return NewError(http.StatusBadRequest, what+" is not valid JSON", fmt.Errorf("decoding %s: %w", what, err),
			FieldError{Message: "syntax error"})
	}
	off := int(syn.Offset) - 1 // the offending byte
	var problem string
	text := syn.Error()
	switch {
	case strings.HasPrefix(text, "unexpected end of JSON input"):
		problem, off = "unexpected end of JSON input", len(data)
	case strings.Contains(text, "exceeded max depth"):
		problem = "JSON nested too deeply (more than 10000 levels)"
	case strings.HasSuffix(text, "after top-level value"):
		problem = "unexpected data after the JSON value"
		err = fmt.Errorf("%w: %w", errTrailingData, err)
	default:
		problem = syntaxProblem(text)
	}
	off = max(0, min(off, len(data)))
	line, col := position(data, off)
	return NewError(http.StatusBadRequest, what+" is not valid JSON", fmt.Errorf("decoding %s: %w", what, err),
		FieldError{Message: fmt.Sprintf("%s at line %d, column %d (byte offset %d)", problem, line, col, off)})
}

// syntaxProblem is encoding/json's description of a syntax error without the
// character it quotes ("invalid character 'x' after object key"), said the
// way a person fixing the body would want it.
func syntaxProblem(text string) string {
	const prefix = "invalid character "
	if !strings.HasPrefix(text, prefix) {
		return "syntax error"
	}
	rest := text[len(prefix):]
	// The character is quoted as 'c', '\'' or '\x01'; what follows the
	// closing quote and a space is the context.
	i := strings.Index(rest[min(1, len(rest)):], "' ")
	if i < 0 {
		return "unexpected character"
	}
	context := rest[i+1+2:]
	switch context {
	case "looking for beginning of value":
		return "unexpected character, expected a value"
	case "looking for beginning of object key string":
		return `unexpected character, expected a member name in double quotes`
	case "after object key":
		return `unexpected character, expected ':' after a member name`
	case "after object key:value pair":
		return `unexpected character, expected ',' or '}' after a member`
	case "after array element":
		return `unexpected character, expected ',' or ']' after an array element`
	case "in string literal":
		return "control character in a string (escape it, e.g. \\n)"
	}
	return "unexpected character " + context
}

// position returns the 1-based line and column of byte offset off in data.
// Columns count characters, as editors do; data is valid UTF-8 wherever
// Parse asks (the UTF-8 check comes first), and an invalid byte counts as
// one character anyway.
func position(data []byte, off int) (line, col int) {
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[lineStart:])
}

// errTrailingData is the cause of a rejection for bytes after the JSON value.
var errTrailingData = errors.New("trailing data after the JSON value")

// memberPath appends a member name to a path: Entries[0].Name, or
// Parameters["my param"] when the name is not a plain identifier (parameter
// names and TargetMap keys can contain anything). Very long names are cut:
// the path is for finding the member, not for echoing the request.
func memberPath(path, name string) string {
	const maxName = 64
	if len(name) > maxName && len([]rune(name)) > maxName {
		name = string([]rune(name)[:maxName]) + "…"
	}
	if !plainName(name) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func plainName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r != '_' && r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
