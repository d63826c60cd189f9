// Package associate runs a validated request through the pipeline:
// dedupe in the request, claim in DynamoDB, plan batches, call SSM with a
// rate limit and bounded concurrency, retry only the entries that failed, and
// report every entry in exactly one outcome.
package associate

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// batchAssociator is the one SSM call the engine makes; *ssm.Client has it.
type batchAssociator interface {
	CreateAssociationBatch(context.Context, *ssm.CreateAssociationBatchInput, ...func(*ssm.Options)) (*ssm.CreateAssociationBatchOutput, error)
}

// claimStore keeps the claims; *dedupe.Store is the DynamoDB one.
type claimStore interface {
	Claim(ctx context.Context, key, owner string, leaseUntil time.Time) (bool, dedupe.Holder, error)
	Complete(ctx context.Context, key, owner, associationID string) error
	CompleteAll(ctx context.Context, owner string, done []dedupe.Association) error
	Release(ctx context.Context, key, owner string) error
}

// Settings tune the engine; config.Config provides them.
type Settings struct {
	BatchSize      int
	MaxConcurrency int
	CallsPerSecond float64 // 0: no limit
	MaxAttempts    int
	// ClaimConcurrency bounds the DynamoDB requests in flight; 0 means 16.
	ClaimConcurrency int
	// CallEstimate is how long a call is assumed to take before one has
	// returned, to judge whether it fits before the deadline; 0 means 1 s.
	CallEstimate time.Duration
	// Backoff is the first wait before a retry round; it doubles each round
	// up to MaxBackoff, with jitter. Zero values mean 200 ms and 5 s.
	Backoff, MaxBackoff time.Duration
}

// Engine associates requests. It is safe to use for one Run at a time per
// invocation; a Lambda container runs one invocation at a time.
type Engine struct {
	ssm    batchAssociator
	claims claimStore
	set    Settings
	log    *slog.Logger
}

// New returns an engine calling ssm and keeping claims in claims.
func New(ssm batchAssociator, claims claimStore, set Settings, log *slog.Logger) *Engine {
	if set.ClaimConcurrency <= 0 {
		set.ClaimConcurrency = 16
	}
	if set.CallEstimate <= 0 {
		set.CallEstimate = time.Second
	}
	if set.Backoff <= 0 {
		set.Backoff = 200 * time.Millisecond
	}
	if set.MaxBackoff <= 0 {
		set.MaxBackoff = 5 * time.Second
	}
	set.BatchSize = max(set.BatchSize, 1)
	set.MaxConcurrency = max(set.MaxConcurrency, 1)
	set.MaxAttempts = max(set.MaxAttempts, 1)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{ssm: ssm, claims: claims, set: set, log: log}
}

// Job is one invocation's work.
type Job struct {
	Request *request.Request
	// Owner identifies this invocation in the claim table; it must be unique
	// per invocation (the Lambda request ID plus a random suffix).
	Owner string
	// Deadline is when the work must be finished: no call starts that could
	// not end before it. For API Gateway events this is the gateway's budget,
	// not the Lambda's.
	Deadline time.Time
	// LeaseUntil bounds the claims: the end of the Lambda invocation, after
	// which a crashed invocation's claims may be taken over.
	LeaseUntil time.Time
	// AnswerBy is when the answer must be out (for API Gateway, the end of
	// its budget); claim bookkeeping retries until then. Zero means
	// LeaseUntil.
	AnswerBy time.Time
}

// ErrUnavailable means a dependency could not be reached and nothing was
// done: every claim taken was released, and the whole request can be sent
// again.
var ErrUnavailable = errors.New("dependency unavailable")

// Run processes the job. It returns ErrUnavailable (wrapped) only when
// nothing could be done at all; partial trouble is reported in the result.
func (e *Engine) Run(ctx context.Context, job Job) (report.Result, error) {
	if job.AnswerBy.IsZero() {
		job.AnswerBy = job.LeaseUntil
	}
	items, settled := Settle(job.Request.Items)
	r := &run{Engine: e, job: job, latency: latencyTracker{max: e.set.CallEstimate}, res: settled}

	keys := 0
	for _, it := range items {
		keys += len(it.Keys)
	}
	r.limiter = newLimiter(e.set.CallsPerSecond)
	r.book = newBookkeeper(e.set.ClaimConcurrency, keys+16, func(ctx context.Context, key string, err error) {
		e.log.WarnContext(ctx, "claim bookkeeping failed; the claim is held until its lease ends", "key", key, "error", err)
	})
	r.dispatch(ctx, items)
	r.book.wait()
	r.res.Summary.Throttles = int(r.throttles.Load())
	r.res.CallLatencies = r.latency.samples()
	r.res.Tally()
	if errp := r.claimErr.Load(); errp != nil && !r.claimedAny.Load() {
		// The dedupe table could not be reached: nothing was claimed, so
		// nothing was sent.
		e.log.WarnContext(ctx, "no claim could be taken", "error", *errp)
		return r.res, errors.Join(ErrUnavailable, *errp)
	}
	if r.unreachable != nil && r.res.Summary.Successful == 0 && r.completed.Load() == 0 {
		// Nothing reached SSM, so nothing is half-done: every claim was
		// released and the caller can send the whole request again.
		return r.res, errors.Join(ErrUnavailable, r.unreachable)
	}
	return r.res, nil
}
