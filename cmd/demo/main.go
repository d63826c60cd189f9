// Command demo runs the real function, built and started under the AWS
// Lambda Runtime Interface Emulator, against the project's SSM emulator and
// DynamoDB Local, and prints what happened to every entry of a request:
// twice, to show that the second run sends nothing.
//
// The request is cmd/demo/request.json unless -request names another file,
// which holds what a direct invoke's payload would: a request of either
// shape, an EventBridge event, or an API Gateway event, whose answer's body
// is printed decoded (`make demo ARGS="-request events/update.json"`). A dry
// run's plan is printed as a plan, and a request the function refuses as
// its answer; neither is sent a second time, as nothing was done. Every
// file of events/ works but two, which are refused before anything starts:
// events/sqs-chunk.json is WorkerFunction's SQS event (`make invoke
// EVENT=events/sqs-chunk.json` runs it), and events/env.local.json is not
// an event but sam local invoke's --env-vars file.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/samtemplate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

//go:embed request.json
var sampleRequest []byte

func main() {
	faults := flag.Float64("entry-fault-rate", 0.2, "share of entries the SSM emulator fails with Fault Server")
	rate := flag.Float64("ssm-rate", 4, "calls per second the SSM emulator accepts before it throttles")
	reqFile := flag.String("request", "", "file with the payload of a direct invoke to send instead of cmd/demo/request.json (a request of either shape, or an event from events/)")
	flag.Parse()
	if err := run(*faults, *rate, *reqFile); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(faultRate, ssmRate float64, reqFile string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	body, source := sampleRequest, "cmd/demo/request.json (built in)"
	if reqFile != "" {
		b, err := os.ReadFile(reqFile)
		if err != nil {
			return err
		}
		body, source = b, reqFile
	}
	if err := checkPayload(source, body); err != nil {
		return err
	}
	root, err := testinfra.ProjectRoot()
	if err != nil {
		return err
	}
	out := filepath.Join(root, "build", "demo")
	d, err := start(ctx, os.Stdout, out, faultRate, ssmRate)
	if err != nil {
		return err
	}
	defer d.Close()

	step(d.w, fmt.Sprintf("request: %s", source))
	for i, title := range []string{"first run", "second run of the same request"} {
		r, err := d.send(ctx, title, body, filepath.Join(out, fmt.Sprintf("outcome-%d.json", i+1)))
		if err != nil {
			return err
		}
		if r.kind != ran {
			step(d.w, "no second run: "+map[outcome]string{
				planned: "a dry run writes nothing, so a second one would plan the same",
				refused: "the request was refused and nothing was done, so a second run would answer the same",
			}[r.kind])
			break
		}
	}
	st := d.emu.Stats()
	step(d.w, fmt.Sprintf("SSM emulator in total: %d associations created, %d answers lost after executing, %d refused as already existing, %d created twice",
		st.AssociationsCreated, st.DroppedConnections, st.DuplicatesRefused, st.DoubleAssociations))
	fmt.Fprintf(d.w, "\nfull answers: %s/outcome-*.json; function logs: %s\n", out, d.logPath)
	return nil
}

// checkPayload refuses, before anything starts, the files the demo cannot
// send to AssociateFunction, saying what runs them instead.
func checkPayload(source string, body []byte) error {
	if !json.Valid(body) {
		return fmt.Errorf("%s is not valid JSON", source)
	}
	if samtemplate.FunctionFor(body) == samtemplate.WorkerFunction {
		return fmt.Errorf("%s is an SQS event, the chunks of an asynchronous job that %s runs; the demo runs %s. Run it with: make invoke EVENT=%s",
			source, samtemplate.WorkerFunction, samtemplate.AssociateFunction, source)
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) == nil {
		_, parameters := top["Parameters"]
		_, associate := top[samtemplate.AssociateFunction]
		if parameters && len(top) > 1 || associate {
			return fmt.Errorf("%s is an --env-vars file for sam local invoke (variables per function), not an event: make demo ARGS=\"-request events/<event>.json\" takes an event", source)
		}
	}
	return nil
}

// demo is the function under the emulator with its services.
type demo struct {
	w       io.Writer
	emu     *ssmlocal.Server
	logPath string
	closers []func() error
	rie     *testinfra.RIE
}

// Close stops what start started, the last first.
func (d *demo) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		_ = d.closers[i]()
	}
}

