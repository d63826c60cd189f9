package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c config)
		bad   bool
	}{
		{"defaults", nil, func(t *testing.T, c config) {
			if c.addr != "127.0.0.1:4583" || c.opts.MaxAssociations != 2000 || c.opts.MaxBatch != 0 || c.opts.Rate != 0 ||
				c.opts.MaxBodyBytes != ssmlocal.DefaultMaxBodyBytes || c.opts.Nodes != nil || c.opts.LostAnswerRate != 0 ||
				c.opts.ErrorAfterCreateRate != 0 || c.opts.SlowAnswerRate != 0 || c.opts.SlowAnswerDelay != ssmlocal.DefaultSlowAnswerDelay {
				t.Fatalf("defaults %+v", c)
			}
		}, false},
		{"all flags", []string{"-addr", ":9999", "-max-batch", "10", "-max-associations", "5", "-rate", "2.5", "-burst", "3",
			"-latency", "10ms", "-jitter", "5ms", "-entry-fault-rate", "0.1", "-throttle-rate", "0.2", "-error-rate", "0.3",
			"-seed", "7", "-documents", "d.json", "-nodes", "n.json", "-max-body-bytes", "4096",
			"-lost-answer-rate", "0.4", "-error-after-create-rate", "0.5", "-slow-answer-rate", "0.6", "-slow-answer-delay", "3s"}, func(t *testing.T, c config) {
			o := c.opts
			if c.addr != ":9999" || o.MaxBatch != 10 || o.MaxAssociations != 5 || o.Rate != 2.5 || o.Burst != 3 ||
				o.Latency != 10*time.Millisecond || o.Jitter != 5*time.Millisecond || o.EntryFaultRate != 0.1 ||
				o.ThrottleRate != 0.2 || o.ErrorRate != 0.3 || o.Seed != 7 || c.documentsFile != "d.json" ||
				c.nodesFile != "n.json" || o.MaxBodyBytes != 4096 || o.LostAnswerRate != 0.4 ||
				o.ErrorAfterCreateRate != 0.5 || o.SlowAnswerRate != 0.6 || o.SlowAnswerDelay != 3*time.Second {
				t.Fatalf("parsed %+v", c)
			}
		}, false},
		{"rate changes", []string{"-rate", "100", "-burst", "5", "-rate-changes", "30s=40/5,10s=20/1"}, func(t *testing.T, c config) {
			want := []ssmlocal.ScheduledRate{{After: 10 * time.Second, CallsPerSecond: 20, Burst: 1}, {After: 30 * time.Second, CallsPerSecond: 40, Burst: 5}}
			if fmt.Sprint(c.opts.RateSchedule) != fmt.Sprint(want) || c.opts.Rate != 100 || c.opts.Burst != 5 {
				t.Fatalf("parsed %+v", c.opts)
			}
		}, false},
		{"bad rate changes", []string{"-rate-changes", "10s=fast"}, nil, true},
		{"negative rate change", []string{"-rate-changes", "10s=-2/1"}, nil, true},
		{"probability above 1", []string{"-error-rate", "1.5"}, nil, true},
		{"negative probability", []string{"-entry-fault-rate", "-0.1"}, nil, true},
		{"negative rate", []string{"-rate", "-1"}, nil, true},
		{"lost answer rate above 1", []string{"-lost-answer-rate", "2"}, nil, true},
		{"negative error after create rate", []string{"-error-after-create-rate", "-0.5"}, nil, true},
		{"slow answer rate above 1", []string{"-slow-answer-rate", "1.01"}, nil, true},
		{"zero slow answer delay", []string{"-slow-answer-rate", "0.5", "-slow-answer-delay", "0s"}, nil, true},
		{"bad slow answer delay", []string{"-slow-answer-delay", "soon"}, nil, true},
		{"unknown flag", []string{"-bogus"}, nil, true},
		{"extra argument", []string{"serve"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			if tt.bad {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOptionsFiles(t *testing.T) {
	docs := writeFile(t, "docs.json", `[{"name": "Custom-Doc", "schemaVersion": "2.2", "platformTypes": ["Linux"], "parameters": [{"name": "x", "required": true}]}]`)
	nodes := writeFile(t, "nodes.json", `[{"id": "i-0123456789abcdef0", "platformType": "Windows", "state": "Online"}]`)
	c, err := parseFlags([]string{"-documents", docs, "-nodes", nodes}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options()
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Documents) != 1 || o.Documents[0].Name != "Custom-Doc" || !o.Documents[0].Parameters[0].Required ||
		len(o.Nodes) != 1 || o.Nodes[0].PlatformType != "Windows" {
		t.Fatalf("options %+v", o)
	}

	for _, bad := range [][]string{
		{"-documents", filepath.Join(t.TempDir(), "missing.json")},
		{"-documents", writeFile(t, "bad.json", `{"name": "not a list"}`)},
		{"-documents", writeFile(t, "noname.json", `[{"schemaVersion": "1.2"}]`)},
		{"-nodes", writeFile(t, "noid.json", `[{"platformType": "Linux"}]`)},
	} {
		c, err := parseFlags(bad, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.options(); err == nil {
			t.Fatalf("%v: want an error", bad)
		}
	}
}

// TestRunStopsOnCancel: run listens, serves and returns nil on shutdown.
func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	if err := run(ctx, []string{"-addr", "127.0.0.1:0"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ssm-local listening on http://127.0.0.1:") {
		t.Fatalf("output %q", out.String())
	}
	if err := run(context.Background(), []string{"-max-batch", "x"}, io.Discard, io.Discard); err == nil {
		t.Fatal("bad flag: want an error")
	}
}

// startServe runs serve on a free port and returns its URL.
func startServe(t *testing.T, opts ssmlocal.Options) (string, *ssmlocal.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := ssmlocal.New(opts)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, s) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), s
}

// aws runs the AWS CLI against url with throwaway credentials and no
// configuration files, and decodes its JSON output.
func awsCLI(t *testing.T, url string, out any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, "aws", append(args, "--endpoint-url", url, "--output", "json")...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") { // no profile, role or endpoint leaks in
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true", "AWS_MAX_ATTEMPTS=1")
	b, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("aws %v: %v\n%s", args, err, stderr)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("aws output %q: %v", b, err)
	}
}

// TestAWSCLI drives the real AWS CLI with the API reference's sample
// request and checks the sample response's shape.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the AWS CLI compatibility test (it starts the CLI)")
	}
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI (aws) is not on PATH; skipping the CLI compatibility test")
	}
	url, s := startServe(t, ssmlocal.DefaultOptions())
	entries := writeFile(t, "entries.json",
		`[ { "InstanceId": "i-0471e04240EXAMPLE", "Name": "AWS-UpdateSSMAgent" }, { "InstanceId": "i-07782c72faEXAMPLE", "Name": "AWS-UpdateSSMAgent" } ]`)

	var created struct {
		Successful []map[string]any
		Failed     []any
	}
	awsCLI(t, url, &created, "ssm", "create-association-batch", "--entries", "file://"+entries)
	if created.Failed == nil || len(created.Failed) != 0 || len(created.Successful) != 2 {
		t.Fatalf("response %+v", created)
	}
	for i, id := range []string{"i-0471e04240EXAMPLE", "i-07782c72faEXAMPLE"} {
		d := created.Successful[i]
		if d["InstanceId"] != id || d["Name"] != "AWS-UpdateSSMAgent" || d["AssociationId"] == nil {
			t.Fatalf("entry %d: %v", i, d)
		}
		tg, _ := d["Targets"].([]any)
		if len(tg) != 1 || tg[0].(map[string]any)["Key"] != "InstanceIds" {
			t.Fatalf("Targets %v", d["Targets"])
		}
		if st, _ := d["Status"].(map[string]any); st["Name"] != "Associated" {
			t.Fatalf("Status %v", d["Status"])
		}
		if ov, _ := d["Overview"].(map[string]any); ov["Status"] != "Pending" {
			t.Fatalf("Overview %v", d["Overview"])
		}
		// The CLI prints timestamps as the service sent them unless
		// configured otherwise: an epoch number.
		if _, ok := d["Date"].(float64); !ok {
			t.Fatalf("Date %#v is not numeric", d["Date"])
		}
	}

	var listed struct{ Associations []map[string]any }
	awsCLI(t, url, &listed, "ssm", "list-associations")
	if len(listed.Associations) != 2 {
		t.Fatalf("list-associations: %+v", listed)
	}
	awsCLI(t, url, &listed, "ssm", "list-associations", "--association-filter-list", "key=InstanceId,value=i-07782c72faEXAMPLE")
	if len(listed.Associations) != 1 || listed.Associations[0]["InstanceId"] != "i-07782c72faEXAMPLE" {
		t.Fatalf("filtered list-associations: %+v", listed)
	}
	if st := s.Stats(); st.AssociationsCreated != 2 || st.Operations["ListAssociations"] != 2 {
		t.Fatalf("stats %+v", st)
	}

	// The stats endpoint is served by the command too.
	resp, err := http.Get(url + "/_ssm-local/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st ssmlocal.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.AssociationsCreated != 2 {
		t.Fatalf("stats endpoint: %v %+v", err, st)
	}
}

