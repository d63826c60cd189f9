package associate

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsarn "github.com/aws/aws-sdk-go-v2/aws/arn"

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
	// Region is the function's Region, where its SSM calls go. A document
	// named by ARN must be AWS-owned (no account) and in this Region and its
	// partition: IAM (template.yaml, EngineSsmPolicy) grants the AWS-owned
	// documents of this Region and the documents of this account, which
	// the function does not know, so this account's documents are named by
	// name. Any other ARN would be refused by IAM with AccessDenied, which
	// fails the whole call, valid neighbours included; it fails its entry
	// alone instead. Empty: no document ARN is allowed.
	Region string
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
	if strings.HasPrefix(doc, "arn:") {
		name, v := a.documentARN(doc)
		if v != "" {
			return fmt.Sprintf("%s.Name: %s", path, v)
		}
		doc = name
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

// documentName is what CreateDocument allows as a name.
var documentName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,128}$`)

// documentARN returns the document name of arn, or why arn is not allowed:
// it must be arn:PARTITION:ssm:REGION::document/NAME with this Region and its
// partition, and no account (see Allow.Region).
func (a Allow) documentARN(arn string) (name, violation string) {
	if a.Region == "" {
		return "", fmt.Sprintf("document %q cannot be checked, as the function's Region is not known: no document ARN is allowed; name the document by its name", arn)
	}
	partition := partitionOf(a.Region)
	rule := fmt.Sprintf("a document ARN must name an AWS-owned document of this function's Region, arn:%s:ssm:%s::document/NAME: "+
		"IAM grants it no other account's or Region's documents, and this account's are named by their name", partition, a.Region)
	parsed, err := awsarn.Parse(arn)
	name, isDoc := strings.CutPrefix(parsed.Resource, "document/")
	if err != nil || parsed.Service != "ssm" || !isDoc || !documentName.MatchString(name) {
		return "", fmt.Sprintf("%q is not an SSM document ARN (arn:PARTITION:ssm:REGION:ACCOUNT:document/NAME); %s", arn, rule)
	}
	var why string
	switch {
	case parsed.AccountID != "":
		why = fmt.Sprintf("names account %s", parsed.AccountID)
	case parsed.Region != a.Region:
		why = fmt.Sprintf("names Region %s", parsed.Region)
	case parsed.Partition != partition:
		why = fmt.Sprintf("names partition %s", parsed.Partition)
	default:
		return name, ""
	}
	return "", fmt.Sprintf("document %q %s; %s", arn, why, rule)
}

// partitionOf is the partition of an AWS Region, after the regionRegex of
// each partition in the SDK's partitions.json
// (aws-sdk-go-v2/internal/endpoints/awsrulesfn); "aws" for the others.
// By hand: the SDK keeps its partition table internal.
func partitionOf(region string) string {
	for _, p := range [...]struct{ prefix, partition string }{
		{"cn-", "aws-cn"},
		{"us-gov-", "aws-us-gov"},
		{"us-iso-", "aws-iso"},
		{"us-isob-", "aws-iso-b"},
		{"eu-isoe-", "aws-iso-e"},
		{"us-isof-", "aws-iso-f"},
		{"eusc-", "aws-eusc"},
	} {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
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
