// Package tracing traces invocations with OpenTelemetry, the instrumentation
// AWS recommends now that the X-Ray SDKs are in maintenance: a span for each
// invocation, and under it a span for each AWS call the invocation makes
// (SSM, DynamoDB, SQS, EventBridge), with X-Ray trace IDs and the X-Ray trace
// header Lambda passes in, exported over OTLP/HTTP with JSON encoding
// (http/json) where the deployer says.
//
// Tracing is off unless the standard OpenTelemetry variables ask for it
// (see Enabled). Off, nothing is built: no exporter, no tracer provider, no
// middleware in the AWS clients, and Wrap returns the handler itself, so an
// invocation costs exactly what it did without this package.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/contrib/propagators/aws/xray"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName names the tracer of the invocation spans.
const ScopeName = "github.com/ssm-association-batcher/ssm-association-batcher/internal/tracing"

// Tracing is a function's tracing: on (a tracer provider exporting spans)
// or off (the zero value, which does nothing).
type Tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	name   string // the invocation span's name
}

// Off is tracing switched off.
func Off() *Tracing { return &Tracing{} }

// On reports whether spans are recorded and exported.
func (t *Tracing) On() bool { return t != nil && t.tp != nil }

// Enabled reads the OpenTelemetry variables and reports whether they ask
// for traces: OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none switch
// tracing off; OTEL_TRACES_EXPORTER=otlp switches it on, and so does an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
// when OTEL_TRACES_EXPORTER is unset. Otherwise tracing is off. An exporter
// or protocol it cannot honour is an error, not a silent lack of traces: the
// protocol (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL)
// may be only http/json, which is also the default here.
func Enabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	on := false
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "otlp":
		on = true
	case "":
		on = getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp or none", exp)
	}
	if !on {
		return false, nil
	}
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	protocol := strings.TrimSpace(getenv(name))
	if protocol == "" {
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
		protocol = strings.TrimSpace(getenv(name))
	}
	if protocol != "" && protocol != Protocol {
		return false, fmt.Errorf("%s=%q: only %s (this build exports OTLP/HTTP with JSON, not protobuf or gRPC)", name, protocol, Protocol)
	}
	return true, nil
}

