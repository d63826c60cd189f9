package associate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// verdict is what a call that failed as a whole says about its entries.
type verdict uint8

const (
	// notCreated: SSM certainly did not act (throttled, or the request never
	// left the process); the entries may be sent again.
	notCreated verdict = iota
	// refused: SSM answered with a client error, before acting.
	refused
	// unknown: no answer, a 5xx, a timeout, a cut: SSM may have created
	// some or all of the entries.
	unknown
)

// callError is what the engine makes of a call that failed as a whole.
type callError struct {
	verdict verdict
	// callWide: the refusal is about the call (credentials, permissions,
	// account limits), not about one entry, so splitting cannot help.
	callWide bool
	fault    string // fault to report when the entries are given up
	message  string
}

// Codes that refuse a call for reasons no entry causes alone.
var callWideCodes = map[string]bool{
	"AssociationLimitExceeded":    true,
	"AccessDeniedException":       true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
	"ExpiredTokenException":       true,
	"IncompleteSignature":         true,
	"MissingAuthenticationToken":  true,
	"InvalidClientTokenId":        true,
}

// classify decides what a whole-call failure means. Only a throttle, an
// error that proves the request never left, or a client error proves that
// SSM did not act; everything else leaves the outcome unknown.
func classify(ctx context.Context, err error) callError {
	var apiErr smithy.APIError
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return callError{verdict: unknown, fault: report.FaultUnknown, message: "the call was cut off at the deadline"}
	case awsclient.IsThrottle(err):
		return callError{verdict: notCreated, fault: report.FaultServer, message: apiMessage(err)}
	case awsclient.NotSent(err):
		return callError{verdict: notCreated, fault: report.FaultUnknown, message: err.Error()}
	case errors.As(err, &apiErr) && clientError(err, apiErr):
		return callError{verdict: refused, callWide: callWideCodes[apiErr.ErrorCode()], fault: report.FaultClient, message: apiMessage(err)}
	case errors.As(err, &apiErr):
		return callError{verdict: unknown, fault: report.FaultServer, message: apiMessage(err)}
	default:
		// Connection closed or reset after the request was written, an
		// unreadable answer: SSM may have acted.
		return callError{verdict: unknown, fault: report.FaultUnknown, message: err.Error()}
	}
}

// clientError says whether SSM refused the call for the caller's fault,
// which it decides before acting: a modeled client error, or an unmodeled
// one answered with a 4xx status. A 5xx, or an error of unknown fault
// without a status, leaves the outcome unknown.
func clientError(err error, apiErr smithy.APIError) bool {
	switch apiErr.ErrorFault() {
	case smithy.FaultClient:
		return true
	case smithy.FaultServer:
		return false
	}
	var resp interface{ HTTPStatusCode() int }
	if errors.As(err, &resp) {
		return resp.HTTPStatusCode() >= 400 && resp.HTTPStatusCode() < 500
	}
	return false
}

func apiMessage(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
	}
	return err.Error()
}

// alreadyExists recognises SSM's "Association Already Exists": the service
// has no per-entry error code, only this text, and the whole-call error
// code AssociationAlreadyExists.
func alreadyExists(message string) bool {
	m := strings.ToLower(strings.ReplaceAll(message, " ", ""))
	return strings.Contains(m, "alreadyexists")
}

// callOptions are the per-call options of CreateAssociationBatch and
// UpdateAssociation, neither idempotent: the SDK
// resends only what SSM certainly did not execute, and its own retries wait
// for the rate limiter, so that throttled calls retried by the SDK never
// push the rate past CALLS_PER_SECOND; every throttled attempt is counted,
// including those retried successfully, with the rate it went out at
// (rate, the first attempt's turn).
func (r *run) callOptions(rate float64) []func(*ssm.Options) {
	return []func(*ssm.Options){awsclient.NoBlindResend, func(o *ssm.Options) {
		if v2, ok := o.Retryer.(aws.RetryerV2); ok {
			o.Retryer = &pacedRetryer{RetryerV2: v2, limiter: r.limiter, throttled: r.throttled, sent: rate}
		}
	}}
}

// pacedRetryer is one call's retryer: the SDK asks it for a token before
// each attempt, one attempt after the other.
type pacedRetryer struct {
	aws.RetryerV2
	limiter   *limiter
	throttled func(sent float64)
	attempts  int
	sent      float64 // the rate of the last attempt's turn
}

func (p *pacedRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	p.attempts++
	if p.attempts > 1 { // the first attempt already waited its turn
		rate, err := p.limiter.Turn(ctx)
		if err != nil {
			return nil, fmt.Errorf("wait for the call rate: %w", err)
		}
		p.sent = rate
	}
	return p.RetryerV2.GetAttemptToken(ctx)
}

// RetryDelay is no wait for a throttled attempt while calls are paced: it
// waits its turn at the rate the throttle just cut (GetAttemptToken), and
// a backoff on top (up to 500 ms) only left a run's last call alone
// that long after all the others.
func (p *pacedRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if awsclient.IsThrottle(err) && p.limiter.Limit() > 0 {
		return 0, nil
	}
	return p.RetryerV2.RetryDelay(attempt, err)
}

func (p *pacedRetryer) IsErrorRetryable(err error) bool {
	if awsclient.IsThrottle(err) {
		p.throttled(p.sent)
	}
	return p.RetryerV2.IsErrorRetryable(err)
}