// start starts DynamoDB Local with the dedupe table, the SSM emulator with
// the demo's faults, and the function, built into out, under the RIE; it
// says what it does on w.
func start(ctx context.Context, w io.Writer, out string, faultRate, ssmRate float64) (_ *demo, err error) {
	d := &demo{w: w}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	root, err := testinfra.ProjectRoot()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}

	step(w, "starting DynamoDB Local")
	ddb, err := testinfra.StartDynamoDBLocal(ctx)
	if err != nil {
		return nil, fmt.Errorf("DynamoDB Local: %w", err)
	}
	d.closers = append(d.closers, ddb.Close)
	const table = "ssm-association-batcher-dedupe"
	client := dynamodb.New(dynamodb.Options{
		Region:                          "us-east-1",
		BaseEndpoint:                    aws.String(ddb.Endpoint()),
		Credentials:                     credentials.NewStaticCredentialsProvider("local", "local", ""),
		DisableValidateResponseChecksum: true,
	})
	if _, err := client.CreateTable(ctx, dedupe.TableDefinition(table)); err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}

	step(w, fmt.Sprintf("starting the SSM emulator (%.0f%% entry faults, throttling above %.0f calls/s, the answer of the first call lost after SSM executed it)", faultRate*100, ssmRate))
	opts := ssmlocal.DefaultOptions()
	opts.EntryFaultRate, opts.Rate, opts.Burst, opts.Seed = faultRate, ssmRate, 1, 42
	opts.Latency, opts.Jitter = 20*time.Millisecond, 30*time.Millisecond
	d.emu = ssmlocal.New(opts)
	d.emu.DropAfterCreate(1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: d.emu, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	d.closers = append(d.closers, srv.Close)
	ssmURL := "http://" + ln.Addr().String()

	step(w, "building the function (functions/associate) and starting it under aws-lambda-rie")
	bootstrap := filepath.Join(out, "bootstrap")
	build := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", bootstrap, "./functions/associate")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	d.logPath = filepath.Join(out, "function.log")
	logFile, err := os.Create(d.logPath)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, logFile.Close)
	// The sample runs a command document and targets a tag: both are
	// opt-in (ALLOWED_DOCUMENTS, ALLOWED_TARGET_KEYS), as a deployer opts
	// in; the default documents stay allowed, for the files of events/.
	settings := []string{"BATCH_SIZE=4", "CALLS_PER_SECOND=5", "MAX_CONCURRENCY=3", "RECONCILE_DELAY=200ms",
		"ALLOWED_DOCUMENTS=" + config.DefaultAllowedDocuments + ",AWS-RunShellScript", "ALLOWED_TARGET_KEYS=" + config.DefaultAllowedTargetKeys + ",tag:*"}
	step(w, fmt.Sprintf("function settings: %v (the rest at their defaults, see the README)", settings))
	d.rie, err = testinfra.StartRIE(ctx, bootstrap, append([]string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_SSM=" + ssmURL, "AWS_ENDPOINT_URL_DYNAMODB=" + ddb.Endpoint(),
		"DEDUPE_TABLE=" + table, "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_FUNCTION_TIMEOUT=120",
	}, settings...), testinfra.WithOutput(logFile))
	if err != nil {
		return nil, fmt.Errorf("runtime interface emulator: %w", err)
	}
	d.closers = append(d.closers, d.rie.Close)
	return d, nil
}

// outcome is what an answer says was done.
type outcome int

const (
	ran     outcome = iota // the request ran: a result
	planned                // a dry run: a plan
	refused                // an error or an API answer without a result: nothing done
)

