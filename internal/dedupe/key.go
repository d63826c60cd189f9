// Package dedupe names each (document, name, node) or (document, name,
// targets) with a stable key (key.go), fingerprints an association's
// settings (settings.go), and claims keys in DynamoDB so that two
// invocations never associate the same key (store.go). Duplicates inside
// one request are dropped before any claim, by internal/plan.
package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// NodeKey names the association of a document with one managed node, under
// an AssociationName or none. Several associations of one document may
// target one node (AWS-RunPatchBaseline's Scan and Install), told apart by
// their names; an entry without a name keeps the key it always had, so
// records written before names counted stay valid. Neither document names,
// association names nor node IDs can hold '#'.
func NodeKey(document, associationName, node string) string {
	if associationName == "" {
		return "node#" + document + "#" + node
	}
	return "node#" + document + "#" + associationName + "#" + node
}

// TargetsKey names an association that targets tags, resource groups or
// TargetMaps (or only TargetLocations): a hash of the document, its
// targets and its AssociationName, canonicalised so that the order of
// targets and of their values does not make two equal requests look
// different. Without a name the hash is the one it always was.
//
// TargetLocations are a setting (SettingsOf), not part of the key: SSM
// tells associations apart by document, targets and name, and changes
// TargetLocations with UpdateAssociation, so a change of them is the same
// association with other settings (reported, or updated), never a second
// association. Keys of entries without TargetLocations are what they were
// when TargetLocations counted; LegacyTargetsKey is the key an entry with
// TargetLocations had then.
func TargetsKey(e request.Entry) string {
	return targetsKey(e, false)
}

// LegacyTargetsKey is the key an entry with TargetLocations had while
// TargetLocations were hashed into the key, or "" for an entry without
// them (its key did not change). Records written under it stay in the
// table until DEDUPE_TTL; the engine looks such a record up when the
// entry's key is free, and carries it over to the key.
func LegacyTargetsKey(e request.Entry) string {
	if len(e.TargetLocations) == 0 {
		return ""
	}
	return targetsKey(e, true)
}

func targetsKey(e request.Entry, withLocations bool) string {
	type canon struct {
		Targets         []request.Target         `json:",omitempty"`
		TargetMaps      []map[string][]string    `json:",omitempty"`
		TargetLocations []request.TargetLocation `json:",omitempty"`
		AssociationName string                   `json:",omitempty"`
	}
	c := canon{
		Targets:         sortedTargets(e.Targets),
		AssociationName: aws.ToString(e.AssociationName),
	}
	if withLocations {
		// As written, in the request's order: what the key hashed then.
		c.TargetLocations = e.TargetLocations
	}
	for _, m := range e.TargetMaps {
		sorted := make(map[string][]string, len(m))
		for k, v := range m {
			sorted[k] = sortedCopy(v)
		}
		c.TargetMaps = append(c.TargetMaps, sorted)
	}
	// json.Marshal of these types cannot fail (strings, slices, string maps),
	// and it writes map keys in sorted order, which is what makes it canonical.
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(append([]byte(e.Name+"\x00"), b...))
	return "targets#" + e.Name + "#" + hex.EncodeToString(sum[:16])
}

func sortedTargets(ts []request.Target) []request.Target {
	out := make([]request.Target, len(ts))
	for i, t := range ts {
		out[i] = request.Target{Key: t.Key, Values: sortedCopy(t.Values)}
	}
	slices.SortFunc(out, func(a, b request.Target) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return slices.Compare(a.Values, b.Values)
	})
	return out
}

func sortedCopy(v []string) []string {
	out := slices.Clone(v)
	slices.Sort(out)
	return out
}
