package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

// The functions: AssociateFunction answers every trigger; WorkerFunction
// runs the chunks of asynchronous jobs from the jobs queue; ReaperFunction
// settles dead-lettered chunks and unfinished or stalled jobs.
const (
	functionID = AssociateFunction
	workerID   = WorkerFunction
	reaperID   = ReaperFunction
)

var functionIDs = []string{functionID, workerID, reaperID}

// engineFunctions run the engine: they call SSM and may pass the dispatch
// role.
var engineFunctions = []string{functionID, workerID}

func resource(t *testing.T, tpl node, id, typ string) node {
	t.Helper()
	r := tpl.get("Resources", id)
	if !r.ok() {
		t.Fatalf("template.yaml has no resource %s", id)
	}
	if got := r.get("Type").str(); got != typ {
		t.Fatalf("%s is a %s, want %s", id, got, typ)
	}
	return r
}

func TestTransformAndFunction(t *testing.T) {
	tpl := loadTemplate(t)
	if got := tpl.get("Transform").str(); got != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %q, want AWS::Serverless-2016-10-31", got)
	}
	for _, id := range functionIDs {
		fn := resource(t, tpl, id, "AWS::Serverless::Function")
		props := fn.get("Properties")
		for key, want := range map[string]string{
			"Handler": "bootstrap",
			"Runtime": "provided.al2023",
			"CodeUri": ".",
		} {
			if got := props.get(key).str(); got != want {
				t.Errorf("%s.%s = %q, want %q", id, key, got, want)
			}
		}
		if got := props.get("Architectures").strs(); !slices.Equal(got, []string{"arm64"}) {
			t.Errorf("%s.Architectures = %v, want [arm64]", id, got)
		}
		if got := fn.get("Metadata", "BuildMethod").str(); got != "makefile" {
			t.Errorf("%s Metadata.BuildMethod = %q, want makefile (the root Makefile's build-%s)", id, got, id)
		}
		// sam build runs `make build-<LogicalId>`: the target must exist.
		if mk, err := os.ReadFile(filepath.Join(root(t), "Makefile")); err != nil || !strings.Contains(string(mk), "\nbuild-"+id+":\n\t$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ") {
			t.Errorf("the Makefile has no build-%s target writing $(ARTIFACTS_DIR)/bootstrap (sam build needs it): %v", id, err)
		}
		if got := props.get("LoggingConfig", "LogFormat").str(); got != "JSON" {
			t.Errorf("%s.LoggingConfig.LogFormat = %q, want JSON (sets AWS_LAMBDA_LOG_FORMAT)", id, got)
		}
		if lg := props.get("LoggingConfig", "LogGroup").ref(); lg == "" {
			t.Errorf("%s.LoggingConfig.LogGroup: want !Ref to the function's own log group", id)
		} else {
			resource(t, tpl, lg, "AWS::Logs::LogGroup")
		}
		for _, key := range []string{"Timeout", "MemorySize"} {
			p := props.get(key).ref()
			if p == "" || !tpl.get("Parameters", p).ok() {
				t.Errorf("%s.%s = %v, want !Ref to a parameter", id, key, props.get(key).Value)
			}
		}
	}
	if a, w := tpl.get("Resources", functionID, "Properties", "LoggingConfig", "LogGroup").ref(),
		tpl.get("Resources", workerID, "Properties", "LoggingConfig", "LogGroup").ref(); a == w {
		t.Errorf("both functions log to %s; give each its own log group", a)
	}
}

// camel turns BATCH_SIZE into BatchSize, the template's parameter naming.
func camel(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.ToLower(name), "_") {
		if part == "" {
			continue
		}
		r := []rune(part)
		b.WriteRune(unicode.ToUpper(r[0]))
		b.WriteString(string(r[1:]))
	}
	return b.String()
}

// resourceVariables are the variables that name a resource of the stack
// rather than a setting: each is !Ref to that resource.
var resourceVariables = map[string]struct{ id, typ string }{
	"DEDUPE_TABLE":   {"DedupeTable", "AWS::DynamoDB::Table"},
	"JOBS_TABLE":     {"JobsTable", "AWS::DynamoDB::Table"},
	"JOBS_QUEUE_URL": {"JobsQueue", "AWS::SQS::Queue"}, // !Ref of a queue is its URL
	"EVENT_BUS_NAME": {"EventBus", "AWS::Events::EventBus"},
}

