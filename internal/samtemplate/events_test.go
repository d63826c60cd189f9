package samtemplate

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// The sample request of the CreateAssociationBatch API reference (the seed).
const seedSample = `{ "Entries": [ { "InstanceId": "i-0471e04240EXAMPLE", "Name": "AWS-UpdateSSMAgent" }, { "InstanceId": "i-07782c72faEXAMPLE", "Name": "AWS-UpdateSSMAgent" } ] }`

// eventFiles are the sample events of AssociateFunction, one per trigger,
// and the source the function must recognise in each.
var eventFiles = map[string]event.Source{
	"api-rest-post.json":         event.RESTAPI,
	"api-rest-malformed.json":    event.RESTAPI,
	"api-rest-status.json":       event.RESTAPI, // GET /associations/{jobId}
	"api-http-post.json":         event.HTTPAPI,
	"eventbridge-associate.json": event.EventBridge,
	"schedule.json":              event.Direct,
	"direct.json":                event.Direct,
	"fanout.json":                event.Direct,
	"update.json":                event.Direct, // "OnExisting": "update"
	"dry-run.json":               event.Direct, // "DryRun": true
}

// workerEventFiles are the sample events of WorkerFunction (an SQS batch of
// chunk messages).
var workerEventFiles = []string{"sqs-chunk.json"}

// statusEvent is the sample status request; it has no body and no node IDs.
const statusEvent = "api-rest-status.json"

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("events/%s is not valid JSON", name)
	}
	return b
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

func TestEventFilesAreTheExpectedSet(t *testing.T) {
	matches, err := filepath.Glob(filepath.Join(root(t), "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, m := range matches {
		if filepath.Base(m) == envVarsFile {
			continue // not an event: sam local invoke's --env-vars
		}
		got = append(got, filepath.Base(m))
	}
	for name := range eventFiles {
		want = append(want, name)
	}
	want = append(want, workerEventFiles...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("events/ = %v, want %v (add new events to eventFiles)", got, want)
	}
}

// TestEventsDecode runs every sample event through the function's own
// envelope decoder and request parser: the events are what Lambda delivers,
// and the function must read each as intended.
func TestEventsDecode(t *testing.T) {
	for name, source := range eventFiles {
		t.Run(name, func(t *testing.T) {
			payload := readEvent(t, name)
			inv, err := event.Decode(payload)
			if err != nil {
				t.Fatalf("event.Decode: %v", err)
			}
			if inv.Source != source {
				t.Fatalf("source %q, want %q", inv.Source, source)
			}
			if (inv.JobID != "") != (name == statusEvent) {
				t.Fatalf("JobID %q: only %s is a status request", inv.JobID, statusEvent)
			}
			if inv.JobID != "" {
				return
			}
			req, err := request.Parse(inv.Body, request.Limits{MaxEntries: 10000})
			if name == "api-rest-malformed.json" {
				var rerr *request.Error
				if !errors.As(err, &rerr) || rerr.Status != http.StatusBadRequest {
					t.Fatalf("request.Parse of the malformed body = %v, want a 400 *request.Error", err)
				}
				if json.Valid(inv.Body) {
					t.Fatal("the malformed event's body is valid JSON")
				}
				return
			}
			if err != nil {
				t.Fatalf("request.Parse: %v", err)
			}
			if len(req.Items) == 0 {
				t.Fatal("no entries")
			}
			for _, it := range req.Items {
				if !it.Valid() {
					t.Errorf("%s: %v", it.Path, it.Problems)
				}
			}
		})
	}
}

var nodeLike = regexp.MustCompile(`\bm?i-[0-9A-Za-z_]*`)
var validNode = regexp.MustCompile(`^i-\w{17}$`)

// TestEventNodeIDs: every node ID in the samples (bodies included, base64
// decoded) looks real — i- and 17 word characters — except in the malformed
// one, so a sample never fails for a reason it was not written to show.
func TestEventNodeIDs(t *testing.T) {
	var names []string
	for name := range eventFiles {
		names = append(names, name)
	}
	for _, name := range append(names, workerEventFiles...) {
		if name == "api-rest-malformed.json" || name == statusEvent {
			continue
		}
		text := string(readEvent(t, name))
		var env struct {
			Body            string `json:"body"`
			IsBase64Encoded bool   `json:"isBase64Encoded"`
		}
		_ = json.Unmarshal([]byte(text), &env)
		if env.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(env.Body)
			if err != nil {
				t.Fatalf("%s: body: %v", name, err)
			}
			text += string(b)
		}
		found := 0
		for _, id := range nodeLike.FindAllString(text, -1) {
			found++
			if !validNode.MatchString(id) {
				t.Errorf("%s: node ID %q is not i- and 17 word characters", name, id)
			}
		}
		if found == 0 {
			t.Errorf("%s: no node IDs", name)
		}
	}
}

