package tracing

// Hand-written because the official exporter (otlptracehttp) links gRPC and
// protobuf through its generated stubs and doubled the Lambda binary.
//
// exporter speaks OTLP/HTTP with the JSON Protobuf encoding: it POSTs an
// ExportTraceServiceRequest as JSON (lowerCamelCase keys, trace and span IDs
// as hex, enums as integers, 64-bit integers as decimal strings) to
// <endpoint>/v1/traces with Content-Type application/json, using only
// net/http and encoding/json.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Protocol is the one OTLP protocol the exporter speaks.
const Protocol = "http/json"

const (
	defaultEndpoint = "http://localhost:4318"
	defaultTimeout  = 10 * time.Second
)

// exporter is an sdktrace.SpanExporter over OTLP/HTTP with JSON encoding.
type exporter struct {
	url     string
	headers map[string]string
	gzip    bool
	timeout time.Duration
	client  *http.Client

	mu      sync.Mutex
	stopped bool
}

var _ sdktrace.SpanExporter = (*exporter)(nil)

// newExporter configures an exporter from the standard variables, the
// traces-specific one winning over the general one:
// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT (ms),
// _COMPRESSION (gzip or none), _CERTIFICATE, _CLIENT_CERTIFICATE and
// _CLIENT_KEY. A value it cannot use is an error naming the variable.
func newExporter(getenv func(string) string) (*exporter, error) {
	get := func(name string) (string, string) {
		if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_" + name)); v != "" {
			return "OTEL_EXPORTER_OTLP_TRACES_" + name, v
		}
		return "OTEL_EXPORTER_OTLP_" + name, strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_" + name))
	}
	e := &exporter{timeout: defaultTimeout, headers: map[string]string{}}

	// The traces endpoint is used as it is; the general one is a base to
	// which /v1/traces is appended.
	if v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")); v != "" {
		u, err := parseEndpoint(v)
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=%q: %w", v, err)
		}
		if u.Path == "" {
			u.Path = "/"
		}
		e.url = u.String()
	} else {
		v := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
		if v == "" {
			v = defaultEndpoint
		}
		u, err := parseEndpoint(v)
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT=%q: %w", v, err)
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		e.url = u.String()
	}

	if name, v := get("HEADERS"); v != "" {
		for _, kv := range strings.Split(v, ",") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			k, kerr := url.PathUnescape(strings.TrimSpace(k))
			val, verr := url.PathUnescape(strings.TrimSpace(val))
			if !ok || k == "" || kerr != nil || verr != nil {
				// the value may be a secret: name the variable, not the text
				return nil, fmt.Errorf("%s: not a list of key=value (percent-encoded)", name)
			}
			e.headers[k] = val
		}
	}
	if name, v := get("TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			return nil, fmt.Errorf("%s=%q: want milliseconds, a positive integer", name, v)
		}
		e.timeout = time.Duration(ms) * time.Millisecond
	}
	switch name, v := get("COMPRESSION"); v {
	case "", "none":
	case "gzip":
		e.gzip = true
	default:
		return nil, fmt.Errorf("%s=%q: only gzip or none", name, v)
	}

	tlsCfg, err := tlsConfig(get)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if tlsCfg != nil {
		transport.TLSClientConfig = tlsCfg
	}
	e.client = &http.Client{Transport: transport}
	return e, nil
}

func parseEndpoint(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("want an http:// or https:// URL")
	}
	return u, nil
}