// TestEnvironmentMatchesConfig keeps each function's environment in
// template.yaml equal to what the code reads (config.Variables, and
// config.WorkerVariables for the worker, config.AssociateVariables for the
// associate function) plus the SDK's endpoint variables,
// empty, for sam local invoke (EndpointVariables): the same names, each fed
// from a parameter named after it with the code's default, and parameter
// bounds the code accepts; the variables that name resources refer to them.
func TestEnvironmentMatchesConfig(t *testing.T) {
	tpl := loadTemplate(t)
	checked := map[string]bool{} // parameters shared by both functions
	for _, id := range functionIDs {
		fn := resource(t, tpl, id, "AWS::Serverless::Function")
		vars := fn.get("Properties", "Environment", "Variables")
		if !vars.ok() {
			t.Fatalf("%s has no Environment.Variables", id)
		}

		var want []string
		for _, v := range functionVariables(id) {
			want = append(want, v.Name)
		}
		want = append(want, EndpointVariables(id)...)
		got := vars.keys()
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s environment = %v, want exactly %v", id, got, want)
			continue
		}
		// The SDK's endpoint variables: empty, so a deployment calls AWS;
		// declared for sam local invoke --env-vars only.
		for _, name := range EndpointVariables(id) {
			if v := vars.get(name); v.Kind != yaml.ScalarNode || v.str() != "" || v.Tag != "!!str" {
				t.Errorf("%s %s = %v, want \"\" (set only by sam local invoke --env-vars)", id, name, v.Value)
			}
		}

		for _, v := range functionVariables(id) {
			value := vars.get(v.Name)
			if res, ok := resourceVariables[v.Name]; ok {
				if r := value.ref(); r != res.id {
					t.Errorf("%s %s = %v, want !Ref %s", id, v.Name, value.Value, res.id)
				}
				resource(t, tpl, res.id, res.typ)
				continue
			}
			param := value.ref()
			if param != camel(v.Name) {
				t.Errorf("%s %s = %q, want !Ref %s", id, v.Name, value.Value, camel(v.Name))
				continue
			}
			if checked[param] {
				continue
			}
			checked[param] = true
			p := tpl.get("Parameters", param)
			if !p.ok() {
				t.Errorf("%s refers to parameter %s, which is not declared", v.Name, param)
				continue
			}
			def := p.get("Default")
			if !def.ok() || def.str() != v.Default {
				t.Errorf("parameter %s Default = %q, want %q (config %s)", param, def.Value, v.Default, v.Name)
			}
			checkParameterAgainstCode(t, v, param, p)
		}
	}
	for name := range resourceVariables {
		if !slices.ContainsFunc(config.Variables, func(v config.Variable) bool { return v.Name == name }) {
			t.Errorf("resourceVariables names %s, which config.Variables does not", name)
		}
	}
}

// checkParameterAgainstCode makes CloudFormation and config.Load agree: every
// value the parameter's constraints let through must load, and a number just
// past its bounds must not.
func checkParameterAgainstCode(t *testing.T, v config.Variable, param string, p node) {
	t.Helper()
	load := func(value string) error {
		if !slices.ContainsFunc(slices.Concat(config.Variables, config.WorkerVariables, config.AssociateVariables), func(w config.Variable) bool { return w.Name == v.Name }) {
			// A reaper-only variable.
			_, err := config.ReaperFromLookup(func(name string) (string, bool) {
				switch name {
				case "JOBS_TABLE":
					return "jobs", true
				case v.Name:
					return value, true
				}
				return "", false
			})
			return err
		}
		_, err := config.FromLookup(func(name string) (string, bool) {
			switch name {
			case "DEDUPE_TABLE":
				return "claims", true
			case v.Name:
				return value, true
			}
			return "", false
		})
		return err
	}
	if err := load(v.Default); err != nil {
		t.Errorf("%s: the code rejects its own default %q: %v", v.Name, v.Default, err)
	}
	switch p.get("Type").str() {
	case "Number":
		min, max := p.get("MinValue").str(), p.get("MaxValue").str()
		if min == "" || max == "" {
			t.Errorf("parameter %s: a Number feeding %s needs MinValue and MaxValue", param, v.Name)
			return
		}
		for _, ok := range []string{min, max} {
			if err := load(ok); err != nil {
				t.Errorf("parameter %s allows %s but the code rejects it: %v", param, ok, err)
			}
		}
		lo, err1 := strconv.ParseFloat(min, 64)
		hi, err2 := strconv.ParseFloat(max, 64)
		if err1 != nil || err2 != nil {
			t.Errorf("parameter %s: bounds %q..%q are not numbers", param, min, max)
			return
		}
		for _, bad := range []float64{lo - 1, hi + 1} {
			if err := load(strconv.FormatFloat(bad, 'f', -1, 64)); err == nil {
				t.Errorf("parameter %s: the code accepts %v, outside the template's %s..%s; align the bounds", param, bad, min, max)
			}
		}
	case "String":
		pattern := p.get("AllowedPattern").str()
		if pattern == "" {
			t.Errorf("parameter %s: a String feeding %s needs an AllowedPattern", param, v.Name)
			return
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Errorf("parameter %s: AllowedPattern %q: %v", param, pattern, err)
			return
		}
		if !re.MatchString(v.Default) {
			t.Errorf("parameter %s: default %q does not match its AllowedPattern", param, v.Default)
		}
		for _, bad := range []string{"", "soon", "24", "1d"} {
			if re.MatchString(bad) && load(bad) != nil {
				t.Errorf("parameter %s: AllowedPattern lets %q through but the code rejects it", param, bad)
			}
		}
	default:
		t.Errorf("parameter %s: Type %q, want Number or String", param, p.get("Type").str())
	}
}

