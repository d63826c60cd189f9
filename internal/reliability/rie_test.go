package reliability_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// startFunction runs the real bootstrap under the RIE against w, with the
// given function timeout and extra environment; its output is logged when
// the test fails.
func startFunction(t *testing.T, w *world, timeout time.Duration, extra ...string) *testinfra.RIE {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rie, err := testinfra.StartRIE(ctx, bootstrap(t), w.functionEnv(extra...), testinfra.WithFunctionTimeout(timeout))
	if err != nil {
		t.Fatalf("start the function under the RIE: %v", err)
	}
	t.Cleanup(func() {
		_ = rie.Close()
		if t.Failed() {
			logs := rie.Logs()
			if len(logs) > 8000 {
				logs = "…" + logs[len(logs)-8000:]
			}
			t.Logf("function output:\n%s", logs)
		}
	})
	return rie
}

// answer is what the function returned to an invocation: an error
// (errorType/errorMessage), an API response (statusCode/body), or a result.
type answer struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
	StatusCode   int    `json:"statusCode"`
	Body         string `json:"body"`
	Result       report.Result
	raw          []byte
}

func invoke(t *testing.T, rie *testinfra.RIE, payload []byte, within time.Duration) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	raw, err := rie.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v (answer %.300s)", err, raw)
	}
	return parseAnswer(t, raw)
}

func parseAnswer(t *testing.T, raw []byte) answer {
	t.Helper()
	var a answer
	a.raw = raw
	if err := json.Unmarshal(raw, &a); err != nil {
		// Not the function's answer: the RIE's own ("Task timed out
		// after 5.00 seconds" when the function overran its timeout).
		a.ErrorType = "(no answer from the function)"
		a.ErrorMessage = string(raw)
		return a
	}
	switch {
	case a.ErrorType != "":
	case a.StatusCode != 0:
		if a.StatusCode == http.StatusOK {
			if err := json.Unmarshal([]byte(a.Body), &a.Result); err != nil {
				t.Fatalf("API body %.300s: %v", a.Body, err)
			}
		}
	default:
		if err := json.Unmarshal(raw, &a.Result); err != nil {
			t.Fatalf("result %.300s: %v", raw, err)
		}
	}
	return a
}

// restEvent wraps body as an API Gateway REST (payload 1.0) POST.
func restEvent(body []byte) []byte {
	return mustJSON(map[string]any{
		"resource": "/associations", "path": "/associations", "httpMethod": "POST",
		"headers":        map[string]string{"Content-Type": "application/json"},
		"requestContext": map[string]any{"requestId": "rel-" + time.Now().Format("150405.000"), "stage": "prod", "httpMethod": "POST"},
		"body":           string(body), "isBase64Encoded": false,
	})
}

// slowWrites delays the BatchWriteItem requests (claim completions) on their
// way to DynamoDB while on is set, to widen the window in which SSM has
// created an association that the table does not record yet.
func slowWrites(on *atomic.Bool, d time.Duration) func(http.Handler) http.Handler {
	return slowOp(on, ".BatchWriteItem", d)
}

// slowOp delays the DynamoDB requests of one operation while on is set.
func slowOp(on *atomic.Bool, op string, d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d > 0 && on.Load() && strings.HasSuffix(r.Header.Get("X-Amz-Target"), op) {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return // the function was killed: the write never arrives
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func keysOf(items []claimItem) map[string]bool {
	out := map[string]bool{}
	for _, c := range items {
		out[c.ID] = true
	}
	return out
}

// claimKey is the table key of a document/node outcome key.
func claimKey(k string) string {
	doc, node, _ := strings.Cut(k, "/")
	return dedupe.NodeKey(doc, "", node)
}