// tlsConfig is the CA and client certificate the variables name, or nil.
func tlsConfig(get func(string) (string, string)) (*tls.Config, error) {
	caName, ca := get("CERTIFICATE")
	certName, cert := get("CLIENT_CERTIFICATE")
	keyName, key := get("CLIENT_KEY")
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", caName, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s=%q: no PEM certificate in it", caName, ca)
		}
	}
	if cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, fmt.Errorf("%s and %s: set both or neither", certName, keyName)
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", certName, keyName, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// ExportSpans sends spans in one request, retrying what the specification
// says to retry (429, 502, 503, 504 and failed connections, honouring
// Retry-After) until the exporter's timeout or ctx ends.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	stopped := e.stopped
	e.mu.Unlock()
	if stopped || len(spans) == 0 {
		return nil
	}
	body, err := json.Marshal(encodeSpans(spans))
	if err != nil {
		return fmt.Errorf("otlp/json: %w", err)
	}
	if e.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("otlp/json: gzip: %w", err)
		}
		body = buf.Bytes()
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for {
		wait, err := e.send(ctx, body)
		if err == nil {
			return nil
		}
		if wait < 0 { // not retryable
			return err
		}
		if wait == 0 {
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, 5*time.Second)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// send makes one request. On failure, wait is how long to wait before
// trying again: 0 for the caller's backoff, negative for never.
func (e *exporter) send(ctx context.Context, body []byte) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return -1, fmt.Errorf("otlp/json: %w", err)
	}
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	if e.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("otlp/json: %w", ctx.Err())
		}
		return 0, fmt.Errorf("otlp/json: %w", err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		var out struct {
			PartialSuccess *struct {
				RejectedSpans json.Number `json:"rejectedSpans"`
				ErrorMessage  string      `json:"errorMessage"`
			} `json:"partialSuccess"`
		}
		if json.Unmarshal(text, &out) == nil && out.PartialSuccess != nil &&
			(out.PartialSuccess.ErrorMessage != "" || out.PartialSuccess.RejectedSpans.String() != "" && out.PartialSuccess.RejectedSpans.String() != "0") {
			otel.Handle(fmt.Errorf("otlp/json: collector rejected %s spans: %s",
				out.PartialSuccess.RejectedSpans, out.PartialSuccess.ErrorMessage))
		}
		return 0, nil
	}
	err = fmt.Errorf("otlp/json: %s from %s: %s", resp.Status, e.url, statusMessage(text))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
			return max(time.Duration(s)*time.Second, time.Millisecond), err
		}
		return 0, err
	}
	return -1, err
}

// statusMessage is the message of a google.rpc.Status body, else the body,
// short.
func statusMessage(text []byte) string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(text, &st) == nil && st.Message != "" {
		text = []byte(st.Message)
	}
	s := strings.TrimSpace(string(text))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Shutdown stops the exporter: later exports do nothing.
func (e *exporter) Shutdown(context.Context) error {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.client.CloseIdleConnections()
	return nil
}

// The OTLP/JSON messages, as far as this exporter fills them.
type (
	exportRequest struct {
		ResourceSpans []resourceSpans `json:"resourceSpans"`
	}
	resourceSpans struct {
		Resource   resourceJSON `json:"resource"`
		ScopeSpans []scopeSpans `json:"scopeSpans"`
		SchemaURL  string       `json:"schemaUrl,omitempty"`
	}
	resourceJSON struct {
		Attributes []keyValue `json:"attributes,omitempty"`
	}
	scopeSpans struct {
		Scope     scopeJSON  `json:"scope"`
		Spans     []spanJSON `json:"spans"`
		SchemaURL string     `json:"schemaUrl,omitempty"`
	}
	scopeJSON struct {
		Name       string     `json:"name,omitempty"`
		Version    string     `json:"version,omitempty"`
		Attributes []keyValue `json:"attributes,omitempty"`
	}
	spanJSON struct {
		TraceID                string      `json:"traceId"`
		SpanID                 string      `json:"spanId"`
		TraceState             string      `json:"traceState,omitempty"`
		ParentSpanID           string      `json:"parentSpanId,omitempty"`
		Flags                  uint32      `json:"flags,omitempty"`
		Name                   string      `json:"name"`
		Kind                   int         `json:"kind"`
		StartTimeUnixNano      string      `json:"startTimeUnixNano"`
		EndTimeUnixNano        string      `json:"endTimeUnixNano"`
		Attributes             []keyValue  `json:"attributes,omitempty"`
		DroppedAttributesCount int         `json:"droppedAttributesCount,omitempty"`
		Events                 []eventJSON `json:"events,omitempty"`
		DroppedEventsCount     int         `json:"droppedEventsCount,omitempty"`
		Links                  []linkJSON  `json:"links,omitempty"`
		DroppedLinksCount      int         `json:"droppedLinksCount,omitempty"`
		Status                 *statusJSON `json:"status,omitempty"`
	}
	eventJSON struct {
		TimeUnixNano           string     `json:"timeUnixNano"`
		Name                   string     `json:"name"`
		Attributes             []keyValue `json:"attributes,omitempty"`
		DroppedAttributesCount int        `json:"droppedAttributesCount,omitempty"`
	}
	linkJSON struct {
		TraceID                string     `json:"traceId"`
		SpanID                 string     `json:"spanId"`
		TraceState             string     `json:"traceState,omitempty"`
		Attributes             []keyValue `json:"attributes,omitempty"`
		DroppedAttributesCount int        `json:"droppedAttributesCount,omitempty"`
		Flags                  uint32     `json:"flags,omitempty"`
	}
	statusJSON struct {
		Message string `json:"message,omitempty"`
		Code    int    `json:"code,omitempty"`
	}
	keyValue struct {
		Key   string   `json:"key"`
		Value anyValue `json:"value"`
	}
	anyValue struct {
		StringValue *string         `json:"stringValue,omitempty"`
		BoolValue   *bool           `json:"boolValue,omitempty"`
		IntValue    string          `json:"intValue,omitempty"` // int64: a decimal string
		DoubleValue json.RawMessage `json:"doubleValue,omitempty"`
		ArrayValue  *arrayValue     `json:"arrayValue,omitempty"`
	}
	arrayValue struct {
		Values []anyValue `json:"values"`
	}
)