// checkTable checks a DynamoDB table against the item layout of the code
// that uses it: its key attributes (partition key, then an optional sort
// key, all strings) and TTL attribute, on-demand billing, PITR, encryption
// (KmsKeyArn's or an AWS-owned key: checkTableEncryption), and kept when the
// stack goes.
func checkTable(t *testing.T, tpl node, id string, keyAttrs []string, ttlAttr string) {
	t.Helper()
	table := resource(t, tpl, id, "AWS::DynamoDB::Table")
	props := table.get("Properties")

	keys := props.get("KeySchema").items()
	var gotKeys, wantKeys []string
	for _, k := range keys {
		gotKeys = append(gotKeys, k.get("AttributeName").str()+" "+k.get("KeyType").str())
	}
	for i, a := range keyAttrs {
		kind := "HASH"
		if i > 0 {
			kind = "RANGE"
		}
		wantKeys = append(wantKeys, a+" "+kind)
	}
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("%s KeySchema = %v, want exactly %v", id, gotKeys, wantKeys)
	}
	var gotDefs, wantDefs []string
	for _, d := range props.get("AttributeDefinitions").items() {
		gotDefs = append(gotDefs, d.get("AttributeName").str()+" "+d.get("AttributeType").str())
	}
	for _, a := range keyAttrs {
		wantDefs = append(wantDefs, a+" S")
	}
	sort.Strings(gotDefs)
	sort.Strings(wantDefs)
	if !slices.Equal(gotDefs, wantDefs) {
		t.Errorf("%s AttributeDefinitions = %v, want exactly %v", id, gotDefs, wantDefs)
	}
	if got := props.get("TimeToLiveSpecification", "AttributeName").str(); got != ttlAttr {
		t.Errorf("%s TTL attribute = %q, want %q", id, got, ttlAttr)
	}
	if got := props.get("TimeToLiveSpecification", "Enabled").str(); got != "true" {
		t.Errorf("%s TTL Enabled = %q, want true", id, got)
	}
	if got := props.get("BillingMode").str(); got != "PAY_PER_REQUEST" {
		t.Errorf("%s BillingMode = %q, want PAY_PER_REQUEST", id, got)
	}
	if got := props.get("PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled").str(); got != "true" {
		t.Errorf("%s PITR = %q, want true", id, got)
	}
	checkTableEncryption(t, tpl, id)
	for _, policy := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if got := table.get(policy).str(); got != "Retain" {
			t.Errorf("%s %s = %q, want Retain (the records outlive the stack)", id, policy, got)
		}
	}
}

// TestDedupeTable: the claim store's item layout: dedupe.KeyAttribute is the
// partition key and dedupe.TTLAttribute the TTL attribute.
func TestDedupeTable(t *testing.T) {
	checkTable(t, loadTemplate(t), "DedupeTable", []string{dedupe.KeyAttribute}, dedupe.TTLAttribute)
}

// TestJobsTable: the job store's item layout: jobs.PartitionKey and
// jobs.SortKey, jobs.TTLAttribute the TTL attribute; jobs.TableDefinition
// (what the jobs tests create) agrees.
func TestJobsTable(t *testing.T) {
	checkTable(t, loadTemplate(t), "JobsTable", []string{jobs.PartitionKey, jobs.SortKey}, jobs.TTLAttribute)
	def := jobs.TableDefinition("x")
	var keys []string
	for _, k := range def.KeySchema {
		keys = append(keys, *k.AttributeName+" "+string(k.KeyType))
	}
	if want := []string{jobs.PartitionKey + " HASH", jobs.SortKey + " RANGE"}; !slices.Equal(keys, want) {
		t.Errorf("jobs.TableDefinition KeySchema = %v, want %v as template.yaml", keys, want)
	}
}

// statement is one IAM statement of a function's policies, with the
// condition it is under when it sits in an !If.
type statement struct {
	node
	condition string
}

