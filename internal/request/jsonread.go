package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
}

func (d *decoder) fail(path, format string, args ...any) { d.problems.add(path, format, args...) }

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

// object returns the members of the object raw, reporting a type error, a
// duplicate member or (should the document be malformed after all) a syntax
// error at path. ok is false when raw is not an object.
func (d *decoder) object(raw json.RawMessage, path, want string) (members []member, ok bool) {
	if kindOf(raw) != "object" {
		d.typeError(path, want, raw)
		return nil, false
	}
	b := bytes.TrimSpace(raw)
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
		name, okName := unquote(b[i:end])
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
		if isDuplicate(members, name, &seen) {
			// encoding/json would keep the last one silently; which of two
			// Names the operator meant is a guess we should not make.
			d.fail(memberPath(path, name), "duplicate member")
		} else {
			if members == nil {
				members = make([]member, 0, 8)
			}
			members = append(members, member{name: name, value: value})
		}
		i = skipSpace(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i == len(b)-1 && b[i] == '}' {
			return members, true
		}
		break
	}
	d.fail(path, "malformed JSON object")
	return members, false
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
	if kindOf(raw) != "array" {
		d.typeError(path, want, raw)
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
	d.fail(path, "malformed JSON array")
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

// unknown reports a member that the shape does not have, pointing out a
// case-insensitive match because that is the usual mistake ("InstanceID").
func (d *decoder) unknown(path, name string, known []string) {
	p := memberPath(path, name)
	for _, k := range known {
		if strings.EqualFold(k, name) {
			d.fail(p, "unknown member; member names are case-sensitive, did you mean %q?", k)
			return
		}
	}
	d.fail(p, "unknown member")
}

// str reads an optional string; null means absent.
func (d *decoder) str(raw json.RawMessage, path string) *string {
	if isNull(raw) {
		return nil
	}
	if kindOf(raw) != "string" {
		d.typeError(path, "a string", raw)
		return nil
	}
	s, ok := unquote(bytes.TrimSpace(raw))
	if !ok {
		d.fail(path, malformedString)
		return nil
	}
	return &s
}

// boolean reads an optional boolean; null means false, the model's default.
func (d *decoder) boolean(raw json.RawMessage, path string) bool {
	switch kindOf(raw) {
	case "null":
		return false
	case "boolean":
		return bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("true"))
	}
	d.typeError(path, "a boolean", raw)
	return false
}

// int32 reads an optional integer; null means absent. Fractions and values
// that do not fit the model's 32-bit integer are type errors: there is no
// Entry to carry them to the range check.
func (d *decoder) int32(raw json.RawMessage, path string) *int32 {
	if isNull(raw) {
		return nil
	}
	if kindOf(raw) != "number" {
		d.typeError(path, "an integer", raw)
		return nil
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
	if err != nil {
		d.fail(path, "expected a 32-bit integer, got a number that is not one")
		return nil
	}
	v := int32(n)
	return &v
}

// strings reads an optional array of strings; null means absent, a null
// element is a type error (there is no "absent" inside a list).
func (d *decoder) strings(raw json.RawMessage, path string) []string {
	if isNull(raw) {
		return nil
	}
	out := []string{}
	d.elements(raw, path, "an array of strings", func(i int, v json.RawMessage) bool {
		if kindOf(v) != "string" {
			d.typeError(indexPath(path, i), "a string", v)
			return true
		}
		s, ok := unquote(bytes.TrimSpace(v))
		if !ok {
			d.fail(indexPath(path, i), malformedString)
			return true
		}
		out = append(out, s)
		return true
	})
	return out
}

// stringListMap reads an optional object of string arrays (Parameters, a
// TargetMap); null means absent.
func (d *decoder) stringListMap(raw json.RawMessage, path string) map[string][]string {
	if isNull(raw) {
		return nil
	}
	members, ok := d.object(raw, path, "an object of string arrays")
	if !ok {
		return nil
	}
	out := make(map[string][]string, len(members))
	for _, m := range members {
		p := memberPath(path, m.name)
		if isNull(m.value) {
			d.typeError(p, "an array of strings", m.value)
			continue
		}
		out[m.name] = d.strings(m.value, p)
	}
	return out
}

// checkSyntax reports whether body is exactly one JSON value. The message
// names the byte offset but not the offending character, which may belong to
// a parameter value; the returned error keeps encoding/json's own text for
// logs that opt into it through errors.As.
func checkSyntax(body []byte) (message string, err error) {
	if json.Valid(body) {
		return "", nil
	}
	// Slow path, for the message only.
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return "unexpected end of JSON input", fmt.Errorf("decoding body: %w", err)
		case errors.As(err, &syn) && strings.Contains(syn.Error(), "exceeded max depth"):
			return "JSON nested too deeply", fmt.Errorf("decoding body: %w", err)
		case errors.As(err, &syn):
			return fmt.Sprintf("syntax error at byte %d", syn.Offset), fmt.Errorf("decoding body: %w", err)
		default:
			return fmt.Sprintf("syntax error near byte %d", dec.InputOffset()), fmt.Errorf("decoding body: %w", err)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		off := dec.InputOffset()
		return fmt.Sprintf("unexpected data after the JSON value at byte %d", off),
			fmt.Errorf("decoding body: %w at byte %d", errTrailingData, off)
	}
	return "", nil
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