// OTLP's status codes (UNSET 0, OK 1, ERROR 2) are not the SDK's.
func statusCode(c codes.Code) int {
	switch c {
	case codes.Ok:
		return 1
	case codes.Error:
		return 2
	}
	return 0
}

// Span flags: the W3C trace flags in bits 0-7, then whether the parent's
// remoteness is known (bit 8) and whether it is remote (bit 9).
func spanFlags(sc trace.SpanContext, parent trace.SpanContext) uint32 {
	f := uint32(sc.TraceFlags()) | 0x100
	if parent.IsRemote() {
		f |= 0x200
	}
	return f
}

func nanos(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

// encodeSpans groups spans by resource, then by instrumentation scope.
func encodeSpans(spans []sdktrace.ReadOnlySpan) exportRequest {
	type scopeKey struct {
		res   *resource.Resource
		scope instrumentation.Scope
	}
	var req exportRequest
	resIdx := map[*resource.Resource]int{}
	scopeIdx := map[scopeKey]int{}
	for _, s := range spans {
		res := s.Resource()
		ri, ok := resIdx[res]
		if !ok {
			ri = len(req.ResourceSpans)
			resIdx[res] = ri
			rs := resourceSpans{}
			if res != nil {
				rs.Resource.Attributes = keyValues(res.Attributes())
				rs.SchemaURL = res.SchemaURL()
			}
			req.ResourceSpans = append(req.ResourceSpans, rs)
		}
		scope := s.InstrumentationScope()
		key := scopeKey{res, instrumentation.Scope{Name: scope.Name, Version: scope.Version, SchemaURL: scope.SchemaURL}}
		si, ok := scopeIdx[key]
		rs := &req.ResourceSpans[ri]
		if !ok {
			si = len(rs.ScopeSpans)
			scopeIdx[key] = si
			rs.ScopeSpans = append(rs.ScopeSpans, scopeSpans{
				Scope:     scopeJSON{Name: scope.Name, Version: scope.Version, Attributes: keyValues(scope.Attributes.ToSlice())},
				SchemaURL: scope.SchemaURL,
			})
		}
		rs.ScopeSpans[si].Spans = append(rs.ScopeSpans[si].Spans, encodeSpan(s))
	}
	return req
}

func encodeSpan(s sdktrace.ReadOnlySpan) spanJSON {
	sc, parent := s.SpanContext(), s.Parent()
	out := spanJSON{
		TraceID:                sc.TraceID().String(),
		SpanID:                 sc.SpanID().String(),
		TraceState:             sc.TraceState().String(),
		Flags:                  spanFlags(sc, parent),
		Name:                   s.Name(),
		Kind:                   int(s.SpanKind()), // the SDK's numbering is OTLP's
		StartTimeUnixNano:      nanos(s.StartTime()),
		EndTimeUnixNano:        nanos(s.EndTime()),
		Attributes:             keyValues(s.Attributes()),
		DroppedAttributesCount: s.DroppedAttributes(),
		DroppedEventsCount:     s.DroppedEvents(),
		DroppedLinksCount:      s.DroppedLinks(),
	}
	if parent.SpanID().IsValid() {
		out.ParentSpanID = parent.SpanID().String()
	}
	for _, ev := range s.Events() {
		out.Events = append(out.Events, eventJSON{
			TimeUnixNano: nanos(ev.Time), Name: ev.Name,
			Attributes: keyValues(ev.Attributes), DroppedAttributesCount: ev.DroppedAttributeCount,
		})
	}
	for _, l := range s.Links() {
		out.Links = append(out.Links, linkJSON{
			TraceID: l.SpanContext.TraceID().String(), SpanID: l.SpanContext.SpanID().String(),
			TraceState: l.SpanContext.TraceState().String(), Attributes: keyValues(l.Attributes),
			DroppedAttributesCount: l.DroppedAttributeCount, Flags: spanFlags(l.SpanContext, l.SpanContext),
		})
	}
	if st := s.Status(); st.Code != codes.Unset {
		out.Status = &statusJSON{Code: statusCode(st.Code)}
		if st.Code == codes.Error {
			out.Status.Message = st.Description
		}
	}
	return out
}

func keyValues(attrs []attribute.KeyValue) []keyValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make([]keyValue, 0, len(attrs))
	for _, a := range attrs {
		if v, ok := encodeValue(a.Value); ok {
			out = append(out, keyValue{Key: string(a.Key), Value: v})
		}
	}
	return out
}