func policyStatements(t *testing.T, tpl node, id string) []statement {
	t.Helper()
	fn := resource(t, tpl, id, "AWS::Serverless::Function")
	var out []statement
	for i, pol := range fn.get("Properties", "Policies").items() {
		if mp := pol.ref(); mp != "" && tpl.get("Resources", mp, "Type").str() == "AWS::IAM::ManagedPolicy" {
			// A policy of this template, written out there (shared by
			// functions that need the same statements).
			pol = tpl.get("Resources", mp, "Properties", "PolicyDocument")
		}
		if pol.Kind != yaml.MappingNode || !pol.get("Statement").ok() {
			// A SAM policy template (DynamoDBCrudPolicy: …), an AWS
			// managed policy or any policy from outside the template
			// grants more than the code needs, or what nobody checks here.
			t.Errorf("%s Policies[%d] is neither an inline policy document nor !Ref to an AWS::IAM::ManagedPolicy of the template; write the statements out", id, i)
			continue
		}
		for _, st := range pol.get("Statement").items() {
			if f, arg := st.fn(); f == "If" {
				args := arg.items()
				if len(args) != 3 {
					t.Fatalf("malformed !If in %s Policies[%d]", id, i)
				}
				for _, branch := range args[1:] {
					if branch.ref() == "AWS::NoValue" {
						continue
					}
					out = append(out, statement{branch, args[0].str()})
				}
				continue
			}
			out = append(out, statement{st, ""})
		}
	}
	return out
}

// grant is what one function may do: the actions per resource, named as the
// template names it (a GetAtt such as JobsTable.Arn, or !Ref X as "Ref X").
type grants map[string][]string

