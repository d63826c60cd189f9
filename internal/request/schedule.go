package request

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scheduleKind is the form of a ScheduleExpression; the cross-field rules
// depend on it (ApplyOnlyAtCronInterval is not for rate expressions,
// ScheduleOffset is cron only).
type scheduleKind int

const (
	scheduleNone    scheduleKind = iota // no ScheduleExpression
	scheduleInvalid                     // present but unparseable; already reported
	scheduleRate
	scheduleCron
	scheduleAt
)

// Bounds State Manager puts on association schedules.
const (
	minRateMinutes   = 30
	maxRateMinutes   = 31 * 24 * 60 // exclusive: "under 31 days"
	minCronGapMinute = 5
)

// parseSchedule checks a ScheduleExpression against State Manager's grammar:
// rate(N unit), cron(six fields, or seven with seconds 0) or
// at(yyyy-mm-ddThh:mm:ss), as the Systems Manager user guide's "Reference:
// Cron and rate expressions for Systems Manager" describes them for
// associations
// (https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html).
// Where the guide is silent (wrapping ranges, step sizes, number spellings)
// the expression is refused: the function must not send what SSM may
// refuse. The emulator (internal/ssmlocal) checks the same grammar with its
// own code; internal/ssmlocal/testdata/schedules.txt holds the verdicts both
// must give, and a differential test and fuzz target compare them. Error
// messages are complete sentences about the rule, suitable after
// "ScheduleExpression: ".
func parseSchedule(expr string) (scheduleKind, error) {
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		return scheduleRate, checkRate(expr[len("rate(") : len(expr)-1])
	case strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")"):
		return scheduleCron, checkCron(expr[len("cron(") : len(expr)-1])
	case strings.HasPrefix(expr, "at(") && strings.HasSuffix(expr, ")"):
		// Exactly the 19 characters of the guide's at(2020-07-07T15:55:00):
		// time.Parse alone would also take a fraction of a second.
		inner := expr[len("at(") : len(expr)-1]
		if _, err := time.Parse("2006-01-02T15:04:05", inner); err != nil || len(inner) != len("2006-01-02T15:04:05") {
			return scheduleAt, errors.New("at must be at(yyyy-mm-ddThh:mm:ss), a valid date and time")
		}
		return scheduleAt, nil
	}
	return scheduleInvalid, errors.New("must be rate(…), cron(…) or at(…)")
}

var rateUnits = map[string]struct {
	minutes  int
	singular bool
	other    string
}{
	"minute": {1, true, "minutes"}, "minutes": {1, false, "minute"},
	"hour": {60, true, "hours"}, "hours": {60, false, "hour"},
	"day": {24 * 60, true, "days"}, "days": {24 * 60, false, "day"},
}

func checkRate(inner string) error {
	fields := strings.Split(inner, " ")
	if len(fields) != 2 {
		return errors.New("rate must be rate(<number> <unit>), e.g. rate(30 minutes)")
	}
	num, unitName := fields[0], fields[1]
	if num == "" || strings.Trim(num, "0123456789") != "" || len(num) > 6 {
		return errors.New("rate value must be a whole number of at most 6 digits, e.g. rate(30 minutes)")
	}
	if len(num) > 1 && num[0] == '0' { // the guide's values are "1" or "15"
		return errors.New("rate value must not start with 0, e.g. rate(7 days), not rate(07 days)")
	}
	n, _ := strconv.Atoi(num) // all digits and short: cannot fail
	unit, ok := rateUnits[unitName]
	if !ok {
		return errors.New("rate unit must be minute(s), hour(s) or day(s)")
	}
	if n == 0 {
		return errors.New("rate value must be at least 1")
	}
	if (n == 1) != unit.singular {
		if n == 1 {
			return fmt.Errorf("rate unit must be singular for 1: %q, not %q", unit.other, unitName)
		}
		return fmt.Errorf("rate unit must be plural for values other than 1: %q, not %q", unit.other, unitName)
	}
	total := n * unit.minutes
	if total < minRateMinutes {
		return errors.New("rate must be at least 30 minutes")
	}
	if total >= maxRateMinutes {
		return errors.New("rate must be less than 31 days")
	}
	return nil
}

// cronField describes one field of a cron expression.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i (JAN=1, SUN=1)
	question bool     // '?' allowed
	dom      bool     // day-of-month specials: L, LW, nW
	dow      bool     // day-of-week specials: L, nL, n#k
}

var cronFields = []cronField{
	{name: "minutes", min: 0, max: 59},
	{name: "hours", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31, question: true, dom: true},
	{name: "month", min: 1, max: 12,
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}},
	{name: "day-of-week", min: 1, max: 7, question: true, dow: true,
		names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}},
	{name: "year", min: 1970, max: 2199},
}