func encodeValue(v attribute.Value) (anyValue, bool) {
	switch v.Type() {
	case attribute.BOOL:
		b := v.AsBool()
		return anyValue{BoolValue: &b}, true
	case attribute.INT64:
		return intValue(v.AsInt64()), true
	case attribute.FLOAT64:
		return doubleValue(v.AsFloat64()), true
	case attribute.STRING:
		s := v.AsString()
		return anyValue{StringValue: &s}, true
	case attribute.BOOLSLICE:
		return array(v.AsBoolSlice(), func(b bool) anyValue { return anyValue{BoolValue: &b} }), true
	case attribute.INT64SLICE:
		return array(v.AsInt64Slice(), intValue), true
	case attribute.FLOAT64SLICE:
		return array(v.AsFloat64Slice(), doubleValue), true
	case attribute.STRINGSLICE:
		return array(v.AsStringSlice(), func(s string) anyValue { return anyValue{StringValue: &s} }), true
	}
	return anyValue{}, false
}

func intValue(i int64) anyValue { return anyValue{IntValue: strconv.FormatInt(i, 10)} }

// doubleValue is a JSON number, or proto3 JSON's "NaN", "Infinity" and
// "-Infinity", which encoding/json cannot write as numbers.
func doubleValue(f float64) anyValue {
	switch {
	case math.IsNaN(f):
		return anyValue{DoubleValue: json.RawMessage(`"NaN"`)}
	case math.IsInf(f, 1):
		return anyValue{DoubleValue: json.RawMessage(`"Infinity"`)}
	case math.IsInf(f, -1):
		return anyValue{DoubleValue: json.RawMessage(`"-Infinity"`)}
	}
	return anyValue{DoubleValue: json.RawMessage(strconv.FormatFloat(f, 'g', -1, 64))}
}

func array[T any](vs []T, enc func(T) anyValue) anyValue {
	out := make([]anyValue, len(vs))
	for i, v := range vs {
		out[i] = enc(v)
	}
	return anyValue{ArrayValue: &arrayValue{Values: out}}
}
