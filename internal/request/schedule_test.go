package request

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		expr     string
		kind     scheduleKind
		fragment string // "" means valid
	}{
		// rate
		{"rate(30 minutes)", scheduleRate, ""},
		{"rate(1 hour)", scheduleRate, ""},
		{"rate(2 hours)", scheduleRate, ""},
		{"rate(1 day)", scheduleRate, ""},
		{"rate(30 days)", scheduleRate, ""},
		{"rate(44639 minutes)", scheduleRate, ""},
		{"rate(29 minutes)", scheduleRate, "rate must be at least 30 minutes"},
		{"rate(1 minute)", scheduleRate, "rate must be at least 30 minutes"},
		{"rate(31 days)", scheduleRate, "rate must be less than 31 days"},
		{"rate(744 hours)", scheduleRate, "less than 31 days"},
		{"rate(1 hours)", scheduleRate, `singular for 1: "hour"`},
		{"rate(2 hour)", scheduleRate, `plural for values other than 1: "hours"`},
		{"rate(0 hours)", scheduleRate, "at least 1"},
		{"rate(30 weeks)", scheduleRate, "unit must be minute(s), hour(s) or day(s)"},
		{"rate(30  minutes)", scheduleRate, "rate(<number> <unit>)"},
		{"rate(-30 minutes)", scheduleRate, "whole number"},
		{"rate(07 days)", scheduleRate, "must not start with 0"},
		{"rate(1.5 hours)", scheduleRate, "whole number"},
		{"rate(99999999999999999999 days)", scheduleRate, "whole number"},
		{"rate()", scheduleRate, "rate(<number> <unit>)"},
		{"rate(30 Minutes)", scheduleRate, "unit must be"},

		// cron
		{"cron(0 2 ? * SUN *)", scheduleCron, ""},
		{"cron(0 2 ? * sun *)", scheduleCron, ""},
		{"cron(0/30 * * * ? *)", scheduleCron, ""},
		{"cron(*/5 * * * ? *)", scheduleCron, ""},
		{"cron(0,5,10 8-17 ? * MON-FRI *)", scheduleCron, ""},
		{"cron(15 10 L * ? 2030)", scheduleCron, ""},
		{"cron(15 10 LW * ? *)", scheduleCron, ""},
		{"cron(15 10 15W * ? *)", scheduleCron, ""},
		{"cron(15 10 ? * 6L *)", scheduleCron, ""},
		{"cron(15 10 ? * FRI#3 *)", scheduleCron, ""},
		{"cron(15 10 ? * MON-FRI 2025-2030)", scheduleCron, ""},
		{"cron(15 10 ? * FRI-MON *)", scheduleCron, "range FRI-MON runs backwards"},
		{"cron(15 10 ? * FRI,SAT,SUN,MON *)", scheduleCron, ""},
		{"cron(15 10 ? NOV-FEB FRI-MON 2025-2030)", scheduleCron, "month field must be *"},
		{"cron(0 0 1 JAN,JUL ? *)", scheduleCron, "does not support specifying months"},
		{"cron(0 0 2 ? * SUN *)", scheduleCron, ""},
		{"cron(0 */30 * * * ? *)", scheduleCron, ""},
		{"cron(5 0 2 ? * SUN *)", scheduleCron, "seconds field (the first of 7) can only be 0"},
		{"cron(0  2 ? * SUN *)", scheduleCron, "single spaces"},
		{"cron(0 2 ? * \u017fun *)", scheduleCron, "day-of-week field"},
		{"cron(58,3 0,12 * * ? *)", scheduleCron, ""},
		{"cron(0 2 ? * SUN)", scheduleCron, "cron must have 6 fields"},
		{"cron(0 0 0 2 ? * SUN *)", scheduleCron, "got 8"},
		{"cron(60 2 ? * SUN *)", scheduleCron, "cron minutes field: 60 is out of range 0-59"},
		{"cron(0 24 ? * SUN *)", scheduleCron, "cron hours field: 24 is out of range 0-23"},
		{"cron(0 2 32 * ? *)", scheduleCron, "day-of-month field: 32 is out of range 1-31"},
		{"cron(0 2 0 * ? *)", scheduleCron, "day-of-month field: 0 is out of range"},
		{"cron(0 2 ? 13 SUN *)", scheduleCron, "month field must be *"},
		{"cron(0 2 ? FOO SUN *)", scheduleCron, "month field"},
		{"cron(0 2 ? * 8 *)", scheduleCron, "day-of-week field: 8 is out of range 1-7"},
		{"cron(0 2 ? * SUN 1969)", scheduleCron, "year field: 1969 is out of range 1970-2199"},
		{"cron(0 2 ? * SUN 2200)", scheduleCron, "year field"},
		{"cron(0 2 * * SUN *)", scheduleCron, "exactly one of day-of-month and day-of-week"},
		{"cron(0 2 ? * ? *)", scheduleCron, "exactly one of day-of-month and day-of-week"},
		{"cron(? 2 * * ? *)", scheduleCron, "'?' is only allowed"},
		{"cron(0 2 L * ? *)", scheduleCron, ""},
		{"cron(0 2 ? * 3W *)", scheduleCron, "day-of-week field"},
		{"cron(0 2 ? * 2#6 *)", scheduleCron, "day-of-week field"},
		{"cron(0 2 5L * ? *)", scheduleCron, "day-of-month field"},
		{"cron(30-10 2 * * ? *)", scheduleCron, "range 30-10 runs backwards"},
		{"cron(0/0 2 * * ? *)", scheduleCron, "step"},
		{"cron(0/x 2 * * ? *)", scheduleCron, "step"},
		{"cron(0,,5 2 * * ? *)", scheduleCron, "empty list item"},
		{"cron(* * * * ? *)", scheduleCron, "more often than every 5 minutes"},
		{"cron(*/4 * * * ? *)", scheduleCron, "more often than every 5 minutes"},
		{"cron(0-4 2 * * ? *)", scheduleCron, "more often than every 5 minutes"},
		{"cron(0,58 * * * ? *)", scheduleCron, "more often than every 5 minutes"},
		{"cron(0,58 1,3 * * ? *)", scheduleCron, ""},

		// at
		{"at(2030-01-02T03:04:05)", scheduleAt, ""},
		{"at(2030-02-30T03:04:05)", scheduleAt, "at(yyyy-mm-ddThh:mm:ss)"},
		{"at(2030-01-02 03:04:05)", scheduleAt, "at(yyyy-mm-ddThh:mm:ss)"},
		{"at(2030-01-02T03:04:05Z)", scheduleAt, "at(yyyy-mm-ddThh:mm:ss)"},
		{"at(2030-01-02T03:04:05.5)", scheduleAt, "at(yyyy-mm-ddThh:mm:ss)"},

		// neither
		{"every day", scheduleInvalid, "must be rate(…), cron(…) or at(…)"},
		{"RATE(30 minutes)", scheduleInvalid, "must be rate(…)"},
		{"rate(30 minutes", scheduleInvalid, "must be rate(…)"},
		{" rate(30 minutes)", scheduleInvalid, "must be rate(…)"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			kind, err := parseSchedule(tt.expr)
			if kind != tt.kind {
				t.Errorf("kind %d, want %d", kind, tt.kind)
			}
			switch {
			case tt.fragment == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.fragment != "" && err == nil:
				t.Fatalf("want error containing %q, got none", tt.fragment)
			case tt.fragment != "" && !strings.Contains(err.Error(), tt.fragment):
				t.Fatalf("want error containing %q, got %q", tt.fragment, err)
			}
		})
	}
}

