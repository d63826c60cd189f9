package ssmlocal

import "testing"

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
		{"cron(0 0 2 ? * SUN *)", false},
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
		{"cron(0 2 ? JAN-MAR MON-FRI *)", true},
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
