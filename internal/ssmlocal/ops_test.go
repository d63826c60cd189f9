package ssmlocal

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestDescribeAndDelete(t *testing.T) {
	_, c, _ := newEnv(t, DefaultOptions())
	created, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1)})
	if err != nil {
		t.Fatal(err)
	}
	id := created.AssociationDescription.AssociationId

	byID, err := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{AssociationId: id})
	if err != nil || aws.ToString(byID.AssociationDescription.InstanceId) != node1 {
		t.Fatalf("describe by id: %v %+v", err, byID)
	}
	byName, err := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1)})
	if err != nil || aws.ToString(byName.AssociationDescription.AssociationId) != aws.ToString(id) {
		t.Fatalf("describe by name: %v", err)
	}
	_, err = c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{AssociationId: id, AssociationVersion: aws.String("7")})
	var iv *types.InvalidAssociationVersion
	if !errors.As(err, &iv) {
		t.Fatalf("want InvalidAssociationVersion, got %v", err)
	}

	if _, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1)}); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error {
			_, err := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{AssociationId: id})
			return err
		},
		func() error {
			_, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{AssociationId: id})
			return err
		},
	} {
		var dne *types.AssociationDoesNotExist
		if err := call(); !errors.As(err, &dne) || dne.ErrorMessage() == "" {
			t.Fatalf("want AssociationDoesNotExist with message, got %v", err)
		}
	}
	// Deleted, the pair can be associated again.
	if _, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1)}); err != nil {
		t.Fatal(err)
	}
}

// TestListAssociations: filters on InstanceId and Name, and paging with
// MaxResults/NextToken through the SDK paginator.
func TestListAssociations(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	var entries []E
	for i := range 7 {
		entries = append(entries, shellEntry(fmt.Sprintf("i-%017d", i)))
	}
	entries = append(entries, legacy("AWS-UpdateSSMAgent", "i-00000000000000099"))
	if out, err := batch(t, c, entries...); err != nil || len(out.Successful) != 8 {
		t.Fatalf("setup: %v", err)
	}

	list := func(max int32, filters ...types.AssociationFilter) []types.Association {
		var all []types.Association
		p := ssm.NewListAssociationsPaginator(c, &ssm.ListAssociationsInput{MaxResults: aws.Int32(max), AssociationFilterList: filters})
		pages := 0
		for p.HasMorePages() {
			page, err := p.NextPage(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Associations) > int(max) {
				t.Fatalf("page of %d exceeds MaxResults %d", len(page.Associations), max)
			}
			pages++
			all = append(all, page.Associations...)
		}
		return all
	}
	if got := list(3); len(got) != 8 {
		t.Fatalf("unfiltered: %d associations", len(got))
	}
	name := func(v string) types.AssociationFilter {
		return types.AssociationFilter{Key: types.AssociationFilterKeyName, Value: aws.String(v)}
	}
	inst := func(v string) types.AssociationFilter {
		return types.AssociationFilter{Key: types.AssociationFilterKeyInstanceId, Value: aws.String(v)}
	}
	tests := []struct {
		name    string
		filters []types.AssociationFilter
		want    int
	}{
		{"by name", []types.AssociationFilter{name("AWS-RunShellScript")}, 7},
		{"by other name", []types.AssociationFilter{name("AWS-UpdateSSMAgent")}, 1},
		// Only associations created with InstanceId match the InstanceId
		// filter (undocumented for Targets; the harder case).
		{"by target node", []types.AssociationFilter{inst(fmt.Sprintf("i-%017d", 3))}, 0},
		{"by legacy node", []types.AssociationFilter{inst("i-00000000000000099")}, 1},
		{"name and node", []types.AssociationFilter{name("AWS-UpdateSSMAgent"), inst(fmt.Sprintf("i-%017d", 3))}, 0},
		{"no match", []types.AssociationFilter{name("AWS-RunPatchBaseline")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(2, tt.filters...); len(got) != tt.want {
				t.Fatalf("%d associations, want %d", len(got), tt.want)
			}
		})
	}

	// Paging survives a deletion between pages without skipping.
	first, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{MaxResults: aws.Int32(4)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v", err)
	}
	if _, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{AssociationId: first.Associations[0].AssociationId}); err != nil {
		t.Fatal(err)
	}
	second, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{MaxResults: aws.Int32(50), NextToken: first.NextToken})
	if err != nil || len(second.Associations) != 4 || second.NextToken != nil {
		t.Fatalf("second page: %v, %d", err, len(second.Associations))
	}
	if got := len(s.Ledger()); got != 8 {
		t.Fatalf("ledger %d, want 8 (deleted ones stay)", got)
	}
}

