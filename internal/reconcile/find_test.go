package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/reconcile"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func TestFindSameSettings(t *testing.T) {
	e := newEnv(t)
	full := shell(nodeID(1))
	full.AssociationName = aws.String("nightly")
	full.DocumentVersion = aws.String("1")
	full.ScheduleExpression = aws.String("cron(0 2 ? * SUN *)")
	full.ApplyOnlyAtCronInterval = true
	full.ScheduleOffset = aws.Int32(2)
	full.Duration = aws.Int32(3)
	full.ComplianceSeverity = aws.String("HIGH")
	full.SyncCompliance = aws.String("AUTO")
	full.CalendarNames = []string{"cal-a", "cal-b"}
	full.OutputLocation = &request.OutputLocation{S3Location: &request.S3Location{
		OutputS3Region: aws.String("us-east-1"), OutputS3BucketName: aws.String("logs-bucket"), OutputS3KeyPrefix: aws.String("ssm/")}}
	full.AlarmConfiguration = &request.AlarmConfiguration{Alarms: []request.Alarm{{Name: "stop-me"}}}
	tags := shell()
	tags.Targets = []request.Target{{Key: "tag:Env", Values: []string{"prod", "stage"}}, {Key: "tag:Team", Values: []string{"ops"}}}
	legacy := request.Entry{Name: shellDoc, InstanceId: aws.String(nodeID(3)), Parameters: map[string][]string{"commands": {"id"}}}
	created := e.create(t, full, tags, legacy)

	// The same entries as an operator might resend them: sets in another
	// order, a default left out.
	full2 := full
	full2.CalendarNames = []string{"cal-b", "cal-a"}
	full2.SyncCompliance = nil
	tags2 := tags
	tags2.Targets = []request.Target{{Key: "tag:Team", Values: []string{"ops"}}, {Key: "tag:Env", Values: []string{"stage", "prod"}}}
	r := reconcile.New(e.rec, e.rec.wait)
	got, err := r.Find(context.Background(), []request.Entry{tags2, legacy, full2})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{created[1], created[2], created[0]}; !slices.Equal(ids(got), want) {
		t.Fatalf("Find = %v, want %v", ids(got), want)
	}
	if d := reconcile.Differences(full2, *got[2]); len(d) != 0 {
		t.Errorf("Differences of a found association = %v", d)
	}
	// One document: one page, then one describe per candidate.
	if r.Reads() != 4 || e.rec.count("list") != 1 || e.rec.count("describe") != 3 {
		t.Errorf("Reads = %d (lists %d, describes %d), want 1 list + 3 describes", r.Reads(), e.rec.count("list"), e.rec.count("describe"))
	}

	// The InstanceId association read back as a Targets entry, and the
	// document named by its ARN.
	asTargets := legacy
	asTargets.InstanceId = nil
	asTargets.Targets = []request.Target{{Key: request.InstanceIDsKey, Values: []string{nodeID(3)}}}
	byARN := full
	byARN.Name = "arn:aws:ssm:us-east-1::document/" + shellDoc
	got, err = reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{asTargets, byARN})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{created[2], created[0]}; !slices.Equal(ids(got), want) {
		t.Fatalf("Find = %v, want %v", ids(got), want)
	}
}

func TestFindNotFoundWhenSomethingDiffers(t *testing.T) {
	e := newEnv(t)
	base := shell(nodeID(1), nodeID(2))
	e.create(t, base)

	variant := func(change func(*request.Entry)) request.Entry {
		v := base
		v.Targets = []request.Target{{Key: request.InstanceIDsKey, Values: []string{nodeID(2), nodeID(1)}}}
		v.Parameters = map[string][]string{"commands": {"echo hello", "uptime"}}
		change(&v)
		return v
	}
	cases := map[string]request.Entry{
		"schedule":            variant(func(v *request.Entry) { v.ScheduleExpression = aws.String("rate(1 hour)") }),
		"no schedule":         variant(func(v *request.Entry) { v.ScheduleExpression = nil }),
		"parameter value":     variant(func(v *request.Entry) { v.Parameters["commands"] = []string{"echo bye", "uptime"} }),
		"parameter order":     variant(func(v *request.Entry) { v.Parameters["commands"] = []string{"uptime", "echo hello"} }),
		"MaxErrors":           variant(func(v *request.Entry) { v.MaxErrors = aws.String("2") }),
		"AssociationName":     variant(func(v *request.Entry) { v.AssociationName = aws.String("named") }),
		"DocumentVersion":     variant(func(v *request.Entry) { v.DocumentVersion = aws.String("$LATEST") }),
		"ComplianceSeverity":  variant(func(v *request.Entry) { v.ComplianceSeverity = aws.String("LOW") }),
		"fewer nodes":         variant(func(v *request.Entry) { v.Targets[0].Values = []string{nodeID(1)} }),
		"more nodes":          variant(func(v *request.Entry) { v.Targets[0].Values = append(v.Targets[0].Values, nodeID(3)) }),
		"InstanceId of one":   variant(func(v *request.Entry) { v.Targets = nil; v.InstanceId = aws.String(nodeID(1)) }),
		"tag instead of node": variant(func(v *request.Entry) { v.Targets = []request.Target{{Key: "tag:Env", Values: []string{"prod"}}} }),
	}
	for name, entry := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{entry})
			if err != nil {
				t.Fatal(err)
			}
			if got[0] != nil {
				t.Errorf("found %s for an entry that differs in %s", aws.ToString(got[0].AssociationId), name)
			}
		})
	}
	// The unchanged variant (targets reordered) is found.
	got, err := reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{variant(func(*request.Entry) {})})
	if err != nil || got[0] == nil {
		t.Fatalf("unchanged entry: got %v, %v", ids(got), err)
	}
}

