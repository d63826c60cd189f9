package ssmlocal

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// The function (internal/request) and the emulator check a
// ScheduleExpression with two independent parsers of one grammar (issue
// #18). This file compares them — on the shared corpus
// testdata/schedules.txt, on generated expressions and under fuzzing — and
// fails on any disagreement that intendedDifferences does not list. Only
// this test sees both; the implementations share no code.

// intendedDifference is a disagreement kept on purpose: for the
// expressions applies selects, the function's and the emulator's verdicts
// are function and emulator (true: accepted). Each one is also in the table
// of docs/ssm-local.md ("Schedule expressions: function and emulator"),
// with its reason and source.
type intendedDifference struct {
	name               string
	applies            func(expr string) bool
	function, emulator bool
}

// intendedDifferences is empty: every difference found so far was a bug in
// one of the two and is fixed (see docs/ssm-local.md).
var intendedDifferences []intendedDifference

// functionAccepts is the function's verdict, as its request validation
// gives it: an entry valid but for the schedule gets no problem at
// ScheduleExpression.
func functionAccepts(expr string) (bool, string) {
	e := request.Entry{
		Name:               "AWS-RunShellScript",
		Targets:            []request.Target{{Key: "InstanceIds", Values: []string{"i-0123456789abcdef0"}}},
		ScheduleExpression: &expr,
	}
	for _, p := range request.ValidateEntry("Entries[0]", e) {
		if p.Path == "Entries[0].ScheduleExpression" {
			return false, p.Message
		}
	}
	return true, ""
}

