// Package associate runs a request's work (internal/plan: its items, each
// (document, node) once, packed into calls) through SSM: claim in DynamoDB,
// call SSM at a paced rate with bounded concurrency, retry only the entries
// that failed, read SSM back for those whose answer was lost, and report
// every entry in exactly one outcome.
//
// One request, in the order the code runs it (Engine.Run), each file read
// top to bottom:
//
//	settle.go     invalid entries and repeats in the request: settled, never sent
//	allow.go      documents and target keys outside the allow lists: Failed
//	owner.go      the invocation's owner record, kept alive while it works
//	pace.go       the rate of calls: fixed, or found and shared (internal/pace)
//	dispatch.go   the schedule of calls: claims (claim.go) packed as they come,
//	              sent by MaxConcurrency senders, then rounds of retries
//	call.go       one call: its turn, the call, its answer sorted entry by entry
//	              (match.go pairs results with entries, classify.go reads errors)
//	lifecycle.go  every move of an entry to its outcome, and what it does to the claim
//	readback.go   entries in doubt (an answer lost) read back from SSM before any resend
//	update.go     associations that exist with other settings: reported, or updated
//
// DryRun (dryrun.go) makes the same decisions from the claim table alone.
package associate

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/reconcile"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// ssmAPI is what the engine calls: CreateAssociationBatch, and the two
// reads that settle entries in doubt (internal/reconcile). *ssm.Client has
// them.
type ssmAPI interface {
	CreateAssociationBatch(context.Context, *ssm.CreateAssociationBatchInput, ...func(*ssm.Options)) (*ssm.CreateAssociationBatchOutput, error)
	ListAssociations(context.Context, *ssm.ListAssociationsInput, ...func(*ssm.Options)) (*ssm.ListAssociationsOutput, error)
	DescribeAssociation(context.Context, *ssm.DescribeAssociationInput, ...func(*ssm.Options)) (*ssm.DescribeAssociationOutput, error)
	UpdateAssociation(context.Context, *ssm.UpdateAssociationInput, ...func(*ssm.Options)) (*ssm.UpdateAssociationOutput, error)
}

// claimStore keeps the claims and the invocation's owner record;
// *dedupe.Store is the DynamoDB one.
type claimStore interface {
	Claim(ctx context.Context, key, owner string, leaseUntil time.Time) (dedupe.Claim, error)
	CompleteAll(ctx context.Context, owner string, done []dedupe.Association) error
	Complete(ctx context.Context, key, owner string, a dedupe.Association) error
	ClaimUpdate(ctx context.Context, key, owner string, leaseUntil time.Time, associationID string) (bool, error)
	Release(ctx context.Context, key, owner string) error
	MarkPossiblySent(ctx context.Context, key, owner string) error
	StartOwner(ctx context.Context, owner string, until time.Time) error
	RenewOwner(ctx context.Context, owner string, until time.Time) error
	// Peek reads what Claim would find, writing nothing (DryRun).
	Peek(ctx context.Context, keys []string) ([]dedupe.Claim, error)
}

// Settings tune the engine; config.Config provides them.
type Settings struct {
	BatchSize      int
	MaxConcurrency int
	CallsPerSecond float64 // 0: no limit; ignored with AutoRate
	// AutoRate finds the rate instead (CALLS_PER_SECOND=auto); pace.go.
	AutoRate    *AutoRate
	MaxAttempts int
	// ClaimConcurrency bounds the DynamoDB requests in flight; 0 means 16.
	ClaimConcurrency int
	// CallEstimate is how long a call is assumed to take before one has
	// returned, to judge whether it fits before the deadline; 0 means 1 s.
	CallEstimate time.Duration
	// Backoff is the first wait before a retry round; it doubles each round
	// up to MaxBackoff, with full jitter. Zero values mean 200 ms and 5 s.
	Backoff, MaxBackoff time.Duration
	// ReconcileDelay is how long after a call whose answer was lost SSM is
	// read to settle its entries, so that a request SSM was still working
	// on is seen (RECONCILE_DELAY); 0 means none.
	ReconcileDelay time.Duration
	// ClaimLease is how long the invocation's claims stay its own without a
	// heartbeat: a crashed invocation's claims are taken over after it
	// (CLAIM_LEASE). 0 means 60 s.
	ClaimLease time.Duration
	// Allow is what entries may ask for (ALLOWED_DOCUMENTS,
	// ALLOWED_TARGET_KEYS). The zero Allow allows every document name and
	// target key, and no document ARN (its Region is unknown): for tests;
	// the functions always set it from their configuration.
	Allow Allow
}