// wantGrants is exactly the DynamoDB, SQS and EventBridge access each
// function's code needs.
var wantGrants = map[string]grants{
	functionID: {
		// dedupe.Store: Claim (PutItem), CompleteAll (BatchWriteItem),
		// MarkPossiblySent, RenewOwner, ClaimUpdate and Complete
		// (UpdateItem), the liveness of another owner (GetItem), Peek for a
		// dry run (BatchGetItem), Release (DeleteItem).
		"DedupeTable.Arn": {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
		// jobs.Submitter: Create (PutItem); Record of chunks not queued
		// (UpdateItem, alone or inside TransactWriteItems, which IAM
		// authorises per item action; PutItem and ConditionCheckItem for the
		// parts of large outcomes), Finish and Settle (UpdateItem) and Meta
		// (GetItem); the status route: Meta (GetItem) and Outcomes (Query,
		// GetItem).
		"JobsTable.Arn": {"dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"},
		// SendMessageBatch is authorised by sqs:SendMessage.
		"JobsQueue.Arn": {"sqs:SendMessage"},
	},
	workerID: {
		"DedupeTable.Arn": {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
		// jobs.Worker: Started, Record, Finish, the announcement claim
		// (UpdateItem, alone or inside TransactWriteItems); the parts of
		// large outcomes (PutItem, ConditionCheckItem inside
		// TransactWriteItems); Outcome and Meta (GetItem).
		"JobsTable.Arn": {"dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
		// jobs.Announcer: the completion event.
		"EventBus.Arn": {"events:PutEvents"},
		// The SQS poller's permissions come with the SQS event (SAM).
	},
	reaperID: {
		// jobs.Reaper: what the worker does to count a chunk and settle a
		// job, without the engine; OpenJobs (Scan); MarkStalled
		// (UpdateItem).
		"JobsTable.Arn": {"dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem"},
		"EventBus.Arn":  {"events:PutEvents"},
		// The dead-letter queue's poller permissions come with the SQS event.
	},
}

func TestPolicyIsLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t)
	ssmResources := map[string][]string{}
	for _, id := range functionIDs {
		got := grants{}
		var ssmActions []string
		ssmByAction := map[string][]string{} // resolved with the parameters' defaults
		var kmsActions []string
		passRole := false
		for _, st := range policyStatements(t, tpl, id) {
			if st.get("Effect").str() != "Allow" {
				continue
			}
			var resources []node
			if r := st.get("Resource"); r.Kind == yaml.SequenceNode && r.Tag == "!!seq" {
				resources = r.items()
			} else {
				resources = []node{r}
			}
			for _, a := range st.get("Action").strs() {
				service, _, _ := strings.Cut(a, ":")
				switch {
				case a == "*" || strings.HasSuffix(a, ":*"):
					t.Errorf("%s: action %q: no wildcard actions", id, a)
				case service == "dynamodb" || service == "sqs" || service == "events":
					for _, r := range resources {
						name := r.getAtt()
						if name == "" {
							name = "Ref " + r.ref()
						}
						got[name] = append(got[name], a)
					}
				case a == "ssm:ListAssociations":
					// It supports no resource-level permissions; it reads.
					ssmActions = append(ssmActions, a)
					if len(resources) != 1 || resources[0].str() != "*" {
						t.Errorf("%s: ssm:ListAssociations must be granted on \"*\" alone, in a statement of its own", id)
					}
				case service == "ssm":
					ssmActions = append(ssmActions, a)
					for _, r := range resources {
						ssmByAction[a] = append(ssmByAction[a], ssmResource(t, tpl, a, r, nil))
					}
				case service == "kms":
					// Only with a customer-managed key (KmsKeyArn), on it
					// alone, through the services that hold the data.
					kmsActions = append(kmsActions, a)
					if st.condition != "HasKmsKey" {
						t.Errorf("%s: %s must only be granted under the condition HasKmsKey", id, a)
					}
					if len(resources) != 1 || resources[0].ref() != "KmsKeyArn" {
						t.Errorf("%s: %s must be granted on !Ref KmsKeyArn only", id, a)
					}
					via, err := evalList(tpl, st.get("Condition", "StringEquals", "kms:ViaService"), nil)
					if want := []string{"dynamodb.${AWS::Region}.${AWS::URLSuffix}", "sqs.${AWS::Region}.${AWS::URLSuffix}"}; err != nil || !slices.Equal(via, want) {
						t.Errorf("%s: %s through kms:ViaService %v (%v), want exactly %v", id, a, via, err, want)
					}
				case a == "iam:PassRole":
					passRole = true
					if st.condition == "" {
						t.Errorf("%s: iam:PassRole must only be granted under a condition (DispatchRoleArn set)", id)
					}
					if len(resources) != 1 || resources[0].ref() != "DispatchRoleArn" {
						t.Errorf("%s: iam:PassRole must be granted on !Ref DispatchRoleArn only", id)
					}
					if st.get("Condition", "StringEquals", "iam:PassedToService").str() != "ssm.amazonaws.com" {
						t.Errorf("%s: iam:PassRole must be limited to iam:PassedToService ssm.amazonaws.com", id)
					}
				default:
					t.Errorf("unexpected action %q in %s's policy", a, id)
				}
			}
		}
		for r := range got {
			sort.Strings(got[r])
		}
		want := wantGrants[id]
		for r, actions := range want {
			if !slices.Equal(got[r], actions) {
				t.Errorf("%s on %s: actions %v, want exactly %v", id, r, got[r], actions)
			}
		}
		for r, actions := range got {
			if _, ok := want[r]; !ok {
				t.Errorf("%s: %v granted on %s, which the code does not touch", id, actions, r)
			}
		}
		// Every function reads or writes a queue or table that KmsKeyArn
		// may encrypt: SQS needs both to send, Decrypt to receive;
		// DynamoDB Decrypt to use the table key.
		sort.Strings(kmsActions)
		if want := []string{"kms:Decrypt", "kms:GenerateDataKey"}; !slices.Equal(kmsActions, want) {
			t.Errorf("%s: kms actions %v, want exactly %v under HasKmsKey", id, kmsActions, want)
		}
		if !slices.Contains(engineFunctions, id) {
			if len(ssmActions) > 0 || passRole {
				t.Errorf("%s runs no engine: ssm actions %v, iam:PassRole %v, want none", id, ssmActions, passRole)
			}
			continue
		}
		for a, arns := range ssmByAction {
			checkSSMResources(t, id, a, arns)
			ssmResources[id] = append(ssmResources[id], arns...)
		}
		// CreateAssociationBatch needs both create actions; the read back
		// of entries in doubt needs the two reads; "OnExisting": "update"
		// needs UpdateAssociation.
		called := []string{"ssm:CreateAssociation", "ssm:CreateAssociationBatch", "ssm:DescribeAssociation", "ssm:ListAssociations", "ssm:UpdateAssociation"}
		for _, a := range called {
			if !slices.Contains(ssmActions, a) {
				t.Errorf("%s: ssm actions %v lack %s", id, ssmActions, a)
			}
		}
		for _, a := range ssmActions {
			if !slices.Contains(called, a) {
				t.Errorf("%s: ssm action %s, which the code does not call", id, a)
			}
		}
		if !passRole {
			t.Errorf("%s: no conditional iam:PassRole for DispatchRoleArn (requests may name a dispatch role)", id)
		}
	}
	// Both functions run the same engine on the same documents and nodes.
	a, w := ssmResources[functionID], ssmResources[workerID]
	sort.Strings(a)
	sort.Strings(w)
	if !slices.Equal(a, w) {
		t.Errorf("SSM resources differ: %s %v, %s %v", functionID, a, workerID, w)
	}
}

// The ARNs of documents as checkSSMResources sees them (pseudo parameters
// left as written).
const (
	accountDocumentARN = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/"
	awsDocumentARN     = "arn:${AWS::Partition}:ssm:${AWS::Region}::document/" // AWS-owned documents
)

// checkSSMResources checks the resources of an SSM action, resolved with the
// parameters' defaults: documents only those of AllowedDocuments (of the
// account and AWS-owned), nodes of the account and Region.
func checkSSMResources(t *testing.T, id, action string, arns []string) {
	t.Helper()
	defaults := strings.Split(config.DefaultAllowedDocuments, ",")
	for _, want := range []string{
		accountDocumentARN + defaults[0],
		awsDocumentARN + defaults[0],
		"arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*",
		"arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:managed-instance/*",
	} {
		if !slices.Contains(arns, want) {
			t.Errorf("%s %s: no resource %s among %v", id, action, want, arns)
		}
	}
	for _, a := range arns {
		if a == "*" || !strings.HasPrefix(a, "arn:${AWS::Partition}:") {
			t.Errorf("%s %s: resource %q", id, action, a)
		}
		for _, prefix := range []string{accountDocumentARN, awsDocumentARN} {
			if doc, ok := strings.CutPrefix(a, prefix); ok && doc != "" && !slices.Contains(defaults, doc) {
				t.Errorf("%s %s: document %q is not one of AllowedDocuments' default %v", id, action, doc, defaults)
			}
		}
	}
}

// ssmResource resolves the Resource r of an SSM statement with the
// parameters' defaults, or params where given: !Sub "…" or
// !Sub ["…", {D: <intrinsics>}], leaving the pseudo parameters (${AWS::…})
// as written.
func ssmResource(t *testing.T, tpl node, action string, r node, params map[string]string) string {
	t.Helper()
	f, arg := r.fn()
	if f != "Sub" {
		if s := r.str(); s != "" {
			return s
		}
		t.Errorf("%s resource %v: want a !Sub ARN", action, r.Value)
		return ""
	}
	if arg.Kind == yaml.ScalarNode {
		return arg.str()
	}
	parts := arg.items()
	if len(parts) != 2 {
		t.Fatalf("%s resource: malformed !Sub %v", action, arg.Value)
	}
	out := parts[0].str()
	for _, name := range parts[1].keys() {
		v, err := evalList(tpl, parts[1].get(name), params)
		if err != nil || len(v) != 1 {
			t.Fatalf("%s resource: ${%s}: %v %v", action, name, v, err)
		}
		out = strings.ReplaceAll(out, "${"+name+"}", v[0])
	}
	return out
}

// evalList evaluates the intrinsics the template uses to build lists and
// pick their items (!Select, !Split, !Join, !If, !GetAtt as the template
// names it, !Ref to a parameter: its default unless params gives it) to a
// list: a scalar is a list of one.
func evalList(tpl node, n node, params map[string]string) ([]string, error) {
	switch f, arg := n.fn(); f {
	case "":
		if n.Kind == yaml.SequenceNode {
			var out []string
			for _, it := range n.items() {
				v, err := evalList(tpl, it, params)
				if err != nil {
					return nil, err
				}
				out = append(out, v...)
			}
			return out, nil
		}
		return []string{n.str()}, nil
	case "GetAtt":
		return []string{n.getAtt()}, nil // named as the template names it
	case "Sub":
		if arg.Kind != yaml.ScalarNode {
			return nil, errors.New("!Sub with variables: see ssmResource")
		}
		return []string{arg.str()}, nil // pseudo parameters as written
	case "If":
		args := arg.items()
		if len(args) != 3 {
			return nil, errors.New("!If: want [condition, then, else]")
		}
		ok, err := evalCondition(tpl, tpl.get("Conditions", args[0].str()), params)
		if err != nil {
			return nil, fmt.Errorf("condition %s: %w", args[0].str(), err)
		}
		if ok {
			return evalList(tpl, args[1], params)
		}
		return evalList(tpl, args[2], params)
	case "Ref":
		if arg.str() == "AWS::NoValue" {
			return nil, nil // the property or item is left out
		}
		if v, ok := params[arg.str()]; ok {
			return []string{v}, nil
		}
		v, err := resolveValue(tpl, n)
		return []string{v}, err
	case "Select":
		args := arg.items()
		if len(args) != 2 {
			return nil, errors.New("!Select: want [index, list]")
		}
		i, err := strconv.Atoi(args[0].str())
		if err != nil {
			return nil, fmt.Errorf("!Select index: %w", err)
		}
		list, err := evalList(tpl, args[1], params)
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= len(list) {
			return nil, fmt.Errorf("!Select %d of a list of %d: CloudFormation fails the stack", i, len(list))
		}
		return []string{list[i]}, nil
	case "Split":
		args := arg.items()
		if len(args) != 2 || args[0].str() == "" {
			return nil, errors.New("!Split: want [literal delimiter, string]")
		}
		v, err := evalList(tpl, args[1], params)
		if err != nil || len(v) != 1 {
			return nil, fmt.Errorf("!Split of %v: %v", v, err)
		}
		return strings.Split(v[0], args[0].str()), nil
	case "Join":
		args := arg.items()
		if len(args) != 2 || args[1].Kind != yaml.SequenceNode {
			return nil, errors.New("!Join: want [literal delimiter, [values]]")
		}
		var vs []string
		for _, it := range args[1].items() {
			v, err := evalList(tpl, it, params)
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("!Join item %v: %v", v, err)
			}
			vs = append(vs, v[0])
		}
		return []string{strings.Join(vs, args[0].str())}, nil
	default:
		return nil, fmt.Errorf("cannot evaluate !%s", f)
	}
}

