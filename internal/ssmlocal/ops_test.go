package ssmlocal

import (
	"errors"
	"fmt"
	"testing"

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
