package awsclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// A CreateAssociationBatch whose answer is lost must reach the caller after
// one attempt: the SDK would otherwise resend what SSM may have executed.
func TestNoBlindResend(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(w http.ResponseWriter, attempt int32)
		attempts int32
		ok       bool
	}{
		{"HTTP 500 after executing", func(w http.ResponseWriter, _ int32) {
			w.Header().Set("X-Amzn-ErrorType", "InternalServerError")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"__type":"InternalServerError","message":"boom"}`))
		}, 1, false},
		{"HTTP 503", func(w http.ResponseWriter, _ int32) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, 1, false},
		{"connection closed without an answer", func(w http.ResponseWriter, _ int32) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}, 1, false},
		{"throttled, then answered", func(w http.ResponseWriter, attempt int32) {
			if attempt == 1 {
				w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
				return
			}
			_, _ = w.Write([]byte(`{"Successful":[],"Failed":[]}`))
		}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tt.answer(w, hits.Add(1))
			}))
			defer srv.Close()
			client := testClient(srv.URL)
			_, err := client.CreateAssociationBatch(context.Background(), batch(), NoBlindResend)
			if (err == nil) != tt.ok || hits.Load() != tt.attempts {
				t.Fatalf("err %v after %d attempts, want ok=%v after %d", err, hits.Load(), tt.ok, tt.attempts)
			}
			// Without the option the SDK resends: that is the danger.
			if !tt.ok {
				hits.Store(0)
				_, _ = client.CreateAssociationBatch(context.Background(), batch())
				if hits.Load() < 2 {
					t.Errorf("the standard retryer sent %d times; the test no longer shows what NoBlindResend prevents", hits.Load())
				}
			}
		})
	}
}

// A connection that cannot be opened proves the request never left: that
// alone, besides throttles, is retried.
func TestUnsentIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	_ = ln.Close() // nothing listens: every dial is refused
	_, err = testClient(url).CreateAssociationBatch(context.Background(), batch(), NoBlindResend)
	var maxErr *retry.MaxAttemptsError
	if !errors.As(err, &maxErr) || maxErr.Attempt != SSMAttempts || !NotSent(err) {
		t.Fatalf("err %v: want %d attempts, each refused before sending", err, SSMAttempts)
	}
}

func TestNotSent(t *testing.T) {
	for err, want := range map[error]bool{
		&net.OpError{Op: "dial", Err: errors.New("connect: connection refused")}: true,
		&net.DNSError{Err: "no such host", Name: "ssm.example"}:                  true,
		&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}:    false,
		errors.New("net/http: TLS handshake timeout"):                            true,
		errors.New("net/http: timeout awaiting response headers"):                false,
		nil: false,
	} {
		if got := NotSent(err); got != want {
			t.Errorf("NotSent(%v) = %v, want %v", err, got, want)
		}
	}
}

func testClient(url string) *ssm.Client {
	return SSM(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
		BaseEndpoint: aws.String(url),
	})
}

func batch() *ssm.CreateAssociationBatchInput {
	return &ssm.CreateAssociationBatchInput{Entries: []ssmtypes.CreateAssociationBatchRequestEntry{
		{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String("i-0123456789abcdef0")},
	}}
}
