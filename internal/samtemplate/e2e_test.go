package samtemplate_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// TestSampleEventsThroughTheFunction deploys the stack as far as this machine
// can: the claim and jobs tables are created from template.yaml's
// definitions in DynamoDB Local, the functions (built as sam build builds
// them, for this machine's architecture) run under the Lambda Runtime
// Interface Emulator with the environment the template gives them at its
// default parameters, SSM is the ssmlocal emulator, and every sample event in
// events/ is invoked as its trigger would deliver it. There is no queue or
// bus: no sample becomes a job (the status sample asks for a job that does
// not exist), and the worker's sample chunk belongs to a job the test
// records first.
func TestSampleEventsThroughTheFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: builds the function and starts DynamoDB Local")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal, testinfra.ToolJava, testinfra.ToolRIE, testinfra.ToolGo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tpl := loadTemplate(t)

	// Build first: it is the slow part when the build cache is cold, and
	// DynamoDB Local starts meanwhile.
	type started struct {
		db  *testinfra.DynamoDB
		err error
	}
	dbc := make(chan started, 1)
	go func() {
		db, err := testinfra.StartDynamoDBLocal(ctx)
		dbc <- started{db, err}
	}()
	bootstrap, buildErr := testinfra.BuildBootstrap(ctx, "./functions/associate", t.TempDir())
	workerBootstrap, workerBuildErr := testinfra.BuildBootstrap(ctx, "./functions/worker", t.TempDir())
	s := <-dbc
	if s.err != nil {
		t.Fatal(s.err)
	}
	defer s.db.Close()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if workerBuildErr != nil {
		t.Fatal(workerBuildErr)
	}

	names := map[string]string{
		"DedupeTable": "ssm-association-batcher-DedupeTable-E2E",
		"JobsTable":   "ssm-association-batcher-JobsTable-E2E",
		// Never called: no sample becomes a job.
		"JobsQueue": "http://127.0.0.1:9/123456789012/ssm-association-batcher-JobsQueue-E2E",
		// No bus: the worker announces nothing.
		"EventBus": "",
	}
	createTableFromTemplate(ctx, t, tpl, s.db.Client(), "DedupeTable", names["DedupeTable"])
	createTableFromTemplate(ctx, t, tpl, s.db.Client(), "JobsTable", names["JobsTable"])

	emu := ssmlocal.New(ssmlocal.DefaultOptions())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	env := append(s.db.Env(),
		"AWS_ENDPOINT_URL_SSM=http://"+ln.Addr().String(),
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60",
		"AWS_LAMBDA_FUNCTION_NAME=AssociateFunction",
	)
	workerEnv := slices.Clone(env)
	env = append(env, templateEnvironment(t, tpl, functionID, names)...)
	rie, err := testinfra.StartRIE(ctx, bootstrap, env)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = rie.Close()
		if t.Failed() {
			t.Logf("function output:\n%s", rie.Logs())
		}
	}()

	// The dry run first: it plans the update sample's nodes, and writes
	// nothing; then the update sample creates them (nothing to update yet).
	dry, err := rie.Invoke(ctx, readEvent(t, "dry-run.json"))
	if err != nil {
		t.Fatal(err)
	}
	var plan report.Plan
	if err := json.Unmarshal(dry, &plan); err != nil || !plan.DryRun || len(plan.Actions) != 3 || plan.Summary.Create != 3 || plan.Summary.Calls != 1 {
		t.Errorf("dry-run.json: %s (%v)", dry, err)
	}
	if st := emu.Stats(); st.Calls != 0 {
		t.Errorf("dry-run.json: %d SSM calls, want none", st.Calls)
	}
	t.Logf("%-27s %+v", "dry-run.json", plan.Summary)

	for _, name := range []string{
		"direct.json", "fanout.json", "schedule.json", "eventbridge-associate.json",
		"api-rest-post.json", "api-http-post.json", "api-rest-malformed.json", statusEvent, "update.json",
	} {
		source := eventFiles[name]
		body, err := rie.Invoke(ctx, readEvent(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var answer struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
			StatusCode   int    `json:"statusCode"`
			Body         string `json:"body"`
			Summary      *struct{ Requested, Successful, Failed, Deduplicated, Unprocessed int }
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			t.Fatalf("%s: answer %s: %v", name, body, err)
		}
		if answer.ErrorType != "" {
			t.Errorf("%s: function error %s: %s", name, answer.ErrorType, answer.ErrorMessage)
			continue
		}
		switch {
		case name == statusEvent:
			// A job that does not exist: 404, saying so.
			var msg struct{ Message string }
			if answer.StatusCode != http.StatusNotFound {
				t.Errorf("%s: statusCode %d, want 404; answer %s", name, answer.StatusCode, body)
			} else if err := json.Unmarshal([]byte(answer.Body), &msg); err != nil || !strings.Contains(msg.Message, "no job") {
				t.Errorf("%s: body %q does not say there is no such job", name, answer.Body)
			}
			t.Logf("%-27s %d %s", name, answer.StatusCode, answer.Body)
			continue
		case name == "api-rest-malformed.json":
			if answer.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: statusCode %d, want 400; answer %s", name, answer.StatusCode, body)
			}
			var msg struct{ Message string }
			if err := json.Unmarshal([]byte(answer.Body), &msg); err != nil || !strings.Contains(msg.Message, "JSON") {
				t.Errorf("%s: body %q does not say the request is not valid JSON", name, answer.Body)
			}
		case source == "api-rest" || source == "api-http":
			if answer.StatusCode != http.StatusOK {
				t.Errorf("%s: statusCode %d, want 200; answer %s", name, answer.StatusCode, body)
			}
			if err := json.Unmarshal([]byte(answer.Body), &answer); err != nil || answer.Summary == nil {
				t.Errorf("%s: body %q is not a result", name, answer.Body)
			}
		}
		if name == "api-rest-malformed.json" {
			continue
		}
		if answer.Summary == nil {
			t.Errorf("%s: no Summary in %s", name, body)
			continue
		}
		sum := *answer.Summary
		if sum.Requested == 0 || sum.Failed != 0 || sum.Unprocessed != 0 || sum.Successful+sum.Deduplicated != sum.Requested {
			t.Errorf("%s: summary %+v, want every entry successful or deduplicated", name, sum)
		}
		t.Logf("%-27s %+v", name, sum)
	}

	runWorkerSample(ctx, t, tpl, s.db, workerBootstrap, append(workerEnv, "AWS_LAMBDA_FUNCTION_NAME="+workerID), names)
}

