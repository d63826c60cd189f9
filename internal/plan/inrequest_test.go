package plan

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func TestInRequest(t *testing.T) {
	node := func(n string) *string { return aws.String(n) }
	items := []request.Item{
		{Path: "Entries[0]", Entry: request.Entry{Name: "D", InstanceId: node("i-1")}},
		{Path: "Entries[1]", Entry: request.Entry{Name: "D", Targets: []request.Target{{Key: "InstanceIds", Values: []string{"i-1", "i-2"}}}}},
		{Path: "Entries[2]", Entry: request.Entry{Name: "E", InstanceId: node("i-1")}},
		{Path: "Entries[3]", Entry: request.Entry{Name: "D", InstanceId: node("i-2")}},
		{Path: "Entries[4]", Entry: request.Entry{Name: "D", InstanceId: node("bad")}, Problems: []request.FieldError{{Path: "x", Message: "y"}}},
		{Path: "Entries[5]", Entry: request.Entry{Name: "D", Targets: []request.Target{{Key: "tag:A", Values: []string{"1"}}}}},
		{Path: "Entries[6]", Entry: request.Entry{Name: "D", Targets: []request.Target{{Key: "tag:A", Values: []string{"1"}}}}},
	}
	work, dups := InRequest(items)
	var paths []string
	for _, w := range work {
		paths = append(paths, w.Path)
	}
	want := []string{"Entries[0]", "Entries[1]", "Entries[2]", "Entries[5]"}
	if len(paths) != len(want) {
		t.Fatalf("work %v, want %v", paths, want)
	}
	for i := range want {
		if paths[i] != want[i] {
			t.Fatalf("work %v, want %v", paths, want)
		}
	}
	// Entries[1] keeps only i-2; its i-1 is a duplicate of Entries[0].
	if got := work[1].Entry.Targets[0].Values; len(got) != 1 || got[0] != "i-2" || work[1].Keys[0] != dedupe.NodeKey("D", "", "i-2") {
		t.Errorf("narrowed entry %+v keys %v", work[1].Entry, work[1].Keys)
	}
	if len(dups) != 3 {
		t.Fatalf("dups %+v", dups)
	}
	for _, d := range dups {
		if d.Reason != report.ReasonDuplicateInRequest {
			t.Errorf("reason %q", d.Reason)
		}
	}
	if v := dups[0].Entry.Targets[0].Values; len(v) != 1 || v[0] != "i-1" {
		t.Errorf("first duplicate is %+v, want Entries[1] narrowed to i-1", dups[0].Entry)
	}
}

// InRequest fingerprints consecutive entries of the same settings once, and
// never gives an entry another's fingerprint.
func TestInRequestSettings(t *testing.T) {
	e := func(node, schedule string) request.Item {
		return request.Item{Path: node, Entry: request.Entry{Name: "D", InstanceId: aws.String(node), ScheduleExpression: aws.String(schedule),
			Parameters: map[string][]string{"p": {"v"}}}}
	}
	items := []request.Item{e("i-1", "rate(1 day)"), e("i-2", "rate(1 day)"), e("i-1", "rate(7 days)"), e("i-3", "rate(7 days)"), e("i-4", "rate(1 day)")}
	work, _ := InRequest(items)
	for _, w := range work {
		if d := w.Settings; len(dedupe.Settings(d).Differences(dedupe.SettingsOf(w.Entry))) != 0 {
			t.Errorf("%s: fingerprint of other settings", w.Path)
		}
	}
	if len(work) != 4 {
		t.Fatalf("%d items", len(work))
	}
}
