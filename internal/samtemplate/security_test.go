package samtemplate

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
)

// engineSSMPolicy is the managed policy both engine functions share: the
// SSM statements and iam:PassRole, once.
const engineSSMPolicy = "EngineSsmPolicy"

// documentARNs resolves the document resources of the statement that lets
// the engine create associations, with AllowedDocuments = value: the ARNs
// of the account's documents, then of AWS-owned ones, in slot order.
func documentARNs(t *testing.T, tpl node, value string) (account, owned []string) {
	t.Helper()
	pol := resource(t, tpl, engineSSMPolicy, "AWS::IAM::ManagedPolicy")
	var st node
	for _, s := range pol.get("Properties", "PolicyDocument", "Statement").items() {
		if slices.Contains(s.get("Action").strs(), "ssm:CreateAssociationBatch") {
			st = s
		}
	}
	if !st.ok() {
		t.Fatalf("%s has no statement granting ssm:CreateAssociationBatch", engineSSMPolicy)
	}
	for _, r := range st.get("Resource").items() {
		arn := ssmResource(t, tpl, "ssm:CreateAssociationBatch", r, map[string]string{"AllowedDocuments": value})
		if doc, ok := strings.CutPrefix(arn, accountDocumentARN); ok {
			account = append(account, doc)
		} else if doc, ok := strings.CutPrefix(arn, awsDocumentARN); ok {
			owned = append(owned, doc)
		}
	}
	return account, owned
}

// TestEngineDocumentsFromAllowedDocuments: the IAM resources of the SSM
// statements come from the AllowedDocuments parameter, the list the code
// checks entries against: slot i names the i-th document, of the account
// and AWS-owned; unused slots name no document ("document/"); "*" alone
// grants every document (the deployer's explicit choice); and as many slots
// as config.MaxAllowedDocuments, whose bound the parameter's AllowedPattern
// keeps too.
func TestEngineDocumentsFromAllowedDocuments(t *testing.T) {
	tpl := loadTemplate(t)
	pad := func(docs []string) []string {
		out := slices.Clone(docs)
		for len(out) < config.MaxAllowedDocuments {
			out = append(out, "") // "document/": no document
		}
		return out
	}
	defaults := strings.Split(config.DefaultAllowedDocuments, ",")
	if got := tpl.get("Parameters", "AllowedDocuments", "Default").str(); got != config.DefaultAllowedDocuments {
		t.Errorf("AllowedDocuments default %q, want config's %q", got, config.DefaultAllowedDocuments)
	}
	ten := []string{"AWS-RunPatchBaseline", "MyOrg-*", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "Last.Doc_9"}
	for _, docs := range [][]string{defaults, {"*"}, {"AWS-RunShellScript"}, ten} {
		account, owned := documentARNs(t, tpl, strings.Join(docs, ","))
		want := pad(docs)
		if !slices.Equal(account, want) {
			t.Errorf("AllowedDocuments=%s: the account's document ARNs end in %q, want %q", strings.Join(docs, ","), account, want)
		}
		if !slices.Equal(owned, want) {
			t.Errorf("AllowedDocuments=%s: the AWS-owned document ARNs end in %q, want %q", strings.Join(docs, ","), owned, want)
		}
	}
	for _, id := range engineFunctions {
		found := false
		for _, p := range resource(t, tpl, id, "AWS::Serverless::Function").get("Properties", "Policies").items() {
			found = found || p.ref() == engineSSMPolicy
		}
		if !found {
			t.Errorf("%s: Policies lack !Ref %s", id, engineSSMPolicy)
		}
	}

	// The parameter admits 1 to MaxAllowedDocuments names or prefixes,
	// as config does; anything else is refused before IAM sees it.
	pattern := regexp.MustCompile(tpl.get("Parameters", "AllowedDocuments", "AllowedPattern").str())
	load := func(v string) error {
		_, err := config.FromLookup(func(name string) (string, bool) {
			v, ok := map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_DOCUMENTS": v}[name]
			return v, ok
		})
		return err
	}
	for _, v := range []string{config.DefaultAllowedDocuments, "*", "MyOrg-*", strings.Join(ten, ",")} {
		if !pattern.MatchString(v) || load(v) != nil {
			t.Errorf("AllowedDocuments %q: pattern %v, config %v; want both to accept", v, pattern.MatchString(v), load(v))
		}
	}
	for _, v := range []string{"", "a,,b", "a, b", "AWS-*-x", "AWS-?", strings.Join(ten, ",") + ",d10", "a,"} {
		if pattern.MatchString(v) || v != "" && load(v) == nil {
			t.Errorf("AllowedDocuments %q: pattern %v, config error %v; want both to refuse", v, pattern.MatchString(v), load(v))
		}
	}
}
