// Package faultproxy is a reverse proxy that injects failures into requests to
// an AWS JSON-protocol service, for tests that run against the real DynamoDB
// Local and need DynamoDB to throttle, fail, or lose a connection on demand.
//
// Put a Proxy in front of the service (it is an http.Handler: serve it with
// httptest.NewServer, HTTP/1.1), point the SDK client's BaseEndpoint at it, and
// say with SetRules which operations fail and how. Requests that no rule
// fails are forwarded unchanged, Host header included (the one SigV4 signed),
// and so are the target's answers; only hop-by-hop headers stay behind.
//
// The injected errors are answered as DynamoDB answers them (awsJson1.0
// bodies with a com.amazonaws.dynamodb.v20120810 __type), so the SDK turns
// them into the same typed errors and retry decisions as the real service's.
package faultproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Proxy forwards requests to a target and fails the ones its rules pick.
// It is safe for concurrent use.
type Proxy struct {
	target    *url.URL
	transport *http.Transport
	ids       atomic.Uint64 // for the request IDs of injected answers

	mu    sync.Mutex
	rules ruleSet
	stats Stats
}

// New returns a Proxy, with no rules yet, in front of target (a base URL such
// as DynamoDB Local's "http://127.0.0.1:8000"). seed fixes the draws of Rate
// rules: the same requests, sent one after another, get the same faults.
func New(target string, seed int64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("faultproxy: target %q is not an http(s)://host[:port] URL", target)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil               // never via an HTTP_PROXY
	t.DisableCompression = true // pass bodies (and their x-amz-crc32) through as they are
	return &Proxy{target: u, transport: t, rules: newRuleSet(seed), stats: Stats{}}, nil
}

// SetRules replaces the rules; Count rules start afresh. It panics on a rule
// with an unknown Fault.
func (p *Proxy) SetRules(rules ...Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules.set(rules)
}

// Fired returns how many requests each of the rules SetRules last set has
// failed, in their order: what a test asserts when it needs one particular
// rule (a Match rule, say) to have fired, not just its fault somewhere.
func (p *Proxy) Fired() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rules.firedCounts()
}

// Stats returns a copy of the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats.clone()
}

// ServeHTTP forwards r, or fails it as the first rule that fires says.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := operation(r)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		drop(w) // the client's request broke off: it gets no answer either
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body)) // for forwarding, or the answers that read it
	fault, inject := p.pick(op, body)
	if !inject {
		p.forward(w, r, op)
		return
	}
	switch fault {
	case DropBeforeForward:
		drop(w) // the whole request was read; only the answer is lost
	case DropAfterForward:
		if resp, err := p.roundTrip(r, op); err == nil {
			io.Copy(io.Discard, resp.Body) // wait until the target has answered
			resp.Body.Close()
		}
		drop(w)
	case Unprocessed:
		p.writeUnprocessed(w, r)
	case TransactionConflict:
		if op == "TransactWriteItems" {
			p.writeConflict(w, r)
		} else {
			p.writeError(w, fault)
		}
	default:
		p.writeError(w, fault)
	}
}

// writeUnprocessed answers a BatchWriteItem as DynamoDB does when it
// processed none of it: HTTP 200, the request's items in UnprocessedItems.
func (p *Proxy) writeUnprocessed(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RequestItems json.RawMessage
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.RequestItems) == 0 {
		http.Error(w, "faultproxy: Unprocessed needs a BatchWriteItem body with RequestItems", http.StatusBadRequest)
		return
	}
	body, _ := json.Marshal(struct {
		UnprocessedItems json.RawMessage
	}{in.RequestItems})
	p.writeJSON(w, http.StatusOK, body)
}

