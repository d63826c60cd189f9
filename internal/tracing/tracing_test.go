package tracing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		on      bool
		wantErr bool
	}{
		{env: nil},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://localhost:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true},
		// protobuf needs the official exporter, which links gRPC: refused
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, wantErr: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, wantErr: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, wantErr: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, wantErr: true},
		// a protocol alone, with no exporter or endpoint, asks for nothing
		{env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
	} {
		on, err := Enabled(func(k string) string { return tc.env[k] })
		if on != tc.on || (err != nil) != tc.wantErr {
			t.Errorf("%v: on %v, err %v; want on %v, error %v", tc.env, on, err, tc.on, tc.wantErr)
		}
		// a refused protocol names the variable that set it
		for k := range tc.env {
			if err != nil && strings.HasSuffix(k, "PROTOCOL") && !strings.Contains(err.Error(), k+"=") {
				t.Errorf("%v: error %q does not name %s", tc.env, err, k)
			}
		}
	}
}

func TestFromEnvOffByDefault(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"} {
		t.Setenv(k, "")
	}
	tr, err := FromEnv(context.Background())
	if err != nil || tr.On() {
		t.Fatalf("FromEnv = on %v, %v; want off", tr.On(), err)
	}
}

// TestOffCostsNothing: off, the AWS configuration gets no middleware and
// the handler is not wrapped, so an invocation allocates exactly what it
// did without tracing.
func TestOffCostsNothing(t *testing.T) {
	off := Off()
	cfg := aws.Config{}
	off.Instrument(&cfg)
	if len(cfg.APIOptions) != 0 {
		t.Errorf("off added %d API options", len(cfg.APIOptions))
	}
	raw := lambda.NewHandler(echo)
	if off.Wrap(raw) != raw {
		t.Error("off wrapped the handler")
	}
	ctx := context.Background()
	payload := []byte(`{"Entries":[]}`)
	base := testing.AllocsPerRun(200, func() { _, _ = raw.Invoke(ctx, payload) })
	built := off.Handler(echo) // once, at start, as main does
	perCall := testing.AllocsPerRun(200, func() { _, _ = built.Invoke(ctx, payload) })
	// Not more than without tracing, give or take one: under -race the
	// counts differ by one now and then, either way (17 without and 16 off,
	// 16 without and 17 off were both seen in make test). A span started
	// per invocation would cost many more.
	if perCall > base+1 {
		t.Errorf("off: %v allocations per invocation, %v without tracing", perCall, base)
	}
	t.Logf("allocations per invocation: %v without tracing, %v off", base, perCall)
}

func echo(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil }

func BenchmarkInvoke(b *testing.B) {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "r"})
	payload := []byte(`{"Entries":[]}`)
	for _, bc := range []struct {
		name string
		h    lambda.Handler
	}{
		{"untraced", lambda.NewHandler(echo)},
		{"off", Off().Handler(echo)},
		{"on", New(sdktrace.WithSyncer(tracetest.NewNoopExporter())).Handler(echo)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = bc.h.Invoke(ctx, payload)
			}
		})
	}
}

// fakeAWS answers SSM's CreateAssociationBatch and DynamoDB's PutItem and
// keeps the X-Ray header of each request.
type fakeAWS struct {
	mu      sync.Mutex
	headers map[string]string // X-Amz-Target → X-Amzn-Trace-Id
}

