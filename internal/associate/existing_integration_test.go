package associate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// patchBody is AWS-RunPatchBaseline as a fan-out request over nodes.
func patchBody(name, operation, schedule, onExisting string, nodes []int) string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = fmt.Sprintf("%q", nodeID(n))
	}
	extra := ""
	if onExisting != "" {
		extra = fmt.Sprintf(`"OnExisting":%q,`, onExisting)
	}
	return fmt.Sprintf(`{%s"Association":{"Name":"AWS-RunPatchBaseline","AssociationName":%q,"Parameters":{"Operation":[%q]},"ScheduleExpression":%q,"MaxErrors":"10%%"},"InstanceIds":[%s]}`,
		extra, name, operation, schedule, strings.Join(ids, ","))
}

// tableItems reads the whole claim table, for comparing before and after.
func (e *env) tableItems(t *testing.T) string {
	t.Helper()
	out, err := e.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, it := range out.Items {
		var m map[string]any
		if err := attributevalue.UnmarshalMap(it, &m); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(m)
		rows = append(rows, string(b))
	}
	slices.Sort(rows)
	return strings.Join(rows, "\n")
}

func TestIntegrationSameNodeOtherAssociations(t *testing.T) {
	opts := ssmlocal.DefaultOptions()
	opts.MaxAssociations = 0
	e := newEnv(t, opts)
	eng := e.engine(associate.Settings{BatchSize: 10, MaxConcurrency: 4, MaxAttempts: 5, Backoff: 10 * time.Millisecond})
	nodes := make([]int, 60)
	for i := range nodes {
		nodes[i] = i
	}
	ops := func(op string) int { return e.emu.Stats().Operations[op] }

	// Scan, then Install on the same nodes: both associate.
	scan := runRequest(t, eng, patchBody("patch-scan", "Scan", "rate(1 day)", "", nodes), "scan")
	install := runRequest(t, eng, patchBody("patch-install", "Install", "rate(1 day)", "", nodes), "install")
	if scan.Summary.Successful != 60 || install.Summary.Successful != 60 || len(e.emu.Ledger()) != 120 {
		t.Fatalf("scan %+v, install %+v, %d associations", scan.Summary, install.Summary, len(e.emu.Ledger()))
	}
	scanIDs := map[string]string{}
	for _, a := range scan.Successful {
		scanIDs[a.Targets[0].Values[0]] = a.AssociationId
	}

	// A new schedule, skipped: every node reported with what differs.
	changed := runRequest(t, eng, patchBody("patch-scan", "Scan", "rate(7 days)", "", nodes), "changed")
	for _, d := range changed.Deduplicated {
		if d.Reason != report.ReasonDifferentSettings || !slices.Equal(d.Differences, []string{"ScheduleExpression"}) || d.AssociationId != scanIDs[d.Entry.Nodes()[0]] {
			t.Fatalf("changed schedule: %+v", d)
		}
	}
	if changed.Summary.Deduplicated != 60 || changed.Summary.Calls != 0 {
		t.Fatalf("changed schedule: %+v", changed.Summary)
	}

	// A dry run of the update: the plan, and nothing written anywhere.
	tableBefore, createsBefore, updatesBefore := e.tableItems(t), ops("CreateAssociationBatch"), ops("UpdateAssociation")
	req, err := request.Parse([]byte(patchBody("patch-scan", "Scan", "rate(7 days)", "update", append(nodes, 100, 101))), request.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := eng.DryRun(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Summary.Update != 60 || p.Summary.Create != 2 || len(p.Actions) != 62 || p.Summary.Calls != 1+120 {
		t.Errorf("dry run summary %+v (%d actions)", p.Summary, len(p.Actions))
	}
	// Every node requested is in the plan once: the 60 to update, the 2 to create.
	planned := map[string]string{}
	for _, a := range p.Actions {
		for _, n := range a.Entry.Nodes() {
			if prev, dup := planned[n]; dup {
				t.Errorf("node %s planned twice: %s and %s", n, prev, a.Action)
			}
			planned[n] = a.Action
		}
	}
	for _, n := range append(slices.Clone(nodes), 100, 101) {
		want := report.ActionUpdate
		if n >= 100 {
			want = report.ActionCreate
		}
		if got := planned[nodeID(n)]; got != want {
			t.Errorf("node %s: plan says %q, want %q", nodeID(n), got, want)
		}
	}
	if after := e.tableItems(t); after != tableBefore {
		t.Errorf("the dry run wrote to the table:\nbefore %.600s\nafter  %.600s", tableBefore, after)
	}
	if ops("CreateAssociationBatch") != createsBefore || ops("UpdateAssociation") != updatesBefore {
		t.Error("the dry run wrote to SSM")
	}

	// OnExisting update: only the Scan associations change; every member
	// not changed stays.
	updated := runRequest(t, eng, patchBody("patch-scan", "Scan", "rate(7 days)", "update", nodes), "update")
	if updated.Summary.Updated != 60 || ops("UpdateAssociation") != 60 {
		t.Fatalf("update: %+v, %d UpdateAssociation calls", updated.Summary, ops("UpdateAssociation"))
	}
	for _, u := range updated.Updated {
		if u.AssociationVersion != "2" || !slices.Equal(u.Differences, []string{"ScheduleExpression"}) || u.AssociationId != scanIDs[u.Entry.Nodes()[0]] {
			t.Fatalf("updated %+v", u)
		}
	}
	for _, a := range e.emu.Ledger() {
		d := describe(t, e, a.AssociationID)
		switch aws.ToString(d.AssociationName) {
		case "patch-scan":
			if aws.ToString(d.ScheduleExpression) != "rate(7 days)" || d.Parameters["Operation"][0] != "Scan" || aws.ToString(d.MaxErrors) != "10%" || aws.ToString(d.AssociationVersion) != "2" {
				t.Fatalf("scan association after the update: %s %v %s v%s", aws.ToString(d.ScheduleExpression), d.Parameters, aws.ToString(d.MaxErrors), aws.ToString(d.AssociationVersion))
			}
		case "patch-install":
			if aws.ToString(d.ScheduleExpression) != "rate(1 day)" || aws.ToString(d.AssociationVersion) != "1" {
				t.Fatalf("the install association changed: %s v%s", aws.ToString(d.ScheduleExpression), aws.ToString(d.AssociationVersion))
			}
		}
	}

	// The same update again: no call at all.
	calls := e.emu.Stats().Calls
	again := runRequest(t, eng, patchBody("patch-scan", "Scan", "rate(7 days)", "update", nodes), "again")
	if e.emu.Stats().Calls != calls || again.Summary.Deduplicated != 60 || again.Deduplicated[0].Reason != report.ReasonAlreadyAssociated {
		t.Errorf("the same update again: %d calls, %+v", e.emu.Stats().Calls-calls, again.Summary)
	}
	if st := e.emu.Stats(); st.DoubleAssociations != 0 {
		t.Errorf("%d doubles", st.DoubleAssociations)
	}
	if left := e.claimsLeft(t); len(left) != 0 {
		t.Errorf("claims left: %v", left)
	}
}

func describe(t *testing.T, e *env, id string) *ssmtypes.AssociationDescription {
	t.Helper()
	out, err := e.ssm.DescribeAssociation(context.Background(), &ssm.DescribeAssociationInput{AssociationId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	return out.AssociationDescription
}

// With no record in the table, SSM's own association is found when an
// answer is in doubt: one of the same document, targets and name with
// other settings is reported (not created a second time).
func TestIntegrationInDoubtFindsTheSameAssociationWithOtherSettings(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions())
	pre, err := e.ssm.CreateAssociationBatch(context.Background(), &ssm.CreateAssociationBatchInput{Entries: []ssmtypes.CreateAssociationBatchRequestEntry{{
		Name: aws.String("AWS-RunPatchBaseline"), AssociationName: aws.String("patch-scan"),
		Targets:            []ssmtypes.Target{{Key: aws.String("InstanceIds"), Values: []string{nodeID(1)}}},
		Parameters:         map[string][]string{"Operation": {"Scan"}},
		ScheduleExpression: aws.String("rate(1 day)"), MaxErrors: aws.String("10%"),
	}}})
	if err != nil || len(pre.Successful) != 1 {
		t.Fatalf("create outside the function: %v %+v", err, pre)
	}
	// The function's call fails with a 500 before SSM acts: in doubt.
	e.emu.FailCalls(1, "", 0)
	eng := e.engine(associate.Settings{BatchSize: 10, MaxConcurrency: 1, MaxAttempts: 3, Backoff: 10 * time.Millisecond})
	res := runRequest(t, eng, patchBody("patch-scan", "Scan", "rate(7 days)", "", []int{1}), "doubt")
	if len(res.Deduplicated) != 1 {
		t.Fatalf("result %+v", res.Summary)
	}
	d := res.Deduplicated[0]
	if d.Reason != report.ReasonDifferentSettings || !slices.Equal(d.Differences, []string{"ScheduleExpression"}) || d.AssociationId != aws.ToString(pre.Successful[0].AssociationId) {
		t.Errorf("deduplicated %+v", d)
	}
	if n := len(e.emu.Ledger()); n != 1 || e.emu.Stats().DoubleAssociations != 0 {
		t.Errorf("%d associations, %d doubles: the entry was created again", n, e.emu.Stats().DoubleAssociations)
	}
	if left := e.claimsLeft(t); len(left) != 0 {
		t.Errorf("claims left: %v", left)
	}
}

// TargetLocations are a setting of the association, not part of its key: a
// rerun with other Regions is reported with what differs, or updated, and
// never creates a second association in SSM (which would accept one).
func TestIntegrationTargetLocationsChangeIsASetting(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions())
	eng := e.engine(associate.Settings{BatchSize: 10, MaxConcurrency: 1, MaxAttempts: 3, Backoff: 10 * time.Millisecond})
	body := func(region, onExisting string) string {
		return fmt.Sprintf(`{"OnExisting":%q,"Entries":[{"Name":"AWS-RunPatchBaseline","AssociationName":"patch-scan",`+
			`"Targets":[{"Key":"tag:Env","Values":["prod"]}],"Parameters":{"Operation":["Scan"]},`+
			`"TargetLocations":[{"Accounts":["111111111111"],"Regions":[%q]}]}]}`, onExisting, region)
	}
	ops := func(op string) int { return e.emu.Stats().Operations[op] }
	first := runRequest(t, eng, body("eu-west-1", "skip"), "first")
	if first.Summary.Successful != 1 {
		t.Fatalf("first run %+v %+v", first.Summary, first.Failed)
	}
	id := first.Successful[0].AssociationId
	changed := runRequest(t, eng, body("us-east-1", "skip"), "changed")
	if changed.Summary.Deduplicated != 1 || ops("CreateAssociationBatch") != 1 || len(e.emu.Ledger()) != 1 {
		t.Fatalf("Regions changed: %+v, %d CreateAssociationBatch calls, %d associations", changed.Summary, ops("CreateAssociationBatch"), len(e.emu.Ledger()))
	}
	if d := changed.Deduplicated[0]; d.Reason != report.ReasonDifferentSettings || !slices.Equal(d.Differences, []string{"TargetLocations"}) || d.AssociationId != id {
		t.Errorf("deduplicated %+v", d)
	}
	updated := runRequest(t, eng, body("us-east-1", "update"), "update")
	if updated.Summary.Updated != 1 || ops("CreateAssociationBatch") != 1 || ops("UpdateAssociation") != 1 {
		t.Fatalf("update: %+v, %d creates, %d updates", updated.Summary, ops("CreateAssociationBatch"), ops("UpdateAssociation"))
	}
	if u := updated.Updated[0]; u.AssociationId != id || !slices.Equal(u.Differences, []string{"TargetLocations"}) {
		t.Errorf("updated %+v", u)
	}
	if d := describe(t, e, id); len(d.TargetLocations) != 1 || !slices.Equal(d.TargetLocations[0].Regions, []string{"us-east-1"}) {
		t.Errorf("target locations after the update %+v", d.TargetLocations)
	}
	if left := e.claimsLeft(t); len(left) != 0 {
		t.Errorf("claims left: %v", left)
	}
}
