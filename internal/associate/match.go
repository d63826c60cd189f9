package associate

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
)

// matcher pairs the results of a call with the entries sent, by their full
// content (plan.Identity): SSM returns Successful and Failed without
// positions or per-entry IDs. The planner never puts two entries of one
// identity in a call, so a result names at most one entry.
type matcher struct {
	byIdentity map[string]int
	answered   []bool
}

func newMatcher(in *ssm.CreateAssociationBatchInput) *matcher {
	m := &matcher{byIdentity: make(map[string]int, len(in.Entries)), answered: make([]bool, len(in.Entries))}
	for i, e := range in.Entries {
		m.byIdentity[plan.EntryIdentity(e)] = i
	}
	return m
}

func (m *matcher) successful(d ssmtypes.AssociationDescription) (int, bool) {
	return m.take(plan.Identity(aws.ToString(d.Name), d.InstanceId, d.Targets, d.TargetMaps, d.TargetLocations, d.AssociationName))
}

func (m *matcher) failed(f ssmtypes.FailedCreateAssociation) (int, bool) {
	if f.Entry == nil {
		return 0, false
	}
	e := f.Entry
	return m.take(plan.Identity(aws.ToString(e.Name), e.InstanceId, e.Targets, e.TargetMaps, e.TargetLocations, e.AssociationName))
}

func (m *matcher) take(id string) (int, bool) {
	i, ok := m.byIdentity[id]
	if !ok || m.answered[i] {
		return 0, false
	}
	m.answered[i] = true
	return i, true
}

// unanswered lists the entries SSM said nothing about.
func (m *matcher) unanswered() []int {
	var out []int
	for i, a := range m.answered {
		if !a {
			out = append(out, i)
		}
	}
	return out
}
