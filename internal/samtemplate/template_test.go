package samtemplate_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
)

const functionID = "AssociateFunction"

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
	fn := resource(t, tpl, functionID, "AWS::Serverless::Function")
	props := fn.get("Properties")
	for key, want := range map[string]string{
		"Handler": "bootstrap",
		"Runtime": "provided.al2023",
		"CodeUri": ".",
	} {
		if got := props.get(key).str(); got != want {
			t.Errorf("%s.%s = %q, want %q", functionID, key, got, want)
		}
	}
	if got := props.get("Architectures").strs(); !slices.Equal(got, []string{"arm64"}) {
		t.Errorf("%s.Architectures = %v, want [arm64]", functionID, got)
	}
	if got := fn.get("Metadata", "BuildMethod").str(); got != "makefile" {
		t.Errorf("%s Metadata.BuildMethod = %q, want makefile (the root Makefile's build-%s)", functionID, got, functionID)
	}
	if got := props.get("LoggingConfig", "LogFormat").str(); got != "JSON" {
		t.Errorf("%s.LoggingConfig.LogFormat = %q, want JSON (sets AWS_LAMBDA_LOG_FORMAT)", functionID, got)
	}
	for _, key := range []string{"Timeout", "MemorySize"} {
		p := props.get(key).ref()
		if p == "" || !tpl.get("Parameters", p).ok() {
			t.Errorf("%s.%s = %v, want !Ref to a parameter", functionID, key, props.get(key).Value)
		}
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

// TestEnvironmentMatchesConfig keeps the function's environment in template.yaml
// equal to config.Variables: the same names, each fed from a parameter named
// after it with the code's default, and parameter bounds the code accepts.
func TestEnvironmentMatchesConfig(t *testing.T) {
	tpl := loadTemplate(t)
	fn := resource(t, tpl, functionID, "AWS::Serverless::Function")
	vars := fn.get("Properties", "Environment", "Variables")
	if !vars.ok() {
		t.Fatalf("%s has no Environment.Variables", functionID)
	}

	var want []string
	for _, v := range config.Variables {
		want = append(want, v.Name)
	}
	got := vars.keys()
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%s environment = %v, want exactly config.Variables %v", functionID, got, want)
	}

	for _, v := range config.Variables {
		value := vars.get(v.Name)
		if v.Name == "DEDUPE_TABLE" {
			if r := value.ref(); r != "DedupeTable" {
				t.Errorf("DEDUPE_TABLE = %v, want !Ref DedupeTable", value.Value)
			}
			resource(t, tpl, "DedupeTable", "AWS::DynamoDB::Table")
			continue
		}
		param := value.ref()
		if param != camel(v.Name) {
			t.Errorf("%s = %q, want !Ref %s", v.Name, value.Value, camel(v.Name))
			continue
		}
		p := tpl.get("Parameters", param)
		if !p.ok() {
			t.Errorf("%s refers to parameter %s, which is not declared", v.Name, param)
			continue
		}
		def := p.get("Default")
		if !def.ok() || def.str() != v.Default {
			t.Errorf("parameter %s Default = %q, want %q (config.Variables %s)", param, def.Value, v.Default, v.Name)
		}
		checkParameterAgainstCode(t, v, param, p)
	}
}

// checkParameterAgainstCode makes CloudFormation and config.Load agree: every
// value the parameter's constraints let through must load, and a number just
// past its bounds must not.
func checkParameterAgainstCode(t *testing.T, v config.Variable, param string, p node) {
	t.Helper()
	load := func(value string) error {
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

func TestDedupeTable(t *testing.T) {
	tpl := loadTemplate(t)
	table := resource(t, tpl, "DedupeTable", "AWS::DynamoDB::Table")
	props := table.get("Properties")

	// The claim store's item layout: dedupe.KeyAttribute is the partition
	// key (a string) and dedupe.TTLAttribute the TTL attribute.
	keys := props.get("KeySchema").items()
	if len(keys) != 1 || keys[0].get("AttributeName").str() != dedupe.KeyAttribute || keys[0].get("KeyType").str() != "HASH" {
		t.Errorf("KeySchema: want exactly %s HASH", dedupe.KeyAttribute)
	}
	defs := props.get("AttributeDefinitions").items()
	if len(defs) != 1 || defs[0].get("AttributeName").str() != dedupe.KeyAttribute || defs[0].get("AttributeType").str() != "S" {
		t.Errorf("AttributeDefinitions: want exactly %s S", dedupe.KeyAttribute)
	}
	if got := props.get("TimeToLiveSpecification", "AttributeName").str(); got != dedupe.TTLAttribute {
		t.Errorf("TTL attribute = %q, want %q", got, dedupe.TTLAttribute)
	}
	if got := props.get("TimeToLiveSpecification", "Enabled").str(); got != "true" {
		t.Errorf("TTL Enabled = %q, want true", got)
	}
	if got := props.get("BillingMode").str(); got != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode = %q, want PAY_PER_REQUEST", got)
	}
	if got := props.get("PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled").str(); got != "true" {
		t.Errorf("PITR = %q, want true", got)
	}
	if got := props.get("SSESpecification", "SSEEnabled").str(); got != "true" {
		t.Errorf("SSEEnabled = %q, want true", got)
	}
	for _, policy := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if got := table.get(policy).str(); got != "Retain" {
			t.Errorf("DedupeTable %s = %q, want Retain (claims outlive the stack)", policy, got)
		}
	}
}