// The schedule message reaches the caller with the member's path.
func TestScheduleProblemPath(t *testing.T) {
	it := parseOne(t, `{"Name":"AWS-X","ScheduleExpression":"rate(5 minutes)",`+nodeTarget+`}`)
	want := "Entries[0].ScheduleExpression: rate must be at least 30 minutes"
	if len(it.Problems) != 1 || it.Problems[0].Error() != want {
		t.Fatalf("got %v, want %q", it.Problems, want)
	}
}

// TestScheduleCorpus: the function gives every verdict of the corpus it
// shares with the emulator (whose own parser shares no code with this
// one); internal/ssmlocal/schedule_diff_test.go compares the two.
func TestScheduleCorpus(t *testing.T) {
	f, err := os.Open("../ssmlocal/testdata/schedules.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	cases := 0
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		verdict, rest, _ := strings.Cut(line, " ")
		quoted, err := strconv.QuotedPrefix(strings.TrimLeft(rest, " "))
		if err != nil {
			t.Fatalf("schedules.txt:%d: %v", n, err)
		}
		expr, _ := strconv.Unquote(quoted)
		var want bool
		switch {
		case verdict == "ok":
			want = true
		case verdict == "bad":
		case strings.HasPrefix(verdict, "function=ok,"):
			want = true
		case strings.HasPrefix(verdict, "function=bad,"):
		default:
			t.Fatalf("schedules.txt:%d: verdict %q", n, verdict)
		}
		cases++
		if _, err := parseSchedule(expr); (err == nil) != want {
			t.Errorf("schedules.txt:%d: %q: the function says %v, the corpus says accepted=%v", n, expr, err, want)
		}
	}
	if err := sc.Err(); err != nil || cases < 100 {
		t.Fatalf("read %d cases: %v", cases, err)
	}
}
