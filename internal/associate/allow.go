package associate

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Allow is what entries may ask for (ALLOWED_DOCUMENTS,
// ALLOWED_TARGET_KEYS): document names and target keys, each an exact name
// or a prefix ending in "*". Empty lists allow nothing.
type Allow struct {
	Documents  []string
	TargetKeys []string
}

// Target keys that are not Targets keys: an entry that uses TargetMaps or
// TargetLocations needs them in ALLOWED_TARGET_KEYS.
const (
	KeyTargetMaps      = "TargetMaps"
	KeyTargetLocations = "TargetLocations"
)

// violation says why e is not allowed, naming the member and the setting,
// or "" when it is.
func (a Allow) violation(path string, e request.Entry) string {
	doc := e.Name
	if i := strings.LastIndex(doc, "document/"); strings.HasPrefix(doc, "arn:") && i >= 0 {
		doc = doc[i+len("document/"):] // an ARN names the document after "document/"
	}
	if !matchAny(a.Documents, doc) {
		return fmt.Sprintf("%s.Name: document %q is not allowed by ALLOWED_DOCUMENTS (%s)", path, doc, strings.Join(a.Documents, ","))
	}
	key := func(member, k string) string {
		if matchAny(a.TargetKeys, k) {
			return ""
		}
		return fmt.Sprintf("%s.%s: target key %q is not allowed by ALLOWED_TARGET_KEYS (%s)", path, member, k, strings.Join(a.TargetKeys, ","))
	}
	if aws.ToString(e.InstanceId) != "" {
		if v := key("InstanceId", request.InstanceIDsKey); v != "" {
			return v
		}
	}
	for i, t := range e.Targets {
		if v := key(fmt.Sprintf("Targets[%d].Key", i), t.Key); v != "" {
			return v
		}
	}
	if len(e.TargetMaps) > 0 {
		if v := key("TargetMaps", KeyTargetMaps); v != "" {
			return v
		}
	}
	if len(e.TargetLocations) > 0 {
		if v := key("TargetLocations", KeyTargetLocations); v != "" {
			return v
		}
	}
	// A TargetLocation's own Targets reach nodes in its accounts and
	// Regions: the same keys apply to them.
	for i, l := range e.TargetLocations {
		for j, t := range l.Targets {
			if v := key(fmt.Sprintf("TargetLocations[%d].Targets[%d].Key", i, j), t.Key); v != "" {
				return v
			}
		}
	}
	return ""
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(s, prefix) || p == s {
			return true
		}
	}
	return false
}

// allowed keeps the items the allow lists permit; the others are Failed
// (Client) with the rule they break, before anything is claimed or sent.
func (e *Engine) allowed(items []plan.Item, res *report.Result) []plan.Item {
	kept := items[:0:0]
	for _, it := range items {
		if v := e.set.Allow.violation(it.Path, it.Entry); v != "" {
			res.Failed = append(res.Failed, report.Failure{Entry: it.Entry, Fault: report.FaultClient, Message: v})
			continue
		}
		kept = append(kept, it)
	}
	return kept
}
