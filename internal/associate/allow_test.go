package associate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func TestAllowListsFailTheirEntryOnly(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	set := settings()
	set.Allow = Allow{Documents: []string{"AWS-UpdateSSMAgent", "MyOrg-*"}, TargetKeys: []string{"InstanceIds"}, Region: "us-east-1"}
	entries := []request.Entry{
		{Name: "AWS-UpdateSSMAgent", InstanceId: aws.String(node(1))},
		{Name: "AWS-RunShellScript", InstanceId: aws.String(node(2)), Parameters: map[string][]string{"commands": {"id"}}},
		{Name: "AWS-UpdateSSMAgent", Targets: []request.Target{{Key: "tag:Env", Values: []string{"prod"}}}},
		{Name: "arn:aws:ssm:us-east-1::document/AWS-UpdateSSMAgent", InstanceId: aws.String(node(4))},
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

// iamDenies answers like IAM under EngineSsmPolicy (account 123456789012,
// us-east-1): a call naming a document ARN of another account, Region or
// partition is refused whole with AccessDeniedException, which fails every
// entry of the call (callWideCodes).
func iamDenies(_ int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
	for _, e := range entries {
		name := aws.ToString(e.Name)
		if strings.HasPrefix(name, "arn:") && !strings.HasPrefix(name, "arn:aws:ssm:us-east-1::document/") &&
			!strings.HasPrefix(name, "arn:aws:ssm:us-east-1:123456789012:document/") {
			return nil, apiError("AccessDeniedException", smithy.FaultClient)
		}
	}
	return succeedAll(entries), nil
}

// TestDocumentARNsFailTheirEntryOnly: a document named by ARN must be
// AWS-owned and in the function's Region and partition, the ARNs IAM grants
// (the function does not know its account: this account's documents are
// named by name). Any other fails its entry alone, before anything is sent;
// sent, IAM would refuse the whole call and fail the valid neighbours too.
func TestDocumentARNsFailTheirEntryOnly(t *testing.T) {
	s, c := &fakeSSM{respond: iamDenies}, newFakeClaims()
	set := settings()
	set.Allow = Allow{Documents: []string{"AWS-UpdateSSMAgent", "MyOrg-*"}, TargetKeys: []string{"InstanceIds"}, Region: "us-east-1"}
	names := []string{
		"MyOrg-Baseline", // 0: allowed
		"arn:aws:ssm:us-east-1:999999999999:document/MyOrg-Baseline",    // 1: another account
		"arn:aws:ssm:eu-west-1::document/AWS-UpdateSSMAgent",            // 2: another Region
		"arn:aws-cn:ssm:us-east-1::document/AWS-UpdateSSMAgent",         // 3: another partition
		"arn:aws:ssm:us-east-1::document/AWS-UpdateSSMAgent",            // 4: allowed, AWS-owned here
		"arn:aws:ssm:us-east-1:123456789012:document/MyOrg-Baseline",    // 5: an account, maybe this one: by name
		"arn:aws:s3:::bucket/document/AWS-UpdateSSMAgent",               // 6: not a document ARN
		"arn:aws:ssm:us-east-1::document/AWS-RunShellScript",            // 7: AWS-owned here, not listed
		"arn:aws:ssm:us-east-1::document/x/document/AWS-UpdateSSMAgent", // 8: not a document name
		"AWS-UpdateSSMAgent", // 9: allowed
	}
	req := &request.Request{}
	for i, n := range names {
		req.Items = append(req.Items, request.Item{Entry: request.Entry{Name: n, InstanceId: aws.String(node(i))}, Path: fmt.Sprintf("Entries[%d]", i)})
	}
	res := runJob(t, s, c, set, job(req))
	if res.Summary.Successful != 3 || res.Summary.Failed != 7 {
		t.Fatalf("summary %+v, want 3 Successful (entries 0, 4, 9) and 7 Failed: %+v", res.Summary, res.Failed)
	}
	rule := "a document ARN must name an AWS-owned document of this function's Region, arn:aws:ssm:us-east-1::document/NAME: " +
		"IAM grants it no other account's or Region's documents, and this account's are named by their name"
	want := map[string]string{
		node(1): `Entries[1].Name: document "arn:aws:ssm:us-east-1:999999999999:document/MyOrg-Baseline" names account 999999999999; ` + rule,
		node(2): `Entries[2].Name: document "arn:aws:ssm:eu-west-1::document/AWS-UpdateSSMAgent" names Region eu-west-1; ` + rule,
		node(3): `Entries[3].Name: document "arn:aws-cn:ssm:us-east-1::document/AWS-UpdateSSMAgent" names partition aws-cn; ` + rule,
		node(5): `Entries[5].Name: document "arn:aws:ssm:us-east-1:123456789012:document/MyOrg-Baseline" names account 123456789012; ` + rule,
		node(6): `Entries[6].Name: "arn:aws:s3:::bucket/document/AWS-UpdateSSMAgent" is not an SSM document ARN (arn:PARTITION:ssm:REGION:ACCOUNT:document/NAME); ` + rule,
		node(7): `Entries[7].Name: document "AWS-RunShellScript" is not allowed by ALLOWED_DOCUMENTS (AWS-UpdateSSMAgent,MyOrg-*)`,
		node(8): `Entries[8].Name: "arn:aws:ssm:us-east-1::document/x/document/AWS-UpdateSSMAgent" is not an SSM document ARN (arn:PARTITION:ssm:REGION:ACCOUNT:document/NAME); ` + rule,
	}
	for _, f := range res.Failed {
		n := aws.ToString(f.Entry.InstanceId)
		if f.Fault != report.FaultClient || f.Message != want[n] || f.Attempts != 0 {
			t.Errorf("failure of %s: %+v, want Client, 0 attempts, %q", n, f, want[n])
		}
		delete(want, n)
	}
	if len(want) > 0 {
		t.Errorf("not failed: %v", want)
	}
	got := map[string]bool{}
	for _, o := range res.Successful {
		got[o.InstanceId] = true
	}
	if !got[node(0)] || !got[node(4)] || !got[node(9)] {
		t.Errorf("successful %v, want entries 0, 4 and 9", got)
	}
	// Only the allowed entries were sent, and IAM refused no call.
	for n, k := range s.sent {
		if k != 1 || (n != node(0) && n != node(4) && n != node(9)) {
			t.Errorf("sent %s %d times", n, k)
		}
	}
}

// TestDocumentARNRules: what a document ARN must be, Region by Region.
func TestDocumentARNRules(t *testing.T) {
	all := []string{"*"}
	for _, tc := range []struct {
		region, name string
		allowed      bool
	}{
		{"cn-north-1", "arn:aws-cn:ssm:cn-north-1::document/AWS-UpdateSSMAgent", true},
		{"cn-north-1", "arn:aws:ssm:cn-north-1::document/AWS-UpdateSSMAgent", false},
		{"us-gov-west-1", "arn:aws-us-gov:ssm:us-gov-west-1::document/AWS-UpdateSSMAgent", true},
		{"us-gov-west-1", "arn:aws:ssm:us-gov-west-1::document/AWS-UpdateSSMAgent", false},
		{"us-isob-east-1", "arn:aws-iso-b:ssm:us-isob-east-1::document/AWS-UpdateSSMAgent", true},
		{"eu-west-1", "arn:aws:ssm:eu-west-1::document/AWS-UpdateSSMAgent", true},
		{"eu-west-1", "arn:aws:ec2:eu-west-1::document/AWS-UpdateSSMAgent", false},
		{"eu-west-1", "arn:aws:ssm:eu-west-1::document/AWS-UpdateSSMAgent:extra", false},
		{"eu-west-1", "arn:aws:ssm:eu-west-1::automation-definition/AWS-UpdateSSMAgent", false},
		{"eu-west-1", "arn:aws:ssm:eu-west-1", false},
		// The Region unknown (the engine's zero Allow): no ARN at all.
		{"", "arn:aws:ssm:us-east-1::document/AWS-UpdateSSMAgent", false},
		// A name is not an ARN: SSM takes it in this account and Region.
		{"", "AWS-UpdateSSMAgent", true},
	} {
		v := Allow{Documents: all, TargetKeys: all, Region: tc.region}.violation("Entries[0]", request.Entry{Name: tc.name})
		if (v == "") != tc.allowed {
			t.Errorf("Region %q, %s: violation %q, want allowed %v", tc.region, tc.name, v, tc.allowed)
		}
		if v != "" && !strings.HasPrefix(v, "Entries[0].Name: ") || v != "" && !strings.Contains(v, tc.name) {
			t.Errorf("Region %q: violation %q names neither the field nor the document", tc.region, v)
		}
	}
	if v := (Allow{Documents: all, TargetKeys: all}).violation("Entries[0]", request.Entry{Name: "arn:aws:ssm:us-east-1::document/AWS-UpdateSSMAgent"}); v !=
		`Entries[0].Name: document "arn:aws:ssm:us-east-1::document/AWS-UpdateSSMAgent" cannot be checked, as the function's Region is not known: no document ARN is allowed; name the document by its name` {
		t.Errorf("Region unknown: %q", v)
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