// FromEnv sets tracing up as the environment says (see Enabled): off, or
// an OTLP/HTTP JSON exporter configured by the standard OTEL_EXPORTER_OTLP_*
// variables, behind a batch span processor that Wrap flushes before each
// invocation returns. Sampling follows the caller's X-Ray decision
// (parent-based), or OTEL_TRACES_SAMPLER.
func FromEnv(ctx context.Context) (*Tracing, error) {
	on, err := Enabled(os.Getenv)
	if err != nil || !on {
		return Off(), err
	}
	exp, err := newExporter(os.Getenv)
	if err != nil {
		return Off(), fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	return New(sdktrace.WithBatcher(exp)), nil
}

// New is tracing on, with the span processors or exporters given in opts
// (tests pass sdktrace.WithSyncer of an in-memory exporter). Trace IDs are
// X-Ray's (their first 32 bits are the time), and the resource names the
// function from the Lambda environment and OTEL_RESOURCE_ATTRIBUTES.
func New(opts ...sdktrace.TracerProviderOption) *Tracing {
	name := os.Getenv("AWS_LAMBDA_FUNCTION_NAME")
	if name == "" {
		name = "local"
	}
	opts = append([]sdktrace.TracerProviderOption{
		sdktrace.WithIDGenerator(xray.NewIDGenerator()),
		sdktrace.WithResource(lambdaResource(name)),
	}, opts...)
	tp := sdktrace.NewTracerProvider(opts...)
	return &Tracing{tp: tp, tracer: tp.Tracer(ScopeName), name: name}
}

func lambdaResource(name string) *resource.Resource {
	attrs := []attribute.KeyValue{
		semconv.CloudProviderAWS, semconv.CloudPlatformAWSLambda, semconv.FaaSName(name),
	}
	if service := os.Getenv("OTEL_SERVICE_NAME"); service == "" {
		attrs = append(attrs, semconv.ServiceName(name))
	}
	if region := os.Getenv("AWS_REGION"); region != "" {
		attrs = append(attrs, semconv.CloudRegion(region))
	}
	if version := os.Getenv("AWS_LAMBDA_FUNCTION_VERSION"); version != "" {
		attrs = append(attrs, semconv.FaaSVersion(version))
	}
	// WithFromEnv last: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME win.
	res, err := resource.New(context.Background(), resource.WithTelemetrySDK(),
		resource.WithAttributes(attrs...), resource.WithFromEnv())
	if err != nil && res == nil {
		return resource.Empty()
	}
	return res
}

// propagator reads and writes the X-Ray trace header.
var propagator propagation.TextMapPropagator = xray.Propagator{}

// Instrument adds a span for every call of the clients built from cfg,
// under the span of the invocation, and passes the trace on in the
// X-Ray header of the request. Off, it leaves cfg alone.
func (t *Tracing) Instrument(cfg *aws.Config) {
	if !t.On() {
		return
	}
	cfg.APIOptions = append(cfg.APIOptions, t.awsCalls)
}

// Wrap returns h with a span around each invocation, a child of the X-Ray
// trace Lambda passes in (the X-Amzn-Trace-Id header of the invocation, in
// the context aws-lambda-go hands the handler, or _X_AMZN_TRACE_ID), and
// flushes the spans before the invocation returns, before Lambda may freeze
// the environment. Off, it returns h itself.
func (t *Tracing) Wrap(h lambda.Handler) lambda.Handler {
	if !t.On() {
		return h
	}
	return &traced{t: t, next: h}
}

// Handler is Wrap of a handler function of any shape lambda.Start takes.
func (t *Tracing) Handler(fn any) lambda.Handler {
	return t.Wrap(lambda.NewHandler(fn))
}

type traced struct {
	t    *Tracing
	next lambda.Handler
}

func (w *traced) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ctx = propagator.Extract(ctx, propagation.MapCarrier{"X-Amzn-Trace-Id": TraceHeader(ctx)})
	attrs := []attribute.KeyValue{}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		attrs = append(attrs, semconv.FaaSInvocationID(lc.AwsRequestID), semconv.AWSLambdaInvokedARN(lc.InvokedFunctionArn))
		if parts := strings.Split(lc.InvokedFunctionArn, ":"); len(parts) > 4 {
			attrs = append(attrs, semconv.CloudAccountID(parts[4]))
		}
	}
	ctx, span := w.t.tracer.Start(ctx, w.t.name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	out, err := w.next.Invoke(ctx, payload)
	if err != nil {
		setError(span, err) // its type, not its text, which may name entries
	}
	span.End()
	// The span processor exports in the background; Lambda may freeze the
	// environment as soon as this returns, so export now. A failed export
	// costs traces, never the invocation: the flush waits at most
	// flushLimit (and never past the invocation's deadline), not the
	// exporter's OTEL_EXPORTER_OTLP_TIMEOUT (10 s with its retries), which
	// a collector that is down would add to every invocation's duration
	// and bill. An export cut short goes on when the environment thaws.
	fctx, cancel := context.WithTimeout(ctx, flushBudget(ctx, time.Now()))
	defer cancel()
	if ferr := w.t.tp.ForceFlush(fctx); ferr != nil && !errors.Is(ferr, context.Canceled) {
		fmt.Fprintf(os.Stderr, "tracing: spans not exported: %v\n", ferr)
	}
	return out, err
}

// flushLimit is the longest an invocation waits for its spans' export.
// A collector layer on localhost answers in milliseconds.
const flushLimit = time.Second

// flushBudget is how long the end-of-invocation flush may take:
// flushLimit, or less when the invocation's deadline is nearer (less
// 50 ms to answer), so that a slow collector never makes it time out.
func flushBudget(ctx context.Context, now time.Time) time.Duration {
	budget := flushLimit
	if d, ok := ctx.Deadline(); ok {
		budget = min(budget, d.Sub(now)-50*time.Millisecond)
	}
	return max(budget, 0)
}

// TraceHeader is the X-Ray trace header of the invocation in ctx: the one
// aws-lambda-go puts in the context (each invocation's own, even when one
// environment runs several at once), else _X_AMZN_TRACE_ID.
func TraceHeader(ctx context.Context) string {
	//nolint:staticcheck // aws-lambda-go stores it under this string key
	if h, ok := ctx.Value("x-amzn-trace-id").(string); ok && h != "" {
		return h
	}
	return os.Getenv("_X_AMZN_TRACE_ID")
}

// Shutdown exports what is left and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.On() {
		return nil
	}
	return t.tp.Shutdown(ctx)
}
