package request

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// This file holds the decoder: it reads a document CheckJSON has accepted
// one level at a time, with the scanner of jsonscan.go, and reports every
// problem at its exact path (jpath.go). encoding/json would do the job in one
// call, but it matches member names case-insensitively (AWS does not:
// "instanceId" is an unknown member to SSM), keeps the last of duplicate
// members silently, and reports a type error as "Entries.Targets.Values"
// without the array indexes an operator needs to find entry 2718 of 10 000.

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

// fail reports a problem at a path already spelled out.
func (d *decoder) fail(path, format string, args ...any) { d.problems.add(path, format, args...) }

// failAt reports a problem at a jpath, which is spelled out only here.
func (d *decoder) failAt(p *jpath, format string, args ...any) {
	if len(d.problems.list) >= maxFieldErrors {
		d.problems.dropped++ // what add would do, without building the path
		return
	}
	d.problems.add(p.String(), format, args...)
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

func (d *decoder) typeErrorAt(p *jpath, want string, raw json.RawMessage) {
	d.failAt(p, "expected %s, got %s", want, kindOf(raw))
}

// objectAt returns the members of the object raw, reporting a type error, a
// duplicate member or (should the document be malformed after all) a syntax
// error at path. ok is false when raw is not an object. The members it
// returns are on top of the decoder's member stack: the caller reads them
// (decoding nested objects pushes and pops above them) and then calls
// release, or leaves them there for the rest of the decoding (Parse's top
// level). When ok is false nothing is left on the stack and members is nil.
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

// elementsAt calls each for every element of the array raw, stopping early
// (and returning false) when each returns false. It reports a type error at
// path when raw is not an array.
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

// strAt reads an optional string; null means absent.
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

// booleanAt reads an optional boolean; null means false, the model's default.
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

// stringsAt reads an optional array of strings; null means absent, a null
// element is a type error (there is no "absent" inside a list).
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

// stringListMapAt reads an optional object of string arrays (Parameters, a
// TargetMap); null means absent.
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
