package samtemplate_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// TestSampleEventsThroughTheFunction deploys the stack as far as this machine
// can: the claim table is created from template.yaml's definition in DynamoDB
// Local, the function (built as sam build builds it, for this machine's
// architecture) runs under the Lambda Runtime Interface Emulator with the
// environment the template gives it at its default parameters, SSM is the
// ssmlocal emulator, and every sample event in events/ is invoked as its
// trigger would deliver it.
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
	s := <-dbc
	if s.err != nil {
		t.Fatal(s.err)
	}
	defer s.db.Close()
	if buildErr != nil {
		t.Fatal(buildErr)
	}

	const table = "ssm-association-batcher-DedupeTable-E2E"
	createTableFromTemplate(ctx, t, tpl, s.db.Client(), table)

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
	env = append(env, templateEnvironment(t, tpl, table)...)
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

	for _, name := range []string{
		"direct.json", "fanout.json", "schedule.json", "eventbridge-associate.json",
		"api-rest-post.json", "api-http-post.json", "api-rest-malformed.json",
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
}

// templateEnvironment is the function's environment as template.yaml sets it
// with the default parameters.
func templateEnvironment(t *testing.T, tpl node, table string) []string {
	t.Helper()
	vars := tpl.get("Resources", functionID, "Properties", "Environment", "Variables")
	var env []string
	for _, v := range config.Variables {
		value := vars.get(v.Name)
		if v.Name == "DEDUPE_TABLE" {
			env = append(env, v.Name+"="+table)
			continue
		}
		env = append(env, v.Name+"="+evalValue(t, tpl, value))
	}
	return env
}

// createTableFromTemplate creates the claim table as CloudFormation would
// from the DedupeTable resource: key schema, attribute definitions, billing
// mode and TTL.
func createTableFromTemplate(ctx context.Context, t *testing.T, tpl node, client *dynamodb.Client, name string) {
	t.Helper()
	props := tpl.get("Resources", "DedupeTable", "Properties")
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
		t.Fatalf("create the table from template.yaml: %v", err)
	}
	ttl := props.get("TimeToLiveSpecification")
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
			AttributeName: aws.String(ttl.get("AttributeName").str()),
			Enabled:       aws.Bool(strings.EqualFold(ttl.get("Enabled").str(), "true")),
		},
	}); err != nil {
		t.Fatalf("enable TTL from template.yaml: %v", err)
	}
}