// sent is one invocation: what it did, and what SSM saw of it.
type sent struct {
	kind    outcome
	summary *report.Summary // of a result
	seen    seen
}

// send invokes the function with body once, writes the answer to save,
// and prints what SSM saw and the outcome.
func (d *demo) send(ctx context.Context, title string, body []byte, save string) (sent, error) {
	before := d.emu.Stats()
	start := time.Now()
	answer, err := d.rie.Invoke(ctx, body)
	if err != nil {
		return sent{}, fmt.Errorf("invoke: %w", err)
	}
	took := time.Since(start)
	s := sent{seen: seenBetween(before, d.emu.Stats())}
	if err := os.WriteFile(save, answer, 0o644); err != nil {
		return s, err
	}
	step(d.w, fmt.Sprintf("%s: %s. %s", title, took.Round(time.Millisecond), s.seen))
	fmt.Fprintln(d.w, countsNote)
	s.kind, s.summary, err = printOutcome(d.w, answer)
	return s, err
}

// seen is what the SSM emulator counted during one invocation.
type seen struct {
	attempts, creates, updates, reads, throttled, injected int
}

func seenBetween(before, after ssmlocal.Stats) seen {
	op := func(name string) int { return after.Operations[name] - before.Operations[name] }
	s := seen{
		creates:   op("CreateAssociationBatch"),
		updates:   op("UpdateAssociation"),
		reads:     op("ListAssociations") + op("DescribeAssociation"),
		throttled: after.ThrottledCalls - before.ThrottledCalls,
		injected:  after.EntriesFailedByInjection - before.EntriesFailedByInjection,
	}
	for name := range after.Operations {
		s.attempts += op(name)
	}
	return s
}

func (s seen) String() string {
	return fmt.Sprintf("SSM saw %d attempts: %d CreateAssociationBatch, %d UpdateAssociation, %d reads (ListAssociations, DescribeAssociation); %d of the %d throttled; %d entries failed by injected faults.",
		s.attempts, s.creates, s.updates, s.reads, s.throttled, s.attempts, s.injected)
}

// countsNote says why the header's numbers are larger than the Summary's.
const countsNote = "(SSM counts attempts: the SDK's retries of a throttled call are attempts too. Summary counts the function's calls: " +
	"Calls (CreateAssociationBatch, UpdateAssociation) and Reads count a call once however many attempts it took, " +
	"and Throttles counts the throttled attempts of Calls only, not of reads.)"

func step(w io.Writer, msg string) { fmt.Fprintf(w, "\n==> %s\n", msg) }

// printOutcome prints an answer of AssociateFunction: a result as a table
// of outcomes, a dry run's plan as a table of actions, an API Gateway
// answer as its status and its body so decoded, and a function error as
// Lambda reports it. It returns what the answer says was done, and the
// result's Summary when there is one.
func printOutcome(w io.Writer, answer []byte) (outcome, *report.Summary, error) {
	var probe struct {
		ErrorType    string          `json:"errorType"`
		ErrorMessage string          `json:"errorMessage"`
		StatusCode   int             `json:"statusCode"`
		Body         *string         `json:"body"`
		DryRun       bool            `json:"DryRun"`
		Summary      json.RawMessage `json:"Summary"`
	}
	if err := json.Unmarshal(answer, &probe); err != nil {
		return 0, nil, fmt.Errorf("unexpected answer %s", answer)
	}
	switch {
	case probe.ErrorType != "":
		fmt.Fprintf(w, "The function answered an error, as Lambda reports it to a direct caller (nothing was done): %s: %s\n", probe.ErrorType, probe.ErrorMessage)
		return refused, nil, nil
	case probe.StatusCode != 0 && probe.Body != nil:
		fmt.Fprintf(w, "HTTP %d (an API Gateway answer; its body:)\n", probe.StatusCode)
		body := []byte(*probe.Body)
		if probe.StatusCode == http.StatusOK {
			if kind, sum, err := printOutcome(w, body); err == nil {
				return kind, sum, nil
			}
		}
		var out bytes.Buffer
		if json.Indent(&out, body, "", "  ") != nil {
			out.Reset()
			out.Write(body)
		}
		fmt.Fprintln(w, out.String())
		return refused, nil, nil
	case probe.DryRun:
		var p report.Plan
		if err := json.Unmarshal(answer, &p); err != nil {
			return 0, nil, fmt.Errorf("unexpected answer %s: %w", answer, err)
		}
		return planned, nil, printPlan(w, p)
	case probe.Summary != nil:
		var res report.Result
		if err := json.Unmarshal(answer, &res); err != nil || res.Summary.Requested == 0 {
			return 0, nil, fmt.Errorf("unexpected answer %s", answer)
		}
		return ran, &res.Summary, printResult(w, res)
	}
	return 0, nil, fmt.Errorf("unexpected answer %s", answer)
}

