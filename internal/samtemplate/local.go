package samtemplate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// LocalNames are the names local runs give the stack's tables and jobs
// queue: make invoke and make local-tables create them, and
// events/env.local.json names them for sam local invoke.
var LocalNames = map[string]string{
	DedupeTable: "ssm-association-batcher-DedupeTable-local",
	JobsTable:   "ssm-association-batcher-JobsTable-local",
	JobsQueue:   "ssm-association-batcher-JobsQueue-local",
}

// The ports local services listen on when they are meant to outlive one run
// (make ssm-local, make local-tables), which make invoke reuses when they
// answer there.
const (
	SSMLocalPort      = 4583 // make ssm-local
	DynamoDBLocalPort = 8000 // make local-tables
	MotoPort          = 5000 // make local-tables, when moto_server is installed
)

// localQueueVisibility is the jobs queue's visibility timeout here: a chunk a
// worker hands back comes back within a local run, not after the
// template's 30 minutes.
const localQueueVisibility = 30

// LocalOptions says which services a Local uses and which it starts.
type LocalOptions struct {
	// SSM is the endpoint of a running SSM emulator (make ssm-local's);
	// empty: an ssmlocal emulator with its default options, in this
	// process.
	SSM string
	// DynamoDB is the endpoint of a running DynamoDB Local; empty: a
	// private one, in memory, from .tools.
	DynamoDB string
	// Queue sets up the jobs queue: on the SQS endpoint SQS or, when that is
	// empty, on a moto server started for the run. Without it the jobs
	// queue URL leads nowhere, and a request that becomes a job cannot
	// queue its chunks.
	Queue bool
	SQS   string
	// Functions are the functions whose bootstraps are built while the
	// services start; others are built when first invoked.
	Functions []string
	// BuildDir holds the bootstraps (BuildDir/<function>/bootstrap); empty:
	// a temporary folder removed by Close.
	BuildDir string
	// Logs gets a copy of what the services and the functions print.
	Logs io.Writer
	// Progress, when set, is told what is being started.
	Progress func(string)
}

// Local is the stack as far as this machine can run it: the tables created
// from the template's definitions in DynamoDB Local, the SSM emulator, the
// jobs queue when asked for, and the functions, built as sam build builds
// them (for this machine's architecture), each under the Lambda Runtime
// Interface Emulator with the environment the template gives it at its
// parameters' defaults. It is what `make invoke` runs and what the end to end
// test drives.
type Local struct {
	tpl  *Template
	opts LocalOptions

	ssmURL string
	emu    *ssmlocal.Server
	srv    *http.Server

	db       *testinfra.DynamoDB
	dbURL    string
	dbClient *dynamodb.Client

	moto     *testinfra.Moto
	sqsURL   string
	queueURL string

	names    map[string]string
	buildDir string
	tempDir  bool

	mu     sync.Mutex
	builds map[string]*build
	rie    map[string]*testinfra.RIE
}