// writeConflict answers a TransactWriteItems as DynamoDB does when another
// transaction holds one of its items: 400 TransactionCanceledException, one
// cancellation reason per item, TransactionConflict for the last one.
func (p *Proxy) writeConflict(w http.ResponseWriter, r *http.Request) {
	var in struct {
		TransactItems []json.RawMessage
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.TransactItems) == 0 {
		http.Error(w, "faultproxy: TransactionConflict needs a TransactWriteItems body with TransactItems", http.StatusBadRequest)
		return
	}
	type reason struct {
		Code    string
		Message string `json:",omitempty"`
	}
	reasons := make([]reason, len(in.TransactItems))
	codes := make([]string, len(in.TransactItems))
	for i := range reasons {
		reasons[i], codes[i] = reason{Code: "None"}, "None"
	}
	last := len(reasons) - 1
	reasons[last] = reason{Code: "TransactionConflict", Message: "Transaction is ongoing for the item"}
	codes[last] = "TransactionConflict"
	body, _ := json.Marshal(struct {
		Type                string `json:"__type"`
		Message             string `json:"Message"`
		CancellationReasons []reason
	}{"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
		"Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]", reasons})
	p.writeJSON(w, http.StatusBadRequest, body)
}

// operation is the operation an awsJson request names in X-Amz-Target
// ("DynamoDB_20120810.PutItem" is "PutItem"), or "".
func operation(r *http.Request) string {
	target := r.Header.Get("X-Amz-Target")
	return target[strings.LastIndexByte(target, '.')+1:]
}

// pick decides a request's fate and counts an injected fault.
func (p *Proxy) pick(op string, body []byte) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.rules.pick(op, body)
	if ok {
		p.stats.addInjected(op, f)
	}
	return f, ok
}

// hopHeaders belong to one connection, not to the request (RFC 9110 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// roundTrip sends r to the target unchanged, but for hop-by-hop headers.
func (p *Proxy) roundTrip(r *http.Request, op string) (*http.Response, error) {
	out := r.Clone(r.Context()) // keeps Host: the one the client signed
	out.RequestURI = ""
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	p.mu.Lock()
	p.stats.addForwarded(op)
	p.mu.Unlock()
	return p.transport.RoundTrip(out)
}

// forward relays r to the target and the target's answer back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, op string) {
	resp, err := p.roundTrip(r, op)
	if err != nil {
		http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		// The target's answer broke off: break the client's off too, so
		// that it sees a failed request (and retries) rather than a
		// shorter body that may still parse.
		panic(http.ErrAbortHandler)
	}
}

// drop closes the client's connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2: the server resets the stream instead
}

// faultAnswers are DynamoDB's answers for the faults that get one.
var faultAnswers = map[Fault]struct {
	status  int
	code    string
	message string
}{
	Throttle: {http.StatusBadRequest, "ProvisionedThroughputExceededException",
		"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."},
	ServerError: {http.StatusInternalServerError, "InternalServerError",
		"The server encountered an internal error trying to fulfill the request."},
	Unavailable: {http.StatusServiceUnavailable, "ServiceUnavailable",
		"DynamoDB is currently unavailable. (This should be a temporary state.)"},
	// A single-item write's answer; TransactWriteItems gets writeConflict's.
	TransactionConflict: {http.StatusBadRequest, "TransactionConflictException",
		"Transaction is ongoing for the item"},
	Denied: {http.StatusBadRequest, "AccessDeniedException",
		"User: arn:aws:sts::000000000000:assumed-role/faultproxy/denied is not authorized to perform this operation"},
}

// writeError answers as DynamoDB does: an awsJson1.0 error body with a
// namespaced __type, a request ID, and the body's CRC32.
func (p *Proxy) writeError(w http.ResponseWriter, f Fault) {
	a := faultAnswers[f]
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{"com.amazonaws.dynamodb.v20120810#" + a.code, a.message})
	p.writeJSON(w, a.status, body)
}

// writeJSON answers as DynamoDB does: an awsJson1.0 body with a request ID
// and the body's CRC32.
func (p *Proxy) writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-Requestid", fmt.Sprintf("FAULTPROXY%042d", p.ids.Add(1)))
	h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	w.WriteHeader(status)
	w.Write(body)
}
