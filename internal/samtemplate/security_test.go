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

// roleOf is the logical ID of the role SAM makes for function id, as the
// template's !GetAtt names its ARN.
func roleOf(id string) string { return id + "Role.Arn" }

// denyStatement finds the statement of a resource policy that denies action
// to every principal, or fails the test.
func denyStatement(t *testing.T, where string, statements []node, action string) node {
	t.Helper()
	for _, st := range statements {
		if st.get("Effect").str() == "Deny" && st.get("Principal").str() == "*" && slices.Contains(st.get("Action").strs(), action) {
			return st
		}
	}
	t.Fatalf("%s: no statement denies %s to Principal \"*\"", where, action)
	return node{}
}

// TestEventBusPolicy: only TriggerPrincipalArns and the stack's functions
// that announce job completions may put events on the bus: the bus policy
// denies events:PutEvents to every other principal, which an Allow in its
// own IAM policies cannot undo. With the default (empty), nobody else.
func TestEventBusPolicy(t *testing.T) {
	tpl := loadTemplate(t)
	var policies []node
	for _, id := range tpl.get("Resources").keys() {
		r := tpl.get("Resources", id)
		if r.get("Type").str() == "AWS::Events::EventBusPolicy" && r.get("Properties", "EventBusName").ref() == EventBus {
			policies = append(policies, r.get("Properties"))
		}
	}
	if len(policies) != 1 {
		t.Fatalf("%d AWS::Events::EventBusPolicy on !Ref %s, want 1", len(policies), EventBus)
	}
	st := policies[0].get("Statement")
	// Only a Deny: TriggerPrincipalArns names principals of this account,
	// who still need events:PutEvents in their own policies; a principal of
	// another account listed there gets no Allow, so it cannot put events
	// (the parameter's description and SECURITY.md say so).
	if st.get("Effect").str() != "Deny" || policies[0].get("Principal").ok() || policies[0].get("Condition").ok() {
		t.Errorf("the bus policy must be one Deny statement, with no resource-level Allow: one would grant other accounts what TriggerPrincipalArns lists")
	}
	if !strings.Contains(tpl.get("Parameters", "TriggerPrincipalArns", "Description").str(), "this account only") {
		t.Error("TriggerPrincipalArns: the description must say the principals are of this account only (the bus policy allows nobody)")
	}
	if sid := policies[0].get("StatementId").str(); sid == "" || st.get("Sid").str() != sid {
		t.Errorf("StatementId %q and the statement's Sid %q must be equal", sid, st.get("Sid").str())
	}
	st = denyStatement(t, "the bus policy", []node{st}, "events:PutEvents")
	if r := st.get("Resource").getAtt(); r != EventBus+".Arn" {
		t.Errorf("bus policy Resource %q, want !GetAtt %s.Arn", r, EventBus)
	}
	if conds := st.get("Condition").keys(); !slices.Equal(conds, []string{"ArnNotLike"}) || !slices.Equal(st.get("Condition", "ArnNotLike").keys(), []string{"aws:PrincipalArn"}) {
		t.Fatalf("bus policy Condition %v, want only ArnNotLike aws:PrincipalArn", conds)
	}
	// The functions that announce completions (events:PutEvents on the
	// bus in wantGrants) must not be denied: they are always exempt.
	var announcers []string
	for _, id := range functionIDs {
		if slices.Contains(wantGrants[id][EventBus+".Arn"], "events:PutEvents") {
			announcers = append(announcers, roleOf(id))
		}
	}
	exempt := func(value string) []string {
		t.Helper()
		got, err := evalList(tpl, st.get("Condition", "ArnNotLike", "aws:PrincipalArn"), map[string]string{"TriggerPrincipalArns": value})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := exempt(""); !slices.Equal(got, announcers) {
		t.Errorf("TriggerPrincipalArns empty: exempt %v, want only the announcing functions' roles %v", got, announcers)
	}
	two := []string{"arn:aws:iam::123456789012:role/Ops", "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_AdministratorAccess_*"}
	if got, want := exempt(strings.Join(two, ",")), append(slices.Clone(announcers), two...); !slices.Equal(got, want) {
		t.Errorf("TriggerPrincipalArns=%s: exempt %v, want %v", strings.Join(two, ","), got, want)
	}
	if d := tpl.get("Parameters", "TriggerPrincipalArns", "Default"); !d.ok() || d.str() != "" {
		t.Errorf("TriggerPrincipalArns default %v, want empty (nobody but the stack's functions)", d.Value)
	}
	pattern := regexp.MustCompile(tpl.get("Parameters", "TriggerPrincipalArns", "AllowedPattern").str())
	for _, ok := range []string{"", two[0], strings.Join(two, ","), "arn:aws-us-gov:iam::123456789012:user/alice", "arn:aws:iam::123456789012:root"} {
		if !pattern.MatchString(ok) {
			t.Errorf("TriggerPrincipalArns refuses %q", ok)
		}
	}
	for _, bad := range []string{"*", "123456789012", two[0] + ",", "arn:aws:iam::*:role/Ops", "arn:aws:sts::123456789012:assumed-role/Ops/me", two[0] + ", " + two[1]} {
		if pattern.MatchString(bad) {
			t.Errorf("TriggerPrincipalArns admits %q", bad)
		}
	}
}

// queuePolicy is the PolicyDocument's statements of the QueuePolicy that
// names queue, or fails the test.
func queuePolicy(t *testing.T, tpl node, queue string) []node {
	t.Helper()
	var out []node
	n := 0
	for _, id := range tpl.get("Resources").keys() {
		r := tpl.get("Resources", id)
		if r.get("Type").str() != "AWS::SQS::QueuePolicy" {
			continue
		}
		for _, q := range r.get("Properties", "Queues").items() {
			if q.ref() == queue {
				n++
				out = r.get("Properties", "PolicyDocument", "Statement").items()
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d QueuePolicy resources name %s, want 1", n, queue)
	}
	return out
}

// TestQueuePolicies: each queue accepts messages only from what puts them
// there — the jobs queue from AssociateFunction (the only function granted
// sqs:SendMessage on it), the failure queue from AssociateFunction's role
// (Lambda's destination), the events dead-letter queue from the stack's
// rules (EventBridge), the jobs dead-letter queue from no IAM principal (SQS
// redrives into it) — and every queue refuses plain HTTP.
func TestQueuePolicies(t *testing.T) {
	tpl := loadTemplate(t)
	var senders []string
	for _, id := range functionIDs {
		if slices.Contains(wantGrants[id][JobsQueue+".Arn"], "sqs:SendMessage") {
			senders = append(senders, roleOf(id))
		}
	}
	if !slices.Equal(senders, []string{roleOf(functionID)}) {
		t.Fatalf("functions that send to %s: %v; this test expects %s alone", JobsQueue, senders, functionID)
	}
	for _, id := range tpl.get("Resources").keys() {
		if tpl.get("Resources", id, "Type").str() != "AWS::SQS::Queue" {
			continue
		}
		statements := queuePolicy(t, tpl, id)
		tls := denyStatement(t, id, statements, "sqs:*")
		if tls.get("Condition", "Bool", "aws:SecureTransport").str() != "false" || tls.get("Resource").getAtt() != id+".Arn" {
			t.Errorf("%s: the sqs:* Deny must be on aws:SecureTransport false, on its own queue", id)
		}
		send := denyStatement(t, id, statements, "sqs:SendMessage")
		if send.get("Resource").getAtt() != id+".Arn" {
			t.Errorf("%s: the sqs:SendMessage Deny is on %v, want !GetAtt %s.Arn", id, send.get("Resource").Value, id)
		}
		cond := send.get("Condition")
		switch id {
		case JobsQueue, "AsyncFailureQueue":
			if got, _ := evalList(tpl, cond.get("ArnNotEquals", "aws:PrincipalArn"), nil); !slices.Equal(got, []string{roleOf(functionID)}) || len(cond.keys()) != 1 {
				t.Errorf("%s: SendMessage denied unless aws:PrincipalArn is %v, want %s alone", id, got, roleOf(functionID))
			}
		case "JobsDeadLetterQueue":
			if cond.get("Null", "aws:PrincipalArn").str() != "false" || len(cond.keys()) != 1 {
				t.Errorf("%s: SendMessage must be denied to every IAM principal (Null aws:PrincipalArn false): SQS's redrive alone puts chunks there", id)
			}
			if src := tpl.get("Resources", JobsQueue, "Properties", "RedrivePolicy", "deadLetterTargetArn").getAtt(); src != id+".Arn" {
				t.Errorf("%s is not the jobs queue's dead-letter queue (%s)", id, src)
			}
		case "EventDeadLetterQueue":
			var rules []string
			for _, typ := range []string{"EventBridgeRule", "Schedule"} {
				events := resource(t, tpl, functionID, "AWS::Serverless::Function").get("Properties", "Events")
				for _, name := range events.keys() {
					if ev := events.get(name); ev.get("Type").str() == typ && ev.get("Properties", "DeadLetterConfig", "Arn").getAtt() == id+".Arn" {
						rules = append(rules, functionID+name+".Arn")
					}
				}
			}
			got, _ := evalList(tpl, cond.get("ArnNotEquals", "aws:SourceArn"), nil)
			if len(rules) == 0 || !slices.Equal(got, rules) || len(cond.keys()) != 1 {
				t.Errorf("%s: SendMessage denied unless aws:SourceArn is %v, want the rules that dead-letter into it %v", id, got, rules)
			}
		default:
			t.Errorf("queue %s: this test does not know who may send to it; add it", id)
		}
		checkRedriveAllowPolicy(t, tpl, id)
	}
}

// checkRedriveAllowPolicy: SQS's redrive is not an IAM principal's
// SendMessage, so the queue policies above cannot stop another queue of
// the account from naming one of ours as its dead-letter queue: a chunk
// redriven into the jobs queue would be run, one redriven into its
// dead-letter queue counted into a job as poisoned. RedriveAllowPolicy
// lets only the jobs queue redrive into JobsDeadLetterQueue, and nothing
// into the others.
func checkRedriveAllowPolicy(t *testing.T, tpl node, id string) {
	t.Helper()
	const (
		partition, region, account = "aws", "eu-west-1", "123456789012"
		stackUUID                  = "0f8fad5b-d9cb-469f-a165-70867728950e"
	)
	params := map[string]string{"AWS::StackId": "arn:aws:cloudformation:" + region + ":" + account + ":stack/any-name/" + stackUUID}
	arnOf := func(q string) string {
		name, err := evalList(tpl, tpl.get("Resources", q, "Properties", "QueueName"), params)
		if err != nil || len(name) != 1 || name[0] == "" {
			t.Errorf("%s: a source of redrive needs a QueueName the template can name without !GetAtt (%v, %v)", q, name, err)
			return ""
		}
		if len(name[0]) > 80 {
			t.Errorf("%s QueueName %q: over SQS's 80 characters", q, name[0])
		}
		return "arn:" + partition + ":sqs:" + region + ":" + account + ":" + name[0]
	}
	var sources []string
	for _, q := range tpl.get("Resources").keys() {
		if tpl.get("Resources", q, "Properties", "RedrivePolicy", "deadLetterTargetArn").getAtt() == id+".Arn" {
			sources = append(sources, arnOf(q))
		}
	}
	p := tpl.get("Resources", id, "Properties", "RedriveAllowPolicy")
	perm := p.get("redrivePermission").str()
	if len(sources) == 0 {
		if perm != "denyAll" || len(p.keys()) != 1 {
			t.Errorf("%s RedriveAllowPolicy %v: no queue of the stack redrives into it, want {redrivePermission: denyAll}", id, p.Value)
		}
		return
	}
	var got []string
	for _, it := range p.get("sourceQueueArns").items() {
		f, arg := it.fn()
		args := arg.items()
		if f != "Sub" || len(args) != 2 {
			t.Errorf("%s sourceQueueArns: want !Sub [arn, {variables}] items", id)
			continue
		}
		arn := strings.NewReplacer("${AWS::Partition}", partition, "${AWS::Region}", region, "${AWS::AccountId}", account).Replace(args[0].str())
		for _, v := range args[1].keys() {
			val, err := evalList(tpl, args[1].get(v), params)
			if err != nil || len(val) != 1 {
				t.Fatalf("%s sourceQueueArns ${%s}: %v, %v", id, v, val, err)
			}
			arn = strings.ReplaceAll(arn, "${"+v+"}", val[0])
		}
		got = append(got, arn)
	}
	if perm != "byQueue" || !slices.Equal(got, sources) {
		t.Errorf("%s RedriveAllowPolicy: %s %v, want byQueue %v (the queues that redrive into it, and no other)", id, perm, got, sources)
	}
}

// testKeyARN is a customer-managed key for the KMS switch.
const testKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// property evaluates a resource's property with KmsKeyArn = key: nil when
// it is left out (!Ref AWS::NoValue, or absent).
func property(t *testing.T, tpl node, id, key string, path ...string) []string {
	t.Helper()
	n := tpl.get(append([]string{"Resources", id, "Properties"}, path...)...)
	if !n.ok() {
		return nil
	}
	v, err := evalList(tpl, n, map[string]string{"KmsKeyArn": key})
	if err != nil {
		t.Fatalf("%s %v: %v", id, path, err)
	}
	return v
}

// checkTableEncryption: a table is under KmsKeyArn when it is set, else
// under the AWS-owned key (SSEEnabled false: DynamoDB always encrypts).
func checkTableEncryption(t *testing.T, tpl node, id string) {
	t.Helper()
	if got := property(t, tpl, id, "", "SSESpecification", "SSEEnabled"); !slices.Equal(got, []string{"false"}) || property(t, tpl, id, "", "SSESpecification", "KMSMasterKeyId") != nil {
		t.Errorf("%s without KmsKeyArn: SSEEnabled %v, KMSMasterKeyId %v; want false (the AWS-owned key) and none", id, got, property(t, tpl, id, "", "SSESpecification", "KMSMasterKeyId"))
	}
	for path, want := range map[string]string{"SSEEnabled": "true", "SSEType": "KMS", "KMSMasterKeyId": testKeyARN} {
		if got := property(t, tpl, id, testKeyARN, "SSESpecification", path); !slices.Equal(got, []string{want}) {
			t.Errorf("%s with KmsKeyArn: SSESpecification.%s = %v, want %s", id, path, got, want)
		}
	}
}

// checkQueueEncryption: a queue is under KmsKeyArn when it is set, else
// SSE-SQS (an AWS-owned key).
func checkQueueEncryption(t *testing.T, tpl node, id string) {
	t.Helper()
	if sse, key := property(t, tpl, id, "", "SqsManagedSseEnabled"), property(t, tpl, id, "", "KmsMasterKeyId"); !slices.Equal(sse, []string{"true"}) || key != nil {
		t.Errorf("%s without KmsKeyArn: SqsManagedSseEnabled %v, KmsMasterKeyId %v; want true and none", id, sse, key)
	}
	if sse, key := property(t, tpl, id, testKeyARN, "SqsManagedSseEnabled"), property(t, tpl, id, testKeyARN, "KmsMasterKeyId"); sse != nil || !slices.Equal(key, []string{testKeyARN}) {
		t.Errorf("%s with KmsKeyArn: SqsManagedSseEnabled %v, KmsMasterKeyId %v; want none and the key", id, sse, key)
	}
}

// TestKmsSwitch: every queue and table of the stack (where Parameters
// values and outcomes rest) is under the customer-managed key when
// KmsKeyArn is set, and under AWS-owned keys otherwise (the default). The
// functions' grants on the key are checked by TestPolicyIsLeastPrivilege.
func TestKmsSwitch(t *testing.T) {
	tpl := loadTemplate(t)
	if d := tpl.get("Parameters", "KmsKeyArn", "Default"); !d.ok() || d.str() != "" {
		t.Errorf("KmsKeyArn default %v, want empty (AWS-owned keys)", d.Value)
	}
	if c := tpl.get("Conditions", "HasKmsKey"); !c.ok() {
		t.Fatal("no condition HasKmsKey")
	}
	pattern := regexp.MustCompile(tpl.get("Parameters", "KmsKeyArn", "AllowedPattern").str())
	for v, ok := range map[string]bool{"": true, testKeyARN: true, "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd": true,
		"arn:aws:kms:eu-west-1:123456789012:alias/mine": false, "1234abcd-12ab-34cd-56ef-1234567890ab": false} {
		if pattern.MatchString(v) != ok {
			t.Errorf("KmsKeyArn pattern on %q: %v, want %v", v, !ok, ok)
		}
	}
	tables, queues := 0, 0
	for _, id := range tpl.get("Resources").keys() {
		switch tpl.get("Resources", id, "Type").str() {
		case "AWS::DynamoDB::Table":
			tables++
			checkTableEncryption(t, tpl, id)
		case "AWS::SQS::Queue":
			queues++
			checkQueueEncryption(t, tpl, id)
		}
	}
	if tables != 2 || queues != 4 {
		t.Errorf("%d tables and %d queues checked, want 2 and 4 (the test should see every one)", tables, queues)
	}
}

// TestListParametersAgreeWithConfig: AllowedTargetKeys and
// JobReaderPrincipalArns admit what config accepts and refuse what it
// refuses, so that a deployment does not fail at the functions' start.
func TestListParametersAgreeWithConfig(t *testing.T) {
	tpl := loadTemplate(t)
	for _, tc := range []struct {
		param, variable string
		good, bad       []string
	}{
		{"AllowedTargetKeys", "ALLOWED_TARGET_KEYS",
			[]string{"InstanceIds", "*", "tag:*", "InstanceIds,tag:Env,tag:Cost Center,resource-groups:Name,TargetMaps,TargetLocations", "tag-key", "ParameterValues"},
			[]string{"InstanceIds,", ",tag:*", "InstanceIds, tag:Env", "tag:*Env", "tag:Env ", "a,,b"}},
		{"JobReaderPrincipalArns", "JOB_READER_PRINCIPAL_ARNS",
			[]string{"arn:aws:iam::123456789012:role/Auditor", "arn:aws:iam::123456789012:role/Auditor,arn:aws-us-gov:iam::123456789012:user/ops/alice", "arn:aws:sts::123456789012:assumed-role/Ops/bob@example.com", "arn:aws:iam::123456789012:root"},
			[]string{"Auditor", "arn:aws:iam::123456789012:role/*", "arn:aws:iam::123456789012:role/A,", "arn:aws:iam::12345:role/A", "arn:aws:s3:::bucket"}},
	} {
		pattern := regexp.MustCompile(tpl.get("Parameters", tc.param, "AllowedPattern").str())
		load := func(v string) error {
			_, err := config.FromLookup(func(name string) (string, bool) {
				v, ok := map[string]string{"DEDUPE_TABLE": "t", tc.variable: v}[name]
				return v, ok
			})
			return err
		}
		for _, v := range tc.good {
			if !pattern.MatchString(v) || load(v) != nil {
				t.Errorf("%s %q: pattern %v, config %v; want both to accept", tc.param, v, pattern.MatchString(v), load(v))
			}
		}
		for _, v := range tc.bad {
			if pattern.MatchString(v) || load(v) == nil {
				t.Errorf("%s %q: pattern %v, config error %v; want both to refuse", tc.param, v, pattern.MatchString(v), load(v))
			}
		}
	}
}
