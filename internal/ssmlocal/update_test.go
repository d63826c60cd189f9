package ssmlocal

import (
	"context"
	"errors"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// ticking makes s's clock start at a fixed time and advance a second per
// reading, so that creation and update dates differ.
func ticking(s *Server) {
	t := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { t = t.Add(time.Second); return t }
}

func shellTargets(nodes ...string) []types.Target {
	return []types.Target{{Key: aws.String("InstanceIds"), Values: nodes}}
}

// createNightly creates a Targets-form association with many optional
// members set and returns its description.
func createNightly(t *testing.T, c *ssm.Client) *types.AssociationDescription {
	t.Helper()
	out, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{
		Name:               aws.String("AWS-RunShellScript"),
		Targets:            shellTargets(node1),
		Parameters:         map[string][]string{"commands": {"echo one"}},
		AssociationName:    aws.String("nightly"),
		ScheduleExpression: aws.String("rate(1 day)"),
		MaxErrors:          aws.String("1"),
		MaxConcurrency:     aws.String("2"),
		DocumentVersion:    aws.String("$LATEST"),
		ComplianceSeverity: types.AssociationComplianceSeverityHigh,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.AssociationDescription
}

func describeVersion(t *testing.T, c *ssm.Client, id *string, version string) *types.AssociationDescription {
	t.Helper()
	in := &ssm.DescribeAssociationInput{AssociationId: id}
	if version != "" {
		in.AssociationVersion = aws.String(version)
	}
	out, err := c.DescribeAssociation(ctx(t), in)
	if err != nil {
		t.Fatalf("describe %s version %q: %v", aws.ToString(id), version, err)
	}
	return out.AssociationDescription
}

// TestUpdateClearsOmittedMembers: "the system removes all optional
// parameters from the request and overwrites the association with null
// values for those parameters" — except Name and Targets, kept as the AWS
// CLI examples show. Each update is a new version; Date stays.
func TestUpdateClearsOmittedMembers(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	ticking(s)
	created := createNightly(t, c)
	id := created.AssociationId

	out, err := c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{
		AssociationId: id,
		Parameters:    map[string][]string{"commands": {"echo two"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := out.AssociationDescription
	if aws.ToString(d.AssociationVersion) != "2" || aws.ToString(d.AssociationId) != aws.ToString(id) {
		t.Fatalf("version %q id %q", aws.ToString(d.AssociationVersion), aws.ToString(d.AssociationId))
	}
	if aws.ToString(d.Name) != "AWS-RunShellScript" || !reflect.DeepEqual(d.Targets, shellTargets(node1)) {
		t.Fatalf("Name/Targets not kept: %q %+v", aws.ToString(d.Name), d.Targets)
	}
	if d.Parameters["commands"][0] != "echo two" {
		t.Fatalf("parameters %v", d.Parameters)
	}
	if d.ScheduleExpression != nil || d.MaxErrors != nil || d.MaxConcurrency != nil || d.AssociationName != nil ||
		d.ComplianceSeverity != "" || aws.ToString(d.DocumentVersion) != "$DEFAULT" {
		t.Fatalf("omitted members not cleared: %+v", d)
	}
	if !d.Date.Equal(*created.Date) || !d.LastUpdateAssociationDate.After(*created.LastUpdateAssociationDate) {
		t.Fatalf("dates: created %v/%v, updated %v/%v", created.Date, created.LastUpdateAssociationDate, d.Date, d.LastUpdateAssociationDate)
	}

	// DescribeAssociation: the current version, $LATEST, or an older one.
	for _, v := range []string{"", "$LATEST", "2"} {
		if got := describeVersion(t, c, id, v); aws.ToString(got.AssociationVersion) != "2" || got.MaxErrors != nil {
			t.Fatalf("describe %q: %+v", v, got)
		}
	}
	v1 := describeVersion(t, c, id, "1")
	if aws.ToString(v1.AssociationVersion) != "1" || aws.ToString(v1.MaxErrors) != "1" ||
		aws.ToString(v1.ScheduleExpression) != "rate(1 day)" || v1.Parameters["commands"][0] != "echo one" {
		t.Fatalf("version 1: %+v", v1)
	}
	_, err = c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{AssociationId: id, AssociationVersion: aws.String("3")})
	var iv *types.InvalidAssociationVersion
	if !errors.As(err, &iv) {
		t.Fatalf("version 3: want InvalidAssociationVersion, got %v", err)
	}

	// ListAssociations shows the current version.
	list := func() types.Association {
		t.Helper()
		l, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{})
		if err != nil || len(l.Associations) != 1 {
			t.Fatalf("list: %v %+v", err, l)
		}
		return l.Associations[0]
	}
	if a := list(); aws.ToString(a.AssociationVersion) != "2" || a.ScheduleExpression != nil || a.AssociationName != nil {
		t.Fatalf("summary after update: %+v", a)
	}
	_, err = c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{
		AssociationId:      id,
		Name:               aws.String("AWS-RunShellScript"),
		Targets:            shellTargets(node1),
		Parameters:         map[string][]string{"commands": {"echo three"}},
		AssociationName:    aws.String("hourly"),
		ScheduleExpression: aws.String("rate(2 hours)"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := list(); aws.ToString(a.AssociationVersion) != "3" || aws.ToString(a.ScheduleExpression) != "rate(2 hours)" || aws.ToString(a.AssociationName) != "hourly" {
		t.Fatalf("summary after second update: %+v", a)
	}
	byName, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{AssociationFilterList: []types.AssociationFilter{
		{Key: types.AssociationFilterKeyAssociationName, Value: aws.String("nightly")}}})
	if err != nil || len(byName.Associations) != 0 {
		t.Fatalf("the old name still matches: %v %+v", err, byName)
	}

	st := s.Stats()
	if st.AssociationsUpdated != 2 || st.Operations["UpdateAssociation"] != 2 || st.AssociationsCreated != 1 || st.ActiveAssociations != 1 {
		t.Fatalf("stats %+v", st)
	}
	if l := s.Ledger(); len(l) != 1 || l[0].AssociationVersion != "3" || !l[0].Updated.After(l[0].Created) {
		t.Fatalf("ledger %+v", l)
	}
}

// TestUpdateVersionCheck: AssociationVersion is optimistic concurrency: a
// stale version is refused and changes nothing; $LATEST, the current
// version or none at all are accepted.
func TestUpdateVersionCheck(t *testing.T) {
	_, c, _ := newEnv(t, DefaultOptions())
	id := createNightly(t, c).AssociationId
	update := func(version *string) (*ssm.UpdateAssociationOutput, error) {
		return c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: id, AssociationVersion: version,
			Parameters: map[string][]string{"commands": {"echo"}}})
	}
	for i, v := range []*string{aws.String("1"), aws.String("$LATEST"), nil, aws.String("4")} {
		out, err := update(v)
		if want := i + 2; err != nil || aws.ToString(out.AssociationDescription.AssociationVersion) != strconv.Itoa(want) {
			t.Fatalf("update with version %v: %v, want version %d", aws.ToString(v), err, want)
		}
	}
	for _, v := range []string{"1", "4", "9"} {
		_, err := update(aws.String(v))
		var iv *types.InvalidAssociationVersion
		if !errors.As(err, &iv) || iv.ErrorMessage() == "" {
			t.Fatalf("stale version %s: want InvalidAssociationVersion with a message, got %v", v, err)
		}
	}
	if d := describeVersion(t, c, id, ""); aws.ToString(d.AssociationVersion) != "5" {
		t.Fatalf("a refused update changed the association: version %s", aws.ToString(d.AssociationVersion))
	}
}

// TestUpdateUnknownAssociation: an ID that never existed, or was deleted,
// is AssociationDoesNotExist.
func TestUpdateUnknownAssociation(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	id := createNightly(t, c).AssociationId
	if _, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{AssociationId: id}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []*string{aws.String("00000000-0000-4000-8000-000000000000"), id} {
		_, err := c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: id,
			Parameters: map[string][]string{"commands": {"echo"}}})
		var dne *types.AssociationDoesNotExist
		if !errors.As(err, &dne) || dne.ErrorMessage() == "" {
			t.Fatalf("want AssociationDoesNotExist, got %v", err)
		}
	}
	if st := s.Stats(); st.AssociationsUpdated != 0 || st.Operations["UpdateAssociation"] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUpdateConstraints: the model's constraints, as for create.
func TestUpdateConstraints(t *testing.T) {
	s, c, url := newEnv(t, DefaultOptions())
	id := createNightly(t, c).AssociationId
	cases := []struct {
		path string
		mut  func(in *ssm.UpdateAssociationInput)
	}{
		{"associationId", func(in *ssm.UpdateAssociationInput) { in.AssociationId = aws.String("not-a-uuid") }},
		{"name", func(in *ssm.UpdateAssociationInput) { in.Name = aws.String("x") }},
		{"associationVersion", func(in *ssm.UpdateAssociationInput) { in.AssociationVersion = aws.String("0") }},
		{"maxErrors", func(in *ssm.UpdateAssociationInput) { in.MaxErrors = aws.String("x") }},
		{"maxConcurrency", func(in *ssm.UpdateAssociationInput) { in.MaxConcurrency = aws.String("0") }},
		{"scheduleOffset", func(in *ssm.UpdateAssociationInput) { in.ScheduleOffset = aws.Int32(9) }},
		{"duration", func(in *ssm.UpdateAssociationInput) { in.Duration = aws.Int32(25) }},
		{"documentVersion", func(in *ssm.UpdateAssociationInput) { in.DocumentVersion = aws.String("v2") }},
		{"associationName", func(in *ssm.UpdateAssociationInput) { in.AssociationName = aws.String("a b") }},
		{"complianceSeverity", func(in *ssm.UpdateAssociationInput) { in.ComplianceSeverity = "SEVERE" }},
		{"targets", func(in *ssm.UpdateAssociationInput) { in.Targets = make([]types.Target, 6) }},
		{"targets.1.member.key", func(in *ssm.UpdateAssociationInput) {
			in.Targets = []types.Target{{Key: aws.String(""), Values: []string{node1}}}
		}},
		{"associationDispatchAssumeRole", func(in *ssm.UpdateAssociationInput) { in.AssociationDispatchAssumeRole = aws.String("role") }},
		{"alarmConfiguration.alarms", func(in *ssm.UpdateAssociationInput) {
			in.AlarmConfiguration = &types.AlarmConfiguration{Alarms: []types.Alarm{}}
		}},
	}
	for _, tt := range cases {
		t.Run(tt.path, func(t *testing.T) {
			in := &ssm.UpdateAssociationInput{AssociationId: id, Parameters: map[string][]string{"commands": {"echo"}}}
			tt.mut(in)
			_, err := c.UpdateAssociation(ctx(t), in)
			assertValidation(t, err, tt.path)
		})
	}
	// The SDK refuses a missing AssociationId itself; on the wire it is
	// the model's required member.
	resp, m := post(t, url, "AmazonSSM.UpdateAssociation", `{"Parameters":{"commands":["echo"]}}`)
	if resp.StatusCode != 400 || m["__type"] != "ValidationException" ||
		m["message"] != "1 validation error detected: Value null at 'associationId' failed to satisfy constraint: Member must not be null" {
		t.Fatalf("missing AssociationId: %d %v", resp.StatusCode, m)
	}
	// InstanceId is not a member of UpdateAssociationRequest: ignored.
	resp, m = post(t, url, "AmazonSSM.UpdateAssociation", `{"AssociationId":"`+aws.ToString(id)+`","InstanceId":"`+node2+`","Parameters":{"commands":["echo"]}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("InstanceId in an update: %d %v", resp.StatusCode, m)
	}
	if d := describeVersion(t, c, id, ""); d.InstanceId != nil || !reflect.DeepEqual(d.Targets, shellTargets(node1)) {
		t.Fatalf("InstanceId was applied: %+v", d)
	}
	if st := s.Stats(); st.AssociationsUpdated != 1 || st.ValidationErrors != len(cases)+1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUpdateSemanticFailures: the merged association (request, plus the
// kept Name and Targets) must pass the checks a create passes, with the
// errors the model lists for UpdateAssociation. A refused update changes
// nothing.
func TestUpdateSemanticFailures(t *testing.T) {
	s, c, _ := newEnv(t, inventoryOpts())
	id := createNightly(t, c).AssociationId
	legacyOut, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1)})
	if err != nil {
		t.Fatal(err)
	}
	legacyID := legacyOut.AssociationDescription.AssociationId
	params := map[string][]string{"commands": {"echo"}}
	cases := []struct {
		name, code string
		in         ssm.UpdateAssociationInput
	}{
		{"required parameter cleared", "InvalidParameters", ssm.UpdateAssociationInput{AssociationId: id, ScheduleExpression: aws.String("rate(1 day)")}},
		{"unknown parameter", "InvalidParameters", ssm.UpdateAssociationInput{AssociationId: id, Parameters: map[string][]string{"commands": {"x"}, "nope": {"x"}}}},
		{"schedule grammar", "InvalidSchedule", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, ScheduleExpression: aws.String("rate(1 minutes)")}},
		{"offset without cron", "InvalidSchedule", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, ScheduleOffset: aws.Int32(2)}},
		{"unknown document", "InvalidDocument", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, Name: aws.String("No-Such-Doc")}},
		{"other document", "InvalidUpdate", ssm.UpdateAssociationInput{AssociationId: id, Parameters: map[string][]string{"Operation": {"Scan"}}, Name: aws.String("AWS-RunPatchBaseline")}},
		{"document version", "InvalidDocumentVersion", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, DocumentVersion: aws.String("9")}},
		{"terminated node", "InvalidTarget", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, Targets: shellTargets(node3)}},
		{"unmanaged node", "InvalidTarget", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, Targets: shellTargets("i-0fffffffffffffff0")}},
		{"platform", "InvalidTarget", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, Targets: shellTargets(winID)}},
		{"bad target key", "InvalidTarget", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, Targets: []types.Target{{Key: aws.String("Nodes"), Values: []string{"a"}}}}},
		{"kept Targets with TargetMaps", "InvalidTargetMaps", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, TargetMaps: []map[string][]string{{"k": {"v"}}}}},
		{"no target at all", "InvalidTarget", ssm.UpdateAssociationInput{AssociationId: id, Parameters: params, Targets: []types.Target{}}},
		{"legacy with Targets", "InvalidTarget", ssm.UpdateAssociationInput{AssociationId: legacyID, Targets: shellTargets(node2)}},
		{"legacy with its node and another", "InvalidTarget", ssm.UpdateAssociationInput{AssociationId: legacyID, Targets: shellTargets(node1, node2)}},
		{"legacy with a document version", "InvalidParameters", ssm.UpdateAssociationInput{AssociationId: legacyID, DocumentVersion: aws.String("1")}},
		{"legacy with a schedule", "InvalidParameters", ssm.UpdateAssociationInput{AssociationId: legacyID, ScheduleExpression: aws.String("rate(1 day)")}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.UpdateAssociation(ctx(t), &tt.in)
			if ae := apiErr(t, err, tt.code); ae.ErrorMessage() == "" {
				t.Fatalf("%s without a message", tt.code)
			}
		})
	}
	for _, a := range s.Ledger() {
		if a.AssociationVersion != "1" {
			t.Fatalf("a refused update changed %+v", a)
		}
	}
	// The same document by ARN, and a legacy association updated with
	// the members it may have, are accepted.
	if _, err := c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: id, Parameters: params,
		Name: aws.String("arn:aws:ssm:us-east-1::document/AWS-RunShellScript")}); err != nil {
		t.Fatalf("same document by ARN: %v", err)
	}
	out, err := c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: legacyID,
		Parameters: map[string][]string{"version": {"3.1"}}})
	if err != nil || aws.ToString(out.AssociationDescription.InstanceId) != node1 || aws.ToString(out.AssociationDescription.AssociationVersion) != "2" {
		t.Fatalf("legacy update: %v", err)
	}
	// What DescribeAssociation returns for it can be sent back, as the API
	// reference recommends: its own InstanceIds target, $DEFAULT.
	cur := describeVersion(t, c, legacyID, "")
	out, err = c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: legacyID, AssociationVersion: cur.AssociationVersion,
		Name: cur.Name, Targets: cur.Targets, DocumentVersion: cur.DocumentVersion, Parameters: cur.Parameters})
	if err != nil || aws.ToString(out.AssociationDescription.AssociationVersion) != "3" || out.AssociationDescription.Parameters["version"][0] != "3.1" {
		t.Fatalf("legacy round trip: %v", err)
	}
	byName, err := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"),
		InstanceId: aws.String(node1), AssociationVersion: aws.String("1")})
	if err != nil || aws.ToString(byName.AssociationDescription.AssociationVersion) != "1" || byName.AssociationDescription.Parameters != nil {
		t.Fatalf("legacy version 1 by name: %v", err)
	}
}

// TestUpdateTargetsKeepsIndexes: an update that changes targets moves the
// association in the indexes: the InstanceId-form refusal, the doubles and
// AssociationsByNode follow what it covers now.
func TestUpdateTargetsKeepsIndexes(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	const doc = "AWS-UpdateSSMAgent"
	create := func(targets []types.Target) *string {
		t.Helper()
		out, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String(doc), Targets: targets})
		if err != nil {
			t.Fatal(err)
		}
		return out.AssociationDescription.AssociationId
	}
	update := func(id *string, targets []types.Target, params map[string][]string) {
		t.Helper()
		if _, err := c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: id, Targets: targets, Parameters: params}); err != nil {
			t.Fatal(err)
		}
	}
	legacyCreate := func(node string) error {
		_, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String(doc), InstanceId: aws.String(node)})
		return err
	}

	a := create(shellTargets(node1))
	update(a, shellTargets(node2), nil)
	if err := legacyCreate(node1); err != nil {
		t.Fatalf("node1 is no longer covered, yet: %v", err)
	}
	var exists *types.AssociationAlreadyExists
	if err := legacyCreate(node2); !errors.As(err, &exists) {
		t.Fatalf("node2 is covered by the updated association, want AssociationAlreadyExists, got %v", err)
	}

	// Moving b onto node2, which a covers with the same (absent) name,
	// is a double; changing b's parameters afterwards is not another.
	b := create(shellTargets(node3))
	update(b, shellTargets(node2), nil)
	update(b, nil, map[string][]string{"version": {"3.1"}})
	ds := s.Doubles()
	if len(ds) != 1 || ds[0].Node != node2 || !reflect.DeepEqual(ds[0].AssociationIDs, []string{*a, *b}) {
		t.Fatalf("doubles %+v", ds)
	}

	// By targets: t2 updated to t1's targets (values in another order).
	t1 := create([]types.Target{{Key: aws.String("tag:env"), Values: []string{"prod", "eu"}}})
	t2 := create([]types.Target{{Key: aws.String("tag:env"), Values: []string{"dev"}}})
	update(t2, []types.Target{{Key: aws.String("tag:env"), Values: []string{"eu", "prod"}}}, nil)
	ds = s.Doubles()
	if st := s.Stats(); st.DoubleAssociations != 2 || len(ds) != 2 || ds[1].Node != "" ||
		!reflect.DeepEqual(ds[1].AssociationIDs, []string{*t1, *t2}) {
		t.Fatalf("doubles %+v", ds)
	}

	// Every version counts in AssociationsByNode; the ledger shows the
	// current one.
	by := s.AssociationsByNode()
	l := s.Ledger()
	legacyID := l[1].AssociationID
	want := map[string][]string{
		doc + "/" + node1: {*a, legacyID},
		doc + "/" + node2: {*a, *b},
		doc + "/" + node3: {*b},
	}
	if !reflect.DeepEqual(by, want) {
		t.Fatalf("AssociationsByNode = %v, want %v", by, want)
	}
	if l[0].AssociationVersion != "2" || !reflect.DeepEqual(l[0].NodeIDs, []string{node2}) ||
		!reflect.DeepEqual(l[0].Targets, []Target{{Key: "InstanceIds", Values: []string{node2}}}) {
		t.Fatalf("ledger %+v", l[0])
	}

	// Deleting the updated association frees node2 for the legacy form.
	if _, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{AssociationId: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{AssociationId: b}); err != nil {
		t.Fatal(err)
	}
	if err := legacyCreate(node2); err != nil {
		t.Fatalf("node2 after deleting a and b: %v", err)
	}
}

// TestUpdateAnswerLost: each answer-lost fault applies to an update that
// executed: the client sees a connection error, a 500 or a timeout, and
// the update is applied all the same.
func TestUpdateAnswerLost(t *testing.T) {
	for _, tt := range answerLosses() {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.opts)
			ts := httptest.NewServer(s)
			closed := false
			t.Cleanup(func() {
				if !closed {
					ts.Close()
				}
			})
			c := newClient(ts.URL, aws.NopRetryer{})
			// With a rate of 1 the create loses its answer too; it
			// executed anyway.
			createCtx, cancelCreate := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancelCreate()
			_, _ = c.CreateAssociation(createCtx, &ssm.CreateAssociationInput{Name: aws.String("AWS-RunShellScript"),
				Targets: shellTargets(node1), Parameters: map[string][]string{"commands": {"echo one"}}})
			if len(s.Ledger()) != 1 {
				t.Fatal("create did not execute")
			}
			id := aws.String(s.Ledger()[0].AssociationID)
			if tt.script != nil {
				tt.script(s)
			}
			callCtx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := c.UpdateAssociation(callCtx, &ssm.UpdateAssociationInput{AssociationId: id, AssociationVersion: aws.String("1"),
				Parameters: map[string][]string{"commands": {"echo two"}}})
			tt.check(t, err)

			d := describeVersion(t, c, id, "")
			if aws.ToString(d.AssociationVersion) != "2" || d.Parameters["commands"][0] != "echo two" {
				t.Fatalf("the update did not execute: %+v", d)
			}
			want := 1
			if tt.script == nil {
				want = 2 // the create and the update
			}
			if st := s.Stats(); tt.stat(st) != want || st.AssociationsUpdated != 1 {
				t.Fatalf("stats %+v", st)
			}
			start := time.Now()
			ts.Close()
			closed = true
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("server took %v to close: the held answer did not end with the client", el)
			}
		})
	}
}

// TestUpdateResendAfterLostAnswer: the SDK's retryer resends an update
// whose answer was a 500; it had been applied, so the resend with the same
// AssociationVersion is refused as stale, although the caller's change is
// in place. With $LATEST the resend makes one more version.
func TestUpdateResendAfterLostAnswer(t *testing.T) {
	s, _, url := newEnv(t, DefaultOptions())
	c := newClient(url, fastRetryer(3))
	id := createNightly(t, c).AssociationId
	s.ErrorAfterCreate(1)
	_, err := c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: id, AssociationVersion: aws.String("1"),
		Parameters: map[string][]string{"commands": {"echo two"}}})
	var iv *types.InvalidAssociationVersion
	if !errors.As(err, &iv) {
		t.Fatalf("resend of an applied update: want InvalidAssociationVersion, got %v", err)
	}
	if d := describeVersion(t, c, id, ""); aws.ToString(d.AssociationVersion) != "2" || d.Parameters["commands"][0] != "echo two" {
		t.Fatalf("after the resend: %+v", d)
	}

	s.ErrorAfterCreate(1)
	out, err := c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: id, AssociationVersion: aws.String("$LATEST"),
		Parameters: map[string][]string{"commands": {"echo three"}}})
	if err != nil || aws.ToString(out.AssociationDescription.AssociationVersion) != "4" {
		t.Fatalf("$LATEST resend: %v", err)
	}
	if st := s.Stats(); st.ErrorsAfterCreate != 2 || st.AssociationsUpdated != 3 || st.Operations["UpdateAssociation"] != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUpdateAfterFaultOnlyWhenExecuted: an update refused by the model's
// constraints consumes no scripted fault; one refused afterwards (here a
// stale version) has executed and does, like a CreateAssociation refused
// per entry.
func TestUpdateAfterFaultOnlyWhenExecuted(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	id := createNightly(t, c).AssociationId
	s.DropAfterCreate(1)
	s.ErrorAfterCreate(1)
	_, err := c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: id, MaxErrors: aws.String("x")})
	apiErr(t, err, "ValidationException")
	_, err = c.UpdateAssociation(ctx(t), &ssm.UpdateAssociationInput{AssociationId: id, AssociationVersion: aws.String("7"),
		Parameters: map[string][]string{"commands": {"echo"}}})
	assertTransportError(t, err)
	_, err = batch(t, c, shellEntry(node2))
	apiErr(t, err, "InternalServerError")
	if st := s.Stats(); st.DroppedConnections != 1 || st.ErrorsAfterCreate != 1 || st.AssociationsUpdated != 0 || st.AssociationsCreated != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUpdateVersionLimit: the 1,000th version is the last.
func TestUpdateVersionLimit(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	id := createNightly(t, c).AssociationId
	s.mu.Lock()
	r := s.store.byID[*id]
	r.history = make([]revision, MaxAssociationVersions-2)
	for i := range r.history {
		r.history[i] = revision{entry: r.entry, nodes: r.nodes, date: r.created}
	}
	s.mu.Unlock()
	in := &ssm.UpdateAssociationInput{AssociationId: id, Parameters: map[string][]string{"commands": {"echo"}}}
	out, err := c.UpdateAssociation(ctx(t), in)
	if err != nil || aws.ToString(out.AssociationDescription.AssociationVersion) != "1000" {
		t.Fatalf("version 1000: %v", err)
	}
	_, err = c.UpdateAssociation(ctx(t), in)
	var le *types.AssociationVersionLimitExceeded
	if !errors.As(err, &le) || le.ErrorMessage() == "" {
		t.Fatalf("want AssociationVersionLimitExceeded, got %v", err)
	}
}
