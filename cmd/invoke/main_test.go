package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/samtemplate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// The end to end path (samtemplate.Local: services, builds, the functions
// under the emulator, jobs through the queue) is exercised with every file
// in events/ by internal/samtemplate's TestSampleEventsThroughTheFunction.
// These tests cover what this command adds around it, and TestRunOneEvent
// runs the command itself once, as make invoke does.

func eventFile(t *testing.T, name string) []byte {
	t.Helper()
	root, err := testinfra.ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{nil, "no event"},
		{[]string{"-event", "x.json", "-jobs", "maybe"}, "-jobs"},
		{[]string{"-event", "x.json", "extra"}, "unexpected arguments"},
		{[]string{"-local-tables"}, ""},
		{[]string{"-event", "x.json", "-function", "worker", "-jobs", "on", "-v"}, ""},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseFlags(%q) = %v, want error containing %q", tc.args, err, tc.err)
		}
	}
	if err := run(context.Background(), []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestFunctionID(t *testing.T) {
	sqs, direct := eventFile(t, "sqs-chunk.json"), eventFile(t, "direct.json")
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"", sqs, samtemplate.WorkerFunction},
		{"", direct, samtemplate.AssociateFunction},
		{"associate", sqs, samtemplate.AssociateFunction},
		{"Worker", direct, samtemplate.WorkerFunction},
		{"WorkerFunction", direct, samtemplate.WorkerFunction},
		{"AssociateFunction", sqs, samtemplate.AssociateFunction},
	} {
		if got, err := functionID(tc.name, tc.payload); err != nil || got != tc.want {
			t.Errorf("functionID(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if _, err := functionID("scheduler", direct); err == nil {
		t.Error("functionID(scheduler): no error")
	}
}

func TestAsksAsync(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    bool
	}{
		{`{"Async": true, "Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": ["i-0123456789abcdef0"]}`, true},
		{`{"Async": false, "Entries": []}`, false},
		{string(eventFile(t, "fanout.json")), false},
		{`{"version": "0", "id": "1", "detail-type": "Associate Nodes", "source": "ssm-association-batcher", "detail": {"Async": true, "Entries": []}}`, true},
		{`{"resource": "/associations", "path": "/associations", "httpMethod": "POST", "requestContext": {}, "body": "{\"Async\": true}"}`, true},
		{`not json`, false},
	} {
		if got := asksAsync([]byte(tc.payload)); got != tc.want {
			t.Errorf("asksAsync(%s) = %v, want %v", tc.payload, got, tc.want)
		}
	}
}

func TestPrintAnswer(t *testing.T) {
	var out bytes.Buffer
	var steps []string
	step := func(s string) { steps = append(steps, s) }

	body := printAnswer(&out, step, []byte(`{"statusCode": 400, "headers": {}, "body": "{\"message\": \"bad\"}"}`))
	if string(body) != `{"message": "bad"}` {
		t.Errorf("API answer: result %s, want its body", body)
	}
	if s := out.String(); !strings.Contains(s, `"statusCode": 400`) || !strings.Contains(s, `"message": "bad"`) || strings.Contains(s, `\"message\"`) {
		t.Errorf("API answer printed as\n%s\nwant the answer, then its body decoded", s)
	}

	out.Reset()
	answer := []byte(`{"errorType": "InvalidRequestError", "errorMessage": "no entries"}`)
	if body := printAnswer(&out, step, answer); !bytes.Equal(body, answer) || !strings.Contains(out.String(), `"errorType": "InvalidRequestError"`) {
		t.Errorf("error answer: result %s, printed %s", body, out.String())
	}
	if len(steps) != 2 || !strings.Contains(steps[1], "InvalidRequestError") {
		t.Errorf("steps %q: want the API status, then the error named", steps)
	}

	out.Reset()
	if body := printAnswer(&out, step, []byte(`{"batchItemFailures": []}`)); string(body) != `{"batchItemFailures": []}` || out.String() != "{\n  \"batchItemFailures\": []\n}\n" {
		t.Errorf("worker answer: result %s, printed %q", body, out.String())
	}
}

// TestRunOneEvent is make invoke EVENT=events/direct.json, with services of
// its own (-reuse=false: whatever make ssm-local or make local-tables left
// running is not touched): AssociateFunction built and run under the RIE,
// against the SSM emulator and DynamoDB Local with the template's tables.
// Its answer is printed on stdout, its steps on stderr, the function's
// output in the build directory's log.
func TestRunOneEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: builds AssociateFunction and starts DynamoDB Local")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal, testinfra.ToolJava, testinfra.ToolRIE, testinfra.ToolGo)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := testinfra.ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"-event", filepath.Join(root, "events", "direct.json"), "-reuse=false", "-build-dir", dir}, &stdout, &stderr)
	t.Logf("stderr:\n%s\nstdout:\n%s", stderr.String(), stdout.String())
	if err != nil {
		t.Fatal(err)
	}
	var res report.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not the function's result: %v", err)
	}
	if s := res.Summary; s.Requested != 2 || s.Successful != 2 || s.Calls != 1 || len(res.Successful) != 2 {
		t.Errorf("summary %+v, want both entries of events/direct.json associated in one call", s)
	}
	for _, want := range []string{"invoking " + samtemplate.AssociateFunction + " with", samtemplate.AssociateFunction + " answered in", "no jobs queue", filepath.Join(dir, "invoke.log")} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr has no %q", want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "invoke.log")); err != nil || !bytes.Contains(b, []byte("association request done")) {
		t.Errorf("invoke.log: %v; want the function's log line in it:\n%s", err, b)
	}
}
