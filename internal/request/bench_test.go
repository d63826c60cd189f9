package request

import (
	"strings"
	"testing"
)

// BenchmarkParse10k parses a request at the default MAX_ENTRIES.
func BenchmarkParse10k(b *testing.B) {
	entry := `{"Name":"AWS-RunShellScript","Targets":[{"Key":"InstanceIds","Values":["i-0123456789abcdef0"]}],"Parameters":{"commands":["uptime"]},"ScheduleExpression":"cron(0 2 ? * SUN *)"}`
	body := []byte(`{"Entries":[` + strings.TrimSuffix(strings.Repeat(entry+",", 10000), ",") + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body, Limits{MaxEntries: 10000}); err != nil {
			b.Fatal(err)
		}
	}
}
