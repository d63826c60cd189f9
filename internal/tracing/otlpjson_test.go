package tracing

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The collector's side of OTLP/JSON, declared here apart from the
// exporter's types so that the test reads the wire format, not the code.
type (
	wireRequest struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []wireKV `json:"attributes"`
			} `json:"resource"`
			ScopeSpans []struct {
				Scope struct {
					Name string `json:"name"`
				} `json:"scope"`
				Spans []wireSpan `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	wireSpan struct {
		TraceID           string          `json:"traceId"`
		SpanID            string          `json:"spanId"`
		ParentSpanID      string          `json:"parentSpanId"`
		Flags             uint32          `json:"flags"`
		Name              string          `json:"name"`
		Kind              json.RawMessage `json:"kind"`
		StartTimeUnixNano json.RawMessage `json:"startTimeUnixNano"`
		EndTimeUnixNano   json.RawMessage `json:"endTimeUnixNano"`
		Attributes        []wireKV        `json:"attributes"`
		Events            []struct {
			TimeUnixNano string   `json:"timeUnixNano"`
			Name         string   `json:"name"`
			Attributes   []wireKV `json:"attributes"`
		} `json:"events"`
		Links []struct {
			TraceID string `json:"traceId"`
			SpanID  string `json:"spanId"`
		} `json:"links"`
		Status *struct {
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
		} `json:"status"`
	}
	wireKV struct {
		Key   string                     `json:"key"`
		Value map[string]json.RawMessage `json:"value"`
	}
)

// collector is an OTLP/HTTP JSON receiver that keeps what it was sent.
type collector struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []wireRequest
	raw      []string
	fail     []int // status codes to answer first, one per request
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, r)
	if len(c.fail) > 0 {
		code := c.fail[0]
		c.fail = c.fail[1:]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"code":3,"message":"no"}`)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	var req wireRequest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.bodies = append(c.bodies, req)
	c.raw = append(c.raw, string(b))
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{}`)
}

func (c *collector) spans() []wireSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wireSpan
	for _, b := range c.bodies {
		for _, rs := range b.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				out = append(out, ss.Spans...)
			}
		}
	}
	return out
}

func clearOTELEnv(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
		"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
		"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
		"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
		"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_KEY"} {
		t.Setenv(k, "")
	}
}

// TestExportOTLPJSON: tracing set up from the environment exports an
// invocation, before it returns, to the collector at the endpoint as
// OTLP/JSON: gzipped, with the configured headers, the span tree in the
// incoming X-Ray trace, hex IDs, times as decimal strings, typed
// attributes, the error status by type only, and the resource's
// service.name.
func TestExportOTLPJSON(t *testing.T) {
	col := &collector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	clearOTELEnv(t)
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "associate")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL+"/base/")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%3Dcret, x-team = ops")
	t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")

	tr, err := FromEnv(context.Background())
	if err != nil || !tr.On() {
		t.Fatalf("FromEnv: on %v, %v", tr.On(), err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()

	before := time.Now()
	link := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}})
	err = invoke(t, tr, func(ctx context.Context) error {
		_, span := tr.tracer.Start(ctx, "work", trace.WithLinks(trace.Link{SpanContext: link}))
		span.SetAttributes(
			attribute.Int64("n", 1<<62), attribute.Bool("ok", true), attribute.Float64("ratio", 0.5),
			attribute.StringSlice("ids", []string{"a", "b"}), attribute.Int64Slice("counts", []int64{1, 2}))
		span.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", 2)))
		span.End()
		return errors.New("boom: Parameters commands echo s3cr3t")
	})
	if err == nil {
		t.Fatal("error lost")
	}
	after := time.Now()

	// exported before the invocation returned: no waiting here
	spans := col.spans()
	if len(col.requests) != 1 || len(spans) != 2 {
		t.Fatalf("requests %d, spans %+v", len(col.requests), spans)
	}
	r := col.requests[0]
	if r.Method != http.MethodPost || r.URL.Path != "/base/v1/traces" || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("request %s %s, Content-Type %q, Content-Encoding %q", r.Method, r.URL.Path,
			r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"))
	}
	if r.Header.Get("X-Api-Key") != "s=cret" || r.Header.Get("X-Team") != "ops" {
		t.Errorf("headers %v", r.Header)
	}
	if raw := col.raw[0]; strings.Contains(raw, "s3cr3t") || strings.Contains(raw, "boom") {
		t.Errorf("the error's text was exported: %s", raw)
	}

	body := col.bodies[0]
	if len(body.ResourceSpans) != 1 || len(body.ResourceSpans[0].ScopeSpans) != 1 ||
		body.ResourceSpans[0].ScopeSpans[0].Scope.Name != ScopeName {
		t.Fatalf("resourceSpans/scopeSpans shape: %s", col.raw[0])
	}
	res := body.ResourceSpans[0].Resource.Attributes
	if got := str(t, res, "service.name"); got != "associate" {
		t.Errorf("resource service.name %q", got)
	}

	byName := map[string]wireSpan{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	inv, work := byName["associate"], byName["work"]
	for _, s := range []wireSpan{inv, work} {
		if s.TraceID != incomingTrace {
			t.Errorf("%s traceId %q, want the X-Ray trace in hex %s", s.Name, s.TraceID, incomingTrace)
		}
		if b, err := hex.DecodeString(s.SpanID); err != nil || len(b) != 8 {
			t.Errorf("%s spanId %q: not 16 hex digits", s.Name, s.SpanID)
		}
		start, end := unixNano(t, s.StartTimeUnixNano), unixNano(t, s.EndTimeUnixNano)
		if start.Before(before.Add(-time.Millisecond)) || end.After(after.Add(time.Millisecond)) || end.Before(start) {
			t.Errorf("%s times %v – %v outside the invocation %v – %v", s.Name, start, end, before, after)
		}
	}
	if inv.ParentSpanID != incomingParent || inv.Flags&0x301 != 0x301 {
		t.Errorf("invocation parent %q flags %#x, want Lambda's segment %s, remote and sampled", inv.ParentSpanID, inv.Flags, incomingParent)
	}
	if work.ParentSpanID != inv.SpanID || work.Flags&0x300 != 0x100 {
		t.Errorf("work parent %q flags %#x, want the invocation %q, local", work.ParentSpanID, work.Flags, inv.SpanID)
	}
	if string(inv.Kind) != "2" || string(work.Kind) != "1" {
		t.Errorf("kinds %s, %s: want SERVER 2 and INTERNAL 1, as integers", inv.Kind, work.Kind)
	}
	if got := str(t, inv.Attributes, "faas.invocation_id"); got != "c6af9ac6-7b61-11e6-9a41-93e812345678" {
		t.Errorf("faas.invocation_id %q", got)
	}
	if inv.Status == nil || string(inv.Status.Code) != "2" || inv.Status.Message != "*errors.errorString" {
		t.Errorf("invocation status %+v, want ERROR (2) naming the type", inv.Status)
	}
	if work.Status != nil {
		t.Errorf("work status %+v, want unset", work.Status)
	}
	for key, want := range map[string]string{
		"n":      `{"intValue":"4611686018427387904"}`,
		"ok":     `{"boolValue":true}`,
		"ratio":  `{"doubleValue":0.5}`,
		"ids":    `{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}`,
		"counts": `{"arrayValue":{"values":[{"intValue":"1"},{"intValue":"2"}]}}`,
	} {
		if got := value(work.Attributes, key); got != want {
			t.Errorf("attribute %s = %s, want %s", key, got, want)
		}
	}
	if len(work.Events) != 1 || work.Events[0].Name != "retry" || value(work.Events[0].Attributes, "attempt") != `{"intValue":"2"}` {
		t.Errorf("events %+v", work.Events)
	}
	if len(work.Links) != 1 || work.Links[0].TraceID != link.TraceID().String() || work.Links[0].SpanID != link.SpanID().String() {
		t.Errorf("links %+v", work.Links)
	}
}

func str(t *testing.T, kvs []wireKV, key string) string {
	t.Helper()
	for _, kv := range kvs {
		if kv.Key == key {
			var s string
			if err := json.Unmarshal(kv.Value["stringValue"], &s); err != nil {
				t.Errorf("%s: %v", key, err)
			}
			return s
		}
	}
	return ""
}

func value(kvs []wireKV, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			b, _ := json.Marshal(kv.Value)
			return string(b)
		}
	}
	return ""
}

// unixNano reads a fixed64 time, which OTLP/JSON writes as a decimal string.
func unixNano(t *testing.T, raw json.RawMessage) time.Time {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("time %s is not a string: %v", raw, err)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return time.Unix(0, n)
}

func oneSpan(t *testing.T) []sdktrace.ReadOnlySpan {
	t.Helper()
	var spans []sdktrace.ReadOnlySpan
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(collectSpans{&spans}))
	_, s := tp.Tracer("t").Start(context.Background(), "s")
	s.End()
	return spans
}

type collectSpans struct{ spans *[]sdktrace.ReadOnlySpan }

func (c collectSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c collectSpans) OnEnd(s sdktrace.ReadOnlySpan)                   { *c.spans = append(*c.spans, s) }
func (c collectSpans) Shutdown(context.Context) error                  { return nil }
func (c collectSpans) ForceFlush(context.Context) error                { return nil }

// TestExportRetries: 503 and 429 are tried again (Retry-After honoured);
// 400 is not.
func TestExportRetries(t *testing.T) {
	col := &collector{fail: []int{503, 429}}
	srv := httptest.NewServer(col)
	defer srv.Close()
	exp, err := newExporter(env{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/custom"}.get)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(context.Background(), oneSpan(t)); err != nil {
		t.Fatal(err)
	}
	if len(col.requests) != 3 || len(col.spans()) != 1 || col.requests[2].URL.Path != "/custom" {
		t.Errorf("%d requests, %d spans", len(col.requests), len(col.spans()))
	}

	col = &collector{fail: []int{400}}
	srv2 := httptest.NewServer(col)
	defer srv2.Close()
	exp, _ = newExporter(env{"OTEL_EXPORTER_OTLP_ENDPOINT": srv2.URL}.get)
	err = exp.ExportSpans(context.Background(), oneSpan(t))
	if err == nil || !strings.Contains(err.Error(), "400") || len(col.requests) != 1 {
		t.Errorf("400: %v after %d requests; want an error and no retry", err, len(col.requests))
	}
}

// TestExportTimeout: OTEL_EXPORTER_OTLP_TIMEOUT bounds an export, retries
// included.
func TestExportTimeout(t *testing.T) {
	exp, err := newExporter(env{"OTEL_EXPORTER_OTLP_ENDPOINT": stuckCollector(t), "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "100"}.get)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = exp.ExportSpans(context.Background(), oneSpan(t))
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("export against a stuck collector: %v after %v", err, time.Since(start))
	}
}

// stuckCollector is the URL of a collector that never answers (until the
// test ends).
func stuckCollector(t *testing.T) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL
}

type env map[string]string

func (e env) get(k string) string { return e[k] }

// TestExporterConfig: endpoints resolve as the specification says, and a
// value the exporter cannot use stops the start with the variable's name.
func TestExporterConfig(t *testing.T) {
	for _, tc := range []struct {
		env  env
		url  string
		fail string // the variable the error names
	}{
		{env: env{}, url: "http://localhost:4318/v1/traces"},
		{env: env{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318"}, url: "https://collector:4318/v1/traces"},
		{env: env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c/otlp/"}, url: "http://c/otlp/v1/traces"},
		{env: env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x"}, url: "http://t:1/x"},
		{env: env{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, fail: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{env: env{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://x"}, fail: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{env: env{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, fail: "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{env: env{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"}, fail: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"},
		{env: env{"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, fail: "OTEL_EXPORTER_OTLP_HEADERS"},
		{env: env{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent.pem"}, fail: "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{env: env{"OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, fail: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"},
	} {
		exp, err := newExporter(tc.env.get)
		switch {
		case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.fail)
		case tc.fail == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.fail == "" && exp.url != tc.url:
			t.Errorf("%v: URL %s, want %s", tc.env, exp.url, tc.url)
		}
	}
}

// TestFromEnvRefusesProtobuf: asking for OTLP/HTTP protobuf stops the
// start with an error naming the variable, rather than sending JSON to a
// collector told to expect protobuf.
func TestFromEnvRefusesProtobuf(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
	tr, err := FromEnv(context.Background())
	if err == nil || tr.On() || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") || !strings.Contains(err.Error(), "http/json") {
		t.Errorf("FromEnv: on %v, %v", tr.On(), err)
	}
}