// eventsOfType lists a function's events of one type (Api, HttpApi, …).
func eventsOfType(t *testing.T, tpl node, id, typ string) []node {
	t.Helper()
	events := resource(t, tpl, id, "AWS::Serverless::Function").get("Properties", "Events")
	var out []node
	for _, name := range events.keys() {
		if ev := events.get(name); ev.get("Type").str() == typ {
			out = append(out, ev.get("Properties"))
		}
	}
	return out
}

// route finds the API event of a method and path, or fails the test.
func route(t *testing.T, tpl node, typ, method, path string) node {
	t.Helper()
	for _, ev := range eventsOfType(t, tpl, functionID, typ) {
		if ev.get("Method").str() == method && ev.get("Path").str() == path {
			return ev
		}
	}
	t.Fatalf("%s has no %s event %s %s", functionID, typ, method, path)
	return node{}
}

// statusPath is the status route; its parameter is event.JobIDParameter.
const statusPath = "/associations/{" + event.JobIDParameter + "}"

func TestTriggers(t *testing.T) {
	tpl := loadTemplate(t)

	// REST and HTTP APIs: POST creates, GET reads a job; all IAM-signed.
	for _, method := range []string{"POST", "GET"} {
		path := "/associations"
		if method == "GET" {
			path = statusPath
		}
		rest := route(t, tpl, "Api", method, path)
		if rest.get("Auth", "Authorizer").str() != "AWS_IAM" {
			t.Errorf("REST API event %s %s: want AWS_IAM", method, path)
		}
		if id := rest.get("RestApiId").ref(); id != "" {
			resource(t, tpl, id, "AWS::Serverless::Api")
		}

		httpAPI := route(t, tpl, "HttpApi", method, path)
		if httpAPI.get("Auth", "Authorizer").str() != "AWS_IAM" || httpAPI.get("PayloadFormatVersion").str() != "2.0" {
			t.Errorf("HTTP API event %s %s: want AWS_IAM, payload 2.0", method, path)
		}
		if id := httpAPI.get("ApiId").ref(); id != "" {
			api := resource(t, tpl, id, "AWS::Serverless::HttpApi")
			if api.get("Properties", "Auth", "EnableIamAuthorizer").str() != "true" {
				t.Errorf("%s: Auth.EnableIamAuthorizer must be true for the AWS_IAM authorizer", id)
			}
		}
	}
	for _, typ := range []string{"Api", "HttpApi"} {
		if n := len(eventsOfType(t, tpl, functionID, typ)); n != 2 {
			t.Errorf("%d %s events, want 2 (POST /associations, GET %s)", n, typ, statusPath)
		}
	}

	ebs := eventsOfType(t, tpl, functionID, "EventBridgeRule")
	if len(ebs) != 1 {
		t.Fatalf("%d EventBridgeRule events, want 1", len(ebs))
	}
	eb := ebs[0]
	if got := eb.get("Pattern", "source").strs(); !slices.Equal(got, []string{"ssm-association-batcher"}) {
		t.Errorf("EventBridge pattern source = %v", got)
	}
	if got := eb.get("Pattern", "detail-type").strs(); !slices.Equal(got, []string{"Associate Nodes"}) {
		t.Errorf("EventBridge pattern detail-type = %v", got)
	}
	if got := eb.get("Pattern", "detail-type").strs(); slices.Contains(got, jobs.CompletedEventType) {
		t.Errorf("the rule must not match the workers' own %q events", jobs.CompletedEventType)
	}
	if bus := eb.get("EventBusName").ref(); bus == "" {
		t.Error("EventBridge rule must be on the stack's custom bus (!Ref)")
	} else {
		resource(t, tpl, bus, "AWS::Events::EventBus")
	}
	if !eb.get("RetryPolicy").ok() || !eb.get("DeadLetterConfig").ok() {
		t.Error("EventBridge rule needs RetryPolicy and DeadLetterConfig")
	}

	scheds := eventsOfType(t, tpl, functionID, "Schedule")
	if len(scheds) != 1 {
		t.Fatalf("%d Schedule events, want 1", len(scheds))
	}
	sched := scheds[0]
	if scheduleEnabledByDefault(t, tpl, sched) {
		t.Error("the Schedule must be disabled with the default parameters")
	}
	if p := sched.get("Input").ref(); p == "" || !tpl.get("Parameters", p).ok() {
		t.Error("the Schedule's Input must come from a parameter")
	}

	// Asynchronous failures land in an encrypted queue.
	onFailure := resource(t, tpl, functionID, "AWS::Serverless::Function").get("Properties", "EventInvokeConfig")
	if !onFailure.get("MaximumRetryAttempts").ok() {
		t.Error("EventInvokeConfig.MaximumRetryAttempts missing")
	}
	q := onFailure.get("DestinationConfig", "OnFailure", "Destination").getAtt()
	if q == "" {
		t.Fatal("EventInvokeConfig.DestinationConfig.OnFailure.Destination missing")
	}
	checkQueueEncryption(t, tpl, strings.TrimSuffix(q, ".Arn"))
}

