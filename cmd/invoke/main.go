// Command invoke runs one event through one of template.yaml's functions on
// this machine, as `sam local invoke` does but without Docker: the real
// function, built as sam build builds it (for this machine's architecture),
// under the AWS Lambda Runtime Interface Emulator, with the environment the
// template gives it at its parameters' defaults, against the SSM emulator
// and DynamoDB Local holding the template's tables. It prints the
// function's answer (samtemplate.Local does the work).
//
//	make invoke EVENT=events/fanout.json [FUNCTION=associate|worker|reaper] [ARGS="-v"]
//
// Services that outlive one run are reused when they answer on their usual
// ports: make ssm-local's emulator (127.0.0.1:4583), make local-tables'
// DynamoDB Local (127.0.0.1:8000) and moto (127.0.0.1:5000). Otherwise
// private ones are started and stopped with the run, so each run starts from
// empty tables and an SSM without associations; -reuse=false always does so.
//
// The worker's SQS events from files carry chunks of jobs nobody submitted
// here: their jobs are recorded first. A request that becomes an
// asynchronous job ("Async": true) gets a jobs queue on moto; its chunks are
// then run through WorkerFunction from the queue, as the event source would,
// and the job's status is read through the status route.
//
// With -local-tables it runs, instead, DynamoDB Local on port 8000 with the
// template's tables (and, when moto_server is installed, moto on 0.0.0.0:5000
// with the jobs queue) until interrupted, for
// `sam local invoke --env-vars events/env.local.json`.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/samtemplate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	// Output piped into a reader that quits (| head) must not kill the
	// command before it stops the services it started, which run in
	// process groups of their own: a failed write is only an error.
	signal.Ignore(syscall.SIGPIPE)
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "invoke:", err)
		os.Exit(1)
	}
}

// options is the parsed command line.
type options struct {
	event       string
	function    string
	ssm         string
	dynamodb    string
	jobs        string
	reuse       bool
	verbose     bool
	buildDir    string
	localTables bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.event, "event", "", "file holding the event, as for sam local invoke -e (events/*.json, or your own)")
	fs.StringVar(&o.function, "function", "", "associate, worker or reaper (AssociateFunction, WorkerFunction, ReaperFunction); default: worker for an SQS event, associate otherwise")
	fs.StringVar(&o.ssm, "ssm", "", "endpoint of a running SSM emulator; default: make ssm-local's at 127.0.0.1:4583 if it answers, else one in this process")
	fs.StringVar(&o.dynamodb, "dynamodb", "", "endpoint of a running DynamoDB Local; default: make local-tables' at 127.0.0.1:8000 if it answers, else a private one")
	fs.StringVar(&o.jobs, "jobs", "auto", "jobs queue on moto: on, off, or auto (on when the request asks for \"Async\" or moto answers at 127.0.0.1:5000)")
	fs.BoolVar(&o.reuse, "reuse", true, "use the services make ssm-local and make local-tables leave running; false: always start private ones")
	fs.BoolVar(&o.verbose, "v", false, "print what the functions and services print (otherwise written to BUILD-DIR/invoke.log)")
	fs.StringVar(&o.buildDir, "build-dir", "", "where the bootstraps and the log go (default build/invoke)")
	fs.BoolVar(&o.localTables, "local-tables", false, "instead of invoking: run DynamoDB Local on :8000 with the tables (and moto on :5000 with the jobs queue) for sam local invoke, until interrupted")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if !o.localTables && o.event == "" {
		return o, errors.New("no event: make invoke EVENT=events/<file>.json [FUNCTION=associate|worker|reaper]")
	}
	switch o.jobs {
	case "on", "off", "auto":
	default:
		return o, fmt.Errorf("-jobs %q: want on, off or auto", o.jobs)
	}
	return o, nil
}

