package reconcile_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/reconcile"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// matchIDs renders each Match as "exact:ID", "same:ID [Differences]" or "".
func matchIDs(ms []reconcile.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		switch {
		case m.Exact != nil && m.Same == nil && len(m.Differences) == 0:
			out[i] = "exact:" + aws.ToString(m.Exact.AssociationId)
		case m.Exact == nil && m.Same != nil && len(m.Differences) > 0:
			out[i] = "same:" + aws.ToString(m.Same.AssociationId) + " " + strings.Join(m.Differences, ",")
		case m.Exact == nil && m.Same == nil && len(m.Differences) == 0:
		default:
			out[i] = "inconsistent"
		}
	}
	return out
}

// Exact matches are what Find finds, for the same reads.
func TestMatchExactAsFind(t *testing.T) {
	e := newEnv(t)
	named := shell(nodeID(1))
	named.AssociationName = aws.String("nightly")
	tags := shell()
	tags.Targets = []request.Target{{Key: "tag:Env", Values: []string{"prod", "stage"}}}
	legacy := request.Entry{Name: shellDoc, InstanceId: aws.String(nodeID(3)), Parameters: map[string][]string{"commands": {"id"}}}
	created := e.create(t, named, tags, legacy)

	tags2 := tags
	tags2.Targets = []request.Target{{Key: "tag:Env", Values: []string{"stage", "prod"}}}
	entries := []request.Entry{tags2, legacy, named, shell(nodeID(9))}
	r := reconcile.New(e.rec, e.rec.wait)
	got, err := r.Match(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"exact:" + created[1], "exact:" + created[2], "exact:" + created[0], ""}
	if !slices.Equal(matchIDs(got), want) {
		t.Fatalf("Match = %v, want %v", matchIDs(got), want)
	}
	if r.Reads() != 4 || e.rec.count("list") != 1 {
		t.Errorf("Reads = %d, want 1 list + 3 describes", r.Reads())
	}
	f := reconcile.New(e.client, nil)
	found, err := f.Find(context.Background(), entries)
	if err != nil || !slices.Equal(ids(found), []string{created[1], created[2], created[0], ""}) {
		t.Fatalf("Find = %v, %v", ids(found), err)
	}
	if f.Reads() != r.Reads() {
		t.Errorf("Find made %d reads, Match %d", f.Reads(), r.Reads())
	}
}

func TestMatchSameIdentityOtherSettings(t *testing.T) {
	e := newEnv(t)
	base := shell(nodeID(1), nodeID(2))
	base.AssociationName = aws.String("nightly")
	id := e.create(t, base)[0]

	variant := func(change func(*request.Entry)) request.Entry {
		v := base
		v.Targets = []request.Target{{Key: request.InstanceIDsKey, Values: []string{nodeID(2), nodeID(1)}}}
		v.Parameters = map[string][]string{"commands": {"echo hello", "uptime"}}
		change(&v)
		return v
	}
	cases := []struct {
		name  string
		entry request.Entry
		want  string
	}{
		{"unchanged", variant(func(*request.Entry) {}), "exact:" + id},
		{"schedule", variant(func(v *request.Entry) { v.ScheduleExpression = aws.String("rate(1 hour)") }), "same:" + id + " ScheduleExpression"},
		{"parameter", variant(func(v *request.Entry) { v.Parameters["commands"] = []string{"echo secret", "uptime"} }), "same:" + id + " Parameters"},
		{"schedule and MaxErrors", variant(func(v *request.Entry) { v.ScheduleExpression, v.MaxErrors = nil, aws.String("3") }),
			"same:" + id + " ScheduleExpression,MaxErrors"},
		{"other AssociationName", variant(func(v *request.Entry) { v.AssociationName = aws.String("weekly") }), ""},
		{"no AssociationName", variant(func(v *request.Entry) { v.AssociationName = nil }), ""},
		{"fewer nodes", variant(func(v *request.Entry) { v.Targets[0].Values = []string{nodeID(1)} }), ""},
		{"tag instead of nodes", variant(func(v *request.Entry) { v.Targets = []request.Target{{Key: "tag:Env", Values: []string{"prod"}}} }), ""},
		{"TargetMaps", variant(func(v *request.Entry) {
			v.Targets = nil
			v.TargetMaps = []map[string][]string{{"InstanceIds": {nodeID(1), nodeID(2)}}}
		}), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := reconcile.New(e.client, nil).Match(context.Background(), []request.Entry{c.entry})
			if err != nil {
				t.Fatal(err)
			}
			if matchIDs(got)[0] != c.want {
				t.Errorf("Match = %q, want %q", matchIDs(got)[0], c.want)
			}
			if strings.Contains(strings.Join(got[0].Differences, " "), "secret") {
				t.Errorf("Differences shows a value: %v", got[0].Differences)
			}
		})
	}

	// Without a common AssociationName the listing is not narrowed: the
	// summaries rule the other names out, and nothing is described.
	r := reconcile.New(e.rec, nil)
	got, err := r.Match(context.Background(), []request.Entry{cases[4].entry, cases[5].entry})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(matchIDs(got), []string{"", ""}) || len(e.rec.lists[0].AssociationFilterList) != 1 {
		t.Errorf("Match = %v with filters %+v; want nothing, Name filter only", matchIDs(got), e.rec.lists[0].AssociationFilterList)
	}
	if e.rec.count("describe") != 0 {
		t.Errorf("described %v for entries of other identities", e.rec.described)
	}
}

