package samtemplate

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// e2eOrder is the order the end to end test sends events/ in: the dry run
// first (it plans the update sample's nodes, and writes nothing), then the
// update sample creates them (nothing to update yet); the worker's chunk
// last.
var e2eOrder = []string{
	"dry-run.json", "direct.json", "fanout.json", "schedule.json", "eventbridge-associate.json",
	"api-rest-post.json", "api-http-post.json", "api-rest-malformed.json", statusEvent, "update.json",
	"sqs-chunk.json",
}

// TestSampleEventsThroughTheFunction deploys the stack as far as this machine
// can, through Local, the code path of make invoke: the claim and jobs
// tables are created from template.yaml's definitions in DynamoDB Local, the
// jobs queue is moto's, the functions (built as sam build builds them, for
// this machine's architecture) run under the Lambda Runtime Interface
// Emulator with the environment the template gives them at its default
// parameters, SSM is the ssmlocal emulator, and every file in events/ is
// invoked as its trigger would deliver it (InvokeEvent, as make invoke
// does: the worker's chunk after its job is recorded). No sample becomes a
// job (the status sample asks for one that does not exist); then a request
// with "Async": true goes the whole asynchronous way: the associate function
// records the job and queues its chunk, the worker runs it from the queue as
// the event source would, and the status route reports the job finished.
func TestSampleEventsThroughTheFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: builds the functions and starts DynamoDB Local and moto")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal, testinfra.ToolJava, testinfra.ToolRIE, testinfra.ToolGo, testinfra.ToolMoto)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	want := append(slices.Collect(maps.Keys(eventFiles)), workerEventFiles...)
	got := slices.Clone(e2eOrder)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("e2eOrder = %v, want every event file %v", got, want)
	}

	l, err := StartLocal(ctx, LocalOptions{
		Queue:     true,
		Functions: []string{AssociateFunction, WorkerFunction},
		BuildDir:  t.TempDir(),
		Progress:  func(msg string) { t.Log(msg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			for _, id := range functionIDs {
				t.Logf("%s output:\n%s", id, l.Logs(id))
			}
		}
		_ = l.Close()
	}()
	emu := l.Emulator()

	for _, name := range e2eOrder {
		payload := readEvent(t, name)
		id := FunctionFor(payload)
		if wantID := map[bool]string{true: WorkerFunction, false: AssociateFunction}[slices.Contains(workerEventFiles, name)]; id != wantID {
			t.Errorf("%s: FunctionFor = %s, want %s", name, id, wantID)
			continue
		}
		body, err := l.InvokeEvent(ctx, id, payload)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch {
		case id == WorkerFunction:
			checkWorkerSample(ctx, t, l, name, payload, body)
		case name == "dry-run.json":
			var plan report.Plan
			if err := json.Unmarshal(body, &plan); err != nil || !plan.DryRun || len(plan.Actions) != 3 || plan.Summary.Create != 3 || plan.Summary.Calls != 1 {
				t.Errorf("%s: %s (%v)", name, body, err)
			}
			if st := emu.Stats(); st.Calls != 0 {
				t.Errorf("%s: %d SSM calls, want none", name, st.Calls)
			}
			t.Logf("%-27s %+v", name, plan.Summary)
		default:
			checkAnswer(t, name, body)
		}
	}

	checkAsyncJob(ctx, t, l)
	checkEnvVarsFileRuns(ctx, t, l)
}

// checkAnswer checks the associate function's answer to a sample event:
// every entry successful or deduplicated, the malformed request answered
// 400, the status of a job that does not exist 404.
func checkAnswer(t *testing.T, name string, body []byte) {
	t.Helper()
	source := eventFiles[name]
	var answer struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
		StatusCode   int    `json:"statusCode"`
		Body         string `json:"body"`
		Summary      *struct{ Requested, Successful, Failed, Deduplicated, Unprocessed int }
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatalf("%s: answer %s: %v", name, body, err)
	}
	if answer.ErrorType != "" {
		t.Errorf("%s: function error %s: %s", name, answer.ErrorType, answer.ErrorMessage)
		return
	}
	switch {
	case name == statusEvent:
		// A job that does not exist: 404, saying so.
		var msg struct{ Message string }
		if answer.StatusCode != http.StatusNotFound {
			t.Errorf("%s: statusCode %d, want 404; answer %s", name, answer.StatusCode, body)
		} else if err := json.Unmarshal([]byte(answer.Body), &msg); err != nil || !strings.Contains(msg.Message, "no job") {
			t.Errorf("%s: body %q does not say there is no such job", name, answer.Body)
		}
		t.Logf("%-27s %d %s", name, answer.StatusCode, answer.Body)
		return
	case name == "api-rest-malformed.json":
		if answer.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: statusCode %d, want 400; answer %s", name, answer.StatusCode, body)
		}
		var msg struct{ Message string }
		if err := json.Unmarshal([]byte(answer.Body), &msg); err != nil || !strings.Contains(msg.Message, "JSON") {
			t.Errorf("%s: body %q does not say the request is not valid JSON", name, answer.Body)
		}
		t.Logf("%-27s %d %s", name, answer.StatusCode, answer.Body)
		return
	case source == "api-rest" || source == "api-http":
		if answer.StatusCode != http.StatusOK {
			t.Errorf("%s: statusCode %d, want 200; answer %s", name, answer.StatusCode, body)
		}
		if err := json.Unmarshal([]byte(answer.Body), &answer); err != nil || answer.Summary == nil {
			t.Errorf("%s: body %q is not a result", name, answer.Body)
		}
	}
	if answer.Summary == nil {
		t.Errorf("%s: no Summary in %s", name, body)
		return
	}
	sum := *answer.Summary
	if sum.Requested == 0 || sum.Failed != 0 || sum.Unprocessed != 0 || sum.Successful+sum.Deduplicated != sum.Requested {
		t.Errorf("%s: summary %+v, want every entry successful or deduplicated", name, sum)
	}
	t.Logf("%-27s %+v", name, sum)
}