// StartLocal starts or connects to the services and builds the bootstraps
// of opts.Functions. Close it when done.
func StartLocal(ctx context.Context, opts LocalOptions) (l *Local, err error) {
	tpl, err := LoadTemplate("")
	if err != nil {
		return nil, err
	}
	l = &Local{tpl: tpl, opts: opts, builds: map[string]*build{}, rie: map[string]*testinfra.RIE{}}
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()
	l.buildDir = opts.BuildDir
	if l.buildDir == "" {
		if l.buildDir, err = os.MkdirTemp("", "ssm-association-batcher-local-"); err != nil {
			return nil, err
		}
		l.tempDir = true
	}

	// The builds, DynamoDB Local (about 3 s) and moto (several seconds)
	// start together.
	var (
		wg                 sync.WaitGroup
		dbErr, motoErr     error
		startDB, startMoto = opts.DynamoDB == "", opts.Queue && opts.SQS == ""
	)
	var svcOpts []testinfra.Option
	if opts.Logs != nil {
		svcOpts = append(svcOpts, testinfra.WithOutput(opts.Logs))
	}
	if startDB {
		l.progress("starting DynamoDB Local (in memory, from .tools)")
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.db, dbErr = testinfra.StartDynamoDBLocal(ctx, svcOpts...)
		}()
	}
	if startMoto {
		l.progress("starting moto_server for the jobs queue")
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.moto, motoErr = testinfra.StartMoto(ctx, svcOpts...)
		}()
	}
	buildErrs := make([]error, len(opts.Functions))
	for i, id := range opts.Functions {
		l.progress("building " + id + " (go build, as sam build does, for this machine)")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, buildErrs[i] = l.bootstrap(ctx, id)
		}()
	}
	wg.Wait()
	if err := errors.Join(append(buildErrs, dbErr, motoErr)...); err != nil {
		return nil, err
	}

	l.dbURL = opts.DynamoDB
	if l.db != nil {
		l.dbURL = l.db.Endpoint()
		l.dbClient = l.db.Client()
	} else {
		l.dbClient = DynamoDBClient(l.dbURL)
	}
	for _, id := range []string{DedupeTable, JobsTable} {
		created, err := tpl.EnsureTable(ctx, l.dbClient, id, LocalNames[id])
		if err != nil {
			return nil, err
		}
		if created {
			l.progress(fmt.Sprintf("created %s as %s (from template.yaml) in DynamoDB Local at %s", id, LocalNames[id], l.dbURL))
		} else {
			l.progress(fmt.Sprintf("reusing %s %s in DynamoDB Local at %s", id, LocalNames[id], l.dbURL))
		}
	}

	// Never called when the queue is off: a connection refused at once.
	l.queueURL = "http://127.0.0.1:9/123456789012/" + LocalNames[JobsQueue]
	if opts.Queue {
		l.sqsURL = opts.SQS
		if l.moto != nil {
			l.sqsURL = l.moto.Endpoint()
		}
		if l.queueURL, err = CreateLocalQueue(ctx, l.sqsURL); err != nil {
			return nil, err
		}
		l.progress(fmt.Sprintf("jobs queue %s", l.queueURL))
	}

	l.ssmURL = opts.SSM
	if l.ssmURL == "" {
		l.emu = ssmlocal.New(ssmlocal.DefaultOptions())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		l.srv = &http.Server{Handler: l.emu, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = l.srv.Serve(ln) }()
		l.ssmURL = "http://" + ln.Addr().String()
		l.progress("SSM emulator (internal/ssmlocal, default options) in this process at " + l.ssmURL)
	} else {
		l.progress("reusing the SSM emulator at " + l.ssmURL)
	}

	l.names = map[string]string{
		DedupeTable: LocalNames[DedupeTable],
		JobsTable:   LocalNames[JobsTable],
		JobsQueue:   l.queueURL,
		EventBus:    "", // no bus: a finished job announces nothing
	}
	return l, nil
}

// DynamoDBClient is a client of the DynamoDB Local at endpoint, with the
// local credentials.
func DynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:                          testinfra.LocalRegion,
		BaseEndpoint:                    aws.String(endpoint),
		Credentials:                     credentials.NewStaticCredentialsProvider(testinfra.LocalAccessKeyID, testinfra.LocalSecretAccessKey, ""),
		DisableValidateResponseChecksum: true,
	})
}

func sqsClient(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       testinfra.LocalRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(testinfra.LocalAccessKeyID, testinfra.LocalSecretAccessKey, ""),
	})
}