func TestDirectIsTheSeedSample(t *testing.T) {
	if got := readEvent(t, "direct.json"); !jsonEqual(t, got, []byte(seedSample)) {
		t.Errorf("events/direct.json = %s, want the API reference's sample %s", got, seedSample)
	}
}

func TestScheduleEventIsTheScheduleInput(t *testing.T) {
	tpl := loadTemplate(t)
	fn := resource(t, tpl, functionID, "AWS::Serverless::Function")
	var param string
	events := fn.get("Properties", "Events")
	for _, name := range events.keys() {
		if events.get(name, "Type").str() == "Schedule" {
			param = events.get(name, "Properties", "Input").ref()
		}
	}
	input := tpl.get("Parameters", param, "Default").str()
	if input == "" {
		t.Fatalf("the Schedule's Input parameter %q has no default", param)
	}
	if got := readEvent(t, "schedule.json"); !jsonEqual(t, got, []byte(input)) {
		t.Errorf("events/schedule.json = %s, want the %s default %s", got, param, input)
	}
}

func TestFanoutHasADuplicate(t *testing.T) {
	var req struct {
		Association map[string]any
		InstanceIds []string
	}
	if err := json.Unmarshal(readEvent(t, "fanout.json"), &req); err != nil {
		t.Fatal(err)
	}
	if len(req.InstanceIds) < 4 {
		t.Errorf("fanout.json has %d nodes, want about 5", len(req.InstanceIds))
	}
	seen := map[string]bool{}
	dups := 0
	for _, id := range req.InstanceIds {
		if seen[id] {
			dups++
		}
		seen[id] = true
	}
	if dups != 1 {
		t.Errorf("fanout.json has %d duplicate nodes, want 1", dups)
	}
}