// The standard patching setup: a Scan and an Install association of one
// document on one node, told apart by AssociationName and Parameters.
func TestFindScanAndInstall(t *testing.T) {
	e := newEnv(t)
	node := nodeID(7)
	scan, install := patch("Scan", node), patch("Install", node)
	scanID := e.create(t, scan)[0]
	// An emulator that refuses a second association of the document on the
	// node leaves Install absent; one that allows it creates it.
	installID, refused := e.tryCreate(t, install)
	if refused {
		t.Log("the emulator refused the Install association; checking Scan only")
	}

	got, err := reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{install, scan})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{installID, scanID}; !slices.Equal(ids(got), want) {
		t.Fatalf("Find(install, scan) = %v, want %v", ids(got), want)
	}

	// Alone, an entry's AssociationName narrows the listing.
	r := reconcile.New(e.rec, nil)
	got, err = r.Find(context.Background(), []request.Entry{scan})
	if err != nil || ids(got)[0] != scanID {
		t.Fatalf("Find(scan) = %v, %v; want %s", ids(got), err, scanID)
	}
	filters := e.rec.lists[0].AssociationFilterList
	if len(filters) != 2 || filters[1].Key != ssmtypes.AssociationFilterKeyAssociationName || aws.ToString(filters[1].Value) != "patch-scan" {
		t.Errorf("filters = %+v, want Name and AssociationName patch-scan", filters)
	}
	if r.Reads() != 2 {
		t.Errorf("Reads = %d, want 1 list + 1 describe", r.Reads())
	}

	// Install under Scan's name is neither.
	mixed := install
	mixed.AssociationName = scan.AssociationName
	got, err = reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{mixed})
	if err != nil || got[0] != nil {
		t.Fatalf("Find(install named patch-scan) = %v, %v; want nothing", ids(got), err)
	}
}

func TestFindPagesThroughMoreThan50(t *testing.T) {
	e := newEnv(t)
	entries := make([]request.Entry, 120)
	for i := range entries {
		entries[i] = shell(nodeID(i + 1))
	}
	e.createBatch(t, entries)
	ledger := e.emu.Ledger()

	r := reconcile.New(e.rec, e.rec.wait)
	lookFor := []request.Entry{entries[4], entries[59], entries[116], shell(nodeID(500))}
	got, err := r.Find(context.Background(), lookFor)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ledger[4].AssociationID, ledger[59].AssociationID, ledger[116].AssociationID, ""}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("Find = %v, want %v", ids(got), want)
	}
	// 120 associations: pages of 50, 50, 20; three candidates survive the
	// summaries.
	if r.Reads() != 6 || e.rec.count("list") != 3 {
		t.Errorf("Reads = %d with %d lists; want 3 lists + 3 describes", r.Reads(), e.rec.count("list"))
	}
	for i, in := range e.rec.lists {
		if aws.ToInt32(in.MaxResults) != 50 || (i == 0) != (in.NextToken == nil) {
			t.Errorf("list %d: MaxResults %d, NextToken %v", i, aws.ToInt32(in.MaxResults), in.NextToken)
		}
	}
}

func TestFindEarliestOfDoubles(t *testing.T) {
	e := newEnv(t)
	entry := shell()
	entry.Targets = []request.Target{{Key: "tag:Env", Values: []string{"prod"}}}
	first := e.create(t, entry)[0]
	time.Sleep(5 * time.Millisecond) // Dates have millisecond precision
	second, refused := e.tryCreate(t, entry)
	if refused {
		t.Skip("the emulator refuses an identical Targets association, so no double can be made; TestFindEarliestByDate covers the choice")
	}
	got, err := reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{entry})
	if err != nil {
		t.Fatal(err)
	}
	if ids(got)[0] != first {
		t.Errorf("Find = %v, want the earlier %s", ids(got), first)
	}
	got, err = reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{entry, entry, entry})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{first, second, ""}; !slices.Equal(ids(got), want) {
		t.Errorf("Find(3 identical) = %v, want %v", ids(got), want)
	}
}

