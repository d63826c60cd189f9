package awsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// NoBlindResend is a per-call option for calls that are not idempotent,
// such as CreateAssociationBatch, which has no client token: the SDK may
// retry the call only when SSM certainly did not execute it, that is when it
// was throttled or when the request never left this process. A connection
// closed or reset after the request was written, a timeout or a 5xx leaves
// the outcome unknown, and resending then could create every association a
// second time; such errors reach the caller, which reads SSM first.
func NoBlindResend(o *ssm.Options) {
	if v2, ok := o.Retryer.(aws.RetryerV2); ok {
		o.Retryer = unsentOnly{v2}
	}
}

type unsentOnly struct{ aws.RetryerV2 }

func (u unsentOnly) IsErrorRetryable(err error) bool {
	return IsThrottle(err) || NotSent(err)
}

// IsThrottle reports whether err is a throttling refusal, by the SDK's own
// list of throttle codes: the service refused the call without acting on it.
func IsThrottle(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

// NotSent reports whether err proves that the request never reached the
// service: the name did not resolve, the connection could not be opened, or
// the TLS handshake failed. Each happens before a byte of the request is
// written. Everything else (a reset, a closed connection, a timeout, an
// unreadable answer) may come after the service acted.
func NotSent(err error) bool {
	// A TLS alert or a bad record header can also come after the request
	// was written, so only certificate errors, which end the handshake,
	// count.
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
	)
	switch {
	case errors.As(err, &dnsErr):
		return true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return true
	case errors.As(err, &certErr), errors.As(err, &unknown), errors.As(err, &host):
		return true
	}
	// net/http's handshake timeout is an unexported type.
	return err != nil && strings.Contains(err.Error(), "TLS handshake timeout")
}
