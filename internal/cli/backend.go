package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
)

// Answer is what the function said, whichever way it was asked: an HTTP
// status and body (API Gateway's, or the body of a direct invocation, whose
// status is inferred), or a function error.
type Answer struct {
	Status int
	Body   []byte
	// ErrorType and ErrorMessage are a function error's (a direct
	// invocation that returned an error: IncompleteError,
	// InvalidRequestError, UnavailableError, …).
	ErrorType, ErrorMessage string
}

// Backend is a way to reach the function.
type Backend interface {
	// Submit sends a request file's JSON.
	Submit(ctx context.Context, body []byte) (Answer, error)
	// Status asks GET /associations/{jobId} for one page of outcomes.
	Status(ctx context.Context, jobID, nextToken string, pageSize int) (Answer, error)
}

// invoker is the part of the Lambda client the function backend uses.
type invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// FunctionBackend invokes the function through the Lambda Invoke API: a
// request is the payload itself (a direct invocation), a status request an
// API Gateway REST envelope of GET /associations/{jobId}, as the stack's
// RestStatus route delivers it.
type FunctionBackend struct {
	Client   invoker
	Function string
}

// Submit invokes the function with the request as its payload.
func (f FunctionBackend) Submit(ctx context.Context, body []byte) (Answer, error) {
	payload, ferr, err := f.invoke(ctx, body)
	if err != nil {
		return Answer{}, err
	}
	if a, ok := functionError(payload, ferr); ok {
		return a, nil
	}
	// A direct invocation's answer carries no status: a job's is 202.
	var probe struct {
		JobID string `json:"JobId"`
	}
	status := http.StatusOK
	if json.Unmarshal(payload, &probe) == nil && probe.JobID != "" {
		status = http.StatusAccepted
	}
	return Answer{Status: status, Body: payload}, nil
}

// Status invokes the function with the status route's envelope. It carries
// no user ARN, as only a direct invoker can send: the function answers it
// for jobs submitted without one (direct, scheduled, EventBridge).
func (f FunctionBackend) Status(ctx context.Context, jobID, nextToken string, pageSize int) (Answer, error) {
	payload, ferr, err := f.invoke(ctx, StatusEnvelope(jobID, nextToken, pageSize))
	if err != nil {
		return Answer{}, err
	}
	if a, ok := functionError(payload, ferr); ok {
		return a, nil
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(payload, &resp); err != nil || resp.StatusCode == 0 {
		return Answer{}, fmt.Errorf("the function's answer to a status request is not an API Gateway response: %.200s", payload)
	}
	return Answer{Status: resp.StatusCode, Body: []byte(resp.Body)}, nil
}

func (f FunctionBackend) invoke(ctx context.Context, payload []byte) ([]byte, string, error) {
	out, err := f.Client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(f.Function), Payload: payload})
	if err != nil {
		return nil, "", fmt.Errorf("invoke %s: %w", f.Function, err)
	}
	return out.Payload, aws.ToString(out.FunctionError), nil
}

// functionError reads a function error: Lambda flags it (X-Amz-Function-
// Error); the Runtime Interface Emulator does not, so the payload's shape
// counts too.
func functionError(payload []byte, flagged string) (Answer, bool) {
	var e struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(payload, &e) != nil || (e.ErrorType == "" && e.ErrorMessage == "") {
		if flagged == "" {
			return Answer{}, false
		}
		e.ErrorType = flagged
	}
	if e.ErrorType == "" {
		e.ErrorType = "FunctionError"
	}
	return Answer{Status: 0, Body: payload, ErrorType: e.ErrorType, ErrorMessage: e.ErrorMessage}, true
}

// StatusEnvelope is the API Gateway REST event of GET /associations/{jobId},
// built like events/api-rest-status.json, without a caller identity.
func StatusEnvelope(jobID, nextToken string, pageSize int) []byte {
	const resource = "/associations/{" + event.JobIDParameter + "}"
	path := "/associations/" + jobID
	query := map[string]string{}
	if nextToken != "" {
		query["nextToken"] = nextToken
	}
	if pageSize > 0 {
		query["pageSize"] = strconv.Itoa(pageSize)
	}
	multi := map[string][]string{}
	for k, v := range query {
		multi[k] = []string{v}
	}
	if len(query) == 0 {
		query, multi = nil, nil
	}
	b, _ := json.Marshal(events.APIGatewayProxyRequest{
		Resource:                        resource,
		Path:                            path,
		HTTPMethod:                      http.MethodGet,
		Headers:                         map[string]string{"Accept": "application/json"},
		MultiValueHeaders:               map[string][]string{"Accept": {"application/json"}},
		QueryStringParameters:           query,
		MultiValueQueryStringParameters: multi,
		PathParameters:                  map[string]string{event.JobIDParameter: jobID},
		RequestContext: events.APIGatewayProxyRequestContext{
			ResourcePath: resource,
			HTTPMethod:   http.MethodGet,
			Path:         path,
			RequestID:    "batcher-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		},
	})
	return b
}

// APIBackend calls the stack's API with SigV4-signed requests (service
// execute-api), as `curl --aws-sigv4` would.
type APIBackend struct {
	// URL is the API's associations URL (the RestApiUrl or HttpApiUrl
	// output), or its stage URL: "/associations" is added when missing.
	URL         string
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        *http.Client
	Signer      *v4.Signer
	Now         func() time.Time
}

func (a APIBackend) base() string {
	u := strings.TrimRight(a.URL, "/")
	if !strings.HasSuffix(u, "/associations") {
		u += "/associations"
	}
	return u
}

// Submit POSTs the request to /associations.
func (a APIBackend) Submit(ctx context.Context, body []byte) (Answer, error) {
	return a.do(ctx, http.MethodPost, a.base(), body)
}

// Status GETs /associations/{jobId}.
func (a APIBackend) Status(ctx context.Context, jobID, nextToken string, pageSize int) (Answer, error) {
	u := a.base() + "/" + url.PathEscape(jobID)
	q := url.Values{}
	if nextToken != "" {
		q.Set("nextToken", nextToken)
	}
	if pageSize > 0 {
		q.Set("pageSize", strconv.Itoa(pageSize))
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return a.do(ctx, http.MethodGet, u, nil)
}

func (a APIBackend) do(ctx context.Context, method, u string, body []byte) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Credentials == nil {
		return Answer{}, errors.New("no AWS credentials to sign the request with")
	}
	creds, err := a.Credentials.Retrieve(ctx)
	if err != nil {
		return Answer{}, fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	signer, now := a.Signer, a.Now
	if signer == nil {
		signer = v4.NewSigner()
	}
	if now == nil {
		now = time.Now
	}
	if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", a.Region, now().UTC()); err != nil {
		return Answer{}, fmt.Errorf("sign the request: %w", err)
	}
	client := a.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", method, u, err)
	}
	return Answer{Status: resp.StatusCode, Body: b}, nil
}
