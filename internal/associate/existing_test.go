package associate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// patchRequest is AWS-RunPatchBaseline on nodes as a fan-out request would
// expand it: named, with an Operation and a schedule.
func patchRequest(name, operation, schedule string, onExisting string, nodes ...int) *request.Request {
	req := &request.Request{OnExisting: onExisting}
	for i, n := range nodes {
		req.Items = append(req.Items, request.Item{Path: fmt.Sprintf("InstanceIds[%d]", i), Entry: request.Entry{
			Name: "AWS-RunPatchBaseline", AssociationName: aws.String(name),
			Targets:            []request.Target{{Key: "InstanceIds", Values: []string{node(n)}}},
			Parameters:         map[string][]string{"Operation": {operation}},
			ScheduleExpression: aws.String(schedule),
		}})
	}
	return req
}

func TestScanThenInstallBothAssociate(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	scan := runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(1 day)", request.OnExistingSkip, 1, 2, 3)))
	install := runJob(t, s, c, settings(), job(patchRequest("patch-install", "Install", "rate(1 day)", request.OnExistingSkip, 1, 2, 3)))
	if scan.Summary.Successful != 3 || install.Summary.Successful != 3 || len(s.ledger) != 6 {
		t.Fatalf("scan %+v, install %+v, %d associations", scan.Summary, install.Summary, len(s.ledger))
	}
}

func TestChangedSettingsAreNeverDroppedSilently(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	first := runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(1 day)", request.OnExistingSkip, 1, 2)))
	ids := map[string]string{}
	for _, a := range first.Successful {
		ids[a.Targets[0].Values[0]] = a.AssociationId
	}
	// The same again: already associated.
	again := runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(1 day)", request.OnExistingSkip, 1, 2)))
	if again.Summary.Deduplicated != 2 || again.Deduplicated[0].Reason != report.ReasonAlreadyAssociated || s.calls != 1 {
		t.Fatalf("same settings: %+v", again.Deduplicated)
	}
	// Another schedule: reported, with what differs and the association's ID.
	changed := runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(7 days)", request.OnExistingSkip, 1, 2)))
	for _, d := range changed.Deduplicated {
		n := d.Entry.Targets[0].Values[0]
		if d.Reason != report.ReasonDifferentSettings || !slices.Equal(d.Differences, []string{"ScheduleExpression"}) || d.AssociationId != ids[n] {
			t.Errorf("changed schedule: %+v", d)
		}
	}
	if s.calls != 1 || s.updates != 0 {
		t.Errorf("%d calls and %d updates for a change that was only to be reported", s.calls, s.updates)
	}
}

