package associate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// callError is what the engine makes of a call that failed as a whole.
type callError struct {
	retryable bool
	// callWide: the refusal is about the call (credentials, permissions,
	// account limits), not about one entry, so splitting cannot help.
	callWide bool
	fault    string // fault to report when the entry is given up
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

// classify decides what a whole-call failure means, using the SDK's own
// retryable and throttle rules so that the engine agrees with the retryer.
func classify(err error) callError {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		msg := apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
		switch {
		case isThrottle(err):
			return callError{retryable: true, fault: report.FaultServer, message: msg}
		case apiErr.ErrorFault() == smithy.FaultServer || isRetryable(err):
			return callError{retryable: true, fault: report.FaultServer, message: msg}
		default:
			return callError{callWide: callWideCodes[apiErr.ErrorCode()], fault: report.FaultClient, message: msg}
		}
	}
	// No answer from SSM at all: connection refused or reset, a timeout, a
	// response that could not be read. Whether SSM acted is unknown, which
	// is what Fault "Unknown" says; resending is safe because SSM refuses a
	// second association of a document with a node.
	return callError{retryable: true, fault: report.FaultUnknown, message: err.Error()}
}

func isThrottle(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

func isRetryable(err error) bool {
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

// alreadyExists recognises SSM's "Association Already Exists": the service
// has no per-entry error code, only this text, and the whole-call error
// code AssociationAlreadyExists.
func alreadyExists(message string) bool {
	m := strings.ToLower(strings.ReplaceAll(message, " ", ""))
	return strings.Contains(m, "alreadyexists")
}

// paceRetries wraps the client's retryer for one call: the SDK's own
// retries of the call also wait for the rate limiter, so that throttled
// calls retried by the SDK never push the rate past CALLS_PER_SECOND, and
// every throttled attempt is counted, including those retried successfully.
func (r *run) paceRetries(o *ssm.Options) {
	if v2, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = &pacedRetryer{RetryerV2: v2, limiter: r.limiter, throttled: r.throttled}
	}
}

// pacedRetryer is one call's retryer: the SDK asks it for a token before
// each attempt, one attempt after the other.
type pacedRetryer struct {
	aws.RetryerV2
	limiter   *rate.Limiter
	throttled func()
	attempts  int
}

func (p *pacedRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	p.attempts++
	if p.attempts > 1 { // the first attempt already waited its turn
		if err := p.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("wait for the call rate: %w", err)
		}
	}
	return p.RetryerV2.GetAttemptToken(ctx)
}

func (p *pacedRetryer) IsErrorRetryable(err error) bool {
	if isThrottle(err) {
		p.throttled()
	}
	return p.RetryerV2.IsErrorRetryable(err)
}
