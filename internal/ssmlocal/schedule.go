package ssmlocal

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// State Manager's schedule grammar, from the Systems Manager user guide
// ("Reference: Cron and rate expressions for Systems Manager",
// https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html,
// its general part and its associations section). The service model only
// bounds the length (1–256); everything here is the semantic check that the
// service reports as InvalidSchedule. Where the guide is silent (reversed
// ranges, step sizes, number spellings) the emulator refuses: the hardest
// case for the function, which must not send what SSM may refuse.
// docs/ssm-local.md lists each rule and its source; the shared corpus
// testdata/schedules.txt holds the verdicts both this parser and the
// function's own (internal/request, no code shared) must give.

type scheduleKind int

const (
	scheduleRate scheduleKind = iota + 1
	scheduleCron
	scheduleAt
)

const (
	minRateMinutes   = 30
	maxRateMinutes   = 31*24*60 - 1 // "under 31 days"
	minCronGapMinute = 5
)

var (
	reRate = regexp.MustCompile(`^rate\(([0-9]+) ([a-z]+)\)$`)
	reCron = regexp.MustCompile(`^cron\((.*)\)$`)
	reAt   = regexp.MustCompile(`^at\(([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})\)$`)
)

// parseSchedule reports which kind of expression expr is, or why it is not
// one State Manager accepts.
func parseSchedule(expr string) (scheduleKind, error) {
	switch {
	case strings.HasPrefix(expr, "rate("):
		return scheduleRate, checkRate(expr)
	case strings.HasPrefix(expr, "cron("):
		return scheduleCron, checkCron(expr)
	case strings.HasPrefix(expr, "at("):
		m := reAt.FindStringSubmatch(expr)
		if m == nil {
			return scheduleAt, fmt.Errorf("expected at(yyyy-mm-ddThh:mm:ss)")
		}
		if _, err := time.Parse("2006-01-02T15:04:05", m[1]); err != nil {
			return scheduleAt, fmt.Errorf("expected at(yyyy-mm-ddThh:mm:ss): %w", err)
		}
		return scheduleAt, nil
	}
	return 0, fmt.Errorf("expected rate(...), cron(...) or at(...)")
}