// emulatorAccepts is the emulator's verdict: the model's length bound
// (a ValidationException) and then the grammar (InvalidSchedule).
func emulatorAccepts(expr string) (bool, string) {
	if cs := ruleSchedule.check(expr); len(cs) > 0 {
		return false, strings.Join(cs, "; ")
	}
	if _, err := parseSchedule(expr); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// compareParsers fails t when the two verdicts on expr differ and no
// intended difference covers it; it returns the common verdict.
func compareParsers(t testing.TB, expr string) bool {
	t.Helper()
	fn, fnWhy := functionAccepts(expr)
	emu, emuWhy := emulatorAccepts(expr)
	if fn == emu {
		return fn
	}
	for _, d := range intendedDifferences {
		if d.function == fn && d.emulator == emu && d.applies(expr) {
			return fn
		}
	}
	t.Errorf("%q: the function accepts=%v (%s), the emulator accepts=%v (%s): a disagreement not listed in intendedDifferences",
		expr, fn, fnWhy, emu, emuWhy)
	return fn
}

// TestScheduleParsersAgreeOnCorpus: on every corpus line both verdicts are
// the corpus's, and a difference the corpus lists is an intended one.
func TestScheduleParsersAgreeOnCorpus(t *testing.T) {
	for _, c := range readCorpus(t) {
		fn, _ := functionAccepts(c.expr)
		emu, _ := emulatorAccepts(c.expr)
		if fn != c.function || emu != c.emulator {
			t.Errorf("schedules.txt:%d: %q: function %v, emulator %v; the corpus says %v, %v (%s)", c.line, c.expr, fn, emu, c.function, c.emulator, c.source)
		}
		compareParsers(t, c.expr)
	}
}

// validTokens and edgeTokens are pieces the generator combines into cron
// fields (minutes, hours, day-of-month, month, day-of-week, year): the
// documented forms, and the edges where the two parsers disagreed or could.
var (
	validTokens = [][]string{
		{"0", "5", "15", "59", "09", "*/30", "0/30", "0/15", "0/5", "10-40/10", "0,30", "0,55", "1/10"},
		{"0", "2", "23", "02", "*", "*/2", "0/1", "0/12", "8-17", "1,3", "0-12/4"},
		{"?", "*", "1", "31", "L", "LW", "15W", "1W", "1-15", "1/31", "L,15", "*/2"},
		{"*"},
		{"?", "*", "SUN", "sun", "Mon-Fri", "MON-FRI", "2-6", "1", "7", "L", "3L", "FRIL", "2#1", "THU#2", "MON#5", "1/7", "MON/2", "MON-FRI/2", "MON,WED"},
		{"*", "2030", "1970", "2199", "2025-2030", "2025/2", "2025,2027"},
	}
	edgeTokens = [][]string{
		{"60", "00005", "+5", "0/4", "0/59", "0/60", "0/0", "0/+5", "0/05", "10-1", "58", "55-5", "0,3", "0,58", "*", "?", "L", "", "-5", "5-", "0//5"},
		{"24", "0/23", "0/24", "22-2", "1,2", "0,23", "?", "+1", "", "23,0"},
		{"32", "0", "32W", "W", "L-3", "20-10", "1/32", "5L", "3#2", "LW,L", "?,1", ""},
		{"1", "JAN", "jan", "JAN-MAR", "NOV-FEB", "13", "?", "*/1", "1/1", ""},
		{"\u017fun", "FRI-MON", "6-2", "0", "8", "2#6", "2#03", "2#+3", "8#3", "3W", "1/8", "SUNDAY", "SU", ""},
		{"1969", "2200", "2030-2025", "2025/2200", "02025", "?", "L", ""},
	}
)

// TestScheduleParsersAgreeOnGenerated combines field tokens into many cron
// expressions (and rate and at forms) and compares the verdicts.
func TestScheduleParsersAgreeOnGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2026))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	pick := func(ts []string) string { return ts[rng.IntN(len(ts))] }
	var accepted, refused int
	for range n {
		fields := make([]string, 0, 7)
		if rng.IntN(10) == 0 { // a seconds field
			fields = append(fields, pick([]string{"0", "0", "00", "5", "*"}))
		}
		edge := rng.IntN(2 * len(validTokens)) // one field (or none) at an edge
		for i := range validTokens {
			f := pick(validTokens[i])
			if i == edge {
				f = pick(edgeTokens[i])
			}
			if rng.IntN(8) == 0 { // a list
				f += "," + pick(validTokens[i])
			}
			fields = append(fields, f)
		}
		// Mostly one '?' among the day fields, as the guide asks.
		if rng.IntN(4) != 0 && edge != 2 && edge != 4 {
			fields[len(fields)-4+2*rng.IntN(2)] = "?"
		}
		sep := " "
		if rng.IntN(20) == 0 {
			sep = pick([]string{"  ", "\t"})
		}
		if compareParsers(t, "cron("+strings.Join(fields, sep)+")") {
			accepted++
		} else {
			refused++
		}
	}
	for _, num := range []string{"0", "1", "2", "07", "5", "29", "30", "31", "60", "743", "744", "44639", "44640", "+30", "1.5", "999999", "1000000", ""} {
		for _, unit := range []string{"minute", "minutes", "hour", "hours", "day", "days", "week", "Minutes", ""} {
			for _, form := range []string{"rate(%s %s)", "rate(%s  %s)", "rate(%s%s)", "rate( %s %s)"} {
				compareParsers(t, strings.Replace(strings.Replace(form, "%s", num, 1), "%s", unit, 1))
			}
		}
	}
	for _, ts := range []string{"2030-01-02T03:04:05", "2030-02-29T00:00:00", "2028-02-29T00:00:00", "2030-01-02T03:04:05.5", "2030-01-02T24:00:00", "2030-1-2T3:4:5", "2030-01-02T03:04:05Z", ""} {
		compareParsers(t, "at("+ts+")")
	}
	t.Logf("%d generated cron expressions accepted, %d refused", accepted, refused)
	if accepted < n/5 || refused < n/5 {
		t.Fatalf("%d generated cron expressions accepted, %d refused: the generator should test both", accepted, refused)
	}
}

// FuzzScheduleParsers runs both parsers on the same input and fails on a
// disagreement intendedDifferences does not list. Seeds: the corpus.
func FuzzScheduleParsers(f *testing.F) {
	for _, c := range readCorpus(f) {
		f.Add(c.expr)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		compareParsers(t, expr)
	})
}
