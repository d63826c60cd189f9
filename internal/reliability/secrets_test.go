package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/faultproxy"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/handler"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// secret is the Parameters value that must never leave the request.
const secret = "Sup3r-S3cret-Passw0rd-7f3a"

// echoing answers, for every call that names node echoNode, what a service
// that echoes request values would: a 400 ValidationException (a client
// fault, which makes the engine halve the batch until the entry is alone)
// quoting the parameter value, and for echo500Node a 500 doing the same.
func echoing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		status, code := 0, ""
		switch {
		case bytes.Contains(body, []byte(echoNode)):
			status, code = http.StatusBadRequest, "ValidationException"
		case bytes.Contains(body, []byte(echo500Node)):
			status, code = http.StatusInternalServerError, "InternalServerError"
		default:
			next.ServeHTTP(w, r)
			return
		}
		msg := fmt.Sprintf("1 validation error detected: Value '{commands=[%s]}' at 'entries.1.member.parameters' failed to satisfy constraint", secret)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg, "Message": msg})
	})
}

var (
	echoNode    = nodeID(0xec40)
	echo500Node = nodeID(0xec50)
)

// secretPayloads are the requests of the secrets test: accepted ones on
// every path (success, entry failures whose message echoes the value,
// whole-call refusals echoing it, throttling, an unreachable DynamoDB) and
// rejected ones whose problem sits right at the value.
func secretPayloads(w *world) []struct {
	name    string
	body    string
	prepare func()
} {
	shell := func(nodes ...string) string {
		var entries []string
		for _, n := range nodes {
			entries = append(entries, fmt.Sprintf(`{"Name":%q,"Targets":[{"Key":"InstanceIds","Values":[%q]}],"Parameters":{"commands":[%q],"workingDirectory":["/tmp"]}}`, docShell, n, secret))
		}
		return `{"Entries":[` + strings.Join(entries, ",") + `]}`
	}
	none := func() {}
	return []struct {
		name    string
		body    string
		prepare func()
	}{
		{"success", shell(nodeID(1), nodeID(2)), none},
		{"fanout success", fmt.Sprintf(`{"Association":{"Name":%q,"Parameters":{"commands":[%q]}},"InstanceIds":[%q,%q]}`, docShell, secret, nodeID(3), nodeID(4)), none},
		{"entry failure echoing the value (Server)", shell(nodeID(5), nodeID(6)), func() {
			w.emu.FailEntry(docShell, nodeID(5), 10, "Server", "could not run "+secret+" on the node")
		}},
		{"entry failure echoing the value (Client)", shell(nodeID(7)), func() {
			w.emu.FailEntry(docShell, nodeID(7), 1, "Client", "parameter commands value "+secret+" is invalid")
		}},
		{"whole call refused echoing the value", shell(nodeID(8), echoNode, nodeID(9)), none},
		{"5xx echoing the value", shell(echo500Node), none},
		{"throttled", shell(nodeID(10)), func() { w.emu.FailCalls(6, "ThrottlingException", 0) }},
		{"dynamodb unavailable", shell(nodeID(11)), func() {
			w.proxy.SetRules(faultproxy.Rule{Count: 10, Fault: faultproxy.Unavailable})
		}},
		{"rejected: value of the wrong type", fmt.Sprintf(`{"Entries":[{"Name":%q,"InstanceId":%q,"Parameters":{"commands":%q}}]}`, docShell, nodeID(12), secret), none},
		{"rejected: value list of the wrong type", fmt.Sprintf(`{"Entries":[{"Name":%q,"InstanceId":%q,"Parameters":{"commands":[%q, {"x": %q}]}}]}`, docShell, nodeID(12), secret, secret), none},
		{"rejected: syntax error after the value", fmt.Sprintf(`{"Entries":[{"Name":%q,"Parameters":{"commands":[%q}}]}`, docShell, secret), none},
		{"rejected: syntax error inside the value", `{"Entries":[{"Name":"AWS-RunShellScript","Parameters":{"commands":["` + secret + `\q"]}}]}`, none},
		{"rejected: invalid UTF-8 in the value", `{"Entries":[{"Name":"AWS-RunShellScript","Parameters":{"commands":["` + secret + "\xff\xfe" + `"]}}]}`, none},
		{"rejected: unknown member beside the value", fmt.Sprintf(`{"Entries":[{"Name":%q,"InstanceId":%q,"Parameters":{"commands":[%q]},"Secret":%q}]}`, docShell, nodeID(13), secret, secret), none},
		{"rejected: value in an unknown top-level member", fmt.Sprintf(`{"Entries":[],"Parameters":{"commands":[%q]}}`, secret), none},
		{"invalid entry: value too long", fmt.Sprintf(`{"Entries":[{"Name":%q,"InstanceId":"i-123","Parameters":{"commands":[%q]}}]}`, docShell, strings.Repeat(secret, 20000)), none},
	}
}