// scheduleEnabledByDefault evaluates the Schedule's Enabled or State with the
// parameters' defaults.
func scheduleEnabledByDefault(t *testing.T, tpl node, sched node) bool {
	t.Helper()
	if e := sched.get("Enabled"); e.ok() {
		return evalBool(t, tpl, e)
	}
	if s := sched.get("State"); s.ok() {
		return evalValue(t, tpl, s) == "ENABLED"
	}
	return true // SAM's default
}

func evalBool(t *testing.T, tpl node, n node) bool {
	return evalValue(t, tpl, n) == "true"
}

// evalValue resolves the few intrinsics the template uses for switches (see
// resolveValue).
func evalValue(t *testing.T, tpl node, n node) string {
	t.Helper()
	v, err := resolveValue(tpl, n)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOutputs(t *testing.T) {
	tpl := loadTemplate(t)
	outputs := tpl.get("Outputs")
	// What a deployment hands its users: where to send requests, where to
	// read a job, and where to look when they fail.
	var refs []string
	for _, name := range outputs.keys() {
		v := outputs.get(name, "Value")
		if f, arg := v.fn(); f == "Sub" {
			refs = append(refs, arg.str())
		}
		refs = append(refs, v.ref(), v.getAtt())
	}
	all := strings.Join(refs, " ")
	for _, want := range []string{
		"RestApi", "HttpApi", "AssociateFunction.Arn", "DedupeTable", "EventBus", "AssociateFunctionAssociateNodes", "AssociateFunctionScheduled",
		"JobsTable", "JobsQueue", "JobsDeadLetterQueue", "WorkerFunction.Arn", "ReaperFunction.Arn",
	} {
		if !slices.Contains(strings.Fields(all), want) && !strings.Contains(all, "${"+want+"}") {
			t.Errorf("no output refers to %s", want)
		}
	}
	// The status URL templates, one per API.
	for _, api := range []string{"RestApi", "HttpApi"} {
		found := false
		for _, r := range refs {
			if strings.Contains(r, "${"+api+"}") && strings.HasSuffix(r, statusPath) {
				found = true
			}
		}
		if !found {
			t.Errorf("no output gives the %s status URL (…%s)", api, statusPath)
		}
	}
	for _, name := range outputs.keys() {
		if strings.Contains(name, "Queue") {
			return
		}
	}
	t.Error("no output names the failure queue")
}

// TestSamconfig checks samconfig.toml has what `sam init` writes and what
// this stack needs; the file is small and flat, so lines are compared.
func TestSamconfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	section := ""
	got := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		default:
			k, v, _ := strings.Cut(line, "=")
			got[section+" "+strings.TrimSpace(k)+" = "+strings.TrimSpace(v)] = true
		}
	}
	for _, want := range []string{
		" version = 0.1",
		`[default.global.parameters] stack_name = "ssm-association-batcher"`,
		"[default.build.parameters] cached = true",
		"[default.build.parameters] parallel = true",
		`[default.deploy.parameters] capabilities = "CAPABILITY_IAM"`,
		"[default.deploy.parameters] confirm_changeset = true",
		"[default.deploy.parameters] resolve_s3 = true",
	} {
		if !got[want] {
			t.Errorf("samconfig.toml lacks %s", want)
		}
	}
}

// evalCondition evaluates a condition (!Equals, !Not, !Condition) with the
// parameters' defaults, or params where given.
func evalCondition(tpl node, c node, params map[string]string) (bool, error) {
	switch f, arg := c.fn(); f {
	case "Equals":
		args := arg.items()
		if len(args) != 2 {
			return false, errors.New("!Equals: want two values")
		}
		a, err := evalList(tpl, args[0], params)
		if err != nil {
			return false, err
		}
		b, err := evalList(tpl, args[1], params)
		return slices.Equal(a, b), err
	case "Not":
		v, err := evalCondition(tpl, arg.items()[0], params)
		return !v, err
	case "Condition":
		return evalCondition(tpl, tpl.get("Conditions", arg.str()), params)
	default:
		return false, fmt.Errorf("cannot evaluate condition !%s", f)
	}
}
