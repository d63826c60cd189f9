package associate

import (
	"errors"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

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

// countThrottles wraps the client's retryer for one call, counting every
// throttled attempt, including those the SDK retried successfully.
func (r *run) countThrottles(o *ssm.Options) {
	if v2, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = throttleCounter{RetryerV2: v2, n: &r.throttles}
	}
}

type throttleCounter struct {
	aws.RetryerV2
	n *atomic.Int64
}

func (t throttleCounter) IsErrorRetryable(err error) bool {
	if isThrottle(err) {
		t.n.Add(1)
	}
	return t.RetryerV2.IsErrorRetryable(err)
}
