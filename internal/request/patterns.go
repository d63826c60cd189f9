package request

import (
	"regexp"
	"sync/atomic"
	"unicode/utf16"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// The SSM model's patterns, verbatim, as shown in messages so an operator can
// compare them with the API reference. The service matches them the way
// Java's Matcher.matches does: against the whole value, whether or not the
// pattern is anchored. That is why each compiled form below wraps the model
// pattern in ^(?:…)$ — "arn:aws:iam::123456789012:role/x trailing" must not
// pass just because a prefix matches.
const (
	patDocumentName    = `^[a-zA-Z0-9_\-.:/]{3,128}$`
	patInstanceID      = `(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)`
	patDocumentVersion = `([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)`
	patTargetKey       = `^[\p{L}\p{Z}\p{N}_.:/=\-@]*$|resource-groups:ResourceTypeFilters|resource-groups:Name`
	patAssociationName = `^[a-zA-Z0-9_\-.]{3,128}$`
	patMaxErrors       = `^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$`
	patMaxConcurrency  = `^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`
	patExecutionRole   = `[\w+=,.@/-]+`
	patExcludeAccount  = `^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32})|(\d{12})$`
	patAssumeRoleARN   = `arn:aws(-[^:]+)?:iam::[0-9]{12}:role/.+`
	// patAlarmName is `^(?!\s*$).+` in the model; RE2 has no lookahead,
	// so validAlarmName implements it by hand.
	patAlarmName = `^(?!\s*$).+`
)

func whole(pattern string) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + pattern + `)$`)
}

var (
	reDocumentName    = whole(patDocumentName)
	reInstanceID      = whole(patInstanceID)
	reDocumentVersion = whole(patDocumentVersion)
	reTargetKey       = whole(patTargetKey)
	reAssociationName = whole(patAssociationName)
	reMaxErrors       = whole(patMaxErrors)
	reMaxConcurrency  = whole(patMaxConcurrency)
	reExecutionRole   = whole(patExecutionRole)
	reExcludeAccount  = whole(patExcludeAccount)
	reAssumeRoleARN   = whole(patAssumeRoleARN)
)

// The model's enums, in the model's order (messages list them).
var (
	complianceSeverities = enumStrings(ssmtypes.AssociationComplianceSeverity("").Values())
	syncCompliances      = enumStrings(ssmtypes.AssociationSyncCompliance("").Values())
)

// enumStrings is an SDK enum's Values as strings.
func enumStrings[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// ValidInstanceID reports whether id is a managed node ID SSM accepts: an EC2
// instance (i-) or a hybrid managed node (mi-). It is patInstanceID, matched
// by hand because every node of a request goes through it and the regexp
// took a fifth of the validation; FuzzValidInstanceID holds the two equal.
func ValidInstanceID(id string) bool {
	var rest string
	switch {
	case len(id) == len("i-")+8 || len(id) == len("i-")+17:
		if id[:2] != "i-" {
			return false
		}
		rest = id[2:]
	case len(id) == len("mi-")+17:
		if id[:3] != "mi-" {
			return false
		}
		rest = id[3:]
	default:
		return false
	}
	for i := range len(rest) {
		if !isWordByte(rest[i]) {
			return false
		}
	}
	return true
}

// isWordByte is \w: RE2's and Java's (without UNICODE_CHARACTER_CLASS),
// [0-9A-Za-z_].
func isWordByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// lastResult remembers what a check said about the last value it saw: the
// entries of one request nearly always repeat the same document name and
// schedule, and checking those again 100,000 times was a tenth of the work.
// One value, swapped atomically: bounded, and safe for concurrent Parses.
type lastResult[T any] struct {
	check func(string) T
	last  atomic.Pointer[remembered[T]]
}

type remembered[T any] struct {
	value  string
	result T
}

func (l *lastResult[T]) get(value string) T {
	if r := l.last.Load(); r != nil && r.value == value {
		return r.result
	}
	res := l.check(value)
	l.last.Store(&remembered[T]{value, res})
	return res
}

type scheduleResult struct {
	kind scheduleKind
	err  error
}

var (
	documentNames = &lastResult[bool]{check: reDocumentName.MatchString}
	schedules     = &lastResult[scheduleResult]{check: func(expr string) scheduleResult {
		k, err := parseSchedule(expr)
		return scheduleResult{k, err}
	}}
)

// validAlarmName is the model's ^(?!\s*$).+ : not blank, and — because Java's
// "." stops at line terminators — on one line.
func validAlarmName(s string) bool {
	blank := true
	for _, r := range s {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			return false
		case ' ', '\t', '\f', '\v':
		default:
			blank = false
		}
	}
	return !blank
}

// modelLen is a string's length as the service counts it: Java strings count
// UTF-16 code units, so a character outside the BMP counts twice.
func modelLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