func TestOnExistingUpdate(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(1 day)", request.OnExistingSkip, 1, 2)))
	res := runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(7 days)", request.OnExistingUpdate, 1, 2)))
	if res.Summary.Updated != 2 || s.updates != 2 || res.Summary.Calls != 2 || res.Summary.Reads != 2 {
		t.Fatalf("summary %+v, %d updates: want 2 updates, each one call after one read", res.Summary, s.updates)
	}
	for _, u := range res.Updated {
		if u.AssociationVersion != "2" || !slices.Equal(u.Differences, []string{"ScheduleExpression"}) || u.AssociationId == "" {
			t.Errorf("updated %+v", u)
		}
	}
	for _, d := range s.ledger {
		if aws.ToString(d.ScheduleExpression) != "rate(7 days)" || d.Parameters["Operation"][0] != "Scan" {
			t.Errorf("association after the update: schedule %q parameters %v", aws.ToString(d.ScheduleExpression), d.Parameters)
		}
	}
	// The same update again: the table has the new settings, no call.
	again := runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(7 days)", request.OnExistingUpdate, 1, 2)))
	if s.updates != 2 || again.Summary.Deduplicated != 2 || again.Deduplicated[0].Reason != report.ReasonAlreadyAssociated {
		t.Errorf("second update: %d updates, %+v", s.updates, again.Summary)
	}
	if left := c.inProgress(); len(left) != 0 {
		t.Errorf("claims left: %v", left)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(1 day)", request.OnExistingSkip, 1, 2)))
	opsBefore := fmt.Sprint(c.ops)
	callsBefore := s.calls
	req := patchRequest("patch-scan", "Scan", "rate(7 days)", request.OnExistingUpdate, 1, 2, 3, 4, 5)
	req.Items = append(req.Items, req.Items[4]) // node 5 twice
	p, err := New(s, c, settings(), nil).DryRun(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if s.calls != callsBefore || s.updates != 0 || s.reads != 0 {
		t.Errorf("a dry run called SSM: %d calls, %d updates, %d reads", s.calls-callsBefore, s.updates, s.reads)
	}
	if c.ops["peek"] != 1 {
		t.Errorf("%d reads of the claim table, want one Peek", c.ops["peek"])
	}
	delete(c.ops, "peek")
	if after := fmt.Sprint(c.ops); after != opsBefore {
		t.Errorf("a dry run wrote to the claim table: %s, before %s", after, opsBefore)
	}
	want := map[string]int{report.ActionUpdate: 2, report.ActionCreate: 3, report.ActionSkip: 1}
	got := map[string]int{}
	for _, a := range p.Actions {
		got[a.Action]++
		if a.Action == report.ActionUpdate && !slices.Equal(a.Differences, []string{"ScheduleExpression"}) {
			t.Errorf("update %+v", a)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(p.Actions) != 6 {
		t.Errorf("actions %v, want %v, one per node", got, want)
	}
	// Every node requested is named, as often as it was requested.
	named := map[string]int{}
	for _, a := range p.Actions {
		for _, n := range a.Entry.Nodes() {
			named[n]++
		}
	}
	for _, it := range req.Items {
		for _, n := range it.Entry.Nodes() {
			named[n]--
		}
	}
	for n, left := range named {
		if left != 0 {
			t.Errorf("node %s named %+d times more in the plan than in the request", n, left)
		}
	}
	// settings(): batch 3, so 3 creates in 1 call; 2 updates cost 2 calls each.
	if p.Summary.Calls != 1+4 || p.Summary.Requested != 6 || p.Summary.Create != 3 || p.Summary.Update != 2 {
		t.Errorf("summary %+v", p.Summary)
	}
}

// One association that covers several nodes is updated once: the plan
// counts what the run then does, a DescribeAssociation and an
// UpdateAssociation per association, not per node.
func TestDryRunCountsOneUpdatePerAssociation(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	nodes := []string{node(1), node(2), node(3)}
	e := request.Entry{Name: "D1", Targets: []request.Target{{Key: "InstanceIds", Values: nodes}}, ScheduleExpression: aws.String("rate(1 day)")}
	runJob(t, s, c, settings(), job(&request.Request{Items: []request.Item{{Entry: e, Path: "Entries[0]"}}}))
	if len(s.ledger) != 1 {
		t.Fatalf("%d associations, want one for the three nodes", len(s.ledger))
	}
	e.ScheduleExpression = aws.String("rate(7 days)")
	req := &request.Request{OnExisting: request.OnExistingUpdate, Items: []request.Item{{Entry: e, Path: "Entries[0]"}}}
	p, err := New(s, c, settings(), nil).DryRun(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, a := range p.Actions {
		if a.Action != report.ActionUpdate {
			t.Errorf("action %+v, want update", a)
		}
		planned = append(planned, a.Entry.Nodes()...)
	}
	if slices.Sort(planned); !slices.Equal(planned, nodes) {
		t.Errorf("plan names nodes %v, want %v", planned, nodes)
	}
	if p.Summary.Update != 3 || p.Summary.Calls != 2 {
		t.Errorf("summary %+v: want 3 nodes to update in 2 calls (one describe, one update)", p.Summary)
	}
	res := runJob(t, s, c, settings(), job(req))
	if res.Summary.Updated != 3 || s.updates != 1 || res.Summary.Calls+res.Summary.Reads != p.Summary.Calls {
		t.Errorf("run %+v, %d UpdateAssociation calls: the plan said %d calls", res.Summary, s.updates, p.Summary.Calls)
	}
}

// An InstanceId entry refused because a named association of the document
// covers the node: another association, never reported as this one nor
// changed for it.
func TestAnotherNamedAssociationIsNeverUpdated(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	scan := success(request.Entry{Name: "D1", AssociationName: aws.String("scan"), Targets: []request.Target{{Key: "InstanceIds", Values: []string{node(1)}}}}.SDK())
	s.keep(scan)
	s.respond = failEntries(ssmtypes.FaultClient, "Association Already Exists", map[string]int{node(1): 99})
	req := nodeRequest("D1", 1)
	req.OnExisting = request.OnExistingUpdate
	res := runJob(t, s, c, settings(), job(req))
	if res.Summary.Failed != 1 || s.updates != 0 || res.Failed[0].Fault != report.FaultClient || !strings.Contains(res.Failed[0].Message, `named "scan"`) {
		t.Fatalf("summary %+v, %d updates, failed %+v", res.Summary, s.updates, res.Failed)
	}
}

// Two entries of one request that want one association with other
// settings: the second is Failed, not guessed.
func TestConflictingSettingsForOneAssociation(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	e := request.Entry{Name: "D1", Targets: []request.Target{{Key: "InstanceIds", Values: []string{node(1), node(2)}}}, ScheduleExpression: aws.String("rate(1 day)")}
	runJob(t, s, c, settings(), job(&request.Request{Items: []request.Item{{Entry: e, Path: "Entries[0]"}}}))
	a, b := e, e
	a.Targets = []request.Target{{Key: "InstanceIds", Values: []string{node(1)}}}
	a.ScheduleExpression = aws.String("rate(7 days)")
	b.Targets = []request.Target{{Key: "InstanceIds", Values: []string{node(2)}}}
	b.ScheduleExpression = aws.String("rate(14 days)")
	req := &request.Request{OnExisting: request.OnExistingUpdate, Items: []request.Item{{Entry: a, Path: "Entries[0]"}, {Entry: b, Path: "Entries[1]"}}}
	res := runJob(t, s, c, settings(), job(req))
	if res.Summary.Updated+res.Summary.Failed != 2 || res.Summary.Failed != 1 || s.updates != 1 {
		t.Fatalf("summary %+v, %d updates", res.Summary, s.updates)
	}
	if !strings.Contains(res.Failed[0].Message, "other settings") {
		t.Errorf("failure %+v", res.Failed[0])
	}
}

// tlRequest is a Targets-form entry with TargetLocations in one region.
func tlRequest(region, onExisting string) *request.Request {
	return &request.Request{OnExisting: onExisting, Items: []request.Item{{Path: "Entries[0]", Entry: request.Entry{
		Name: "AWS-RunPatchBaseline", AssociationName: aws.String("patch-scan"),
		Targets:         []request.Target{{Key: "tag:Env", Values: []string{"prod"}}},
		TargetLocations: []request.TargetLocation{{Accounts: []string{"111111111111"}, Regions: []string{region}}},
	}}}}
}

// TargetLocations are a setting: changed on a rerun, they are reported (or
// updated), never a second association, which SSM would accept.
func TestTargetLocationsChangeIsASetting(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	first := runJob(t, s, c, settings(), job(tlRequest("eu-west-1", request.OnExistingSkip)))
	if first.Summary.Successful != 1 || s.calls != 1 {
		t.Fatalf("first run %+v in %d calls", first.Summary, s.calls)
	}
	id := first.Successful[0].AssociationId
	changed := runJob(t, s, c, settings(), job(tlRequest("us-east-1", request.OnExistingSkip)))
	if changed.Summary.Deduplicated != 1 || s.calls != 1 || len(s.ledger) != 1 {
		t.Fatalf("TargetLocations changed: %+v, %d CreateAssociationBatch calls, %d associations", changed.Summary, s.calls, len(s.ledger))
	}
	if d := changed.Deduplicated[0]; d.Reason != report.ReasonDifferentSettings || !slices.Equal(d.Differences, []string{"TargetLocations"}) || d.AssociationId != id {
		t.Errorf("deduplicated %+v, want %q with [TargetLocations] and %s", d, report.ReasonDifferentSettings, id)
	}
	updated := runJob(t, s, c, settings(), job(tlRequest("us-east-1", request.OnExistingUpdate)))
	if updated.Summary.Updated != 1 || s.calls != 1 || s.updates != 1 {
		t.Fatalf("update: %+v, %d creates, %d updates", updated.Summary, s.calls, s.updates)
	}
	if u := updated.Updated[0]; u.AssociationId != id || !slices.Equal(u.Differences, []string{"TargetLocations"}) {
		t.Errorf("updated %+v", u)
	}
	if got := s.ledger[0].TargetLocations[0].Regions; !slices.Equal(got, []string{"us-east-1"}) {
		t.Errorf("regions after the update %v", got)
	}
}

// A record written while TargetLocations were part of the key is found
// under that key, carried over to the new one, and the rerun makes no
// second association.
func TestRecordUnderTheOldTargetLocationsKeyIsCarriedOver(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	req := tlRequest("eu-west-1", request.OnExistingSkip)
	e := req.Items[0].Entry
	old := success(e.SDK())
	old.Date = aws.Time(time.Now().Add(-time.Hour))
	s.keep(old)
	id := aws.ToString(old.AssociationId)
	c.items[dedupe.LegacyTargetsKey(e)] = fakeClaim{owner: "old/1", associated: true, assocID: id, settings: dedupe.SettingsOf(e)}

	p, err := New(s, c, settings(), nil).DryRun(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Actions[0]; len(p.Actions) != 1 || a.Action != report.ActionSkip || a.Reason != report.ReasonAlreadyAssociated || a.AssociationId != id {
		t.Errorf("dry run %+v, want skip, already associated, %s", p.Actions, id)
	}
	res := runJob(t, s, c, settings(), job(req))
	if res.Summary.Deduplicated != 1 || s.calls != 0 {
		t.Fatalf("%+v in %d CreateAssociationBatch calls, want it deduplicated by the old record", res.Summary, s.calls)
	}
	if d := res.Deduplicated[0]; d.Reason != report.ReasonAlreadyAssociated || d.AssociationId != id {
		t.Errorf("deduplicated %+v", d)
	}
	if got := c.items[dedupe.TargetsKey(e)]; !got.associated || got.assocID != id {
		t.Errorf("record under the new key %+v, want carried over with %s", got, id)
	}
	// Another region on the old record: reported, not created.
	moved := runJob(t, s, c, settings(), job(tlRequest("us-east-1", request.OnExistingSkip)))
	if moved.Summary.Deduplicated != 1 || s.calls != 0 || !slices.Equal(moved.Deduplicated[0].Differences, []string{"TargetLocations"}) {
		t.Errorf("other region: %+v, %d calls", moved.Deduplicated, s.calls)
	}
	if left := c.inProgress(); len(left) != 0 {
		t.Errorf("claims left: %v", left)
	}
}

// An UpdateAssociation that acted but lost its answer, was throttled, or
// met a version someone else moved: read again, never sent twice for the
// same settings, and Updated names what changed.
func TestUpdateRetriesReportDifferences(t *testing.T) {
	for name, tt := range map[string]struct {
		fault     func(n int, before bool, ledger []ssmtypes.AssociationDescription) error
		updates   int
		version   string
		wantDiffs []string
	}{
		"answer lost": {
			fault: func(n int, before bool, _ []ssmtypes.AssociationDescription) error {
				if n == 1 && !before {
					return errors.New("read tcp 127.0.0.1:1234->127.0.0.1:4583: read: connection reset by peer")
				}
				return nil
			},
			updates: 1, version: "2", wantDiffs: []string{"ScheduleExpression"},
		},
		"throttled": {
			fault: func(n int, before bool, _ []ssmtypes.AssociationDescription) error {
				if n == 1 && before {
					return apiError("ThrottlingException", smithy.FaultClient)
				}
				return nil
			},
			updates: 2, version: "2", wantDiffs: []string{"ScheduleExpression"},
		},
		"stale version": {
			fault: func(n int, before bool, ledger []ssmtypes.AssociationDescription) error {
				if n == 1 && before {
					// Someone else updates it between our describe and update.
					ledger[0].AssociationVersion = aws.String("2")
					ledger[0].MaxErrors = aws.String("5")
				}
				return nil
			},
			updates: 2, version: "3", wantDiffs: []string{"ScheduleExpression", "MaxErrors"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, c := &fakeSSM{}, newFakeClaims()
			runJob(t, s, c, settings(), job(patchRequest("patch-scan", "Scan", "rate(1 day)", request.OnExistingSkip, 1)))
			s.updateFault = tt.fault
			req := patchRequest("patch-scan", "Scan", "rate(7 days)", request.OnExistingUpdate, 1)
			res := runJob(t, s, c, settings(), job(req))
			if res.Summary.Updated != 1 || s.updates != tt.updates {
				t.Fatalf("summary %+v, %d UpdateAssociation calls, want %d", res.Summary, s.updates, tt.updates)
			}
			if u := res.Updated[0]; !slices.Equal(u.Differences, tt.wantDiffs) || u.AssociationVersion != tt.version {
				t.Errorf("updated %+v, want Differences %v and version %s", u, tt.wantDiffs, tt.version)
			}
			for settings, n := range s.updated {
				if n != 1 {
					t.Errorf("UpdateAssociation acted %d times with %s", n, settings)
				}
			}
			if got := c.items[dedupe.NodeKey("AWS-RunPatchBaseline", "patch-scan", node(1))]; got.settings == nil || len(got.settings.Differences(dedupe.SettingsOf(req.Items[0].Entry))) != 0 {
				t.Errorf("record %+v, want the new settings' fingerprint", got)
			}
			if left := c.inProgress(); len(left) != 0 {
				t.Errorf("claims left: %v", left)
			}
		})
	}
}
