package reconcile_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/reconcile"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// listed is a fixed SSM for what the emulator cannot show: a listing whose
// order is not creation order. It answers one page of summaries and
// describes from a map.
type listed struct {
	summaries []ssmtypes.Association
	described map[string]ssmtypes.AssociationDescription
}

func (l listed) ListAssociations(context.Context, *ssm.ListAssociationsInput, ...func(*ssm.Options)) (*ssm.ListAssociationsOutput, error) {
	return &ssm.ListAssociationsOutput{Associations: l.summaries}, nil
}

func (l listed) DescribeAssociation(_ context.Context, in *ssm.DescribeAssociationInput, _ ...func(*ssm.Options)) (*ssm.DescribeAssociationOutput, error) {
	d, ok := l.described[aws.ToString(in.AssociationId)]
	if !ok {
		return nil, &ssmtypes.AssociationDoesNotExist{Message: aws.String("gone")}
	}
	return &ssm.DescribeAssociationOutput{AssociationDescription: &d}, nil
}

// The earliest of doubles is chosen by Date, not by where SSM lists it.
func TestFindEarliestByDate(t *testing.T) {
	entry := shell(nodeID(1))
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ssmAt := func(id string, at time.Time) ssmtypes.AssociationDescription {
		s := entry.SDK()
		return ssmtypes.AssociationDescription{
			AssociationId: aws.String(id), Date: aws.Time(at), Name: s.Name, Targets: s.Targets,
			Parameters: s.Parameters, ScheduleExpression: s.ScheduleExpression, MaxErrors: s.MaxErrors,
			MaxConcurrency: s.MaxConcurrency, DocumentVersion: aws.String("$DEFAULT"),
		}
	}
	fake := listed{described: map[string]ssmtypes.AssociationDescription{
		"later":   ssmAt("later", created.Add(time.Minute)),
		"earlier": ssmAt("earlier", created),
	}}
	// Summaries carry only identity here: what they lack rules nothing out.
	for _, id := range []string{"later", "deleted", "earlier"} {
		fake.summaries = append(fake.summaries, ssmtypes.Association{AssociationId: aws.String(id), Name: aws.String(shellDoc), Targets: entry.SDK().Targets})
	}
	r := reconcile.New(fake, nil)
	got, err := r.Find(context.Background(), []request.Entry{entry, entry, entry})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"earlier", "later", ""}; !slices.Equal(ids(got), want) {
		t.Errorf("Find = %v, want %v", ids(got), want)
	}
	if r.Reads() != 4 {
		t.Errorf("Reads = %d, want 1 list + 3 describes", r.Reads())
	}
}