func (f *fakeAWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	target := r.Header.Get("X-Amz-Target")
	f.mu.Lock()
	f.headers[target] = r.Header.Get("X-Amzn-Trace-Id")
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "req-"+target)
	switch {
	case strings.HasSuffix(target, "CreateAssociationBatch"):
		_, _ = io.WriteString(w, `{"Successful":[],"Failed":[]}`)
	case strings.HasSuffix(target, "PutItem"):
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = io.WriteString(w, `{}`)
	default:
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"ValidationException","message":"Parameters commands: echo s3cr3t is not valid"}`)
	}
}

const (
	incomingTrace  = "5759e988bd862e3fe1be46a994272793"
	incomingParent = "53995c3f42cd8ad8"
	incomingHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1"
)

// invoke runs handler under tr as Lambda would: the trace header and the
// Lambda context in the context.
func invoke(t *testing.T, tr *Tracing, fn any) error {
	t.Helper()
	//nolint:staticcheck // the string key aws-lambda-go uses
	ctx := context.WithValue(context.Background(), "x-amzn-trace-id", incomingHeader)
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       "c6af9ac6-7b61-11e6-9a41-93e812345678",
		InvokedFunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:associate",
	})
	_, err := tr.Handler(fn).Invoke(ctx, []byte(`{}`))
	return err
}

// TestSpansUnderTheInvocation: one invocation yields its span, a child of
// the X-Ray trace Lambda passed in, and under it one span per SSM and
// DynamoDB call, whose requests carry the trace on in their X-Ray header.
func TestSpansUnderTheInvocation(t *testing.T) {
	fake := &fakeAWS{headers: map[string]string{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	exp := tracetest.NewInMemoryExporter()
	tr := New(sdktrace.WithSyncer(exp))
	defer func() { _ = tr.Shutdown(context.Background()) }()

	cfg := aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		BaseEndpoint: aws.String(srv.URL),
	}
	tr.Instrument(&cfg)
	ssmc, ddb := awsclient.SSM(cfg), awsclient.DynamoDB(cfg)

	err := invoke(t, tr, func(ctx context.Context, _ json.RawMessage) (string, error) {
		if _, err := ssmc.CreateAssociationBatch(ctx, &ssm.CreateAssociationBatchInput{
			Entries: []ssmtypes.CreateAssociationBatchRequestEntry{{Name: aws.String("AWS-RunPatchBaseline")}},
		}); err != nil {
			return "", err
		}
		_, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String("claims"),
			Item:      map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "k"}},
		})
		return "ok", err
	})
	if err != nil {
		t.Fatal(err)
	}

	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	inv, ok := byName["local"]
	if !ok || len(spans) != 3 {
		t.Fatalf("want the invocation span and two calls, got %v", names(spans))
	}
	if got := inv.SpanContext.TraceID().String(); got != incomingTrace {
		t.Errorf("invocation trace ID %s, want the X-Ray trace %s", got, incomingTrace)
	}
	if got := inv.Parent.SpanID().String(); got != incomingParent || !inv.Parent.IsRemote() {
		t.Errorf("invocation parent %s (remote %v), want Lambda's segment %s", got, inv.Parent.IsRemote(), incomingParent)
	}
	if inv.SpanKind != trace.SpanKindServer {
		t.Errorf("invocation span kind %v", inv.SpanKind)
	}
	if !hasAttr(inv, "faas.invocation_id", "c6af9ac6-7b61-11e6-9a41-93e812345678") || !hasAttr(inv, "cloud.account.id", "123456789012") {
		t.Errorf("invocation attributes %v", inv.Attributes)
	}
	for _, call := range []string{"SSM.CreateAssociationBatch", "DynamoDB.PutItem"} {
		s, ok := byName[call]
		if !ok {
			t.Errorf("no span %s among %v", call, names(spans))
			continue
		}
		if s.Parent.SpanID() != inv.SpanContext.SpanID() || s.SpanContext.TraceID() != inv.SpanContext.TraceID() {
			t.Errorf("%s is not a child of the invocation span", call)
		}
		if s.SpanKind != trace.SpanKindClient {
			t.Errorf("%s kind %v", call, s.SpanKind)
		}
	}
	// The header X-Ray reads: the trace, the calling span as Parent (16
	// hex digits), and the sampling decision.
	xrayHeader := regexp.MustCompile(`^Root=1-5759e988-bd862e3fe1be46a994272793;Parent=[0-9a-f]{16};Sampled=1$`)
	for target, h := range fake.headers {
		if !xrayHeader.MatchString(h) {
			t.Errorf("%s sent X-Amzn-Trace-Id %q, want the invocation's trace in X-Ray's format", target, h)
		}
	}
	if len(fake.headers) != 2 {
		t.Errorf("requests seen: %v", fake.headers)
	}
}

// TestNewTraceHasXRayID: without an incoming header the invocation starts a
// trace whose ID X-Ray accepts (its first 8 hex digits are the time).
func TestNewTraceHasXRayID(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := New(sdktrace.WithSyncer(exp))
	t.Setenv("_X_AMZN_TRACE_ID", "")
	if _, err := tr.Handler(echo).Invoke(context.Background(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("spans %v", names(spans))
	}
	id := spans[0].SpanContext.TraceID().String()
	if spans[0].Parent.IsValid() || len(id) != 32 {
		t.Errorf("trace ID %s, parent %v: want a new X-Ray trace", id, spans[0].Parent)
	}
	// X-Ray refuses a trace whose first 32 bits are not its start time, in
	// seconds (it keeps traces for 30 days by them).
	if sec, err := strconv.ParseInt(id[:8], 16, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("trace ID %s: its first 8 hex digits are not the time now (%v)", id, err)
	}
}

// TestErrorMarksTheSpanAndStillFlushes: a failed invocation's span says so,
// by the error's type and not its text (which may name entries), and is
// exported before the invocation returns.
func TestErrorMarksTheSpanAndStillFlushes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := New(sdktrace.WithBatcher(exp)) // exported only by the flush
	boom := errors.New("boom")
	err := invoke(t, tr, func(context.Context) error { return boom })
	if err == nil {
		t.Fatal("error lost")
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code != codes.Error || strings.Contains(fmt.Sprint(spans[0]), "boom") {
		t.Fatalf("spans after return: %+v", spans)
	}
}

// TestFailedCallSpanNamesTheCode: a failed AWS call's span carries SSM's
// error code, never its message, which can quote an entry's parameters.
func TestFailedCallSpanNamesTheCode(t *testing.T) {
	srv := httptest.NewServer(&fakeAWS{headers: map[string]string{}})
	defer srv.Close()
	exp := tracetest.NewInMemoryExporter()
	tr := New(sdktrace.WithSyncer(exp))
	cfg := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	tr.Instrument(&cfg)
	_, err := awsclient.SSM(cfg).DescribeAssociation(context.Background(), &ssm.DescribeAssociationInput{AssociationId: aws.String("a")})
	if err == nil {
		t.Fatal("want the fake's ValidationException")
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "SSM.DescribeAssociation" {
		t.Fatalf("spans %v", names(spans))
	}
	s := spans[0]
	if s.Status.Code != codes.Error || s.Status.Description != "ValidationException" || !hasAttr(s, "error.type", "ValidationException") {
		t.Errorf("status %+v, attributes %v", s.Status, s.Attributes)
	}
	if strings.Contains(fmt.Sprintf("%+v", s), "s3cr3t") {
		t.Errorf("the error message reached the span: %+v", s)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func hasAttr(s tracetest.SpanStub, key, value string) bool {
	for _, a := range s.Attributes {
		if string(a.Key) == key && a.Value.Emit() == value {
			return true
		}
	}
	return false
}

// TestFlushIsCapped: with the collector stuck, the end-of-invocation flush
// gives up after flushLimit instead of the exporter's 10 s timeout (and
// retries), which every invocation would otherwise wait and be billed for.
func TestFlushIsCapped(t *testing.T) {
	exp, err := newExporter(env{"OTEL_EXPORTER_OTLP_ENDPOINT": stuckCollector(t)}.get) // default timeout: 10 s
	if err != nil {
		t.Fatal(err)
	}
	tr := New(sdktrace.WithBatcher(exp))
	start := time.Now()
	if err := invoke(t, tr, echo); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > flushLimit+time.Second {
		t.Errorf("the invocation took %v against a stuck collector, want about flushLimit (%v)", took, flushLimit)
	}
}

func TestFlushBudget(t *testing.T) {
	now := time.Unix(1000, 0)
	at := func(left time.Duration) context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), now.Add(left))
		t.Cleanup(cancel)
		return ctx
	}
	for _, c := range []struct {
		ctx  context.Context
		want time.Duration
	}{
		{context.Background(), flushLimit},
		{at(time.Minute), flushLimit},
		{at(300 * time.Millisecond), 250 * time.Millisecond},
		{at(20 * time.Millisecond), 0},
		{at(-time.Second), 0},
	} {
		if got := flushBudget(c.ctx, now); got != c.want {
			d, _ := c.ctx.Deadline()
			t.Errorf("deadline in %v: budget %v, want %v", d.Sub(now), got, c.want)
		}
	}
}