// functionID maps the short names make invoke takes to logical IDs.
func functionID(name string, payload []byte) (string, error) {
	switch strings.ToLower(name) {
	case "":
		return samtemplate.FunctionFor(payload), nil
	case "associate", strings.ToLower(samtemplate.AssociateFunction):
		return samtemplate.AssociateFunction, nil
	case "worker", strings.ToLower(samtemplate.WorkerFunction):
		return samtemplate.WorkerFunction, nil
	case "reaper", strings.ToLower(samtemplate.ReaperFunction):
		return samtemplate.ReaperFunction, nil
	}
	return "", fmt.Errorf("function %q: want associate, worker or reaper", name)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	step := func(msg string) { fmt.Fprintf(stderr, "==> %s\n", msg) }
	if o.localTables {
		return serveLocalTables(ctx, step)
	}
	payload, err := os.ReadFile(o.event)
	if err != nil {
		return err
	}
	if !json.Valid(payload) {
		return fmt.Errorf("%s is not valid JSON", o.event)
	}
	id, err := functionID(o.function, payload)
	if err != nil {
		return err
	}
	if o.buildDir == "" {
		root, err := testinfra.ProjectRoot()
		if err != nil {
			return err
		}
		o.buildDir = filepath.Join(root, "build", "invoke")
	}
	if err := os.MkdirAll(o.buildDir, 0o755); err != nil {
		return err
	}
	var logs io.Writer = stderr
	logPath := filepath.Join(o.buildDir, "invoke.log")
	if !o.verbose {
		f, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		logs = f
	}

	lo := samtemplate.LocalOptions{
		SSM:       o.ssm,
		DynamoDB:  o.dynamodb,
		Functions: []string{id},
		BuildDir:  o.buildDir,
		Logs:      logs,
		Progress:  step,
	}
	if o.reuse {
		if lo.SSM == "" && answersSSM(ctx, localURL(samtemplate.SSMLocalPort)) {
			lo.SSM = localURL(samtemplate.SSMLocalPort)
		}
		if lo.DynamoDB == "" && answersDynamoDB(ctx, localURL(samtemplate.DynamoDBLocalPort)) {
			lo.DynamoDB = localURL(samtemplate.DynamoDBLocalPort)
		}
	}
	motoRunning := o.reuse && o.jobs != "off" && answersMoto(ctx, localURL(samtemplate.MotoPort))
	switch {
	case o.jobs == "on", motoRunning:
		lo.Queue = true
	case o.jobs == "auto" && id == samtemplate.AssociateFunction && asksAsync(payload):
		lo.Queue = true
		step(`the request asks for "Async": a jobs queue on moto, and the worker to run its chunks`)
	}
	if lo.Queue {
		if motoRunning {
			lo.SQS = localURL(samtemplate.MotoPort)
			step("reusing moto at " + lo.SQS)
		}
		if id == samtemplate.AssociateFunction {
			lo.Functions = append(lo.Functions, samtemplate.WorkerFunction)
		}
	}
	l, err := samtemplate.StartLocal(ctx, lo)
	if err != nil {
		return err
	}
	defer l.Close()
	if !lo.Queue && id == samtemplate.AssociateFunction {
		step(`no jobs queue (-jobs on, or "Async": true in the request, sets one up): a request that becomes a job cannot queue its chunks`)
	}

	step(fmt.Sprintf("invoking %s with %s under aws-lambda-rie", id, o.event))
	start := time.Now()
	answer, err := l.InvokeEvent(ctx, id, payload)
	if err != nil {
		return err
	}
	step(fmt.Sprintf("%s answered in %v:", id, time.Since(start).Round(time.Millisecond)))
	body := printAnswer(stdout, step, answer)

	if id == samtemplate.WorkerFunction {
		if err := printJobsOf(ctx, l, payload, stdout, step); err != nil {
			return err
		}
	}
	if id == samtemplate.AssociateFunction {
		var acc jobs.Accepted
		if json.Unmarshal(body, &acc) == nil && acc.JobID != "" && acc.State != "" {
			if !l.QueueLive() {
				step("the answer is a job, but there is no jobs queue here to run it from (-jobs on)")
			} else if err := followJob(ctx, l, acc.JobID, stdout, step); err != nil {
				return err
			}
		}
	}
	if !o.verbose {
		step("function and service output: " + logPath)
	}
	return nil
}