// runWorkerSample records the job of events/sqs-chunk.json, runs the worker
// on the sample under the RIE, and checks the chunk finished the job.
func runWorkerSample(ctx context.Context, t *testing.T, tpl node, db *testinfra.DynamoDB, bootstrap string, env []string, names map[string]string) {
	t.Helper()
	payload := readEvent(t, "sqs-chunk.json")
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	store := jobs.NewStore(db.Client(), names["JobsTable"], time.Hour)
	requested := 0
	var jobID string
	for _, r := range ev.Records {
		var c jobs.Chunk
		if err := json.Unmarshal([]byte(r.Body), &c); err != nil {
			t.Fatal(err)
		}
		jobID, requested = c.JobID, requested+len(c.Entries)
	}
	if err := store.Create(ctx, jobID, requested, len(ev.Records), report.Result{}); err != nil {
		t.Fatalf("record the sample's job: %v", err)
	}

	rie, err := testinfra.StartRIE(ctx, bootstrap, append(env, templateEnvironment(t, tpl, workerID, names)...))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = rie.Close()
		if t.Failed() {
			t.Logf("worker output:\n%s", rie.Logs())
		}
	}()
	body, err := rie.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("sqs-chunk.json: %v", err)
	}
	var resp struct {
		ErrorType         string `json:"errorType"`
		BatchItemFailures []events.SQSBatchItemFailure
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.ErrorType != "" || resp.BatchItemFailures == nil && !strings.Contains(string(body), "batchItemFailures") {
		t.Fatalf("sqs-chunk.json: answer %s, want an SQS batch response", body)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("sqs-chunk.json: batchItemFailures %v, want none", resp.BatchItemFailures)
	}
	m, err := store.Meta(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != jobs.StateSucceeded || m.ChunksDone != len(ev.Records) || m.Successful+m.Deduplicated != requested {
		page, _ := store.Outcomes(ctx, jobID, 10, "")
		outcomes, _ := json.Marshal(page.Outcomes)
		t.Errorf("sqs-chunk.json: job after the worker %+v, want SUCCEEDED with every entry successful or deduplicated; outcomes %s", m, outcomes)
	}
	t.Logf("%-27s %s %+v", "sqs-chunk.json", m.State, m.Counts)
}

// templateEnvironment is a function's environment as template.yaml sets it
// with the default parameters; names stand for the resources (by logical ID)
// the variables refer to.
func templateEnvironment(t *testing.T, tpl node, id string, names map[string]string) []string {
	t.Helper()
	vars := tpl.get("Resources", id, "Properties", "Environment", "Variables")
	var env []string
	for _, v := range functionVariables(id) {
		value := vars.get(v.Name)
		if r := value.ref(); r != "" && tpl.get("Resources", r).ok() {
			name, ok := names[r]
			if !ok {
				t.Fatalf("%s %s refers to %s, which the test does not stand up", id, v.Name, r)
			}
			env = append(env, v.Name+"="+name)
			continue
		}
		env = append(env, v.Name+"="+evalValue(t, tpl, value))
	}
	return env
}

// createTableFromTemplate creates a table as CloudFormation would from its
// resource (DedupeTable, JobsTable): key schema, attribute definitions,
// billing mode and TTL.
func createTableFromTemplate(ctx context.Context, t *testing.T, tpl node, client *dynamodb.Client, id, name string) {
	t.Helper()
	props := resource(t, tpl, id, "AWS::DynamoDB::Table").get("Properties")
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: ddbtypes.BillingMode(props.get("BillingMode").str()),
	}
	for _, d := range props.get("AttributeDefinitions").items() {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(d.get("AttributeName").str()),
			AttributeType: ddbtypes.ScalarAttributeType(d.get("AttributeType").str()),
		})
	}
	for _, k := range props.get("KeySchema").items() {
		in.KeySchema = append(in.KeySchema, ddbtypes.KeySchemaElement{
			AttributeName: aws.String(k.get("AttributeName").str()),
			KeyType:       ddbtypes.KeyType(k.get("KeyType").str()),
		})
	}
	if _, err := client.CreateTable(ctx, in); err != nil {
		t.Fatalf("create %s from template.yaml: %v", id, err)
	}
	ttl := props.get("TimeToLiveSpecification")
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
			AttributeName: aws.String(ttl.get("AttributeName").str()),
			Enabled:       aws.Bool(strings.EqualFold(ttl.get("Enabled").str(), "true")),
		},
	}); err != nil {
		t.Fatalf("enable TTL of %s from template.yaml: %v", id, err)
	}
}
