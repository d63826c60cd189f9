package associate

import (
	"encoding/json"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// matcher pairs the results of a call with the entries sent. SSM returns
// Successful and Failed without positions or per-entry IDs, so an entry is
// recognised by its document and first node, or by its document and
// targets; equal signatures are paired in the order sent.
type matcher struct {
	byKey    map[string][]int
	answered []bool
}

func newMatcher(b plan.Batch) *matcher {
	m := &matcher{byKey: make(map[string][]int, len(b)), answered: make([]bool, len(b))}
	for i, it := range b {
		k := signature(it.Entry.Name, it.Entry.InstanceId, sdkTargets(it.Entry.Targets), it.Entry.TargetMaps, len(it.Entry.TargetLocations))
		m.byKey[k] = append(m.byKey[k], i)
	}
	return m
}

func (m *matcher) successful(d ssmtypes.AssociationDescription) (int, bool) {
	return m.take(signature(deref(d.Name), d.InstanceId, d.Targets, d.TargetMaps, len(d.TargetLocations)))
}

func (m *matcher) failed(f ssmtypes.FailedCreateAssociation) (int, bool) {
	if f.Entry == nil {
		return 0, false
	}
	e := f.Entry
	return m.take(signature(deref(e.Name), e.InstanceId, e.Targets, e.TargetMaps, len(e.TargetLocations)))
}

func (m *matcher) take(k string) (int, bool) {
	for len(m.byKey[k]) > 0 {
		i := m.byKey[k][0]
		m.byKey[k] = m.byKey[k][1:]
		if !m.answered[i] {
			m.answered[i] = true
			return i, true
		}
	}
	return 0, false
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

// signature identifies an entry within one call. A node-targeted entry is
// its document and first node, whichever form named the node: SSM answers
// an InstanceId entry with InstanceIds targets too.
func signature(name string, instanceID *string, targets []ssmtypes.Target, targetMaps []map[string][]string, locations int) string {
	if instanceID != nil && *instanceID != "" {
		return "node\x00" + name + "\x00" + *instanceID
	}
	if len(targets) > 0 && deref(targets[0].Key) == request.InstanceIDsKey && len(targets[0].Values) > 0 {
		return "node\x00" + name + "\x00" + targets[0].Values[0]
	}
	type sig struct {
		Name       string
		Targets    []request.Target
		TargetMaps []map[string][]string
		Locations  int
	}
	s := sig{Name: name, TargetMaps: targetMaps, Locations: locations}
	for _, t := range targets {
		s.Targets = append(s.Targets, request.Target{Key: deref(t.Key), Values: t.Values})
	}
	b, _ := json.Marshal(s) // strings and string maps only: cannot fail
	return "targets\x00" + string(b)
}

func sdkTargets(ts []request.Target) []ssmtypes.Target {
	return request.Entry{Name: "x", Targets: ts}.SDK().Targets
}
