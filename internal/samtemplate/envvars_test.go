package samtemplate

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// envVarsFile, in events/, is the --env-vars file of the README's
// sam local invoke recipe. It is not an event.
const envVarsFile = "env.local.json"

// samLocalHost is the Docker host as a Lambda container sees it.
const samLocalHost = "http://host.docker.internal:"

// samLocalEndpoints are the endpoints the env-vars file gives the SDK: the
// ports make ssm-local and make local-tables listen on, on the Docker host.
var samLocalEndpoints = map[string]string{
	"AWS_ENDPOINT_URL_SSM":      samLocalHost + strconv.Itoa(SSMLocalPort),
	"AWS_ENDPOINT_URL_DYNAMODB": samLocalHost + strconv.Itoa(DynamoDBLocalPort),
	"AWS_ENDPOINT_URL_SQS":      samLocalHost + strconv.Itoa(MotoPort),
}

// TestEnvVarsFile holds events/env.local.json against template.yaml and the
// code. SAM CLI overrides only the variables a function's template
// declares: a name the template does not declare is dropped, and a declared
// one the file leaves out keeps the template's value, which for a resource
// is its logical ID ("DedupeTable"). So, for each function:
//   - the file sets exactly the variables the template declares, among them
//     every one the function reads (config.Variables, config.WorkerVariables,
//     config.AssociateVariables, config.ReaperVariables) and its endpoint variables (EndpointVariables), at host.docker.internal
//     on the ports of make ssm-local and make local-tables (moto for SQS);
//   - the tables are those make local-tables creates (LocalNames), the jobs
//     queue is its queue on moto, and there is no event bus;
//   - every other value is the template's default, so a local run has the
//     deployed settings, and the function's configuration loads from it.
func TestEnvVarsFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "events", envVarsFile))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]string // SAM wants strings
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("events/%s: %v (want {\"<function>\": {\"NAME\": \"value\"}})", envVarsFile, err)
	}
	var ids []string
	for id := range file {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if want := slices.Sorted(slices.Values(functionIDs)); !slices.Equal(ids, want) {
		t.Errorf("events/%s has entries %v, want one per function %v", envVarsFile, ids, want)
	}

	tpl := &Template{root: loadTemplate(t)}
	names := map[string]string{
		DedupeTable: LocalNames[DedupeTable],
		JobsTable:   LocalNames[JobsTable],
		// moto's queue URLs are <endpoint>/<account>/<name>, and it finds
		// the queue by its account and name.
		JobsQueue: samLocalEndpoints["AWS_ENDPOINT_URL_SQS"] + "/123456789012/" + LocalNames[JobsQueue],
		EventBus:  "",
	}
	for _, id := range functionIDs {
		got := file[id]
		env, err := tpl.Environment(id, names)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			want[k] = v
		}
		for _, name := range EndpointVariables(id) {
			want[name] = samLocalEndpoints[name]
		}
		for k, v := range want {
			if g, ok := got[k]; !ok {
				t.Errorf("%s: %s is missing; the template's value %q would stand", id, k, declaredValue(t, tpl.root, id, k))
			} else if g != v {
				t.Errorf("%s: %s = %q, want %q", id, k, g, v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %s is not declared in template.yaml, so sam local invoke drops it", id, k)
			}
		}
		for _, v := range functionVariables(id) {
			if _, ok := got[v.Name]; !ok {
				t.Errorf("%s: %s, which the function reads, is missing", id, v.Name)
			}
		}
		for _, name := range EndpointVariables(id) {
			if _, ok := got[name]; !ok {
				t.Errorf("%s: %s is missing: the SDK would call AWS", id, name)
			}
		}
		lookup := func(name string) (string, bool) { v, ok := got[name]; return v, ok }
		if id == ReaperFunction {
			if _, err := config.ReaperFromLookup(lookup); err != nil {
				t.Errorf("%s: the configuration does not load from events/%s: %v", id, envVarsFile, err)
			}
		} else if cfg, err := config.FromLookup(lookup); err != nil {
			t.Errorf("%s: the configuration does not load from events/%s: %v", id, envVarsFile, err)
		} else if !cfg.AsyncEnabled() {
			t.Errorf("%s: asynchronous jobs are off with events/%s", id, envVarsFile)
		}
	}
}