// statement is one IAM statement of the function's policies, with the
// condition it is under when it sits in an !If.
type statement struct {
	node
	condition string
}

func policyStatements(t *testing.T, tpl node) []statement {
	t.Helper()
	fn := resource(t, tpl, functionID, "AWS::Serverless::Function")
	var out []statement
	for i, pol := range fn.get("Properties", "Policies").items() {
		if pol.Kind != yaml.MappingNode || !pol.get("Statement").ok() {
			// A SAM policy template (DynamoDBCrudPolicy: …) or a managed
			// policy name grants more than the code needs.
			t.Errorf("Policies[%d] is not an inline policy document; write the statements out", i)
			continue
		}
		for _, st := range pol.get("Statement").items() {
			if f, arg := st.fn(); f == "If" {
				args := arg.items()
				if len(args) != 3 {
					t.Fatalf("malformed !If in Policies[%d]", i)
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

func TestPolicyIsLeastPrivilege(t *testing.T) {
	tpl := loadTemplate(t)
	var ddbActions, ssmActions []string
	for _, st := range policyStatements(t, tpl) {
		if got := st.get("Effect").str(); got != "Allow" {
			continue
		}
		actions := st.get("Action").strs()
		var resources []node
		if r := st.get("Resource"); r.Kind == yaml.SequenceNode && r.Tag == "!!seq" {
			resources = r.items()
		} else {
			resources = []node{r}
		}
		for _, a := range actions {
			service, _, _ := strings.Cut(a, ":")
			switch {
			case a == "*" || strings.HasSuffix(a, ":*"):
				t.Errorf("action %q: no wildcard actions", a)
			case service == "dynamodb":
				ddbActions = append(ddbActions, a)
				if len(resources) != 1 || resources[0].getAtt() != "DedupeTable.Arn" {
					t.Errorf("%s must be granted on !GetAtt DedupeTable.Arn alone", a)
				}
			case service == "ssm":
				ssmActions = append(ssmActions, a)
				checkSSMResources(t, a, resources)
			case a == "iam:PassRole":
				if st.condition == "" {
					t.Errorf("iam:PassRole must only be granted under a condition (DispatchRoleArn set)")
				}
				if resources[0].ref() != "DispatchRoleArn" {
					t.Errorf("iam:PassRole must be granted on !Ref DispatchRoleArn only")
				}
				if st.get("Condition", "StringEquals", "iam:PassedToService").str() != "ssm.amazonaws.com" {
					t.Errorf("iam:PassRole must be limited to iam:PassedToService ssm.amazonaws.com")
				}
			default:
				t.Errorf("unexpected action %q in the function's policy", a)
			}
		}
	}
	sort.Strings(ddbActions)
	if want := []string{"dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}; !slices.Equal(ddbActions, want) {
		t.Errorf("DynamoDB actions = %v, want exactly %v (the claim store's calls)", ddbActions, want)
	}
	for _, a := range []string{"ssm:CreateAssociation", "ssm:CreateAssociationBatch"} {
		if !slices.Contains(ssmActions, a) {
			t.Errorf("ssm actions %v lack %s (CreateAssociationBatch needs both)", ssmActions, a)
		}
	}
}

func checkSSMResources(t *testing.T, action string, resources []node) {
	t.Helper()
	var arns []string
	for _, r := range resources {
		f, arg := r.fn()
		if f != "Sub" {
			t.Errorf("%s resource %v: want a !Sub ARN", action, r.Value)
			continue
		}
		arns = append(arns, arg.str())
	}
	for _, want := range []string{
		"arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:document/",
		"arn:${AWS::Partition}:ssm:${AWS::Region}::document/", // AWS-owned documents
		"arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*",
		"arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:managed-instance/*",
	} {
		if !slices.ContainsFunc(arns, func(a string) bool { return strings.HasPrefix(a, want) }) {
			t.Errorf("%s: no resource %s… among %v", action, want, arns)
		}
	}
	for _, a := range arns {
		if a == "*" || !strings.HasPrefix(a, "arn:${AWS::Partition}:") {
			t.Errorf("%s: resource %q", action, a)
		}
	}
}

func TestTriggers(t *testing.T) {
	tpl := loadTemplate(t)
	events := resource(t, tpl, functionID, "AWS::Serverless::Function").get("Properties", "Events")
	byType := map[string]node{}
	for _, name := range events.keys() {
		ev := events.get(name)
		byType[ev.get("Type").str()] = ev.get("Properties")
	}

	rest, ok := byType["Api"]
	if !ok {
		t.Fatal("no Api (REST) event")
	}
	if rest.get("Path").str() != "/associations" || rest.get("Method").str() != "POST" || rest.get("Auth", "Authorizer").str() != "AWS_IAM" {
		t.Errorf("REST API event: want POST /associations with AWS_IAM")
	}
	if id := rest.get("RestApiId").ref(); id != "" {
		resource(t, tpl, id, "AWS::Serverless::Api")
	}

	httpAPI, ok := byType["HttpApi"]
	if !ok {
		t.Fatal("no HttpApi event")
	}
	if httpAPI.get("Path").str() != "/associations" || httpAPI.get("Method").str() != "POST" ||
		httpAPI.get("Auth", "Authorizer").str() != "AWS_IAM" || httpAPI.get("PayloadFormatVersion").str() != "2.0" {
		t.Errorf("HTTP API event: want POST /associations, AWS_IAM, payload 2.0")
	}
	if id := httpAPI.get("ApiId").ref(); id != "" {
		api := resource(t, tpl, id, "AWS::Serverless::HttpApi")
		if api.get("Properties", "Auth", "EnableIamAuthorizer").str() != "true" {
			t.Errorf("%s: Auth.EnableIamAuthorizer must be true for the AWS_IAM authorizer", id)
		}
	}

	eb, ok := byType["EventBridgeRule"]
	if !ok {
		t.Fatal("no EventBridgeRule event")
	}
	if got := eb.get("Pattern", "source").strs(); !slices.Equal(got, []string{"ssm-association-batcher"}) {
		t.Errorf("EventBridge pattern source = %v", got)
	}
	if got := eb.get("Pattern", "detail-type").strs(); !slices.Equal(got, []string{"Associate Nodes"}) {
		t.Errorf("EventBridge pattern detail-type = %v", got)
	}
	if bus := eb.get("EventBusName").ref(); bus == "" {
		t.Error("EventBridge rule must be on the stack's custom bus (!Ref)")
	} else {
		resource(t, tpl, bus, "AWS::Events::EventBus")
	}
	if !eb.get("RetryPolicy").ok() || !eb.get("DeadLetterConfig").ok() {
		t.Error("EventBridge rule needs RetryPolicy and DeadLetterConfig")
	}

	sched, ok := byType["Schedule"]
	if !ok {
		t.Fatal("no Schedule event")
	}
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
	queue := resource(t, tpl, strings.TrimSuffix(q, ".Arn"), "AWS::SQS::Queue")
	if queue.get("Properties", "SqsManagedSseEnabled").str() != "true" {
		t.Errorf("%s: SqsManagedSseEnabled must be true", q)
	}
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

// evalValue resolves the few intrinsics the template uses for switches: !If,
// !Ref to a parameter (its default), with conditions of !Equals and !Not.
func evalValue(t *testing.T, tpl node, n node) string {
	t.Helper()
	switch f, arg := n.fn(); f {
	case "":
		return n.str()
	case "Ref":
		p := tpl.get("Parameters", arg.str())
		if !p.ok() {
			t.Fatalf("!Ref %s: not a parameter", arg.str())
		}
		return p.get("Default").str()
	case "If":
		args := arg.items()
		if evalCondition(t, tpl, args[0].str()) {
			return evalValue(t, tpl, args[1])
		}
		return evalValue(t, tpl, args[2])
	default:
		t.Fatalf("cannot evaluate !%s", f)
	}
	return ""
}

func evalCondition(t *testing.T, tpl node, name string) bool {
	t.Helper()
	c := tpl.get("Conditions", name)
	if !c.ok() {
		t.Fatalf("no condition %s", name)
	}
	return evalCond(t, tpl, c)
}

func evalCond(t *testing.T, tpl node, c node) bool {
	t.Helper()
	switch f, arg := c.fn(); f {
	case "Equals":
		args := arg.items()
		return evalValue(t, tpl, args[0]) == evalValue(t, tpl, args[1])
	case "Not":
		return !evalCond(t, tpl, arg.items()[0])
	case "Condition":
		return evalCondition(t, tpl, arg.str())
	default:
		t.Fatalf("cannot evaluate condition !%s", f)
	}
	return false
}

func TestOutputs(t *testing.T) {
	tpl := loadTemplate(t)
	outputs := tpl.get("Outputs")
	// What a deployment hands its users: where to send requests, and where to
	// look when they fail.
	var refs []string
	for _, name := range outputs.keys() {
		v := outputs.get(name, "Value")
		if f, arg := v.fn(); f == "Sub" {
			refs = append(refs, arg.str())
		}
		refs = append(refs, v.ref(), v.getAtt())
	}
	all := strings.Join(refs, " ")
	for _, want := range []string{"RestApi", "HttpApi", "AssociateFunction.Arn", "DedupeTable", "EventBus", "AssociateFunctionAssociateNodes", "AssociateFunctionScheduled"} {
		if !strings.Contains(all, want) {
			t.Errorf("no output refers to %s", want)
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