func checkRate(expr string) error {
	m := reRate.FindStringSubmatch(expr)
	if m == nil {
		return fmt.Errorf("expected rate(<positive integer> <minute(s)|hour(s)|day(s)>)")
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 || m[1][0] == '0' {
		return fmt.Errorf("rate value %q must be a positive integer", m[1])
	}
	per := map[string]int{"minute": 1, "hour": 60, "day": 24 * 60}
	unit := m[2]
	singular := strings.TrimSuffix(unit, "s")
	mult, ok := per[singular]
	if !ok {
		return fmt.Errorf("rate unit %q must be minute(s), hour(s) or day(s)", unit)
	}
	// The unit is singular for 1 and plural otherwise: rate(1 hours) and
	// rate(2 hour) are both rejected.
	if (n == 1) != (unit == singular) {
		want := singular
		if n != 1 {
			want += "s"
		}
		return fmt.Errorf("rate(%d %s): the unit must be %q", n, unit, want)
	}
	total := n * mult
	if total < minRateMinutes {
		return fmt.Errorf("rate must be at least %d minutes for associations", minRateMinutes)
	}
	if total > maxRateMinutes {
		return fmt.Errorf("rate must be under 31 days")
	}
	return nil
}

var (
	monthNames = names("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
	dayNames   = names("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
	// The guide's fields are separated by one space.
	reCronFields = regexp.MustCompile(`^[^ ]+( [^ ]+)*$`)
)

func names(ns ...string) map[string]int {
	m := map[string]int{}
	for i, n := range ns {
		m[n] = i + 1
	}
	return m
}

// cronField describes one field of the six-field form
// "minutes hours day-of-month month day-of-week year".
type cronField struct {
	name    string
	lo, hi  int
	names   map[string]int
	special string // extra characters the field allows beyond ", - * /"
}

var cronFields = []cronField{
	{name: "minutes", lo: 0, hi: 59},
	{name: "hours", lo: 0, hi: 23},
	{name: "day-of-month", lo: 1, hi: 31, special: "?LW"},
	{name: "month", lo: 1, hi: 12, names: monthNames},
	{name: "day-of-week", lo: 1, hi: 7, names: dayNames, special: "?L#"},
	{name: "year", lo: 1970, hi: 2199},
}

func checkCron(expr string) error {
	m := reCron.FindStringSubmatch(expr)
	if m == nil {
		return fmt.Errorf("expected cron(minutes hours day-of-month month day-of-week year)")
	}
	if !reCronFields.MatchString(m[1]) {
		return fmt.Errorf("cron fields must be separated by single spaces")
	}
	fields := strings.Split(m[1], " ")
	// An optional seconds field comes first; for associations it can only
	// be 0 (the guide: "If you specify the optional Seconds field, its
	// value can be 0 (zero). For example: cron(0 */30 * * * ? *)").
	if len(fields) == len(cronFields)+1 {
		if fields[0] != "0" {
			return fmt.Errorf("cron seconds field %q: for associations it can only be 0", fields[0])
		}
		fields = fields[1:]
	}
	if len(fields) != len(cronFields) {
		return fmt.Errorf("cron needs 6 fields (minutes hours day-of-month month day-of-week year), or 7 with seconds 0 first, got %d", len(fields))
	}
	// "State Manager doesn't currently support specifying months in cron
	// expressions for associations."
	if fields[3] != "*" {
		return fmt.Errorf("cron month field %q: State Manager does not support specifying months for associations; use *", fields[3])
	}
	sets := make([][]int, len(fields))
	for i, f := range fields {
		set, err := cronFields[i].parse(f)
		if err != nil {
			return fmt.Errorf("cron %s field %q: %w", cronFields[i].name, f, err)
		}
		sets[i] = set
	}
	if (fields[2] == "?") == (fields[4] == "?") {
		return fmt.Errorf("exactly one of day-of-month (%q) and day-of-week (%q) must be '?'", fields[2], fields[4])
	}
	if gap := minGap(sets[0], sets[1]); gap < minCronGapMinute {
		return fmt.Errorf("cron runs every %d minute(s); associations may run at most every %d minutes", gap, minCronGapMinute)
	}
	return nil
}

// parse returns the values a field selects (nil for fields whose value set
// is not a plain list, such as L, W or #, which only day fields allow).
func (cf cronField) parse(f string) ([]int, error) {
	if f == "?" {
		if !strings.Contains(cf.special, "?") {
			return nil, fmt.Errorf("'?' is allowed only in day-of-month or day-of-week")
		}
		return nil, nil
	}
	sel := map[int]bool{}
	plain := true
	for _, item := range strings.Split(f, ",") {
		vals, isPlain, err := cf.item(item)
		if err != nil {
			return nil, err
		}
		plain = plain && isPlain
		for _, v := range vals {
			sel[v] = true
		}
	}
	if !plain {
		return nil, nil
	}
	out := make([]int, 0, len(sel))
	for v := range sel {
		out = append(out, v)
	}
	sort.Ints(out)
	return out, nil
}

func (cf cronField) item(item string) (vals []int, plain bool, err error) {
	if item == "" {
		return nil, false, fmt.Errorf("empty list item")
	}
	// Day-field specials: L, LW, 15W (day of month); 5L, 2#3 (day of week).
	if strings.Contains(cf.special, "L") {
		if item == "L" || (cf.name == "day-of-month" && item == "LW") {
			return nil, false, nil
		}
		if base, ok := strings.CutSuffix(item, "L"); ok && cf.name == "day-of-week" {
			_, err := cf.value(base)
			return nil, false, err
		}
	}
	if strings.Contains(cf.special, "W") {
		if base, ok := strings.CutSuffix(item, "W"); ok {
			_, err := cf.value(base)
			return nil, false, err
		}
	}
	if strings.Contains(cf.special, "#") {
		if day, nth, ok := strings.Cut(item, "#"); ok {
			if _, err := cf.value(day); err != nil {
				return nil, false, err
			}
			if len(nth) != 1 || nth[0] < '1' || nth[0] > '5' {
				return nil, false, fmt.Errorf("'#%s' must be #1 to #5", nth)
			}
			return nil, false, nil
		}
	}
	base, stepText, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		// The guide bounds no step; a step beyond the field's largest value
		// is refused, as Quartz-style parsers refuse it.
		step, err = number(stepText)
		if err != nil || step < 1 || step > cf.hi {
			return nil, false, fmt.Errorf("step %q must be a whole number from 1 to %d", stepText, cf.hi)
		}
	}
	lo, hi := cf.lo, cf.hi
	switch {
	case base == "*":
	case strings.Contains(base, "-"):
		a, b, _ := strings.Cut(base, "-")
		if lo, err = cf.value(a); err != nil {
			return nil, false, err
		}
		if hi, err = cf.value(b); err != nil {
			return nil, false, err
		}
		if lo > hi { // no wrapping around (FRI-MON): the guide shows none
			return nil, false, fmt.Errorf("range %s is reversed", base)
		}
	default:
		if lo, err = cf.value(base); err != nil {
			return nil, false, err
		}
		if !hasStep {
			hi = lo
		}
	}
	for v := lo; v <= hi; v += step {
		vals = append(vals, v)
	}
	return vals, true, nil
}

func (cf cronField) value(s string) (int, error) {
	if n, ok := cf.names[asciiUpper(s)]; ok {
		return n, nil
	}
	n, err := number(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a valid %s value", s, cf.name)
	}
	if n < cf.lo || n > cf.hi {
		return 0, fmt.Errorf("%d is outside %d-%d", n, cf.lo, cf.hi)
	}
	return n, nil
}

// number reads one to four ASCII digits (the guide's values and its
// examples: "09", "2199"); no sign, no space.
func number(s string) (int, error) {
	if len(s) < 1 || len(s) > 4 {
		return 0, fmt.Errorf("%q is not a number of 1 to 4 digits", s)
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number of 1 to 4 digits", s)
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// asciiUpper upper-cases ASCII letters only, so that no other character
// (ſ, K) can pass for a month or day name.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// minGap is the shortest interval, in minutes, between two runs selected by
// the minute and hour sets; across the hour boundary only when two adjacent
// hours are both selected.
func minGap(minutes, hours []int) int {
	gap := 60
	for i := 1; i < len(minutes); i++ {
		gap = min(gap, minutes[i]-minutes[i-1])
	}
	if len(minutes) > 0 && adjacentHours(hours) {
		gap = min(gap, 60-minutes[len(minutes)-1]+minutes[0])
	}
	return gap
}

func adjacentHours(hours []int) bool {
	sel := map[int]bool{}
	for _, h := range hours {
		sel[h] = true
	}
	for _, h := range hours {
		if sel[(h+1)%24] {
			return true
		}
	}
	return false
}
