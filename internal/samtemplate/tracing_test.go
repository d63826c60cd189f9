package samtemplate

// Tracing (issue 16): X-Ray on every function, switched by TracingMode, and
// the permissions it brings, which SAM adds.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestTracing(t *testing.T) {
	tpl := loadTemplate(t)
	p := tpl.get("Parameters", "TracingMode")
	if p.get("Default").str() != "Active" || !slices.Equal(p.get("AllowedValues").strs(), []string{"Active", "PassThrough"}) {
		t.Errorf("parameter TracingMode: want Default Active, AllowedValues [Active, PassThrough]")
	}
	for _, id := range functionIDs {
		fn := resource(t, tpl, id, "AWS::Serverless::Function")
		tr := fn.get("Properties", "Tracing")
		if !tr.ok() {
			tr = tpl.get("Globals", "Function", "Tracing")
		}
		if tr.ref() != "TracingMode" {
			t.Errorf("%s: Tracing is not !Ref TracingMode (on the function or in Globals)", id)
		}
		// OpenTelemetry: a collector layer only when one is given.
		if f, arg := fn.get("Properties", "Layers").fn(); f != "If" || len(arg.items()) != 3 || arg.items()[0].str() != "HasOtelCollectorLayer" {
			t.Errorf("%s: Layers is not !If [HasOtelCollectorLayer, [!Ref OtelCollectorLayerArn], !Ref AWS::NoValue]", id)
		}
		// The X-Ray permissions come from SAM (TestSamRolesWithTracing),
		// never from the template's own statements.
		for _, st := range policyStatements(t, tpl, id) {
			for _, a := range st.get("Action").strs() {
				if strings.HasPrefix(a, "xray:") {
					t.Errorf("%s grants %s itself; Tracing makes SAM attach AWSXrayWriteOnlyAccess", id, a)
				}
			}
		}
	}
}

// managedPolicy names an AWS managed policy as SAM writes it.
func managedPolicy(name string) string { return "arn:aws:iam::aws:policy/" + name }

// TestSamRolesWithTracing runs the SAM transform (aws-sam-translator, which
// cfn-lint brings) and checks what it attaches to each function's role
// beyond the template's statements (which TestPolicyIsLeastPrivilege
// checks): the basic execution role (logs), AWSXrayWriteOnlyAccess for
// Tracing (xray:PutTraceSegments, PutTelemetryRecords and the reads of the
// sampling rules: it writes traces and reads no trace), the SQS poller's
// role for a function with an SQS event, and the template's own
// EngineSsmPolicy. Skipped without the translator, except in CI.
func TestSamRolesWithTracing(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import samtranslator").Run()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 with aws-sam-translator (cfn-lint's dependency) is needed (CI=true): %v", err)
		}
		t.Skipf("python3 with aws-sam-translator: %v", err)
	}
	const script = `
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class Loader:
    def load(self): return {}
t = yaml_parse(open(sys.argv[1]).read())
for r in t["Resources"].values():
    if r["Type"] == "AWS::Serverless::Function":
        r["Properties"]["CodeUri"] = "s3://bucket/key"
out = transform(t, {}, Loader())
roles = {}
for k, v in out["Resources"].items():
    if v["Type"] == "AWS::IAM::Role":
        roles[k] = [a if isinstance(a, str) else "Ref " + a["Ref"] for a in v["Properties"].get("ManagedPolicyArns", [])]
print(json.dumps(roles))
`
	path := filepath.Join(root(t), "template.yaml")
	if p := os.Getenv("SAMTEMPLATE_FILE"); p != "" {
		path = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", script, path)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("SAM transform: %v\n%s", err, stderr)
	}
	var roles map[string][]string
	if err := json.Unmarshal(out, &roles); err != nil {
		t.Fatalf("SAM transform output: %v\n%s", err, out)
	}
	tpl := loadTemplate(t)
	for _, id := range functionIDs {
		want := []string{managedPolicy("service-role/AWSLambdaBasicExecutionRole"), managedPolicy("AWSXrayWriteOnlyAccess")}
		if len(eventsOfType(t, tpl, id, "SQS")) > 0 {
			want = append(want, managedPolicy("service-role/AWSLambdaSQSQueueExecutionRole"))
		}
		if slices.Contains(engineFunctions, id) {
			want = append(want, "Ref EngineSsmPolicy")
		}
		got := roles[id+"Role"]
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%sRole managed policies after the SAM transform:\n got %v\nwant %v", id, got, want)
		}
	}
}
