package tracing_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/handler"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/tracing"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/wiring"
)

// TestInvocationTracedEndToEnd runs the associate function as main wires it
// (wiring.Load with the tracing's Instrument, the real handler, the engine
// and its clients, endpoints from AWS_ENDPOINT_URL_*) against the SSM
// emulator and DynamoDB Local, with an in-memory exporter: one invocation
// yields its span in the incoming X-Ray trace and, under it, the
// CreateAssociationBatch call and the claim writes.
func TestInvocationTracedEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs DynamoDB Local")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ddb, err := testinfra.StartDynamoDBLocal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ddb.Close() }()
	if _, err := ddb.Client().CreateTable(ctx, dedupe.TableDefinition("claims")); err != nil {
		t.Fatal(err)
	}
	emu := httptest.NewServer(ssmlocal.New(ssmlocal.Options{}))
	defer emu.Close()
	for _, kv := range append(ddb.Env(), "AWS_ENDPOINT_URL_SSM="+emu.URL, "DEDUPE_TABLE=claims", "CALLS_PER_SECOND=0") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}

	exp := tracetest.NewInMemoryExporter()
	tr := tracing.New(sdktrace.WithBatcher(exp)) // exported by the flush at the end of the invocation
	deps, err := wiring.Load(ctx, tr.Instrument)
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	h := handler.New(deps.Engine(0, nil), deps.Config, slog.New(slog.DiscardHandler), &metrics)

	//nolint:staticcheck // the string key aws-lambda-go uses
	ictx := context.WithValue(ctx, "x-amzn-trace-id", "Root=1-6a1b2c3d-0123456789abcdef01234567;Parent=1122334455667788;Sampled=1")
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	body := `{"Entries":[{"Name":"AWS-RunPatchBaseline","Targets":[{"Key":"InstanceIds","Values":["i-0123456789abcdef0"]}],"Parameters":{"Operation":["Scan"]}}]}`
	out, err := tr.Handler(h.Invoke).Invoke(ictx, []byte(body))
	if err != nil || !strings.Contains(string(out), `"Successful":[{`) {
		t.Fatalf("invocation: %s, %v", out, err)
	}

	spans := exp.GetSpans()
	var inv tracetest.SpanStub
	calls := map[string]int{}
	for _, s := range spans {
		if s.Name == "local" {
			inv = s
		}
	}
	if got := inv.SpanContext.TraceID().String(); got != "6a1b2c3d0123456789abcdef01234567" {
		t.Fatalf("invocation span trace %q, want the incoming X-Ray trace; spans %v", got, spanNames(spans))
	}
	if inv.Parent.SpanID().String() != "1122334455667788" {
		t.Errorf("invocation parent %s, want Lambda's segment from the header", inv.Parent.SpanID())
	}
	for _, s := range spans {
		if s.Name == "local" {
			continue
		}
		if s.Parent.SpanID() != inv.SpanContext.SpanID() || s.SpanContext.TraceID() != inv.SpanContext.TraceID() {
			t.Errorf("span %s is not under the invocation span", s.Name)
		}
		calls[s.Name]++
	}
	if calls["SSM.CreateAssociationBatch"] != 1 {
		t.Errorf("SSM spans: %v", calls)
	}
	dynamo := 0
	for name, n := range calls {
		if strings.HasPrefix(name, "DynamoDB.") {
			dynamo += n
		}
	}
	if dynamo == 0 {
		t.Errorf("no DynamoDB span: %v", calls)
	}
	t.Logf("spans under the invocation: %v", calls)
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
