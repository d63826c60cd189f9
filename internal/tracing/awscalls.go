package tracing

import (
	"context"
	"errors"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// awsCalls adds the tracing of one AWS client's calls to its middleware
// stack: a client span per operation (named Service.Operation, as X-Ray
// and OpenTelemetry's AWS instrumentations name it), covering the SDK's
// retries, and the X-Ray header on every attempt's request.
//
// It stands in for otelaws, which OpenTelemetry deprecated in September
// 2026 (no owner) and which links the S3 and SNS clients into every binary
// that uses it (+5 MB here) for attributes this project never records.
//
// Errors are recorded by their code (ThrottlingException, …), never their
// message: SSM's validation messages can quote an entry's parameters.
func (t *Tracing) awsCalls(stack *middleware.Stack) error {
	span := middleware.InitializeMiddlewareFunc("TracingSpan", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		service, operation := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
		ctx, span := t.tracer.Start(ctx, service+"."+operation, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(
				attribute.String("rpc.system", "aws-api"),
				attribute.String("rpc.service", service),
				attribute.String("rpc.method", operation),
				semconv.CloudRegion(awsmiddleware.GetRegion(ctx)),
			))
		defer span.End()
		out, md, err := next.HandleInitialize(ctx, in)
		if id, ok := awsmiddleware.GetRequestIDMetadata(md); ok {
			span.SetAttributes(semconv.AWSRequestID(id))
		}
		if resp, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response); ok {
			span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
		}
		if err != nil {
			setError(span, err)
		}
		return out, md, err
	})
	if err := stack.Initialize.Add(span, middleware.After); err != nil {
		return err
	}
	header := middleware.FinalizeMiddlewareFunc("TracingHeader", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok {
			propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
		}
		return next.HandleFinalize(ctx, in)
	})
	return stack.Finalize.Add(header, middleware.After)
}

// setError marks span failed with the error's code or type, not its text.
func setError(span trace.Span, err error) {
	kind := semconv.ErrorType(err).Value.AsString()
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		kind = apiErr.ErrorCode()
	}
	span.SetAttributes(semconv.ErrorTypeKey.String(kind))
	span.SetStatus(codes.Error, kind)
}