// TestDescribeTargetsForm: DescribeAssociation by AssociationId returns the
// full description (Parameters, creation Date, every member given); by
// Name + InstanceId it finds only InstanceId-form associations, so a
// Targets-form one on that node is AssociationDoesNotExist there, for
// DeleteAssociation too.
func TestDescribeTargetsForm(t *testing.T) {
	_, c, _ := newEnv(t, DefaultOptions())
	e := shellEntry(node1)
	e.AssociationName = aws.String("nightly")
	e.ScheduleExpression = aws.String("cron(0 2 ? * SUN *)")
	e.DocumentVersion = aws.String("$LATEST")
	e.MaxConcurrency, e.MaxErrors = aws.String("10%"), aws.String("1")
	e.ComplianceSeverity = types.AssociationComplianceSeverityHigh
	e.OutputLocation = &types.InstanceAssociationOutputLocation{S3Location: &types.S3OutputLocation{OutputS3BucketName: aws.String("bucket")}}
	before := time.Now().Add(-time.Second)
	out, err := batch(t, c, e)
	if err != nil || len(out.Successful) != 1 {
		t.Fatalf("create: %v", err)
	}
	id := out.Successful[0].AssociationId
	got, err := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{AssociationId: id})
	if err != nil {
		t.Fatal(err)
	}
	d := got.AssociationDescription
	if d.Date == nil || d.Date.Before(before) || time.Since(*d.Date) > time.Minute ||
		!reflect.DeepEqual(d.Parameters, e.Parameters) || aws.ToString(d.AssociationName) != "nightly" ||
		aws.ToString(d.ScheduleExpression) != "cron(0 2 ? * SUN *)" || aws.ToString(d.DocumentVersion) != "$LATEST" ||
		aws.ToString(d.MaxConcurrency) != "10%" || aws.ToString(d.MaxErrors) != "1" || d.ComplianceSeverity != types.AssociationComplianceSeverityHigh ||
		aws.ToString(d.OutputLocation.S3Location.OutputS3BucketName) != "bucket" || d.InstanceId != nil ||
		len(d.Targets) != 1 || d.Targets[0].Values[0] != node1 || d.Status == nil || string(d.Status.Name) != "Associated" {
		t.Fatalf("description %+v", d)
	}
	var dne *types.AssociationDoesNotExist
	_, err = c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{Name: e.Name, InstanceId: aws.String(node1)})
	if !errors.As(err, &dne) {
		t.Fatalf("describe by Name + InstanceId of a Targets-form association: want AssociationDoesNotExist, got %v", err)
	}
	_, err = c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{Name: e.Name, InstanceId: aws.String(node1)})
	if !errors.As(err, &dne) {
		t.Fatalf("delete by Name + InstanceId of a Targets-form association: want AssociationDoesNotExist, got %v", err)
	}

	// With an InstanceId-form association and a later Targets-form one of
	// the same document on a node, Name + InstanceId finds the former.
	c2, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("AWS-RunShellScript"), InstanceId: aws.String(node2),
		Parameters: map[string][]string{"commands": {"echo hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := batch(t, c, shellEntry(node2)); err != nil || len(out.Successful) != 1 {
		t.Fatalf("Targets form after InstanceId form: %v", err)
	}
	byName, err := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{Name: aws.String("AWS-RunShellScript"), InstanceId: aws.String(node2)})
	if err != nil || aws.ToString(byName.AssociationDescription.AssociationId) != aws.ToString(c2.AssociationDescription.AssociationId) {
		t.Fatalf("describe by Name + InstanceId: %v", err)
	}
}

// TestListInstanceIdFilter: the InstanceId filter sees only associations
// created with the InstanceId member; Name, AssociationName and
// AssociationId see every form; paging with MaxResults 1 works under a
// filter.
func TestListInstanceIdFilter(t *testing.T) {
	_, c, _ := newEnv(t, DefaultOptions())
	targets := shellEntry(node1)
	targets.Name, targets.Parameters = aws.String("AWS-UpdateSSMAgent"), nil
	targets.AssociationName = aws.String("agent")
	out, err := batch(t, c, targets, legacy("AWS-UpdateSSMAgent", node2))
	if err != nil || len(out.Successful) != 2 {
		t.Fatalf("setup: %v", err)
	}
	// A Targets association of another document on node1.
	if out, err := batch(t, c, shellEntry(node1)); err != nil || len(out.Successful) != 1 {
		t.Fatalf("second batch: %v", err)
	}
	l := func(max int32, key types.AssociationFilterKey, v string) []types.Association {
		var all []types.Association
		p := ssm.NewListAssociationsPaginator(c, &ssm.ListAssociationsInput{MaxResults: aws.Int32(max),
			AssociationFilterList: []types.AssociationFilter{{Key: key, Value: aws.String(v)}}})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Associations) > int(max) {
				t.Fatalf("page of %d", len(page.Associations))
			}
			all = append(all, page.Associations...)
		}
		return all
	}
	if got := l(1, types.AssociationFilterKeyInstanceId, node1); len(got) != 0 {
		t.Fatalf("InstanceId filter matched %d Targets-form associations", len(got))
	}
	if got := l(1, types.AssociationFilterKeyInstanceId, node2); len(got) != 1 || aws.ToString(got[0].InstanceId) != node2 {
		t.Fatalf("InstanceId filter: %+v", got)
	}
	if got := l(1, types.AssociationFilterKeyName, "AWS-UpdateSSMAgent"); len(got) != 2 {
		t.Fatalf("Name filter: %d", len(got))
	}
	if got := l(1, types.AssociationFilterKeyName, "AWS-RunShellScript"); len(got) != 1 {
		t.Fatalf("Name filter: %d", len(got))
	}
	if got := l(50, types.AssociationFilterKeyAssociationName, "agent"); len(got) != 1 || aws.ToString(got[0].AssociationId) != aws.ToString(out.Successful[0].AssociationId) {
		t.Fatalf("AssociationName filter: %+v", got)
	}
	if got := l(50, types.AssociationFilterKeyAssociationId, aws.ToString(out.Successful[1].AssociationId)); len(got) != 1 {
		t.Fatalf("AssociationId filter: %+v", got)
	}
}
