package ssmlocal

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		expr string
		ok   bool
	}{
		{"rate(30 minutes)", true},
		{"rate(29 minutes)", false},
		{"rate(1 minute)", false},
		{"rate(1 hour)", true},
		{"rate(1 hours)", false},
		{"rate(2 hour)", false},
		{"rate(2 hours)", true},
		{"rate(1 day)", true},
		{"rate(1 days)", false},
		{"rate(30 days)", true},
		{"rate(31 days)", false},
		{"rate(743 hours)", true},
		{"rate(744 hours)", false},
		{"rate(0 hours)", false},
		{"rate(07 days)", false},
		{"rate(2 weeks)", false},
		{"rate(30minutes)", false},
		{"cron(0 2 ? * SUN *)", true},
		{"cron(0 2 ? * * *)", true},
		{"cron(0 2 1 * ? *)", true},
		{"cron(0 2 * * ? *)", true},
		{"cron(0 2 * * SUN *)", false},
		{"cron(0 2 ? * ? *)", false},
		{"cron(0 2 ? * SUN)", false},
		{"cron(0 0 2 ? * SUN *)", true}, // seconds 0 first
		{"cron(5 0 2 ? * SUN *)", false},
		{"cron(0/5 * ? * * *)", true},
		{"cron(0/4 * ? * * *)", false},
		{"cron(* * ? * * *)", false},
		{"cron(0,3 2 ? * * *)", false},
		{"cron(0,30 * ? * * *)", true},
		{"cron(58 1,2 ? * * *)", true},
		{"cron(0,58 1,2 ? * * *)", false},
		{"cron(60 2 ? * * *)", false},
		{"cron(0 24 ? * * *)", false},
		{"cron(0 2 32 * ? *)", false},
		{"cron(0 2 L * ? *)", true},
		{"cron(0 2 15W * ? *)", true},
		{"cron(0 2 LW * ? *)", true},
		{"cron(0 2 ? * MON-FRI *)", true},
		{"cron(0 2 ? JAN-MAR MON-FRI *)", false}, // no months for associations
		{"cron(0 2 ? * FRI-MON *)", false},       // no wrapping around
		{"cron(0 2 ? 13 * *)", false},
		{"cron(0 2 ? * 6L *)", true},
		{"cron(0 2 ? * 2#3 *)", true},
		{"cron(0 2 ? * 2#6 *)", false},
		{"cron(0 2 ? * 8 *)", false},
		{"cron(0 2 ? * SUN 1969)", false},
		{"cron(0 2 ? * SUN 2030)", true},
		{"cron(0 2 ? * SUN 2025-2030)", true},
		{"cron(0 2 ? * SUN 2200)", false},
		{"cron(0 2 L ? * *)", false},
		{"cron(0 ? ? * SUN *)", false},
		{"cron(0 5-2 ? * * *)", false},
		{"at(2030-01-02T03:04:05)", true},
		{"at(2030-13-02T03:04:05)", false},
		{"at(tomorrow)", false},
		{"every day", false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := parseSchedule(tt.expr)
			if (err == nil) != tt.ok {
				t.Fatalf("parseSchedule(%q) = %v, want ok=%v", tt.expr, err, tt.ok)
			}
		})
	}
}

// corpusCase is one line of testdata/schedules.txt.
type corpusCase struct {
	line               int
	expr               string
	function, emulator bool // the verdicts: true = accepted
	difference, source string
}

// readCorpus reads testdata/schedules.txt: "<verdict> <Go-quoted
// expression> <source>", verdict ok, bad or
// function=ok|bad,emulator=ok|bad (an intended difference).
func readCorpus(t testing.TB) []corpusCase {
	t.Helper()
	f, err := os.Open("testdata/schedules.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusCase
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		verdict, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimLeft(rest, " ")
		quoted, err := strconv.QuotedPrefix(rest)
		if err != nil {
			t.Fatalf("schedules.txt:%d: the expression is not Go-quoted: %v", n, err)
		}
		expr, _ := strconv.Unquote(quoted)
		c := corpusCase{line: n, expr: expr, source: strings.TrimSpace(rest[len(quoted):])}
		switch verdict {
		case "ok":
			c.function, c.emulator = true, true
		case "bad":
		default:
			fn, emu, ok := strings.Cut(verdict, ",")
			if !ok || (fn != "function=ok" && fn != "function=bad") || (emu != "emulator=ok" && emu != "emulator=bad") || fn[9:] == emu[9:] {
				t.Fatalf("schedules.txt:%d: verdict %q", n, verdict)
			}
			c.function, c.emulator, c.difference = fn == "function=ok", emu == "emulator=ok", verdict
		}
		if c.source == "" {
			t.Fatalf("schedules.txt:%d: no source", n)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 100 {
		t.Fatalf("schedules.txt: only %d cases", len(out))
	}
	return out
}

// TestScheduleCorpus: the emulator gives every verdict of the shared corpus.
func TestScheduleCorpus(t *testing.T) {
	for _, c := range readCorpus(t) {
		_, err := parseSchedule(c.expr)
		if (err == nil) != c.emulator {
			t.Errorf("schedules.txt:%d: %q: emulator says %v, the corpus says accepted=%v (%s)", c.line, c.expr, err, c.emulator, c.source)
		}
	}
}
