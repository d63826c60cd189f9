package reliability_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// TestReliabilityExistingAssociations runs the real function under the RIE
// through the life of two associations of one document on the same nodes
// (AWS-RunPatchBaseline Scan and Install): both associate; a new schedule
// is reported, not dropped; "OnExisting": "update" changes only the named
// association and keeps what it does not change; the same update again makes
// no call; a dry run writes nothing.
func TestReliabilityExistingAssociations(t *testing.T) {
	needServices(t, testinfra.ToolRIE, testinfra.ToolGo)
	opts := ssmlocal.DefaultOptions()
	opts.MaxAssociations = 0
	w := newWorld(t, opts)
	rie := startFunction(t, w, time.Minute, "CALLS_PER_SECOND=0")
	nodes := span(0, size(60, 600))
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = nodeID(n)
	}
	body := func(extra, name, operation, schedule string) []byte {
		list, _ := json.Marshal(ids)
		return []byte(fmt.Sprintf(`{%s"Association":{"Name":"AWS-RunPatchBaseline","AssociationName":%q,"Parameters":{"Operation":[%q]},"ScheduleExpression":%q,"MaxErrors":"10%%"},"InstanceIds":%s}`,
			extra, name, operation, schedule, list))
	}
	run := func(what string, payload []byte) report.Result {
		a := invoke(t, rie, payload, 2*time.Minute)
		if a.ErrorType != "" {
			t.Fatalf("%s: %s: %s", what, a.ErrorType, a.ErrorMessage)
		}
		t.Logf("%s: %+v", what, a.Result.Summary)
		return a.Result
	}
	n := len(nodes)

	if r := run("scan", body("", "patch-scan", "Scan", "rate(1 day)")); r.Summary.Successful != n {
		t.Fatalf("scan: %+v", r.Summary)
	}
	if r := run("install", body("", "patch-install", "Install", "rate(1 day)")); r.Summary.Successful != n {
		t.Fatalf("install on the same nodes: %+v", r.Summary)
	}
	changed := run("new schedule", body("", "patch-scan", "Scan", "rate(7 days)"))
	for _, d := range changed.Deduplicated {
		if d.Reason != report.ReasonDifferentSettings || !slices.Equal(d.Differences, []string{"ScheduleExpression"}) || d.AssociationId == "" {
			t.Fatalf("new schedule: %+v", d)
		}
	}

	before := w.emu.Stats()
	dry := invoke(t, rie, body(`"DryRun":true,"OnExisting":"update",`, "patch-scan", "Scan", "rate(7 days)"), time.Minute)
	var plan report.Plan
	if err := json.Unmarshal(dry.raw, &plan); err != nil || plan.Summary.Update != n || len(plan.Actions) != n {
		t.Fatalf("dry run: %.300s (%v)", dry.raw, err)
	}
	if after := w.emu.Stats(); after.Calls != before.Calls {
		t.Errorf("the dry run made %d SSM calls", after.Calls-before.Calls)
	}

	updated := run("update", body(`"OnExisting":"update",`, "patch-scan", "Scan", "rate(7 days)"))
	if updated.Summary.Updated != n {
		t.Fatalf("update: %+v", updated.Summary)
	}
	// Only the Scan associations changed, each to version 2.
	versions := map[string]int{}
	for _, a := range w.emu.Ledger() {
		versions[a.AssociationVersion]++
	}
	if versions["2"] != n || versions["1"] != n {
		t.Errorf("association versions %v, want %d at 2 (scan) and %d at 1 (install)", versions, n, n)
	}
	if st := w.emu.Stats(); st.AssociationsUpdated != n || st.DoubleAssociations != 0 {
		t.Errorf("%d updated, %d doubles; want %d and 0", st.AssociationsUpdated, st.DoubleAssociations, n)
	}
	calls := w.emu.Stats().Calls
	if r := run("the same update again", body(`"OnExisting":"update",`, "patch-scan", "Scan", "rate(7 days)")); r.Summary.Deduplicated != n || w.emu.Stats().Calls != calls {
		t.Errorf("the same update again: %+v, %d calls", r.Summary, w.emu.Stats().Calls-calls)
	}
	w.assertNoStuckClaims(t, "after the update")
}