func TestFindGivesAnAssociationToOneEntry(t *testing.T) {
	e := newEnv(t)
	entry := shell(nodeID(1))
	id := e.create(t, entry)[0]
	got, err := reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{entry, entry})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{id, ""}; !slices.Equal(ids(got), want) {
		t.Errorf("Find(entry, entry) = %v, want %v", ids(got), want)
	}
}

func TestFindDeletedBetweenListAndDescribe(t *testing.T) {
	e := newEnv(t)
	entry := shell(nodeID(1))
	id := e.create(t, entry)[0]
	e.rec.afterList = func() {
		if _, err := e.client.DeleteAssociation(context.Background(), &ssm.DeleteAssociationInput{AssociationId: aws.String(id)}); err != nil {
			t.Errorf("delete: %v", err)
		}
	}
	r := reconcile.New(e.rec, nil)
	got, err := r.Find(context.Background(), []request.Entry{entry})
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	if got[0] != nil || r.Reads() != 2 {
		t.Errorf("Find = %v after %d reads; want nothing after 1 list + 1 describe", ids(got), r.Reads())
	}
}

func TestFindWaitsBeforeEveryCall(t *testing.T) {
	e := newEnv(t)
	entries := make([]request.Entry, 60)
	for i := range entries {
		entries[i] = shell(nodeID(i + 1))
	}
	e.createBatch(t, entries)
	r := reconcile.New(e.rec, e.rec.wait)
	if _, err := r.Find(context.Background(), entries[:3]); err != nil {
		t.Fatal(err)
	}
	want := []string{"wait", "list", "wait", "list", "wait", "describe", "wait", "describe", "wait", "describe"}
	if !slices.Equal(e.rec.events, want) || r.Reads() != 5 {
		t.Errorf("events %v, Reads %d; want %v", e.rec.events, r.Reads(), want)
	}

	// A wait that fails stops the reads there.
	stop := errors.New("deadline near")
	for _, failAt := range []int{1, 2, 3} {
		waits := 0
		r := reconcile.New(e.client, func(context.Context) error {
			if waits++; waits == failAt {
				return stop
			}
			return nil
		})
		got, err := r.Find(context.Background(), entries[:3])
		if !errors.Is(err, stop) || got != nil {
			t.Errorf("wait failing at call %d: Find = %v, %v; want the wait's error", failAt, got, err)
		}
		if r.Reads() != failAt-1 {
			t.Errorf("wait failing at call %d: Reads = %d", failAt, r.Reads())
		}
	}
}

func TestFindErrorsAbort(t *testing.T) {
	e := newEnv(t)
	entry := shell(nodeID(1))
	e.create(t, entry)

	e.emu.FailCalls(1, "", 0) // the listing
	if got, err := reconcile.New(e.client, nil).Find(context.Background(), []request.Entry{entry}); got != nil || !isInternal(err) {
		t.Errorf("list failing: Find = %v, %v; want InternalServerError", got, err)
	}

	e.rec.afterList = func() { e.emu.FailCalls(1, "", 0) } // the describe
	if got, err := reconcile.New(e.rec, nil).Find(context.Background(), []request.Entry{entry}); got != nil || !isInternal(err) {
		t.Errorf("describe failing: Find = %v, %v; want InternalServerError", got, err)
	}
}

func isInternal(err error) bool {
	var ise *ssmtypes.InternalServerError
	return errors.As(err, &ise)
}

func TestFindNothing(t *testing.T) {
	r := reconcile.New(newEnv(t).client, nil)
	got, err := r.Find(context.Background(), nil)
	if err != nil || len(got) != 0 || r.Reads() != 0 {
		t.Errorf("Find(nil) = %v, %v after %d reads", got, err, r.Reads())
	}
}

func TestCovering(t *testing.T) {
	e := newEnv(t)
	a, b, c, d, x, f := nodeID(1), nodeID(2), nodeID(3), nodeID(4), nodeID(5), nodeID(6)
	byTarget := e.create(t, shell(a, b))[0]
	byInstanceID := e.create(t, request.Entry{Name: shellDoc, InstanceId: aws.String(c), Parameters: map[string][]string{"commands": {"id"}}})[0]
	tagged := shell()
	tagged.Targets = []request.Target{{Key: "tag:Name", Values: []string{d}}}
	e.create(t, tagged, patch("Scan", x))

	r := reconcile.New(e.rec, e.rec.wait)
	got, err := r.Covering(context.Background(), shellDoc, []string{a, b, c, d, x, f})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{a: byTarget, b: byTarget, c: byInstanceID}
	if len(got) != len(want) || got[a] != want[a] || got[b] != want[b] || got[c] != want[c] {
		t.Errorf("Covering = %v, want %v", got, want)
	}
	if r.Reads() != 1 || e.rec.count("wait") != 1 {
		t.Errorf("Reads = %d, waits %d; want 1 list", r.Reads(), e.rec.count("wait"))
	}
}