// Engine associates requests. It is safe to use for one Run at a time per
// invocation; a Lambda container runs one invocation at a time.
type Engine struct {
	ssm     ssmAPI
	claims  claimStore
	set     Settings
	log     *slog.Logger
	memory  rateMemory // nil: the rate found is not remembered (pace.go)
	members *members   // the names its runs pace under in memory
}

// New returns an engine calling ssm and keeping claims in claims.
func New(ssm ssmAPI, claims claimStore, set Settings, log *slog.Logger) *Engine {
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
	if set.ClaimLease <= 0 {
		set.ClaimLease = time.Minute
	}
	if set.Allow.Documents == nil && set.Allow.TargetKeys == nil {
		set.Allow = Allow{Documents: []string{"*"}, TargetKeys: []string{"*"}}
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
	// LeaseUntil bounds the claims: after it, or after the invocation's
	// heartbeat stopped for Settings.ClaimLease, a crashed invocation's
	// claims may be taken over.
	LeaseUntil time.Time
	// AnswerBy is when the answer must be out (for API Gateway, the end of
	// its budget); claim bookkeeping retries until then. Zero means
	// LeaseUntil.
	AnswerBy time.Time
	// Closing: no run of this engine is expected soon after this one (a
	// worker's chunk among its job's last). With AutoRate and a rate
	// memory, it syncs every pace.ClosingSync and leaves without grace, so
	// that the runs still going take its share within a second of its end.
	Closing bool
}

// ErrUnavailable means a dependency could not be reached and nothing was
// done: no entry reached SSM, every claim taken was released, and the whole
// request can be sent again.
var ErrUnavailable = errors.New("dependency unavailable")

// Run processes the job. It returns ErrUnavailable (wrapped) only when
// nothing could be done at all; partial trouble is reported in the result.
func (e *Engine) Run(ctx context.Context, job Job) (report.Result, error) {
	if job.AnswerBy.IsZero() {
		job.AnswerBy = job.LeaseUntil
	}
	items, settled := Settle(job.Request.Items)
	items = e.allowed(items, &settled)
	r := &run{Engine: e, job: job, latency: latencyTracker{max: e.set.CallEstimate}, res: settled}

	keys := 0
	for _, it := range items {
		keys += len(it.Keys)
	}
	r.reader = reconcile.New(e.ssm, r.waitRead)
	if err := r.startOwner(ctx); err != nil {
		e.log.WarnContext(ctx, "the owner record could not be written; nothing was claimed", "error", err)
		for _, it := range items {
			r.res.Unprocessed = append(r.res.Unprocessed, report.Unprocessed{Entry: it.Entry, Reason: reasonTableDown})
		}
		r.res.Tally()
		return r.res, errors.Join(ErrUnavailable, err)
	}
	r.startPace(ctx)
	r.book = newBookkeeper(e.set.ClaimConcurrency, 2*keys+16, func(ctx context.Context, key string, err error) {
		e.log.WarnContext(ctx, "claim bookkeeping failed; the claim is held until its lease ends", "key", key, "error", err)
	})
	r.dispatch(ctx, items)
	r.updateAll(ctx)
	// The rate found is recorded while the claims' last completions land;
	// the owner record is shortened once they have.
	paced := make(chan struct{})
	go func() { defer close(paced); r.stopPace(ctx) }()
	r.book.wait()
	<-paced
	r.stopOwner(ctx)
	r.res.Summary.Reads += r.reader.Reads()
	r.res.Summary.Throttles = int(r.throttles.Load())
	r.res.CallLatencies = r.latency.samples()
	r.res.Tally()
	if errp := r.claimErr.Load(); errp != nil && !r.claimedAny.Load() {
		// The dedupe table could not be reached: nothing was claimed, so
		// nothing was sent.
		e.log.WarnContext(ctx, "no claim could be taken", "error", *errp)
		return r.res, errors.Join(ErrUnavailable, *errp)
	}
	if r.unreachable != nil && r.res.Summary.Successful == 0 && r.completed.Load() == 0 && r.possiblySent.Load() == 0 {
		// Nothing reached SSM, so nothing is half-done: every claim was
		// released and the caller can send the whole request again.
		return r.res, errors.Join(ErrUnavailable, r.unreachable)
	}
	return r.res, nil
}
