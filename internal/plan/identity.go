package plan

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Identity is what tells the entries of one CreateAssociationBatch call
// apart in its answer: SSM returns Successful and Failed without positions
// or per-entry IDs, so an entry is recognised by its content. It is the
// document, the targets compared as sets (an InstanceId is the InstanceIds
// target SSM answers it with), the TargetMaps, the TargetLocations and the
// AssociationName. Two entries of equal identity are never sent in one call.
func Identity(name string, instanceID *string, targets []ssmtypes.Target, maps []map[string][]string,
	locations []ssmtypes.TargetLocation, associationName *string) string {
	type canon struct {
		Name, AssociationName string
		Targets               []string
		TargetMaps            []string
		TargetLocations       []string
	}
	c := canon{Name: name, AssociationName: aws.ToString(associationName)}
	if id := aws.ToString(instanceID); id != "" {
		targets = append([]ssmtypes.Target{{Key: aws.String("InstanceIds"), Values: []string{id}}}, targets...)
	}
	for _, t := range targets {
		vs := slices.Clone(t.Values)
		slices.Sort(vs)
		c.Targets = append(c.Targets, aws.ToString(t.Key)+"="+strings.Join(vs, "\x01"))
	}
	slices.Sort(c.Targets)
	c.Targets = slices.Compact(c.Targets) // an InstanceId answered with its target too
	for _, m := range maps {
		b, _ := json.Marshal(m) // map keys are written sorted
		c.TargetMaps = append(c.TargetMaps, string(b))
	}
	slices.Sort(c.TargetMaps)
	for _, l := range locations {
		b, _ := json.Marshal(l) // strings, string lists and pointers to them: cannot fail
		c.TargetLocations = append(c.TargetLocations, string(b))
	}
	slices.Sort(c.TargetLocations)
	b, _ := json.Marshal(c)
	return string(b)
}

// EntryIdentity is Identity of an entry as it is sent.
func EntryIdentity(e ssmtypes.CreateAssociationBatchRequestEntry) string {
	return Identity(aws.ToString(e.Name), e.InstanceId, e.Targets, e.TargetMaps, e.TargetLocations, e.AssociationName)
}
