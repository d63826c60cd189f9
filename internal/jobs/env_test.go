package jobs_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

var (
	ddb  *testinfra.DynamoDB
	moto *testinfra.Moto
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(func() int {
		if testing.Short() || testinfra.CheckTools(testinfra.ToolDynamoDBLocal, testinfra.ToolMoto) != nil {
			return m.Run() // the tests fail through RequireTools and say what is missing
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var err error
		if ddb, err = testinfra.StartDynamoDBLocal(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "DynamoDB Local:", err)
			return 1
		}
		defer ddb.Close()
		if moto, err = testinfra.StartMoto(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "moto:", err)
			return 1
		}
		defer moto.Close()
		return m.Run()
	}())
}

var seq atomic.Int64

// env is one test's services: tables in DynamoDB Local, a queue with a
// dead-letter queue and a bus in moto (with a rule that copies completion
// events to a queue the test reads), and an SSM emulator.
type env struct {
	t            *testing.T
	emu          *ssmlocal.Server
	ssmURL       string
	cfg          aws.Config // local credentials and Region, no endpoint
	ddbClient    *dynamodb.Client
	sqs          *sqs.Client
	dedupeTable  string
	jobsTable    string
	queueURL     string
	dlqURL       string
	bus          string
	completedURL string
	store        *jobs.Store
	// direct reads the job table without the fault proxy, for the tests'
	// own checks.
	direct      *jobs.Store
	maxReceives int
}

func newEnv(t *testing.T, opts ssmlocal.Options, maxReceives int, visibility time.Duration) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: DynamoDB Local, moto and the SSM emulator")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal, testinfra.ToolMoto)
	ctx := context.Background()
	n := seq.Add(1)
	e := &env{t: t, maxReceives: maxReceives,
		cfg:         aws.Config{Region: testinfra.LocalRegion, Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")},
		dedupeTable: fmt.Sprintf("claims-%d", n), jobsTable: fmt.Sprintf("jobs-%d", n), bus: fmt.Sprintf("bus-%d", n)}
	dcfg := e.cfg.Copy()
	dcfg.BaseEndpoint = aws.String(ddb.Endpoint())
	e.ddbClient = awsclient.DynamoDB(dcfg)
	for _, def := range []*dynamodb.CreateTableInput{dedupe.TableDefinition(e.dedupeTable), jobs.TableDefinition(e.jobsTable)} {
		if _, err := e.ddbClient.CreateTable(ctx, def); err != nil {
			t.Fatal(err)
		}
	}
	e.store = jobs.NewStore(e.ddbClient, e.jobsTable, time.Hour)
	e.direct = e.store

	mcfg := e.cfg.Copy()
	mcfg.BaseEndpoint = aws.String(moto.Endpoint())
	e.sqs = awsclient.SQS(mcfg)
	dlq := e.createQueue(fmt.Sprintf("chunks-dlq-%d", n), nil)
	e.dlqURL = dlq
	dlqArn := e.queueArn(dlq)
	e.queueURL = e.createQueue(fmt.Sprintf("chunks-%d", n), map[string]string{
		"VisibilityTimeout": fmt.Sprint(int(visibility.Seconds())),
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, dlqArn, maxReceives),
	})
	e.completedURL = e.createQueue(fmt.Sprintf("completed-%d", n), nil)
	eb := awsclient.EventBridge(mcfg)
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(e.bus)}); err != nil {
		t.Fatal(err)
	}
	rule := fmt.Sprintf("completed-%d", n)
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(e.bus),
		EventPattern: aws.String(`{"source":["ssm-association-batcher"],"detail-type":["Association Job Completed"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(e.bus),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(e.queueArn(e.completedURL))}}}); err != nil {
		t.Fatal(err)
	}

	e.emu = ssmlocal.New(opts)
	srv := httptest.NewServer(e.emu)
	t.Cleanup(srv.Close)
	e.ssmURL = srv.URL
	return e
}

func (e *env) createQueue(name string, attrs map[string]string) string {
	out, err := e.sqs.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

func (e *env) queueArn(url string) string {
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
}

func (e *env) submitter(chunkSize int) *jobs.Submitter {
	return jobs.NewSubmitter(e.sqs, e.queueURL, e.store, chunkSize)
}

// worker builds a worker as functions/worker does, against local services.
func (e *env) worker(set associate.Settings) *jobs.Worker { return e.workerOn(e.engine(set)) }

// engine is the worker's engine.
func (e *env) engine(set associate.Settings) *associate.Engine {
	scfg := e.cfg.Copy()
	scfg.BaseEndpoint = aws.String(e.ssmURL)
	return associate.New(awsclient.SSM(scfg), dedupe.NewStore(e.ddbClient, e.dedupeTable, time.Hour), set, nil)
}

// workerOn builds a worker running engine.
func (e *env) workerOn(engine interface {
	Run(context.Context, associate.Job) (report.Result, error)
}) *jobs.Worker {
	mcfg := e.cfg.Copy()
	mcfg.BaseEndpoint = aws.String(moto.Endpoint())
	return jobs.NewWorker(engine, e.store, jobs.NewAnnouncer(awsclient.EventBridge(mcfg), e.bus), e.maxReceives, nil)
}

// runWorkers polls with n workers until the job is finished.
func (e *env) runWorkers(ctx context.Context, jobID string, n int, set associate.Settings) jobs.Meta {
	return e.runWorkersOf(ctx, jobID, n, func() *jobs.Worker { return e.worker(set) })
}

// runWorkersOf polls with n workers from newWorker until the job is
// finished.
func (e *env) runWorkersOf(ctx context.Context, jobID string, n int, newWorker func() *jobs.Worker) jobs.Meta {
	var wg sync.WaitGroup
	finished := func() bool {
		m, err := e.store.Meta(context.Background(), jobID)
		return err == nil && m.State != jobs.StateQueued && m.State != jobs.StateRunning
	}
	for range n {
		w := newWorker()
		src := testinfra.SQSEventSource{Client: e.sqs, QueueURL: e.queueURL, Timeout: 60 * time.Second}
		wg.Go(func() { src.Run(ctx, w.Handle, finished) })
	}
	wg.Wait()
	m, err := e.store.Meta(context.Background(), jobID)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// completions returns the completion events delivered to the test's queue.
func (e *env) completions() []jobs.Meta {
	var out []jobs.Meta
	for range 3 {
		r, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.completedURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, m := range r.Messages {
			var ev struct {
				DetailType string    `json:"detail-type"`
				Detail     jobs.Meta `json:"detail"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
				e.t.Fatalf("completion event %s: %v", aws.ToString(m.Body), err)
			}
			out = append(out, ev.Detail)
		}
		if len(out) > 0 {
			break
		}
	}
	return out
}
