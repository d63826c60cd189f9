package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the JSON scanner: the syntax check (CheckJSON) and the
// byte-level functions the decoder (jsonread.go) reads values with — a
// value's kind, where it ends, a string literal's text. The scanner walks a
// document CheckJSON has already accepted, so it only needs to find where
// each value ends; it still checks bounds everywhere, so a malformed input is
// reported rather than a panic. It is iterative, so nesting depth costs no
// stack, and it slices the body instead of copying it: a 6 MB request of
// 10 000 entries is read without a json.Decoder (and its buffer) per object.

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