// TestReliabilitySecretsNeverLeak sends requests whose Parameters hold a
// secret through the handler (with the real engine, the emulator and
// DynamoDB Local) as API and as direct invocations, with the logger at
// DEBUG, and checks that the value appears in no log line, no EMF metric
// line, no error and no answer — on success, Failed (including service
// messages that echo the value), throttling, unavailability and rejection.
// Then the same through the real bootstrap under the RIE, reading
// everything the process printed.
func TestReliabilitySecretsNeverLeak(t *testing.T) {
	needServices(t)
	check := func(t *testing.T, where, text string) {
		t.Helper()
		for _, probe := range []string{secret, secret[:12], secret[8:]} {
			if strings.Contains(text, probe) {
				i := strings.Index(text, probe)
				t.Errorf("%s: the secret (%q) leaked: …%s…", where, probe, text[max(0, i-200):min(len(text), i+100)])
				return
			}
		}
	}

	t.Run("InProcess", func(t *testing.T) {
		opts := ssmlocal.DefaultOptions()
		w := newWorld(t, opts, worldOpt{wrap: echoing})
		cfg, err := config.FromLookup(func(k string) (string, bool) {
			if k == "DEDUPE_TABLE" {
				return w.table, true
			}
			return "", false
		})
		if err != nil {
			t.Fatal(err)
		}
		var logs, metrics syncBuffer
		log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		set := engineSettings
		set.Backoff, set.MaxBackoff, set.MaxAttempts = 5*time.Millisecond, 20*time.Millisecond, 1
		// The engine logs through the handler's logger, as in main.
		h := handler.New(associate.New(w.ssm, w.store, set, log), cfg, log, &metrics)
		saw := map[string]bool{}
		for _, p := range secretPayloads(w) {
			for _, shape := range []string{"api", "direct"} {
				p.prepare()
				payload := []byte(p.body)
				if shape == "api" {
					payload = restEvent([]byte(p.body))
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				out, err := h.Invoke(ctx, payload)
				cancel()
				w.proxy.SetRules()
				where := p.name + " (" + shape + ")"
				if err != nil {
					check(t, where+": error", err.Error())
					check(t, where+": error (%+v)", fmt.Sprintf("%+v", err))
					saw[fmt.Sprintf("%T", err)] = true
				}
				b, _ := json.Marshal(out)
				check(t, where+": answer", string(b))
				if strings.Contains(string(b), `"statusCode":`) {
					var r struct{ StatusCode int }
					json.Unmarshal(b, &r)
					saw[fmt.Sprintf("HTTP %d", r.StatusCode)] = true
				}
				if strings.Contains(string(b), "commands") {
					saw["parameter name kept"] = true
				}
			}
		}
		check(t, "logs", logs.String())
		check(t, "metrics", metrics.String())
		var kinds []string
		for k := range saw {
			kinds = append(kinds, k)
		}
		t.Logf("answers seen: %v; %d bytes of DEBUG logs, %d bytes of metrics", kinds, logs.Len(), metrics.Len())
		for _, want := range []string{"HTTP 200", "HTTP 400", "HTTP 503", "*handler.InvalidRequestError", "*handler.IncompleteError", "*handler.UnavailableError", "parameter name kept"} {
			if !saw[want] {
				t.Errorf("no %s among the answers: the test did not cover that path", want)
			}
		}
		st := w.emu.Stats()
		if st.EntriesFailedByInjection == 0 || st.ThrottledCalls == 0 {
			t.Errorf("the failure paths were not exercised: %+v", st)
		}
	})

	t.Run("RIE", func(t *testing.T) {
		needServices(t, testinfra.ToolRIE, testinfra.ToolGo)
		w := newWorld(t, ssmlocal.DefaultOptions(), worldOpt{wrap: echoing})
		rie := startFunction(t, w, time.Minute, "AWS_LAMBDA_LOG_LEVEL=DEBUG", "MAX_ATTEMPTS=1")
		for _, p := range secretPayloads(w) {
			p.prepare()
			for _, payload := range [][]byte{restEvent([]byte(p.body)), []byte(p.body)} {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				raw, err := rie.Invoke(ctx, payload)
				cancel()
				if err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				check(t, p.name+": answer", string(raw))
			}
			w.proxy.SetRules()
		}
		logs := rie.Logs()
		check(t, "function output", logs)
		if !strings.Contains(logs, `"level":"DEBUG"`) && !strings.Contains(logs, "CreateAssociationBatch failed") {
			t.Logf("note: no DEBUG line in the output")
		}
		t.Logf("function printed %d bytes", len(logs))
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}
