package associate

import (
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
