package testinfra_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

func TestProjectRoot(t *testing.T) {
	root, err := testinfra.ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("ProjectRoot %s has no go.mod: %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testinfra")); err != nil {
		t.Fatalf("ProjectRoot %s is not this module's root: %v", root, err)
	}
}

func TestCheckToolsNamesInstallCommand(t *testing.T) {
	err := testinfra.CheckTools("no-such-tool")
	if err == nil || !strings.Contains(err.Error(), "no-such-tool") {
		t.Fatalf("CheckTools(unknown) = %v", err)
	}
	t.Setenv("PATH", t.TempDir()) // no java, no go
	err = testinfra.CheckTools(testinfra.ToolJava)
	if err == nil || !strings.Contains(err.Error(), "scripts/install-tools.sh") {
		t.Fatalf("CheckTools(java) with empty PATH = %v, want an error naming scripts/install-tools.sh", err)
	}
}

func TestDynamoDBLocal(t *testing.T) {
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal, testinfra.ToolJava)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	start := time.Now()
	db, err := testinfra.StartDynamoDBLocal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("DynamoDB Local answered after %v at %s", time.Since(start).Round(time.Millisecond), db.Endpoint())
	defer func() {
		if t.Failed() {
			t.Logf("DynamoDB Local output:\n%s", db.Logs())
		}
	}()
	if !strings.HasPrefix(db.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("Endpoint() = %q, want http://127.0.0.1:PORT", db.Endpoint())
	}

	client := db.Client()
	_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("claims"),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String("claims"),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expiration"), Enabled: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.TableNames) != 1 || out.TableNames[0] != "claims" {
		t.Fatalf("ListTables = %v, want [claims]", out.TableNames)
	}

	// A conditional put that loses returns the existing item (what the claim
	// store relies on).
	item := map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "doc#i-0123456789abcdef0"}}
	put := &dynamodb.PutItemInput{
		TableName:                           aws.String("claims"),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(id)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if _, err := client.PutItem(ctx, put); err != nil {
		t.Fatal(err)
	}
	_, err = client.PutItem(ctx, put)
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || ccf.Item == nil {
		t.Fatalf("second conditional PutItem = %v, want ConditionalCheckFailedException with the old item", err)
	}

	// The environment for another process names the endpoint.
	if env := strings.Join(db.Env(), "\n"); !strings.Contains(env, "AWS_ENDPOINT_URL_DYNAMODB="+db.Endpoint()) {
		t.Errorf("Env() = %v, want AWS_ENDPOINT_URL_DYNAMODB", db.Env())
	}

	pid := jvmPID(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if alive(pid) {
		t.Errorf("JVM pid %d still alive after Close", pid)
	}
	if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }); err == nil {
		t.Error("ListTables after Close succeeded")
	}
}

// jvmPID finds the java process listening on db's port through /proc.
func jvmPID(t *testing.T, db *testinfra.DynamoDB) int {
	t.Helper()
	port := strconv.Itoa(db.Port())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i, a := range args {
			if a == "-port" && i+1 < len(args) && args[i+1] == port {
				return pid
			}
		}
	}
	t.Fatalf("no process with -port %s", port)
	return 0
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	// A zombie is dead but not yet reaped by its (new) parent.
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

func buildEcho(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bootstrap, err := testinfra.BuildBootstrap(ctx, "./internal/testinfra/testdata/echo", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bootstrap
}

func startEcho(t *testing.T, env []string, opts ...testinfra.Option) *testinfra.RIE {
	t.Helper()
	testinfra.RequireTools(t, testinfra.ToolRIE, testinfra.ToolGo)
	bootstrap := buildEcho(t)
	r, err := testinfra.StartRIE(context.Background(), bootstrap, env, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("emulator output:\n%s", r.Logs())
		}
	})
	return r
}

func TestRIEInvokeEcho(t *testing.T) {
	r := startEcho(t, []string{"ECHO_MARK=from-test"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	payload := `{"Entries":[{"InstanceId":"i-0471e04240EXAMPLE","Name":"AWS-UpdateSSMAgent"}]}`
	body, err := r.Invoke(ctx, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, body, []byte(payload)) {
		t.Fatalf("echo = %s, want %s", body, payload)
	}

	// The given environment, and the local AWS defaults, reach the function.
	for name, want := range map[string]string{"ECHO_MARK": "from-test", "AWS_REGION": testinfra.LocalRegion, "AWS_EC2_METADATA_DISABLED": "true"} {
		body, err = r.Invoke(ctx, []byte(`{"env":"`+name+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if got[name] != want {
			t.Errorf("function sees %s=%q, want %q", name, got[name], want)
		}
	}

	// A handler error is HTTP 200 with errorMessage.
	body, err = r.Invoke(ctx, []byte(`{"error":"boom"}`))
	if err != nil {
		t.Fatal(err)
	}
	var fail struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal(body, &fail); err != nil || fail.ErrorMessage != "boom" {
		t.Fatalf("error invoke = %s (%v), want errorMessage boom", body, err)
	}
	if !strings.HasPrefix(r.Addr(), "127.0.0.1:") || !strings.HasPrefix(r.RuntimeAPIAddr(), "127.0.0.1:") {
		t.Errorf("addresses %s, %s: want 127.0.0.1", r.Addr(), r.RuntimeAPIAddr())
	}
}

func TestRIEFunctionTimeout(t *testing.T) {
	r := startEcho(t, nil, testinfra.WithFunctionTimeout(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	// "block", not "sleep": a function that returns at its own deadline
	// races the emulator's timeout; one that ignores it never does.
	body, _ := r.Invoke(ctx, []byte(`{"block":"20s"}`))
	t.Logf("timed-out invoke: %s", body)
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("invoke with a 1 s function timeout took %v (body %s)", took, body)
	}
	// The emulator answers "Task timed out after 1.00 seconds", as Lambda does.
	if !strings.Contains(string(body), "Task timed out") {
		t.Fatalf("timed-out invoke body = %s, want Task timed out", body)
	}
	// The emulator starts a fresh function process for the next invocation.
	body, err := r.Invoke(ctx, []byte(`{"after":"timeout"}`))
	if err != nil || !strings.Contains(string(body), `"after"`) {
		t.Fatalf("invoke after a timeout = %s, %v", body, err)
	}
}

func TestRIEKill(t *testing.T) {
	r := startEcho(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body, err := r.Invoke(ctx, []byte(`{"env":"AWS_REGION"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	fnPID, err := strconv.Atoi(got["pid"])
	if err != nil || !alive(fnPID) {
		t.Fatalf("function pid %q not alive (%v)", got["pid"], err)
	}

	// Kill mid-invocation: the caller sees a failure, and nothing survives.
	done := make(chan error, 1)
	go func() {
		_, err := r.Invoke(ctx, []byte(`{"sleep":"20s"}`))
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("invoke in flight during Kill succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("invoke in flight did not end after Kill")
	}
	deadline := time.Now().Add(3 * time.Second)
	for alive(fnPID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(fnPID) {
		t.Errorf("function pid %d alive after Kill", fnPID)
	}
	if _, err := r.Invoke(ctx, []byte(`{}`)); err == nil {
		t.Error("Invoke after Kill succeeded")
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}
