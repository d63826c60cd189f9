package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/cli"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/samtemplate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// syncBuffer is a buffer written by the command and read by the test while
// the command runs.
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

// batcher runs the command line as the binary would, with stderr w (a
// buffer when nil).
func batcher(ctx context.Context, t *testing.T, stderr io.Writer, args ...string) (code int, stdout, errs string) {
	t.Helper()
	var out bytes.Buffer
	eb := &syncBuffer{}
	if stderr == nil {
		stderr = eb
	}
	code = cli.Run(ctx, args, cli.Env{Stdout: &out, Stderr: stderr, Stdin: strings.NewReader("")})
	t.Logf("batcher %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), eb.String())
	return code, out.String(), eb.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// isolateAWS gives the SDK the local credentials and region and nothing
// from the machine's shared configuration.
func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_REGION", testinfra.LocalRegion)
	t.Setenv("AWS_ACCESS_KEY_ID", testinfra.LocalAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testinfra.LocalSecretAccessKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	// Unset, not empty: moto's boto refuses an empty AWS_PROFILE.
	for _, v := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_LAMBDA", "BATCHER_FUNCTION", "BATCHER_API_URL"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
}

// TestThroughTheFunctionUnderTheRIE drives the command line against the
// real AssociateFunction bootstrap under the Lambda Runtime Interface
// Emulator, reached with the SDK's Invoke through AWS_ENDPOINT_URL_LAMBDA;
// SSM is the emulator, the tables DynamoDB Local's, the jobs queue moto's,
// and the worker runs the queue's chunks as the SQS event source would
// (samtemplate.Local.RunJob).
func TestThroughTheFunctionUnderTheRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: builds the functions and starts DynamoDB Local and moto")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal, testinfra.ToolJava, testinfra.ToolRIE, testinfra.ToolGo, testinfra.ToolMoto)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	isolateAWS(t)

	l, err := samtemplate.StartLocal(ctx, samtemplate.LocalOptions{
		Queue:     true,
		Functions: []string{samtemplate.AssociateFunction, samtemplate.WorkerFunction},
		BuildDir:  t.TempDir(),
		Progress:  func(msg string) { t.Log(msg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// The associate function under its own emulator, whose address the
	// command line is given; 2 entries a chunk, so that a job of a few
	// nodes has several chunks to show.
	boot, err := l.Bootstrap(ctx, samtemplate.AssociateFunction)
	if err != nil {
		t.Fatal(err)
	}
	env, err := l.Environment(samtemplate.AssociateFunction)
	if err != nil {
		t.Fatal(err)
	}
	rie, err := testinfra.StartRIE(ctx, boot, append(env, "CHUNK_SIZE=2"))
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	defer func() {
		if t.Failed() {
			t.Logf("associate function output:\n%s", rie.Logs())
		}
	}()
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", "http://"+rie.Addr())
	fn := []string{"--function", "function"}

	t.Run("submit", func(t *testing.T) {
		direct := filepath.Join("..", "..", "events", "direct.json")
		code, out, _ := batcher(ctx, t, nil, append([]string{"submit", direct}, fn...)...)
		if code != cli.ExitOK || !regexp.MustCompile(`(?m)^Successful\s+2$`).MatchString(out) {
			t.Errorf("first submit: exit %d, want 0 and 2 Successful", code)
		}
		code, out, _ = batcher(ctx, t, nil, append([]string{"submit", direct, "--output", "json"}, fn...)...)
		var r report.Result
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != cli.ExitOK || r.Summary.Deduplicated != 2 || r.Deduplicated[0].Reason != report.ReasonAlreadyAssociated {
			t.Errorf("second submit, json: exit %d, %+v (%v); want the function's result with 2 already associated", code, r.Summary, err)
		}
	})

	t.Run("a failed node makes exit 1 and a line", func(t *testing.T) {
		f := writeFile(t, "bad.json", `{"Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": ["i-0c11000000000001", "not-a-node"]}`)
		code, out, _ := batcher(ctx, t, nil, append([]string{"submit", f}, fn...)...)
		if code != cli.ExitIncomplete || !regexp.MustCompile(`(?m)^not-a-node\s+AWS-UpdateSSMAgent\s+Failed\s+Client: `).MatchString(out) {
			t.Errorf("exit %d, want 1 and a Failed line for not-a-node", code)
		}
	})

	t.Run("a request that does not parse: exit 254", func(t *testing.T) {
		f := writeFile(t, "empty.json", `{"Entries": []}`)
		code, _, errs := batcher(ctx, t, nil, append([]string{"submit", f}, fn...)...)
		if code != cli.ExitRefused || !strings.Contains(errs, "InvalidRequestError") {
			t.Errorf("exit %d, stderr %q; want 254 and the function's InvalidRequestError", code, errs)
		}
	})

	t.Run("plan, with --endpoint-url", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL_LAMBDA", "")
		os.Unsetenv("AWS_ENDPOINT_URL_LAMBDA")
		code, out, _ := batcher(ctx, t, nil, "plan", filepath.Join("..", "..", "events", "fanout.json"), "--function", "function", "--endpoint-url", "http://"+rie.Addr())
		if code != cli.ExitOK || !regexp.MustCompile(`(?m)^create\s+\d+$`).MatchString(out) || !strings.Contains(out, "nothing was sent") {
			t.Errorf("exit %d, want 0 and the plan's table", code)
		}
	})

	t.Run("local runs the engine in process on the same table", func(t *testing.T) {
		t.Setenv("DEDUPE_TABLE", samtemplate.LocalNames[samtemplate.DedupeTable])
		t.Setenv("AWS_ENDPOINT_URL_SSM", l.Endpoint("ssm"))
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", l.Endpoint("dynamodb"))
		f := writeFile(t, "local.json", `{"Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": ["i-0c0c0c00000000001", "i-0c0c0c00000000002"]}`)
		code, out, _ := batcher(ctx, t, nil, "plan", f, "--function", "function")
		if code != cli.ExitOK || !regexp.MustCompile(`(?m)^create\s+2$`).MatchString(out) {
			t.Errorf("plan: exit %d, want 2 creates", code)
		}
		code, out, _ = batcher(ctx, t, nil, "local", f)
		if code != cli.ExitOK || !regexp.MustCompile(`(?m)^Successful\s+2$`).MatchString(out) {
			t.Errorf("local: exit %d, want 2 Successful", code)
		}
		// The function now finds the claims the local run recorded.
		code, out, _ = batcher(ctx, t, nil, "submit", f, "--function", "function")
		if code != cli.ExitOK || !regexp.MustCompile(`(?m)^Deduplicated\s+2$`).MatchString(out) {
			t.Errorf("submit after local: exit %d, want 2 Deduplicated", code)
		}
		t.Setenv("DEDUPE_TABLE", "")
		if code, _, errs := batcher(ctx, t, nil, "local", f); code != cli.ExitConfig || !strings.Contains(errs, "DEDUPE_TABLE") {
			t.Errorf("local without DEDUPE_TABLE: exit %d, want %d", code, cli.ExitConfig)
		}
	})

	async := func(t *testing.T, prefix string, n int) string {
		var ids []string
		for i := range n {
			ids = append(ids, fmt.Sprintf(`"i-%s%011d"`, prefix, i))
		}
		return writeFile(t, "async.json", `{"Async": true, "Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": [`+strings.Join(ids, ",")+`]}`)
	}

	t.Run("submit --wait follows the job in plain lines", func(t *testing.T) {
		f := async(t, "a0a0a0", 6)
		stderr := &syncBuffer{}
		type done struct {
			code int
			out  string
		}
		ch := make(chan done, 1)
		go func() {
			code, out, _ := batcher(ctx, t, stderr, append([]string{"submit", f, "--wait", "--interval", "300ms"}, fn...)...)
			ch <- done{code, out}
		}()
		// The first line names the job: run its chunks as the event source would.
		var jobID string
		for deadline := time.Now().Add(time.Minute); jobID == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if m := regexp.MustCompile(`(?m)^([0-9a-f]{16,}) (QUEUED|RUNNING)`).FindStringSubmatch(stderr.String()); m != nil {
				jobID = m[1]
			}
		}
		if jobID == "" {
			t.Fatalf("no progress line names the job: %q", stderr.String())
		}
		if _, err := l.RunJob(ctx, jobID); err != nil {
			t.Fatal(err)
		}
		d := <-ch
		lines := stderr.String()
		t.Logf("progress:\n%s", lines)
		if d.code != cli.ExitOK || !regexp.MustCompile(`(?m)^Successful\s+6$`).MatchString(d.out) || !strings.Contains(d.out, jobID+" SUCCEEDED, chunks 4/4") {
			t.Errorf("exit %d, want 0 and the job's 6 Successful", d.code)
		}
		if strings.Contains(lines, "\r") || !regexp.MustCompile(`(?m)^`+jobID+` SUCCEEDED: chunks 4/4; Successful 6, .*nodes/s, .*chunks/s; finished$`).MatchString(lines) {
			t.Errorf("not a terminal: want plain lines ending with the finished job, got %q", lines)
		}
	})

	t.Run("status --wait draws a bar on a terminal; result pages", func(t *testing.T) {
		f := async(t, "b0b0b0", 6)
		code, out, _ := batcher(ctx, t, nil, append([]string{"submit", f, "--output", "json"}, fn...)...)
		var acc jobs.Accepted
		if err := json.Unmarshal([]byte(out), &acc); err != nil || code != cli.ExitOK || acc.JobID == "" || acc.Chunks != 4 {
			t.Fatalf("submit without --wait: exit %d, %s (%v); want the 202's job of 4 chunks (6 entries, CHUNK_SIZE=2, 2 workers: a multiple of 2)", code, out, err)
		}

		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		_ = pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 160})
		var screen syncBuffer
		copied := make(chan struct{})
		go func() { _, _ = io.Copy(&screen, ptmx); close(copied) }()

		ch := make(chan int, 1)
		go func() {
			code, _, _ := batcher(ctx, t, tty, append([]string{"status", acc.JobID, "--wait", "--interval", "200ms"}, fn...)...)
			ch <- code
		}()
		// A few redraws of the QUEUED job first.
		for deadline := time.Now().Add(time.Minute); strings.Count(screen.String(), "QUEUED") < 3 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := l.RunJob(ctx, acc.JobID); err != nil {
			t.Fatal(err)
		}
		if code := <-ch; code != cli.ExitOK {
			t.Errorf("status --wait: exit %d, want 0", code)
		}
		tty.Close()
		select {
		case <-copied:
		case <-time.After(5 * time.Second):
		}
		s := screen.String()
		t.Logf("terminal: %q", s)
		if strings.Count(s, "\r") < 3 || !strings.Contains(s, "0/4") || !strings.Contains(s, "4/4") ||
			!strings.Contains(s, "100%") || !strings.Contains(s, "SUCCEEDED ok 6") || !strings.Contains(s, "chunks/s, finished") {
			t.Errorf("want the bar redrawn (\\r) from 0/4 to 4/4, 100%%, with the rate and the counts")
		}

		code, out, _ = batcher(ctx, t, nil, append([]string{"result", acc.JobID, "--page-size", "1", "--output", "json"}, fn...)...)
		var st cli.JobStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil || code != cli.ExitOK || len(st.Outcomes.Successful) != 6 || st.NextToken != "" {
			t.Errorf("result in pages of 1: exit %d, %d successful (%v), want all 6", code, len(st.Outcomes.Successful), err)
		}
		code, _, errs := batcher(ctx, t, nil, append([]string{"status", "0123456789abcdef0123456789abcdef"}, fn...)...)
		if code != cli.ExitRefused || !strings.Contains(errs, "HTTP 404") {
			t.Errorf("unknown job: exit %d, want 254 and the 404", code)
		}
	})
}