// printAnswer prints a function's answer as indented JSON. An API Gateway
// response whose body is JSON is printed with its body decoded after it. It
// returns the request's result: the body of an API response, else the
// answer.
func printAnswer(stdout io.Writer, step func(string), answer []byte) []byte {
	var resp struct {
		StatusCode int     `json:"statusCode"`
		Body       *string `json:"body"`
		ErrorType  string  `json:"errorType"`
	}
	if json.Unmarshal(answer, &resp) != nil {
		fmt.Fprintln(stdout, indent(answer))
		return answer
	}
	if resp.ErrorType != "" {
		fmt.Fprintln(stdout, indent(answer))
		step("the function answered an error (" + resp.ErrorType + "), as Lambda would report it to the caller")
		return answer
	}
	if resp.StatusCode == 0 || resp.Body == nil || !json.Valid([]byte(*resp.Body)) {
		fmt.Fprintln(stdout, indent(answer))
		return answer
	}
	// The body is a string of JSON: shown decoded, below the rest.
	var fields map[string]json.RawMessage
	if json.Unmarshal(answer, &fields) == nil {
		fields["body"], _ = json.Marshal(fmt.Sprintf("(%d bytes of JSON, below)", len(*resp.Body)))
		if b, err := json.Marshal(fields); err == nil {
			answer = b
		}
	}
	fmt.Fprintln(stdout, indent(answer))
	step(fmt.Sprintf("HTTP %d; the body:", resp.StatusCode))
	fmt.Fprintln(stdout, indent([]byte(*resp.Body)))
	return []byte(*resp.Body)
}

func indent(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(b), "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

// followJob runs a job's chunks from the queue through the worker, then
// asks the status route how it ended.
func followJob(ctx context.Context, l *samtemplate.Local, jobID string, stdout io.Writer, step func(string)) error {
	step(fmt.Sprintf("job %s: running its chunks through %s from the jobs queue, as the SQS event source would", jobID, samtemplate.WorkerFunction))
	runCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	m, err := l.RunJob(runCtx, jobID)
	if err != nil {
		return err
	}
	step(fmt.Sprintf("job %s %s: %d/%d chunks done", jobID, m.State, m.ChunksDone, m.Chunks))
	step(fmt.Sprintf("GET /associations/%s through %s (the REST API's status route):", jobID, samtemplate.AssociateFunction))
	status, err := l.Invoke(ctx, samtemplate.AssociateFunction, samtemplate.StatusEvent(jobID))
	if err != nil {
		return err
	}
	printAnswer(stdout, step, status)
	return nil
}

// printJobsOf prints the jobs of an SQS event's chunks as the worker left
// them.
func printJobsOf(ctx context.Context, l *samtemplate.Local, payload []byte, stdout io.Writer, step func(string)) error {
	var ev struct {
		Records []struct{ Body string }
	}
	if json.Unmarshal(payload, &ev) != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, r := range ev.Records {
		var c jobs.Chunk
		if json.Unmarshal([]byte(r.Body), &c) != nil || c.JobID == "" || seen[c.JobID] {
			continue
		}
		seen[c.JobID] = true
		m, err := l.Jobs().Meta(ctx, c.JobID)
		if err != nil {
			return fmt.Errorf("job %s: %w", c.JobID, err)
		}
		b, _ := json.Marshal(m)
		step(fmt.Sprintf("job %s in the jobs table after the worker:", c.JobID))
		fmt.Fprintln(stdout, indent(b))
	}
	return nil
}

// asksAsync reports whether the request in an event says "Async": true,
// whatever the envelope.
func asksAsync(payload []byte) bool {
	inv, err := event.Decode(payload)
	if err != nil || len(inv.Body) == 0 {
		return false
	}
	var req struct{ Async bool }
	return json.Unmarshal(inv.Body, &req) == nil && req.Async
}

func localURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// listening is a quick check before asking a service anything.
func listening(url string) bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), 300*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func answersSSM(ctx context.Context, url string) bool {
	if !listening(url) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	client := ssm.New(ssm.Options{
		Region:           testinfra.LocalRegion,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(testinfra.LocalAccessKeyID, testinfra.LocalSecretAccessKey, ""),
		RetryMaxAttempts: 1,
	})
	_, err := client.ListAssociations(ctx, &ssm.ListAssociationsInput{MaxResults: aws.Int32(1)})
	return err == nil
}