// The legacy InstanceId form: an entry of that form, or its InstanceIds
// equivalent, has the same identity as the association.
func TestMatchInstanceIdForm(t *testing.T) {
	e := newEnv(t)
	legacy := request.Entry{Name: shellDoc, InstanceId: aws.String(nodeID(3)), Parameters: map[string][]string{"commands": {"id"}}}
	id := e.create(t, legacy)[0]

	otherParams := legacy
	otherParams.Parameters = map[string][]string{"commands": {"hostname"}}
	scheduled := legacy
	scheduled.ScheduleExpression = aws.String("rate(1 day)")
	asTargets := legacy
	asTargets.InstanceId = nil
	asTargets.Targets = []request.Target{{Key: request.InstanceIDsKey, Values: []string{nodeID(3)}}}
	asTargets.MaxErrors = aws.String("1")
	otherNode := otherParams
	otherNode.InstanceId = aws.String(nodeID(4))
	cases := map[string]struct {
		entry request.Entry
		want  string
	}{
		"other parameters":      {otherParams, "same:" + id + " Parameters"},
		"a schedule":            {scheduled, "same:" + id + " ScheduleExpression"},
		"as Targets, MaxErrors": {asTargets, "same:" + id + " MaxErrors"},
		"another node":          {otherNode, ""},
		"same settings (exact)": {legacy, "exact:" + id},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := reconcile.New(e.client, nil)
			got, err := r.Match(context.Background(), []request.Entry{c.entry})
			if err != nil {
				t.Fatal(err)
			}
			if matchIDs(got)[0] != c.want {
				t.Errorf("Match = %q, want %q", matchIDs(got)[0], c.want)
			}
			if want := map[bool]int{true: 1, false: 2}[c.want == ""]; r.Reads() != want {
				t.Errorf("Reads = %d, want %d", r.Reads(), want)
			}
		})
	}
}

