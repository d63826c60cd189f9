// Package handler is the Lambda entry point's logic: it decodes whatever
// event arrived, runs the request through the engine within the right time
// budget, and answers in the shape the trigger expects.
package handler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/metrics"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// runner is the engine as the handler uses it.
type runner interface {
	Run(context.Context, associate.Job) (report.Result, error)
	DryRun(context.Context, *request.Request) (report.Plan, error)
}

// Handler answers invocations.
type Handler struct {
	jobs      submitter // nil: asynchronous jobs are off
	jobStatus jobReader
	readers   map[string]bool // principalKey of the job readers
	engine    runner
	cfg       config.Config
	log       *slog.Logger
	metrics   io.Writer
	now       func() time.Time
}

// New returns a handler. metrics receives one EMF line per invocation
// (os.Stdout in Lambda).
func New(engine runner, cfg config.Config, log *slog.Logger, metrics io.Writer) *Handler {
	return &Handler{engine: engine, cfg: cfg, log: log, metrics: metrics, now: time.Now}
}

// noDeadline is the budget assumed when the context has no deadline, which
// only happens outside Lambda: the Lambda maximum.
const noDeadline = 15 * time.Minute

// Invoke handles one event of any supported trigger. A panic is answered
// like any other failure of the function (see panicked), not with its
// message and stack, which Lambda would hand to the invoker.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (out any, err error) {
	var inv event.Invocation
	defer func() {
		if p := recover(); p != nil {
			out, err = h.panicked(ctx, inv, p)
		}
	}()
	return h.invoke(ctx, payload, &inv)
}

// invoke is Invoke; it sets *decoded as soon as the event is decoded, so
// that a panic is answered in the trigger's shape.
func (h *Handler) invoke(ctx context.Context, payload json.RawMessage, decoded *event.Invocation) (any, error) {
	start := h.now()
	inv, err := event.Decode(payload)
	*decoded = inv
	if err != nil {
		return h.reject(ctx, inv, err)
	}
	if inv.JobID != "" {
		return h.status(ctx, inv)
	}
	req, err := request.Parse(inv.Body, request.Limits{MaxEntries: h.cfg.MaxEntries})
	if err != nil {
		return h.reject(ctx, inv, err)
	}

	if req.DryRun {
		return h.dryRun(ctx, inv, req)
	}

	lambdaEnd, ok := ctx.Deadline()
	if !ok {
		lambdaEnd = start.Add(noDeadline)
	}
	end := lambdaEnd
	if inv.IsAPI() && start.Add(h.cfg.APITimeout).Before(end) {
		end = start.Add(h.cfg.APITimeout)
	}
	if h.wantsJob(req, end.Sub(start)) {
		return h.submit(ctx, inv, req)
	}
	lease := lambdaEnd
	if e := end.Add(leaseMargin); e.Before(lease) {
		lease = e
	}
	job := associate.Job{
		Request:    req,
		Owner:      owner(ctx),
		Deadline:   end.Add(-wrapUp(end.Sub(start))),
		LeaseUntil: lease,
		AnswerBy:   end,
	}
	res, err := h.engine.Run(ctx, job)
	h.observe(ctx, inv, res, err, h.now().Sub(start))
	if err != nil {
		// The cause (with endpoints and keys) is in the log line above.
		if errors.Is(err, associate.ErrUnavailable) {
			return h.serverError(ctx, inv, http.StatusServiceUnavailable,
				"a dependency (DynamoDB or SSM) could not be reached and nothing was done; send the request again",
				&UnavailableError{Cause: err})
		}
		return h.serverError(ctx, inv, http.StatusInternalServerError, internalMessage, &InternalError{Cause: err})
	}
	out := res.Redacted()
	if inv.IsAPI() {
		return h.respond(inv, http.StatusOK, out, nil)
	}
	if out.Retryable() {
		// Returning an error hands the event to Lambda's own retries and
		// dead-letter queue; the dedupe table makes the retry safe.
		return nil, &IncompleteError{Summary: out.Summary}
	}
	return out, nil
}

// dryRun answers the plan of a request: nothing is sent, claimed or queued.
func (h *Handler) dryRun(ctx context.Context, inv event.Invocation, req *request.Request) (any, error) {
	p, err := h.engine.DryRun(ctx, req)
	if err != nil {
		h.log.ErrorContext(ctx, "dry run failed", "caller", inv.Caller.String(), "error", err.Error())
		return h.serverError(ctx, inv, http.StatusServiceUnavailable,
			"the dedupe table could not be read; nothing was done, send the request again", &UnavailableError{Cause: err})
	}
	h.log.InfoContext(ctx, "dry run", "caller", inv.Caller.String(), "requested", p.Summary.Requested, "create", p.Summary.Create, "update", p.Summary.Update,
		"skip", p.Summary.Skip, "fail", p.Summary.Fail, "calls", p.Summary.Calls)
	out := p.Redacted()
	if inv.IsAPI() {
		return h.respond(inv, http.StatusOK, out, nil)
	}
	return out, nil
}

// leaseMargin is how long claims outlive the budget of the work: an API
// request's claims end soon after its answer is due, not with the Lambda.
const leaseMargin = 5 * time.Second

// wrapUp is the time kept after the last call for releasing claims and
// answering: a tenth of the budget, between 200 ms and 2 s.
func wrapUp(budget time.Duration) time.Duration {
	return min(max(budget/10, 200*time.Millisecond), 2*time.Second)
}

// owner names this invocation in the claim table. The request ID alone is
// not enough: Lambda reuses it when it retries an asynchronous event, and a
// retry must not mistake the failed attempt's claims for its own.
func owner(ctx context.Context) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	id := "local"
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		id = lc.AwsRequestID
	}
	return id + "/" + hex.EncodeToString(b[:])
}

// observe writes the invocation's summary log line and its metrics. Neither
// carries entries, so no parameter value can reach them. The line names the
// caller (event.Caller: the API user ARN, the EventBridge account, source
// and event ID, or direct) and API Gateway's request ID, which a 5xx answer
// gives the caller.
func (h *Handler) observe(ctx context.Context, inv event.Invocation, res report.Result, err error, took time.Duration) {
	s := res.Summary
	attrs := []any{
		"source", string(inv.Source), "caller", inv.Caller.String(), "requested", s.Requested, "successful", s.Successful, "updated", s.Updated,
		"failed", s.Failed, "deduplicated", s.Deduplicated, "unprocessed", s.Unprocessed,
		"calls", s.Calls, "retries", s.Retries, "throttles", s.Throttles, "durationMs", took.Milliseconds(),
	}
	if inv.IsAPI() && inv.RequestID != "" {
		attrs = append(attrs, "apiRequestId", inv.RequestID)
	}
	if err != nil {
		h.log.ErrorContext(ctx, "association request failed", append(attrs, "error", err.Error())...)
	} else {
		h.log.InfoContext(ctx, "association request done", attrs...)
	}
	fn := lambdacontext.FunctionName
	if fn == "" {
		fn = "local"
	}
	if werr := metrics.Write(h.metrics, metrics.Invocation{
		Function:    fn,
		Source:      string(inv.Source),
		Counts:      s.Counts(),
		CallLatency: res.CallLatencies,
		Time:        h.now(),
	}); werr != nil {
		h.log.WarnContext(ctx, "metrics not written", "error", werr)
	}
}