func answersDynamoDB(ctx context.Context, url string) bool {
	if !listening(url) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := samtemplate.DynamoDBClient(url).ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)},
		func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	return err == nil
}

func answersMoto(ctx context.Context, url string) bool {
	if !listening(url) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/moto-api/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// serveLocalTables stands up what sam local invoke's functions need besides
// the SSM emulator, where events/env.local.json points them: DynamoDB Local
// on port 8000 (it listens on every interface) with the template's tables
// and the job of events/sqs-chunk.json, and, when moto_server is installed,
// moto on 0.0.0.0:5000 with the jobs queue. It reuses what already answers
// there, and runs until ctx ends.
func serveLocalTables(ctx context.Context, step func(string)) error {
	tpl, err := samtemplate.LoadTemplate("")
	if err != nil {
		return err
	}
	started := false
	dbURL := localURL(samtemplate.DynamoDBLocalPort)
	if answersDynamoDB(ctx, dbURL) {
		step("reusing the DynamoDB Local that answers at " + dbURL)
	} else {
		step(fmt.Sprintf("starting DynamoDB Local on port %d (every interface, in memory)", samtemplate.DynamoDBLocalPort))
		db, err := testinfra.StartDynamoDBLocal(ctx, testinfra.WithPort(samtemplate.DynamoDBLocalPort))
		if err != nil {
			return err
		}
		defer db.Close()
		started = true
	}
	client := samtemplate.DynamoDBClient(dbURL)
	for _, id := range []string{samtemplate.DedupeTable, samtemplate.JobsTable} {
		name := samtemplate.LocalNames[id]
		created, err := tpl.EnsureTable(ctx, client, id, name)
		if err != nil {
			return err
		}
		step(fmt.Sprintf("%s: table %s (%s)", id, name, map[bool]string{true: "created from template.yaml", false: "exists"}[created]))
	}
	root, err := testinfra.ProjectRoot()
	if err != nil {
		return err
	}
	if sample, err := os.ReadFile(filepath.Join(root, "events", "sqs-chunk.json")); err == nil {
		ttl, _ := tpl.Parameter("JobTtl")
		d, err := time.ParseDuration(ttl)
		if err != nil {
			d = 168 * time.Hour
		}
		recorded, err := samtemplate.RecordJobsOf(ctx, jobs.NewStore(client, samtemplate.LocalNames[samtemplate.JobsTable], d), sample)
		if err != nil {
			return err
		}
		for _, r := range recorded {
			step("recorded " + r + ", which events/sqs-chunk.json's chunk belongs to")
		}
	}

	motoURL := localURL(samtemplate.MotoPort)
	switch {
	case answersMoto(ctx, motoURL):
		step("reusing moto at " + motoURL)
	case testinfra.CheckTools(testinfra.ToolMoto) == nil:
		step(fmt.Sprintf("starting moto_server on 0.0.0.0:%d for the jobs queue", samtemplate.MotoPort))
		m, err := testinfra.StartMoto(ctx, testinfra.WithHost("0.0.0.0"), testinfra.WithPort(samtemplate.MotoPort))
		if err != nil {
			return err
		}
		defer m.Close()
		started = true
	default:
		motoURL = ""
		step("moto_server is not installed: no jobs queue (only requests that become jobs need it)")
	}
	if motoURL != "" {
		q, err := samtemplate.CreateLocalQueue(ctx, motoURL)
		if err != nil {
			return err
		}
		step("jobs queue " + q)
	}
	if !started {
		step("everything was running already; nothing to keep up")
		return nil
	}
	step(`ready. In another terminal: make ssm-local ARGS="-addr 0.0.0.0:4583", then sam local invoke … --env-vars events/env.local.json. Ctrl-C stops (the tables are in memory).`)
	<-ctx.Done()
	step("stopping")
	return nil
}