// Describes: the exact candidates Find describes, then, for entries without
// an exact match only, the other associations of their identity.
func TestMatchReads(t *testing.T) {
	e := newEnv(t)
	n1, n2 := nodeID(1), nodeID(2)
	otherSchedule := func(en request.Entry) request.Entry { en.ScheduleExpression = aws.String("rate(1 hour)"); return en }
	otherParams := func(en request.Entry) request.Entry {
		en.Parameters = map[string][]string{"commands": {"date"}}
		return en
	}
	// Created one at a time, in Date order: the near matches of n1 are
	// older than its exact one.
	var created []string
	for _, en := range []request.Entry{
		otherSchedule(shell(n1)), // 0 near n1, ruled out as exact by its summary
		otherParams(shell(n1)),   // 1 near n1, only its description tells
		shell(n1),                // 2 exact n1
		otherSchedule(shell(n2)), // 3 near n2
		shell(n1, n2),            // 4 other targets
		shell(nodeID(3)),         // 5 another node
	} {
		created = append(created, e.create(t, en)[0])
		time.Sleep(5 * time.Millisecond) // Dates have millisecond precision
	}

	r := reconcile.New(e.rec, e.rec.wait)
	got, err := r.Match(context.Background(), []request.Entry{shell(n1), shell(n2)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"exact:" + created[2], "same:" + created[3] + " ScheduleExpression"}
	if !slices.Equal(matchIDs(got), want) {
		t.Fatalf("Match = %v, want %v", matchIDs(got), want)
	}
	// 0, 4 and 5 are never described; 3 only because n2 has no exact one.
	if d := []string{created[1], created[2], created[3]}; !slices.Equal(e.rec.described, d) || r.Reads() != 4 {
		t.Errorf("described %v (Reads %d), want %v after 1 list", e.rec.described, r.Reads(), d)
	}
	evs := []string{"wait", "list", "wait", "describe", "wait", "describe", "wait", "describe"}
	if !slices.Equal(e.rec.events, evs) {
		t.Errorf("events %v, want %v", e.rec.events, evs)
	}

	// Find describes the exact candidates only.
	e.rec.described, e.rec.events = nil, nil
	f := reconcile.New(e.rec, nil)
	found, err := f.Find(context.Background(), []request.Entry{shell(n1), shell(n2)})
	if err != nil || !slices.Equal(ids(found), []string{created[2], ""}) {
		t.Fatalf("Find = %v, %v", ids(found), err)
	}
	if d := []string{created[1], created[2]}; !slices.Equal(e.rec.described, d) || f.Reads() != 3 {
		t.Errorf("Find described %v (Reads %d), want %v", e.rec.described, f.Reads(), d)
	}

	// No exact one: every association of the identity is described, and
	// the earliest is the near match.
	e.rec.described = nil
	wider := shell(n1)
	wider.MaxConcurrency = aws.String("50%")
	r = reconcile.New(e.rec, nil)
	got, err = r.Match(context.Background(), []request.Entry{wider})
	if err != nil {
		t.Fatal(err)
	}
	if w := "same:" + created[0] + " ScheduleExpression,MaxConcurrency"; matchIDs(got)[0] != w {
		t.Errorf("Match = %v, want %s", matchIDs(got), w)
	}
	if d := []string{created[1], created[2], created[0]}; !slices.Equal(e.rec.described, d) || r.Reads() != 4 {
		t.Errorf("described %v (Reads %d), want %v", e.rec.described, r.Reads(), d)
	}
}

// An association goes to one entry; an exact match is given before any
// near one, whatever the order of the entries.
func TestMatchOneAssociationPerEntry(t *testing.T) {
	e := newEnv(t)
	entry := shell(nodeID(1))
	id := e.create(t, entry)[0]
	other := otherMaxErrors(entry)

	for _, c := range []struct {
		entries []request.Entry
		want    []string
	}{
		{[]request.Entry{other, entry}, []string{"", "exact:" + id}},
		{[]request.Entry{entry, other}, []string{"exact:" + id, ""}},
		{[]request.Entry{other, other}, []string{"same:" + id + " MaxErrors", ""}},
	} {
		got, err := reconcile.New(e.client, nil).Match(context.Background(), c.entries)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(matchIDs(got), c.want) {
			t.Errorf("Match = %v, want %v", matchIDs(got), c.want)
		}
	}
}

func otherMaxErrors(en request.Entry) request.Entry {
	en.MaxErrors = aws.String("5")
	return en
}

// The near match is the earliest by Date, not the first listed.
func TestMatchNearEarliestByDate(t *testing.T) {
	entry := shell(nodeID(1))
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	desc := func(id string, date time.Time) ssmtypes.AssociationDescription {
		s := entry.SDK()
		return ssmtypes.AssociationDescription{
			AssociationId: aws.String(id), Date: aws.Time(date), Name: s.Name, Targets: s.Targets,
			Parameters: s.Parameters, ScheduleExpression: aws.String("rate(1 day)"), MaxErrors: s.MaxErrors,
			MaxConcurrency: s.MaxConcurrency,
		}
	}
	fake := listed{described: map[string]ssmtypes.AssociationDescription{
		"later":   desc("later", at.Add(time.Minute)),
		"earlier": desc("earlier", at),
	}}
	for _, id := range []string{"later", "deleted", "earlier"} {
		fake.summaries = append(fake.summaries, ssmtypes.Association{
			AssociationId: aws.String(id), Name: aws.String(shellDoc), Targets: entry.SDK().Targets, ScheduleExpression: aws.String("rate(1 day)"),
		})
	}
	r := reconcile.New(fake, nil)
	got, err := r.Match(context.Background(), []request.Entry{entry, entry, entry})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"same:earlier ScheduleExpression", "same:later ScheduleExpression", ""}
	if !slices.Equal(matchIDs(got), want) || r.Reads() != 4 {
		t.Errorf("Match = %v after %d reads, want %v after 1 list + 3 describes", matchIDs(got), r.Reads(), want)
	}
}

func TestMatchDescribeErrorAborts(t *testing.T) {
	e := newEnv(t)
	entry := shell(nodeID(1))
	e.create(t, otherMaxErrors(entry))
	// The summary cannot tell MaxErrors: the one describe is the exact
	// candidates'. With a schedule that differs it is the near one's.
	for _, en := range []request.Entry{entry, func() request.Entry { x := entry; x.ScheduleExpression = nil; return x }()} {
		e.rec.afterList = func() { e.emu.FailCalls(1, "", 0) }
		got, err := reconcile.New(e.rec, nil).Match(context.Background(), []request.Entry{en})
		if got != nil || !isInternal(err) {
			t.Errorf("Match = %v, %v; want InternalServerError", matchIDs(got), err)
		}
	}
}