// TestAfterCreateFlagsServe: a server started from -error-after-create-rate
// executes the call, answers 500, and reports it (and the new counters) at
// the stats endpoint.
func TestAfterCreateFlagsServe(t *testing.T) {
	c, err := parseFlags([]string{"-error-after-create-rate", "1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	url, s := startServe(t, c.opts)
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(
		`{"Entries":[{"Name":"AWS-RunShellScript","Targets":[{"Key":"InstanceIds","Values":["i-0123456789abcdef0"]}],"Parameters":{"commands":["echo hi"]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.CreateAssociationBatch")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("X-Amzn-ErrorType") != "InternalServerError" || len(s.Ledger()) != 1 {
		t.Fatalf("got %d %q, ledger %d", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), len(s.Ledger()))
	}
	resp, err = http.Get(url + "/_ssm-local/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{"errorsAfterCreate": 1, "associationsCreated": 1, "slowAnswers": 0, "droppedConnections": 0, "doubleAssociations": 0} {
		if st[k] != want {
			t.Fatalf("stats[%s] = %v, want %v (%v)", k, st[k], want, st)
		}
	}
}

// TestRateChangesServe: a server started with -rate-changes changes its rate
// when the time comes, and GET /_ssm-local/rate and the stats show it.
func TestRateChangesServe(t *testing.T) {
	c, err := parseFlags([]string{"-rate-changes", "300ms=0.001/1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now() // before the server's start
	url, _ := startServe(t, c.opts)
	rate := func() ssmlocal.RateSetting {
		t.Helper()
		resp, err := http.Get(url + "/_ssm-local/rate")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r ssmlocal.RateSetting
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := rate(); r.CallsPerSecond != 0 && time.Since(t0) < 300*time.Millisecond {
		t.Fatalf("before the change: %+v", r)
	}
	time.Sleep(time.Until(t0.Add(350 * time.Millisecond)))
	if r := rate(); r != (ssmlocal.RateSetting{CallsPerSecond: 0.001, Burst: 1}) {
		t.Fatalf("after the change: %+v", r)
	}
	resp, err := http.Get(url + "/_ssm-local/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st ssmlocal.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.RateChanges) != 2 ||
		st.RateChanges[1].SinceStart != 0.3 || st.RateChanges[1].Source != "schedule" {
		t.Fatalf("stats: %v %+v", err, st.RateChanges)
	}
}
