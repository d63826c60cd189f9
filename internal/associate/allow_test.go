package associate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func TestAllowListsFailTheirEntryOnly(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	set := settings()
	set.Allow = Allow{Documents: []string{"AWS-UpdateSSMAgent", "MyOrg-*"}, TargetKeys: []string{"InstanceIds"}}
	entries := []request.Entry{
		{Name: "AWS-UpdateSSMAgent", InstanceId: aws.String(node(1))},
		{Name: "AWS-RunShellScript", InstanceId: aws.String(node(2)), Parameters: map[string][]string{"commands": {"id"}}},
		{Name: "AWS-UpdateSSMAgent", Targets: []request.Target{{Key: "tag:Env", Values: []string{"prod"}}}},
		{Name: "arn:aws:ssm:us-east-1:123456789012:document/MyOrg-Baseline", InstanceId: aws.String(node(4))},
		{Name: "AWS-UpdateSSMAgent", Targets: []request.Target{{Key: "InstanceIds", Values: []string{node(5)}}},
			TargetLocations: []request.TargetLocation{{Accounts: []string{"111111111111"}, Regions: []string{"us-east-1"}}}},
	}
	req := &request.Request{}
	for i, e := range entries {
		req.Items = append(req.Items, request.Item{Entry: e, Path: "Entries[" + string(rune('0'+i)) + "]"})
	}
	res := runJob(t, s, c, set, job(req))
	if res.Summary.Successful != 2 || res.Summary.Failed != 3 {
		t.Fatalf("summary %+v", res.Summary)
	}
	want := []string{
		`Entries[1].Name: document "AWS-RunShellScript" is not allowed by ALLOWED_DOCUMENTS (AWS-UpdateSSMAgent,MyOrg-*)`,
		`Entries[2].Targets[0].Key: target key "tag:Env" is not allowed by ALLOWED_TARGET_KEYS (InstanceIds)`,
		`Entries[4].TargetLocations: target key "TargetLocations" is not allowed by ALLOWED_TARGET_KEYS (InstanceIds)`,
	}
	for i, f := range res.Failed {
		if f.Fault != report.FaultClient || f.Message != want[i] || f.Attempts != 0 {
			t.Errorf("failure %d: %+v, want %q", i, f, want[i])
		}
	}
	// Nothing was sent or claimed for them.
	if s.sent[node(2)] != 0 || s.sent[node(5)] != 0 || len(s.batches) != 1 {
		t.Errorf("sent %v in %d calls", s.sent, len(s.batches))
	}
	for k := range c.items {
		if strings.Contains(k, node(2)) || strings.Contains(k, node(5)) {
			t.Errorf("claimed %s", k)
		}
	}
}

// TestTargetLocationTargetKeysFailTheirEntryOnly: the Targets of a
// TargetLocation are held to ALLOWED_TARGET_KEYS like the entry's own, so
// allowing TargetLocations does not let tags or resource groups in.
func TestTargetLocationTargetKeysFailTheirEntryOnly(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	set := settings()
	set.Allow = Allow{Documents: []string{"AWS-UpdateSSMAgent"}, TargetKeys: []string{"InstanceIds", "TargetLocations"}}
	at := func(targets ...request.Target) request.TargetLocation {
		return request.TargetLocation{Accounts: []string{"111111111111"}, Regions: []string{"us-east-1"}, Targets: targets}
	}
	ids := func(n int) request.Target { return request.Target{Key: "InstanceIds", Values: []string{node(n)}} }
	entries := []request.Entry{
		{Name: "AWS-UpdateSSMAgent", InstanceId: aws.String(node(0))},
		{Name: "AWS-UpdateSSMAgent", Targets: []request.Target{ids(1)}, TargetLocations: []request.TargetLocation{at(ids(1))}},
		{Name: "AWS-UpdateSSMAgent", Targets: []request.Target{ids(2)},
			TargetLocations: []request.TargetLocation{at(ids(2), request.Target{Key: "tag:Env", Values: []string{"prod"}})}},
		{Name: "AWS-UpdateSSMAgent", Targets: []request.Target{ids(3)},
			TargetLocations: []request.TargetLocation{at(ids(3)), at(request.Target{Key: "resource-groups:Name", Values: []string{"fleet"}})}},
	}
	req := &request.Request{}
	for i, e := range entries {
		req.Items = append(req.Items, request.Item{Entry: e, Path: fmt.Sprintf("Entries[%d]", i)})
	}
	res := runJob(t, s, c, set, job(req))
	if res.Summary.Successful != 2 || res.Summary.Failed != 2 {
		t.Fatalf("summary %+v, want 2 Successful and 2 Failed: %+v", res.Summary, res.Failed)
	}
	want := []string{
		`Entries[2].TargetLocations[0].Targets[1].Key: target key "tag:Env" is not allowed by ALLOWED_TARGET_KEYS (InstanceIds,TargetLocations)`,
		`Entries[3].TargetLocations[1].Targets[0].Key: target key "resource-groups:Name" is not allowed by ALLOWED_TARGET_KEYS (InstanceIds,TargetLocations)`,
	}
	for i, f := range res.Failed {
		if f.Fault != report.FaultClient || f.Message != want[i] || f.Attempts != 0 {
			t.Errorf("failure %d: %+v, want %q", i, f, want[i])
		}
	}
	if s.sent[node(0)] != 1 || s.sent[node(1)] != 1 || s.sent[node(2)] != 0 || s.sent[node(3)] != 0 {
		t.Errorf("sent %v, want nodes 0 and 1 once, 2 and 3 never", s.sent)
	}
}