func TestEventBridgeEventMatchesTheRule(t *testing.T) {
	var ev struct {
		Source     string          `json:"source"`
		DetailType string          `json:"detail-type"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(readEvent(t, "eventbridge-associate.json"), &ev); err != nil {
		t.Fatal(err)
	}
	tpl := loadTemplate(t)
	events := resource(t, tpl, functionID, "AWS::Serverless::Function").get("Properties", "Events")
	for _, name := range events.keys() {
		if events.get(name, "Type").str() != "EventBridgeRule" {
			continue
		}
		pattern := events.get(name, "Properties", "Pattern")
		if !slices.Contains(pattern.get("source").strs(), ev.Source) ||
			!slices.Contains(pattern.get("detail-type").strs(), ev.DetailType) {
			t.Errorf("the sample event (%s / %s) does not match rule %s", ev.Source, ev.DetailType, name)
		}
		return
	}
	t.Fatal("no EventBridgeRule event")
}

func TestAPIEventsArePOSTToAssociations(t *testing.T) {
	for _, name := range []string{"api-rest-post.json", "api-rest-malformed.json"} {
		var ev struct {
			Resource, Path, HTTPMethod string
			IsBase64Encoded            bool
		}
		if err := json.Unmarshal(readEvent(t, name), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Resource != "/associations" || ev.Path != "/associations" || ev.HTTPMethod != "POST" || ev.IsBase64Encoded {
			t.Errorf("%s: %+v, want POST /associations, plain body", name, ev)
		}
	}
	var v2 struct {
		Version, RouteKey, RawPath string
		IsBase64Encoded            bool
		RequestContext             struct{ Stage string }
	}
	if err := json.Unmarshal(readEvent(t, "api-http-post.json"), &v2); err != nil {
		t.Fatal(err)
	}
	if v2.Version != "2.0" || v2.RouteKey != "POST /associations" || v2.RawPath != "/associations" || !v2.IsBase64Encoded || !strings.HasPrefix(v2.RequestContext.Stage, "$default") {
		t.Errorf("api-http-post.json: %+v, want a 2.0 POST /associations with a base64 body", v2)
	}
}

// TestStatusEventIsGETOfAJob: the status sample is what API Gateway sends for
// GET /associations/{jobId} on the REST API, the route template.yaml declares.
func TestStatusEventIsGETOfAJob(t *testing.T) {
	var ev struct {
		Resource, Path, HTTPMethod string
		PathParameters             map[string]string
		Body                       *string
		RequestContext             struct{ ResourcePath, HTTPMethod, Path, Stage string }
	}
	if err := json.Unmarshal(readEvent(t, statusEvent), &ev); err != nil {
		t.Fatal(err)
	}
	id := ev.PathParameters[event.JobIDParameter]
	if id == "" || ev.Resource != statusPath || ev.Path != "/associations/"+id || ev.HTTPMethod != "GET" || ev.Body != nil {
		t.Errorf("%s: %+v, want GET %s with path parameter %s and no body", statusEvent, ev, statusPath, event.JobIDParameter)
	}
	if ev.RequestContext.ResourcePath != statusPath || ev.RequestContext.HTTPMethod != "GET" ||
		ev.RequestContext.Path != "/"+ev.RequestContext.Stage+ev.Path {
		t.Errorf("%s: requestContext %+v does not match the request", statusEvent, ev.RequestContext)
	}
	route(t, loadTemplate(t), "Api", "GET", ev.Resource)
}

// TestWorkerEvent: the SQS sample is a chunk message as the submitter sends
// it (jobs.Chunk body, JobId and Chunk attributes) delivered by the event
// source, with entries the worker accepts.
func TestWorkerEvent(t *testing.T) {
	var ev events.SQSEvent
	if err := json.Unmarshal(readEvent(t, "sqs-chunk.json"), &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) == 0 {
		t.Fatal("sqs-chunk.json: no records")
	}
	for i, r := range ev.Records {
		if r.EventSource != "aws:sqs" || r.MessageId == "" || r.Attributes["ApproximateReceiveCount"] == "" {
			t.Errorf("record %d: %+v is not an SQS event source record", i, r)
		}
		if sum := fmt.Sprintf("%x", md5.Sum([]byte(r.Body))); r.Md5OfBody != sum {
			t.Errorf("record %d: md5OfBody %s, want %s", i, r.Md5OfBody, sum)
		}
		var c jobs.Chunk
		if err := json.Unmarshal([]byte(r.Body), &c); err != nil {
			t.Fatalf("record %d: body: %v", i, err)
		}
		if c.JobID == "" || c.Index < 1 || len(c.Entries) == 0 {
			t.Errorf("record %d: chunk %+v: want a job, a 1-based index and entries", i, c)
		}
		if got := r.MessageAttributes[jobs.JobIDAttribute].StringValue; got == nil || *got != c.JobID {
			t.Errorf("record %d: attribute %s = %v, want the body's %q", i, jobs.JobIDAttribute, got, c.JobID)
		}
		if got := r.MessageAttributes[jobs.ChunkAttribute].StringValue; got == nil || *got != strconv.Itoa(c.Index) {
			t.Errorf("record %d: attribute %s = %v, want the body's %d", i, jobs.ChunkAttribute, got, c.Index)
		}
		for _, it := range c.Request().Items {
			if !it.Valid() {
				t.Errorf("record %d: %s: %v", i, it.Path, it.Problems)
			}
		}
	}
}