func printResult(w io.Writer, res report.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OUTCOME\tDOCUMENT\tTARGET\tDETAIL")
	for _, a := range res.Successful {
		fmt.Fprintf(tw, "Successful\t%s\t%s\tAssociationId %s\n", a.Name, targetOf(a.InstanceId, a.Targets), a.AssociationId)
	}
	for _, u := range res.Updated {
		fmt.Fprintf(tw, "Updated\t%s\t%s\tAssociationId %s, version %s (%s changed)\n", u.Entry.Name, targetOf(aws.ToString(u.Entry.InstanceId), u.Entry.Targets), u.AssociationId, u.AssociationVersion, joined(u.Differences))
	}
	for _, d := range res.Deduplicated {
		detail := d.Reason
		if d.AssociationId != "" {
			detail += " (" + d.AssociationId + ")"
		}
		if len(d.Differences) > 0 {
			detail += ": " + joined(d.Differences)
		}
		fmt.Fprintf(tw, "Deduplicated\t%s\t%s\t%s\n", d.Entry.Name, targetOf(aws.ToString(d.Entry.InstanceId), d.Entry.Targets), detail)
	}
	for _, f := range res.Failed {
		fmt.Fprintf(tw, "Failed (%s)\t%s\t%s\t%s [attempts %d]\n", f.Fault, f.Entry.Name, targetOf(aws.ToString(f.Entry.InstanceId), f.Entry.Targets), f.Message, f.Attempts)
	}
	for _, u := range res.Unprocessed {
		fmt.Fprintf(tw, "Unprocessed\t%s\t%s\t%s\n", u.Entry.Name, targetOf(aws.ToString(u.Entry.InstanceId), u.Entry.Targets), u.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s, _ := json.Marshal(res.Summary)
	fmt.Fprintf(w, "Summary: %s\n", s)
	fmt.Fprintln(w, "(One row per outcome: an entry created for several nodes at once is one Successful row, and one row per node otherwise; Requested counts the request's entries.)")
	return nil
}

func printPlan(w io.Writer, p report.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tDOCUMENT\tTARGET\tDETAIL")
	for _, a := range p.Actions {
		var detail []string
		if a.Reason != "" {
			detail = append(detail, a.Reason)
		}
		if a.AssociationId != "" {
			detail = append(detail, "AssociationId "+a.AssociationId)
		}
		if len(a.Differences) > 0 {
			detail = append(detail, joined(a.Differences)+" would change")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Action, a.Entry.Name, targetOf(aws.ToString(a.Entry.InstanceId), a.Entry.Targets), joined(detail))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s, _ := json.Marshal(p.Summary)
	fmt.Fprintf(w, "Summary: %s\n", s)
	fmt.Fprintln(w, "(A dry run: nothing was sent to SSM and no claim written. Calls is the least number of SSM calls a run would make, EstimatedSeconds those calls at CALLS_PER_SECOND.)")
	return nil
}

func joined(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

func targetOf(instanceID string, targets []request.Target) string {
	if instanceID != "" {
		return instanceID
	}
	if len(targets) == 0 {
		return "-"
	}
	b, _ := json.Marshal(targets)
	return string(b)
}
