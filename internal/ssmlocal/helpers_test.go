package ssmlocal

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	smithy "github.com/aws/smithy-go"
)

// Node IDs used across tests: 17 characters after "i-" as the model wants.
const (
	node1 = "i-0123456789abcdef0"
	node2 = "i-0123456789abcdef1"
	node3 = "i-0123456789abcdef2"
	winID = "i-0000000000000win1"
)

// newEnv starts s behind httptest and returns a real ssm.Client for it,
// without retries so that every call is exactly one request.
func newEnv(t *testing.T, opts Options) (*Server, *ssm.Client, string) {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, newClient(ts.URL, aws.NopRetryer{}), ts.URL
}

func newClient(url string, r aws.Retryer) *ssm.Client {
	return ssm.New(ssm.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      r,
	})
}

// fastRetryer retries like the SDK's standard retryer but without waiting
// and without a retry quota, so retry tests are quick and cannot flake.
func fastRetryer(attempts int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		o.RateLimiter = noRateLimit{}
	})
}

type noRateLimit struct{}

func (noRateLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// shellEntry is a valid entry: AWS-RunShellScript on node by InstanceIds.
func shellEntry(node string) types.CreateAssociationBatchRequestEntry {
	return types.CreateAssociationBatchRequestEntry{
		Name:       aws.String("AWS-RunShellScript"),
		Targets:    []types.Target{{Key: aws.String("InstanceIds"), Values: []string{node}}},
		Parameters: map[string][]string{"commands": {"echo hi"}},
	}
}

func batch(t *testing.T, c *ssm.Client, entries ...types.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
	t.Helper()
	return c.CreateAssociationBatch(ctx(t), &ssm.CreateAssociationBatchInput{Entries: entries})
}

// apiErr asserts err is an API error with the code and returns it.
func apiErr(t *testing.T, err error, code string) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not a smithy.APIError", err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code = %q (%v), want %q", ae.ErrorCode(), err, code)
	}
	return ae
}

func assertValidation(t *testing.T, err error, path string) {
	t.Helper()
	ae := apiErr(t, err, "ValidationException")
	msg := ae.ErrorMessage()
	if !strings.Contains(msg, "at '"+path+"' failed to satisfy constraint: ") {
		t.Fatalf("message %q does not name member path %q", msg, path)
	}
	if !strings.HasPrefix(msg, "1 validation error detected: Value ") && !strings.Contains(msg, " validation errors detected: ") {
		t.Fatalf("message %q is not in the service's wording", msg)
	}
}

func rep(s string, n int) string { return strings.Repeat(s, n) }

func repList(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