// checkCron checks cron(minutes hours day-of-month month day-of-week year),
// optionally preceded by a seconds field that can only be 0 (the guide: "If
// you specify the optional Seconds field, its value can be 0 (zero)"). A
// five-field expression is refused: the guide's examples all have six, and
// five is more likely a Unix crontab pasted in (whose day-of-week numbering
// differs) than a deliberate "any year". The month must be *: "State
// Manager doesn't currently support specifying months in cron expressions
// for associations."
func checkCron(inner string) error {
	fields := strings.Split(inner, " ") // "Fields are separated by a space."
	if slices.Contains(fields, "") {
		return errors.New("cron fields must be separated by single spaces, with none before the first or after the last")
	}
	if len(fields) == len(cronFields)+1 {
		if fields[0] != "0" {
			return errors.New("cron seconds field (the first of 7) can only be 0 for associations")
		}
		fields = fields[1:]
	}
	if len(fields) != len(cronFields) {
		return fmt.Errorf("cron must have 6 fields (minutes hours day-of-month month day-of-week year), or 7 with seconds 0 first, got %d", len(fields))
	}
	if fields[3] != "*" {
		return errors.New("cron month field must be *: State Manager does not support specifying months for associations")
	}
	var sets [2]uint64 // minutes and hours, for the frequency check
	for i, f := range cronFields {
		set, err := f.parse(fields[i])
		if err != nil {
			return fmt.Errorf("cron %s field: %w", f.name, err)
		}
		if i < 2 {
			sets[i] = set
		}
	}
	domQ, dowQ := fields[2] == "?", fields[4] == "?"
	if domQ == dowQ {
		return errors.New("cron needs '?' in exactly one of day-of-month and day-of-week")
	}
	if gap := minCronGap(sets[0], sets[1]); gap < minCronGapMinute {
		return errors.New("cron must not run more often than every 5 minutes")
	}
	return nil
}

// minCronGap returns the smallest number of minutes between two runs given
// the minute and hour sets. Runs in consecutive hours (23 and 0 included,
// conservatively) also count the gap across the top of the hour.
func minCronGap(minutes, hours uint64) int {
	if bits.OnesCount64(minutes) < 2 && minutes != 0 {
		return 60
	}
	gap := 60
	prev, first, last := -1, -1, -1
	for m := 0; m < 60; m++ {
		if minutes&(1<<m) == 0 {
			continue
		}
		if prev >= 0 && m-prev < gap {
			gap = m - prev
		}
		if first < 0 {
			first = m
		}
		prev, last = m, m
	}
	consecutive := false
	for h := 0; h < 24; h++ {
		if hours&(1<<h) != 0 && hours&(1<<((h+1)%24)) != 0 {
			consecutive = true
			break
		}
	}
	if consecutive && first >= 0 {
		if wrap := 60 - last + first; wrap < gap {
			gap = wrap
		}
	}
	return gap
}

// parse checks one field and, when the field's range fits in 64 bits,
// returns the set of values it selects (specials like L select nothing; only
// minutes and hours are used).
func (f cronField) parse(s string) (uint64, error) {
	if s == "?" {
		if !f.question {
			return 0, errors.New("'?' is only allowed in day-of-month and day-of-week")
		}
		return 0, nil
	}
	var set uint64
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			return 0, errors.New("empty list item")
		}
		if f.special(part) {
			continue
		}
		lo, hi, step := f.min, f.max, 1
		rng, stepText, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > f.max || strings.Trim(stepText, "0123456789") != "" {
				return 0, fmt.Errorf("step %q must be a number between 1 and %d", stepText, f.max)
			}
			step = n
		}
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			if hi, err = f.value(b); err != nil {
				return 0, err
			}
			if lo > hi { // SSM documents no wrapping (FRI-MON): write FRI,SAT,SUN,MON
				return 0, fmt.Errorf("range %s runs backwards", rng)
			}
		default:
			v, err := f.value(rng)
			if err != nil {
				return 0, err
			}
			lo = v
			if !hasStep {
				hi = v
			}
		}
		if f.max-f.min < 64 {
			for v := lo; v <= hi; v += step {
				set |= 1 << (v - f.min)
			}
		}
	}
	return set, nil
}

// value reads a number or (month, day-of-week) a name, checking the range.
// Names match in either case, ASCII letters only (strings.EqualFold would
// take "ſun" for SUN).
func (f cronField) value(s string) (int, error) {
	for i, name := range f.names {
		if len(s) == len(name) && strings.EqualFold(s, name) {
			return f.min + i, nil
		}
	}
	if s == "" || strings.Trim(s, "0123456789") != "" || len(s) > 4 {
		if f.names != nil {
			return 0, fmt.Errorf("%q is not a number %d-%d or a name %s-%s", s, f.min, f.max, f.names[0], f.names[len(f.names)-1])
		}
		return 0, fmt.Errorf("%q is not a number %d-%d", s, f.min, f.max)
	}
	v, _ := strconv.Atoi(s)
	if v < f.min || v > f.max {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, f.min, f.max)
	}
	return v, nil
}

// special reports whether part is a valid L/W/# item of the field.
func (f cronField) special(part string) bool {
	switch {
	case f.dom && (part == "L" || part == "LW"):
		return true
	case f.dom && strings.HasSuffix(part, "W"):
		_, err := f.value(strings.TrimSuffix(part, "W"))
		return err == nil
	case f.dow && part == "L":
		return true
	case f.dow && strings.HasSuffix(part, "L"):
		_, err := f.value(strings.TrimSuffix(part, "L"))
		return err == nil
	case f.dow && strings.Contains(part, "#"):
		day, nth, _ := strings.Cut(part, "#")
		_, err := f.value(day)
		return err == nil && len(nth) == 1 && nth[0] >= '1' && nth[0] <= '5'
	}
	return false
}