// CreateLocalQueue creates the jobs queue (LocalNames[JobsQueue]) on the SQS
// at endpoint, or finds it, and returns its URL.
func CreateLocalQueue(ctx context.Context, endpoint string) (string, error) {
	out, err := sqsClient(endpoint).CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(LocalNames[JobsQueue]),
		Attributes: map[string]string{
			string(sqstypes.QueueAttributeNameVisibilityTimeout): strconv.Itoa(localQueueVisibility),
		},
	})
	if err != nil {
		return "", fmt.Errorf("create the jobs queue at %s: %w", endpoint, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

func (l *Local) progress(msg string) {
	if l.opts.Progress != nil {
		l.opts.Progress(msg)
	}
}

// Emulator is the in-process SSM emulator, or nil when an outside one is
// used.
func (l *Local) Emulator() *ssmlocal.Server { return l.emu }

// Endpoint is the endpoint of a local service: "ssm", "dynamodb", or "sqs"
// ("" when there is no jobs queue).
func (l *Local) Endpoint(service string) string {
	return map[string]string{"ssm": l.ssmURL, "dynamodb": l.dbURL, "sqs": l.sqsURL}[service]
}

// Bootstrap builds function id, once, and returns the bootstrap's path.
func (l *Local) Bootstrap(ctx context.Context, id string) (string, error) {
	return l.bootstrap(ctx, id)
}

// QueueLive reports whether the jobs queue exists (LocalOptions.Queue).
func (l *Local) QueueLive() bool { return l.sqsURL != "" }

// Jobs is the jobs table's store.
func (l *Local) Jobs() *jobs.Store {
	ttl, err := l.tpl.Parameter("JobTtl")
	d, perr := time.ParseDuration(ttl)
	if err != nil || perr != nil {
		d = 168 * time.Hour
	}
	return jobs.NewStore(l.dbClient, LocalNames[JobsTable], d)
}

// Environment is the environment function id runs with: what Lambda sets
// from the template (Runtime), the template's variables with the local
// resources' names, and the local services' endpoints, which replace the
// template's empty endpoint variables. testinfra.StartRIE adds the local
// credentials and Region.
func (l *Local) Environment(id string) ([]string, error) {
	rt, err := l.tpl.Runtime(id)
	if err != nil {
		return nil, err
	}
	vars, err := l.tpl.Environment(id, l.names)
	if err != nil {
		return nil, err
	}
	env := append(rt, vars...)
	env = append(env,
		"AWS_ENDPOINT_URL_SSM="+l.ssmURL,
		"AWS_ENDPOINT_URL_DYNAMODB="+l.dbURL,
	)
	if l.sqsURL != "" {
		env = append(env, "AWS_ENDPOINT_URL_SQS="+l.sqsURL)
	}
	return env, nil
}

// build is one function's bootstrap, built once.
type build struct {
	once sync.Once
	path string
	err  error
}

// bootstrap builds function id once.
func (l *Local) bootstrap(ctx context.Context, id string) (string, error) {
	pkg := map[string]string{AssociateFunction: "./functions/associate", WorkerFunction: "./functions/worker", ReaperFunction: "./functions/reaper"}[id]
	if pkg == "" {
		return "", fmt.Errorf("no function %s (want %s, %s or %s)", id, AssociateFunction, WorkerFunction, ReaperFunction)
	}
	l.mu.Lock()
	b, ok := l.builds[id]
	if !ok {
		b = &build{}
		l.builds[id] = b
	}
	l.mu.Unlock()
	b.once.Do(func() {
		dir := filepath.Join(l.buildDir, id)
		if b.err = os.MkdirAll(dir, 0o755); b.err == nil {
			b.path, b.err = testinfra.BuildBootstrap(ctx, pkg, dir)
		}
	})
	return b.path, b.err
}

// runtime starts function id under the emulator on first use.
func (l *Local) runtime(ctx context.Context, id string) (*testinfra.RIE, error) {
	b, err := l.bootstrap(ctx, id)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.rie[id]; ok {
		return r, nil
	}
	env, err := l.Environment(id)
	if err != nil {
		return nil, err
	}
	var opts []testinfra.Option
	if l.opts.Logs != nil {
		opts = append(opts, testinfra.WithOutput(l.opts.Logs))
	}
	r, err := testinfra.StartRIE(ctx, b, env, opts...)
	if err != nil {
		return nil, err
	}
	l.rie[id] = r
	return r, nil
}

// Logs is what function id printed under the emulator so far.
func (l *Local) Logs(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := l.rie[id]; ok {
		return r.Logs()
	}
	return ""
}

// Invoke sends payload to function id, as the Invoke API would, and
// returns its answer. A function error is an answer too:
// {"errorType", "errorMessage"}.
func (l *Local) Invoke(ctx context.Context, id string, payload []byte) ([]byte, error) {
	r, err := l.runtime(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.Invoke(ctx, payload)
}

// InvokeEvent is Invoke for an event from a file, as sam local invoke sends
// one. An SQS event for the worker holds chunks of jobs no submitter
// created here, so each chunk's job is recorded first unless it exists
// (RecordJobsOf): the worker counts its chunks into it.
func (l *Local) InvokeEvent(ctx context.Context, id string, payload []byte) ([]byte, error) {
	if id == WorkerFunction {
		recorded, err := RecordJobsOf(ctx, l.Jobs(), payload)
		if err != nil {
			return nil, err
		}
		for _, r := range recorded {
			l.progress("recorded " + r + " for the event's chunks")
		}
	}
	return l.Invoke(ctx, id, payload)
}

// RecordJobsOf records in store the jobs of an SQS event's chunk messages
// that do not exist yet, as the submitter would have: one chunk per
// record, the records' entries requested. It describes the jobs it
// recorded. A payload that is not an SQS event of chunks records nothing.
func RecordJobsOf(ctx context.Context, store *jobs.Store, payload []byte) ([]string, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, nil // not an SQS event: the worker says what is wrong with it
	}
	type job struct{ requested, chunks int }
	byID := map[string]*job{}
	var order []string
	for _, r := range ev.Records {
		var c jobs.Chunk
		if json.Unmarshal([]byte(r.Body), &c) != nil || c.JobID == "" {
			continue // an unreadable chunk: the worker's to report
		}
		j, ok := byID[c.JobID]
		if !ok {
			j = &job{}
			byID[c.JobID] = j
			order = append(order, c.JobID)
		}
		j.requested += len(c.Entries)
		j.chunks++
	}
	var recorded []string
	for _, id := range order {
		if _, err := store.Meta(ctx, id); err == nil {
			continue
		} else if !errors.Is(err, jobs.ErrNoJob) {
			return recorded, err
		}
		if err := store.Create(ctx, id, byID[id].requested, byID[id].chunks, report.Result{}); err != nil {
			return recorded, fmt.Errorf("record job %s: %w", id, err)
		}
		recorded = append(recorded, fmt.Sprintf("job %s (%d chunk(s), %d entries)", id, byID[id].chunks, byID[id].requested))
	}
	return recorded, nil
}

// Finished reports whether a job has reached its final state.
func Finished(m jobs.Meta) bool {
	switch m.State {
	case jobs.StateSucceeded, jobs.StatePartial, jobs.StateFailed:
		return true
	}
	return false
}

// RunJob plays the worker's SQS event source until job jobID has finished
// or ctx ends: it receives the queue's chunk messages (the template's
// WorkerBatchSize at a time), invokes the worker with them under the
// emulator, and deletes those the worker did not hand back. It returns the
// job as it then stands.
func (l *Local) RunJob(ctx context.Context, jobID string) (jobs.Meta, error) {
	if !l.QueueLive() {
		return jobs.Meta{}, errors.New("no jobs queue: start with LocalOptions.Queue")
	}
	store := l.Jobs()
	batch, _ := l.tpl.Parameter("WorkerBatchSize")
	size, _ := strconv.Atoi(batch)
	timeout, _ := l.tpl.Parameter("WorkerTimeout")
	secs, _ := strconv.Atoi(timeout)
	var (
		last    jobs.Meta
		lastErr error
	)
	done := func() bool {
		last, lastErr = store.Meta(ctx, jobID)
		return lastErr == nil && Finished(last) || lastErr != nil && !errors.Is(lastErr, jobs.ErrNoJob)
	}
	src := testinfra.SQSEventSource{
		Client:    sqsClient(l.sqsURL),
		QueueURL:  l.queueURL,
		BatchSize: int32(max(size, 1)),
		Timeout:   time.Duration(max(secs, 1)) * time.Second,
	}
	src.Run(ctx, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		payload, err := json.Marshal(ev)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		answer, err := l.Invoke(ctx, WorkerFunction, payload)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		var resp struct {
			events.SQSEventResponse
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		if err := json.Unmarshal(answer, &resp); err != nil {
			return events.SQSEventResponse{}, fmt.Errorf("worker answer %s: %w", answer, err)
		}
		if resp.ErrorType != "" {
			return events.SQSEventResponse{}, fmt.Errorf("worker: %s: %s", resp.ErrorType, resp.ErrorMessage)
		}
		l.progress(fmt.Sprintf("worker ran %d chunk message(s); handed back %d", len(ev.Records), len(resp.BatchItemFailures)))
		return resp.SQSEventResponse, nil
	}, done)
	done()
	if lastErr != nil {
		return last, lastErr
	}
	if !Finished(last) {
		return last, fmt.Errorf("job %s is still %s: %w", jobID, last.State, ctx.Err())
	}
	return last, nil
}

// Close stops everything StartLocal started. It is safe to call more than
// once.
func (l *Local) Close() error {
	if l == nil {
		return nil // StartLocal failed before it had anything to stop
	}
	var errs []error
	l.mu.Lock()
	for id, r := range l.rie {
		errs = append(errs, r.Close())
		delete(l.rie, id)
	}
	l.mu.Unlock()
	if l.srv != nil {
		errs = append(errs, l.srv.Close())
		l.srv = nil
	}
	if l.db != nil {
		errs = append(errs, l.db.Close())
	}
	if l.moto != nil {
		errs = append(errs, l.moto.Close())
	}
	if l.tempDir {
		errs = append(errs, os.RemoveAll(l.buildDir))
		l.tempDir = false
	}
	return errors.Join(errs...)
}

// FunctionFor is the function an event is meant for: WorkerFunction for an
// SQS event (the jobs queue is the worker's only trigger), AssociateFunction
// for anything else.
func FunctionFor(payload []byte) string {
	var ev struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		}
	}
	if json.Unmarshal(payload, &ev) == nil && len(ev.Records) > 0 && ev.Records[0].EventSource == "aws:sqs" {
		return WorkerFunction
	}
	return AssociateFunction
}

// StatusEvent is the API Gateway REST event of GET /associations/{jobId}
// for job jobID, as the template's RestStatus route delivers it.
func StatusEvent(jobID string) []byte {
	const resource = "/associations/{" + event.JobIDParameter + "}"
	path := "/associations/" + jobID
	b, _ := json.Marshal(events.APIGatewayProxyRequest{
		Resource:       resource,
		Path:           path,
		HTTPMethod:     http.MethodGet,
		Headers:        map[string]string{"Accept": "application/json", "Host": "localhost"},
		PathParameters: map[string]string{event.JobIDParameter: jobID},
		RequestContext: events.APIGatewayProxyRequestContext{
			ResourcePath: resource,
			HTTPMethod:   http.MethodGet,
			Path:         path,
			RequestID:    "local-status-" + jobID,
		},
	})
	return b
}
