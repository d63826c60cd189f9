package cli_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/cli"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// signedAPI stands in for API Gateway with IAM authorisation: it refuses a
// request whose SigV4 headers are missing or whose signature is not the one
// the local credentials give, then answers from answer.
type signedAPI struct {
	t      *testing.T
	mu     sync.Mutex
	seen   []string // "METHOD path?query"
	answer func(r *http.Request, body []byte) (int, string)
}

var credentialRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=` + testinfra.LocalAccessKeyID + `/\d{8}/` + testinfra.LocalRegion + `/execute-api/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$`)

func (s *signedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	refuse := func(why string) {
		s.t.Errorf("%s %s: %s", r.Method, r.URL, why)
		http.Error(w, `{"message":"Missing Authentication Token"}`, http.StatusForbidden)
	}
	auth := r.Header.Get("Authorization")
	m := credentialRE.FindStringSubmatch(auth)
	if m == nil {
		refuse("Authorization " + auth + ": want AWS4-HMAC-SHA256 Credential=…/execute-api/aws4_request")
		return
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		refuse("X-Amz-Date: " + err.Error())
		return
	}
	if !strings.Contains(m[1], "host") || !strings.Contains(m[1], "x-amz-date") {
		refuse("SignedHeaders " + m[1] + ": want host and x-amz-date")
		return
	}
	sum := sha256.Sum256(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hex.EncodeToString(sum[:]) {
		refuse("X-Amz-Content-Sha256 is not the body's")
		return
	}
	// Sign the request again as received, with the headers it signed
	// (Go's transport adds Accept-Encoding after signing): the signature
	// must match.
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), strings.NewReader(string(body)))
	for _, h := range strings.Split(m[1], ";") {
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: testinfra.LocalAccessKeyID, SecretAccessKey: testinfra.LocalSecretAccessKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), "execute-api", testinfra.LocalRegion, date); err != nil {
		refuse(err.Error())
		return
	}
	if got := again.Header.Get("Authorization"); got != auth {
		refuse("signature does not verify: " + auth + " != " + got)
		return
	}
	s.mu.Lock()
	s.seen = append(s.seen, r.Method+" "+r.URL.RequestURI())
	s.mu.Unlock()
	code, out := s.answer(r, body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprint(w, out)
}

const jobID = "7a0c5e2b9d4f6a1c3e8b0d2f4a6c8e1b"

func entry(node string) string {
	return `{"Name": "AWS-UpdateSSMAgent", "Targets": [{"Key": "InstanceIds", "Values": ["` + node + `"]}], "Parameters": {"x": ["****"]}}`
}

// statusBody is a status answer; page 0 of 2 has a NextToken.
func statusBody(state string, done int, page int) string {
	outcomes := `{"Successful": [], "Updated": [], "Failed": [], "Deduplicated": [], "Unprocessed": [], "Summary": {}}`
	next := ""
	switch page {
	case 0:
		outcomes = `{"Successful": [{"AssociationId": "a-1", "Name": "AWS-UpdateSSMAgent", "InstanceId": "i-1"}], "Updated": [], "Failed": [], "Deduplicated": [], "Unprocessed": [], "Summary": {"Calls": 1}}`
		next = `, "NextToken": "page2"`
	case 1:
		outcomes = `{"Successful": [], "Updated": [], "Failed": [{"Entry": ` + entry("i-2") + `, "Fault": "Server", "Message": "InternalServerError", "Attempts": 3}], "Deduplicated": [], "Unprocessed": [{"Entry": ` + entry("i-3") + `, "Reason": "not sent"}], "Summary": {"Calls": 2}}`
	}
	return `{"JobId": "` + jobID + `", "State": "` + state + `", "Counts": {"Requested": 3, "Successful": ` + fmt.Sprint(min(done, 1)) +
		`, "Updated": 0, "Failed": ` + fmt.Sprint(max(done-1, 0)) + `, "Deduplicated": 0, "Unprocessed": ` + fmt.Sprint(max(done-1, 0)) +
		`}, "Chunks": 2, "ChunksDone": ` + fmt.Sprint(done) + `, "ChunksPoisoned": 0, "CreatedAt": 1764650000000, "UpdatedAt": 1764650001000, "SubmittedBy": {"Kind": "RESTAPI", "Arn": "arn:aws:iam::123456789012:user/ops"}, "Outcomes": ` + outcomes + next + `}`
}

func TestSubmitThroughTheSignedAPI(t *testing.T) {
	isolateAWS(t)
	ctx := context.Background()
	polls := 0
	api := &signedAPI{t: t}
	api.answer = func(r *http.Request, body []byte) (int, string) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/associations":
			var req map[string]any
			if err := json.Unmarshal(body, &req); err != nil {
				return 400, `{"message": "not JSON", "errors": [{"path": "", "message": "not JSON"}]}`
			}
			if req["DryRun"] == true {
				return 200, `{"DryRun": true, "Actions": [{"Entry": ` + entry("i-1") + `, "Action": "create"}], "Summary": {"Requested": 1, "Create": 1, "Calls": 1, "EstimatedSeconds": 0.2}}`
			}
			if req["Async"] == true {
				return 202, `{"JobId": "` + jobID + `", "StatusUrl": "https://example/v1/associations/` + jobID + `", "State": "QUEUED", "Chunks": 2, "Counts": {"Requested": 3}}`
			}
			return 200, `{"Successful": [{"AssociationId": "a-1", "Name": "AWS-UpdateSSMAgent", "InstanceId": "i-1"}], "Updated": [], "Failed": [], "Deduplicated": [{"Entry": ` + entry("i-2") +
				`, "Reason": "associated with different settings", "AssociationId": "a-2", "Differences": ["ScheduleExpression"]}], "Unprocessed": [], "Summary": {"Requested": 2, "Successful": 1, "Deduplicated": 1, "Calls": 1}}`
		case r.Method == http.MethodGet && r.URL.Path == "/v1/associations/"+jobID:
			if r.URL.Query().Get("pageSize") == "1" { // --wait's polls
				polls++
				switch {
				case polls < 2:
					return 200, statusBody("RUNNING", 0, 2)
				case polls < 3:
					return 200, statusBody("RUNNING", 1, 2)
				}
				return 200, statusBody("PARTIAL", 2, 2)
			}
			if r.URL.Query().Get("nextToken") == "page2" {
				return 200, statusBody("PARTIAL", 2, 1)
			}
			return 200, statusBody("PARTIAL", 2, 0)
		}
		return 404, `{"message": "no job", "errors": [{"path": "", "message": "no job"}]}`
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	apiURL := srv.URL + "/v1/associations"

	t.Run("sync", func(t *testing.T) {
		f := writeFile(t, "req.json", `{"Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": ["i-1", "i-2"]}`)
		code, out, _ := batcher(ctx, t, nil, "submit", f, "--api", apiURL)
		if code != cli.ExitOK || !regexp.MustCompile(`(?m)^i-2\s+AWS-UpdateSSMAgent\s+Deduplicated\s+associated with different settings: ScheduleExpression \(a-2\)$`).MatchString(out) {
			t.Errorf("exit %d, want 0 and a line for the node left with other settings", code)
		}
	})
	t.Run("plan sends DryRun", func(t *testing.T) {
		f := writeFile(t, "req.json", `{"Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": ["i-1"]}`)
		code, out, _ := batcher(ctx, t, nil, "plan", f, "--api", srv.URL+"/v1/", "--region", testinfra.LocalRegion)
		if code != cli.ExitOK || !regexp.MustCompile(`(?m)^i-1\s+AWS-UpdateSSMAgent\s+create`).MatchString(out) {
			t.Errorf("exit %d, want 0 and the plan's create", code)
		}
	})
	t.Run("wait, then every page", func(t *testing.T) {
		f := writeFile(t, "req.json", `{"Async": true, "Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": ["i-1", "i-2", "i-3"]}`)
		code, out, errs := batcher(ctx, t, nil, "submit", f, "--api", apiURL, "--wait", "--interval", "10ms")
		if code != cli.ExitIncomplete {
			t.Errorf("exit %d, want 1: the job has Failed and Unprocessed nodes", code)
		}
		for _, want := range []string{`(?m)^Failed\s+1$`, `(?m)^Unprocessed\s+1$`, `(?m)^i-2\s+AWS-UpdateSSMAgent\s+Failed\s+Server: InternalServerError \(3 attempts\)$`, `(?m)^i-3\s+AWS-UpdateSSMAgent\s+Unprocessed\s+not sent$`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("output lacks %s", want)
			}
		}
		if n := strings.Count(errs, "\n"); n != 3 || !strings.Contains(errs, jobID+" PARTIAL: chunks 2/2") || !strings.Contains(errs, "chunks 1/2") {
			t.Errorf("progress: %d lines, want one per change (0/2, 1/2, 2/2)", n)
		}
	})
	t.Run("status json is the answer", func(t *testing.T) {
		code, out, _ := batcher(ctx, t, nil, "status", jobID, "--api", apiURL, "--output", "json")
		var st cli.JobStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil || code != cli.ExitIncomplete || st.State != "PARTIAL" || st.NextToken != "page2" {
			t.Errorf("exit %d, %+v (%v)", code, st, err)
		}
	})
	t.Run("unknown job", func(t *testing.T) {
		code, _, errs := batcher(ctx, t, nil, "result", "nope", "--api", apiURL)
		if code != cli.ExitRefused || !strings.Contains(errs, "HTTP 404: no job") {
			t.Errorf("exit %d, want 254 and the 404", code)
		}
	})
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.seen) < 8 {
		t.Errorf("the API saw %v", api.seen)
	}
}

func TestUsage(t *testing.T) {
	isolateAWS(t)
	ctx := context.Background()
	if code, out, _ := batcher(ctx, t, nil, "--help"); code != cli.ExitOK || !strings.Contains(out, "batcher submit FILE") || !strings.Contains(out, "--profile") {
		t.Errorf("--help: exit %d", code)
	}
	for _, args := range [][]string{
		{},
		{"submit"},
		{"submit", "x.json"}, // nowhere to send it
		{"submit", "x.json", "--function", "f", "--api", "u"}, // both
		{"status", "j", "--function", "f", "--output", "text"},
		{"frobnicate", "x"},
	} {
		if code, _, _ := batcher(ctx, t, nil, args...); code != cli.ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, cli.ExitUsage)
		}
	}
	if code, _, _ := batcher(ctx, t, nil, "submit", "/nonexistent.json", "--function", "f"); code != cli.ExitError {
		t.Errorf("missing file: exit %d, want %d", code, cli.ExitError)
	}
}

// TestWaitStopsOnAStalledJob: STALLED is not final (a chunk that runs again
// moves the job on), but a job the reaper marked STALLED made no progress
// for hours: --wait stops on it with exit status 1 and says so, instead of
// polling until the job's TTL. A job that comes back from STALLED is
// followed as any other by a later --wait.
func TestWaitStopsOnAStalledJob(t *testing.T) {
	isolateAWS(t)
	var (
		mu    sync.Mutex
		polls int
		state = "STALLED"
	)
	api := &signedAPI{t: t, answer: func(r *http.Request, _ []byte) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != "/v1/associations/"+jobID {
			return 404, `{"message": "no job"}`
		}
		polls++
		if polls == 1 {
			return 200, statusBody("RUNNING", 0, 2)
		}
		return 200, statusBody(state, 1, 2)
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	apiURL := srv.URL + "/v1/associations"

	for _, cmd := range []string{"status", "result"} {
		mu.Lock()
		polls, state = 0, "STALLED"
		mu.Unlock()
		// Without the stop, --wait polls until this context ends: exit 255.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, _, errs := batcher(ctx, t, nil, cmd, jobID, "--api", apiURL, "--wait", "--interval", "10ms")
		cancel()
		if code != cli.ExitIncomplete {
			t.Errorf("%s --wait on a STALLED job: exit %d, want %d\n%s", cmd, code, cli.ExitIncomplete, errs)
		}
		if !strings.Contains(errs, "job "+jobID+" is STALLED") || !strings.Contains(errs, jobID+" STALLED: chunks 1/2") {
			t.Errorf("%s --wait: stderr %q, want the stalled progress line and why it stopped", cmd, errs)
		}
		mu.Lock()
		if polls != 2 {
			t.Errorf("%s --wait asked %d times, want 2 (RUNNING, then STALLED: stop)", cmd, polls)
		}
		mu.Unlock()
	}

	// The same job, running again and finished: followed to its end.
	mu.Lock()
	polls, state = 0, "PARTIAL"
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, _, errs := batcher(ctx, t, nil, "status", jobID, "--api", apiURL, "--wait", "--interval", "10ms"); code != cli.ExitOK || strings.Contains(errs, "is STALLED") || !strings.Contains(errs, "PARTIAL: chunks 1/2") {
		t.Errorf("status --wait on a finished job: exit %d, stderr %q; want 0 (nothing Failed) and no stall", code, errs)
	}
}
