package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// TestSeenSaysWhatItCounts: the header counts attempts, every operation's,
// and the throttled ones among all of them, not among the reads it names
// last.
func TestSeenSaysWhatItCounts(t *testing.T) {
	before := ssmlocal.Stats{ThrottledCalls: 2, Operations: map[string]int{"CreateAssociationBatch": 1, "ListAssociations": 1}}
	after := ssmlocal.Stats{ThrottledCalls: 10, EntriesFailedByInjection: 3, Operations: map[string]int{
		"CreateAssociationBatch": 5, "UpdateAssociation": 1, "ListAssociations": 7, "DescribeAssociation": 4,
	}}
	got := seenBetween(before, after).String()
	for _, want := range []string{"SSM saw 15 attempts", "4 CreateAssociationBatch", "1 UpdateAssociation", "10 reads", "8 of the 15 throttled", "3 entries failed"} {
		if !strings.Contains(got, want) {
			t.Errorf("header %q: no %q", got, want)
		}
	}
	for _, want := range []string{"attempts", "retries", "Summary", "Calls", "Reads", "Throttles"} {
		if !strings.Contains(countsNote, want) {
			t.Errorf("the note under the header does not name %q: %s", want, countsNote)
		}
	}
}

// demoExpect is, for every file of events/, what the demo prints for it, or
// the refusal it gives before starting anything. A new file must be added.
var demoExpect = map[string]struct {
	kind    outcome
	refusal string   // checkPayload's error, when refused before sending
	prints  []string // in the output, when sent
}{
	"api-http-post.json":         {kind: ran, prints: []string{"HTTP 200", "OUTCOME", `Summary: {"Requested":`}},
	"api-rest-post.json":         {kind: ran, prints: []string{"HTTP 200", "OUTCOME", `Summary: {"Requested":`}},
	"api-rest-malformed.json":    {kind: refused, prints: []string{"HTTP 400", `"errors": [`}},
	"api-rest-status.json":       {kind: refused, prints: []string{"HTTP 404", "jobs are not configured"}}, // the demo runs no jobs
	"direct.json":                {kind: ran, prints: []string{"OUTCOME", `Summary: {"Requested":2,`}},
	"dry-run.json":               {kind: planned, prints: []string{"ACTION", "create", `Summary: {"Requested":3,"Create":3,`, "A dry run"}},
	"eventbridge-associate.json": {kind: ran, prints: []string{"OUTCOME", `Summary: {"Requested":3,`}},
	"fanout.json":                {kind: ran, prints: []string{"OUTCOME", `Summary: {"Requested":5,`, "duplicate in request"}},
	"schedule.json":              {kind: ran, prints: []string{"OUTCOME", `Summary: {"Requested":2,`}},
	"update.json":                {kind: ran, prints: []string{"OUTCOME", `Summary: {"Requested":2,`}},
	"sqs-chunk.json":             {refusal: "make invoke EVENT="},
	"env.local.json":             {refusal: "--env-vars file"},
}

// TestEveryEventFile sends every file of events/ through the demo as
// make demo ARGS="-request events/FILE" would: the real function under the
// RIE, the SSM emulator with the demo's faults, DynamoDB Local. Each
// prints its outcome (the body of an API answer decoded, a dry run as a
// plan, a refusal as the function answered it), or is refused before
// anything starts with the command that runs it. The function and the
// services are started once for all the files.
func TestEveryEventFile(t *testing.T) {
	root, err := testinfra.ProjectRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("events/*.json: %v %v", files, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for name := range demoExpect {
		if !slices.Contains(names, name) {
			t.Errorf("demoExpect has %s, which is not in events/", name)
		}
	}
	// Refusals first: they need nothing started.
	var send []string
	for _, name := range names {
		want, ok := demoExpect[name]
		if !ok {
			t.Errorf("events/%s: not in demoExpect; add what the demo prints for it", name)
			continue
		}
		source := "events/" + name
		body, err := os.ReadFile(filepath.Join(root, source))
		if err != nil {
			t.Fatal(err)
		}
		err = checkPayload(source, body)
		switch {
		case want.refusal == "" && err != nil:
			t.Errorf("%s refused: %v", name, err)
		case want.refusal != "" && (err == nil || !strings.Contains(err.Error(), want.refusal)):
			t.Errorf("%s: refusal %v, want one saying %q", name, err, want.refusal)
		case want.refusal == "":
			send = append(send, name)
		}
	}

	if testing.Short() {
		t.Skip("end to end: builds the function and starts DynamoDB Local")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal, testinfra.ToolJava, testinfra.ToolRIE, testinfra.ToolGo)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var setup bytes.Buffer
	out := t.TempDir()
	d, err := start(ctx, &setup, out, 0.2, 4)
	if err != nil {
		t.Fatalf("%v\n%s", err, setup.String())
	}
	defer d.Close()
	for _, name := range send {
		want := demoExpect[name]
		body, err := os.ReadFile(filepath.Join(root, "events", name))
		if err != nil {
			t.Fatal(err)
		}
		var w bytes.Buffer
		d.w = &w
		r, err := d.send(ctx, name, body, filepath.Join(out, name))
		printed := w.String()
		t.Logf("%s:\n%s", name, printed)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if r.kind != want.kind {
			t.Errorf("%s: outcome %d, want %d", name, r.kind, want.kind)
		}
		for _, s := range want.prints {
			if !strings.Contains(printed, s) {
				t.Errorf("%s: output has no %q", name, s)
			}
		}
		if want.kind != refused && strings.Contains(printed, `\"`) {
			t.Errorf("%s: output holds escaped JSON: an API body printed undecoded", name)
		}
		if !strings.Contains(printed, "SSM saw ") || !strings.Contains(printed, countsNote) {
			t.Errorf("%s: no header, or no note on what it counts", name)
		}
		// The header counts attempts, the Summary calls: never fewer.
		if s := r.summary; s != nil && (s.Calls > r.seen.creates+r.seen.updates || s.Reads > r.seen.reads || s.Throttles > r.seen.throttled) {
			t.Errorf("%s: Summary %+v counts more than SSM saw, %+v", name, *s, r.seen)
		}
		if want.kind == planned && r.seen.attempts != 0 {
			t.Errorf("%s: a dry run, but SSM saw %+v", name, r.seen)
		}
	}
	if t.Failed() {
		t.Logf("setup:\n%s\nfunction log:\n%s", setup.String(), d.rie.Logs())
	}
}