// declaredValue is the template's own value of a function's variable as SAM
// CLI resolves it, for messages.
func declaredValue(t *testing.T, tpl node, id, name string) string {
	t.Helper()
	v := tpl.get("Resources", id, "Properties", "Environment", "Variables", name)
	if r := v.ref(); r != "" && tpl.get("Resources", r).ok() {
		return r // SAM CLI makes the logical ID of !Ref to a resource
	}
	return evalValue(t, tpl, v)
}

// samLocalEnvironment is the environment sam local invoke gives function id
// with --env-vars events/env.local.json (samcli/local/lambdafn/env_vars.py):
// its own AWS_* variables (credentials and Region from the caller's
// profile, else these placeholders), then every variable the template
// declares, from the file when the file names it, else the template's value
// as SAM CLI resolves it. Names only the file holds are dropped.
func samLocalEnvironment(t *testing.T, tpl node, id string, file map[string]string) []string {
	t.Helper()
	env := []string{
		"AWS_SAM_LOCAL=true", "AWS_LAMBDA_FUNCTION_NAME=" + id,
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=defaultkey", "AWS_SECRET_ACCESS_KEY=defaultsecret",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + evalValue(t, tpl, tpl.get("Resources", id, "Properties", "Timeout")),
	}
	for _, k := range tpl.get("Resources", id, "Properties", "Environment", "Variables").keys() {
		v, ok := file[k]
		if !ok {
			v = declaredValue(t, tpl, id, k)
		}
		env = append(env, k+"="+v)
	}
	return env
}

// checkEnvVarsFileRuns runs both functions with the environment sam local
// invoke would give them with events/env.local.json, as far as this machine
// can: no container, so host.docker.internal:<port> (the Docker host as the
// container sees it, where make ssm-local and make local-tables listen) is
// taken to l's services instead. The associate function answers a request
// (the SSM endpoint and the claim table) and queues a job (the jobs table,
// the SQS endpoint and the queue URL); the worker runs the SQS sample.
func checkEnvVarsFileRuns(ctx context.Context, t *testing.T, l *Local) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "events", envVarsFile))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]map[string]string
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	tpl := loadTemplate(t)
	toLocal := strings.NewReplacer(
		samLocalEndpoints["AWS_ENDPOINT_URL_SSM"], l.Endpoint("ssm"),
		samLocalEndpoints["AWS_ENDPOINT_URL_DYNAMODB"], l.Endpoint("dynamodb"),
		samLocalEndpoints["AWS_ENDPOINT_URL_SQS"], l.Endpoint("sqs"),
	)
	start := func(id string) *testinfra.RIE {
		t.Helper()
		bootstrap, err := l.Bootstrap(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		env := samLocalEnvironment(t, tpl, id, file[id])
		for i, kv := range env {
			env[i] = toLocal.Replace(kv)
		}
		rie, err := testinfra.StartRIE(ctx, bootstrap, env)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s with events/%s:\n%s", id, envVarsFile, rie.Logs())
			}
			_ = rie.Close()
		})
		return rie
	}

	fn := start(AssociateFunction)
	answer, err := fn.Invoke(ctx, readEvent(t, "fanout.json"))
	var res report.Result
	if err != nil || json.Unmarshal(answer, &res) != nil || res.Summary.Requested == 0 || res.Summary.Failed+res.Summary.Unprocessed != 0 {
		t.Errorf("%s with events/%s: fanout.json answered %s (%v)", AssociateFunction, envVarsFile, answer, err)
	}
	answer, err = fn.Invoke(ctx, []byte(`{"Async": true, "Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": ["i-0e7f11e0000000001"]}`))
	var acc jobs.Accepted
	if err != nil || json.Unmarshal(answer, &acc) != nil || acc.JobID == "" || acc.State != jobs.StateQueued {
		t.Errorf("%s with events/%s: an async request answered %s (%v), want a QUEUED job", AssociateFunction, envVarsFile, answer, err)
	}

	worker := start(WorkerFunction)
	answer, err = worker.Invoke(ctx, readEvent(t, "sqs-chunk.json"))
	var resp struct {
		ErrorType         string `json:"errorType"`
		BatchItemFailures []events.SQSBatchItemFailure
	}
	if err != nil || json.Unmarshal(answer, &resp) != nil || resp.ErrorType != "" || len(resp.BatchItemFailures) != 0 {
		t.Errorf("%s with events/%s: sqs-chunk.json answered %s (%v)", WorkerFunction, envVarsFile, answer, err)
	}
	t.Logf("%-27s fanout %+v; async job %s %s; worker %s", "events/"+envVarsFile, res.Summary, acc.JobID, acc.State, bytes.TrimSpace(answer))
}