// checkWorkerSample checks the worker's answer to the SQS sample and that
// the chunk finished the job InvokeEvent recorded for it.
func checkWorkerSample(ctx context.Context, t *testing.T, l *Local, name string, payload, body []byte) {
	t.Helper()
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	requested := 0
	var jobID string
	for _, r := range ev.Records {
		var c jobs.Chunk
		if err := json.Unmarshal([]byte(r.Body), &c); err != nil {
			t.Fatal(err)
		}
		jobID, requested = c.JobID, requested+len(c.Entries)
	}
	var resp struct {
		ErrorType         string `json:"errorType"`
		BatchItemFailures []events.SQSBatchItemFailure
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.ErrorType != "" || resp.BatchItemFailures == nil && !strings.Contains(string(body), "batchItemFailures") {
		t.Fatalf("%s: answer %s, want an SQS batch response", name, body)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("%s: batchItemFailures %v, want none", name, resp.BatchItemFailures)
	}
	store := l.Jobs()
	m, err := store.Meta(ctx, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != jobs.StateSucceeded || m.ChunksDone != len(ev.Records) || m.Successful+m.Deduplicated != requested {
		page, _ := store.Outcomes(ctx, jobID, 10, "")
		outcomes, _ := json.Marshal(page.Outcomes)
		t.Errorf("%s: job after the worker %+v, want SUCCEEDED with every entry successful or deduplicated; outcomes %s", name, m, outcomes)
	}
	t.Logf("%-27s %s %+v", name, m.State, m.Counts)
}

// checkAsyncJob sends a request with "Async": true and follows its job
// through the queue, the worker and the status route, as make invoke does.
func checkAsyncJob(ctx context.Context, t *testing.T, l *Local) {
	t.Helper()
	req := `{"Async": true, "Association": {"Name": "AWS-UpdateSSMAgent"}, "InstanceIds": ["i-0a5e11c0000000001", "i-0a5e11c0000000002", "i-0a5e11c0000000003"]}`
	body, err := l.InvokeEvent(ctx, AssociateFunction, []byte(req))
	if err != nil {
		t.Fatal(err)
	}
	var acc jobs.Accepted
	if err := json.Unmarshal(body, &acc); err != nil || acc.JobID == "" || acc.State != jobs.StateQueued || acc.Chunks != 1 {
		t.Fatalf("async request: answer %s (%v), want a QUEUED job of one chunk", body, err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	m, err := l.RunJob(runCtx, acc.JobID)
	if err != nil {
		t.Fatalf("async request: %v", err)
	}
	if m.State != jobs.StateSucceeded || m.Successful != 3 {
		t.Errorf("async request: job %+v, want SUCCEEDED with 3 successful", m)
	}
	status, err := l.Invoke(ctx, AssociateFunction, StatusEvent(acc.JobID))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}
	var st struct {
		JobID  string `json:"JobId"`
		State  string
		Counts jobs.Counts
	}
	if err := json.Unmarshal(status, &answer); err != nil || answer.StatusCode != http.StatusOK ||
		json.Unmarshal([]byte(answer.Body), &st) != nil || st.JobID != acc.JobID || st.State != jobs.StateSucceeded {
		t.Errorf("status of job %s: %s, want 200 and SUCCEEDED", acc.JobID, status)
	}
	t.Logf("%-27s job %s %s %+v", "async request", acc.JobID, m.State, m.Counts)
}
