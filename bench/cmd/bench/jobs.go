package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/pace"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// jobParams shape the asynchronous-job run: one fan-out request of N nodes
// submitted as a job, run by Workers in-process workers that share the
// account's SSM budget AccountRate (each paced at AccountRate / Workers, as
// config.WorkerCallsPerSecond does), against an emulator whose rate is that
// budget and whose bucket holds Burst tokens.
type jobParams struct {
	N           int     `json:"n"`
	Workers     int     `json:"workers"`
	AccountRate float64 `json:"accountCallsPerSecond"`
	Burst       int     `json:"burst"`
	ChunkSize   int     `json:"chunkSize"`
	// WorkerBatch is the event source's BatchSize: messages per receive and
	// per worker invocation (template.yaml's WorkerBatchSize, default 1).
	WorkerBatch int `json:"workerBatchSize"`
	// WorkerTimeout is the worker invocation's deadline; the queue's
	// visibility timeout is the same (the least Lambda accepts), so a chunk
	// handed back comes round again without stalling the run for long.
	WorkerTimeoutSeconds int `json:"workerTimeoutSeconds"`
	MaxReceives          int `json:"maxReceives"`
}

// JobRecord is the asynchronous-job run: the usual record (wall time from
// the submission to the job's final state, calls, throttles, DynamoDB
// requests of claims and job bookkeeping together, CPU) and what only a job
// has.
type JobRecord struct {
	Record
	Job jobParams `json:"job"`
	// WorkerCallsPerSecond is each worker's pace (config.WorkerCallsPerSecond).
	WorkerCallsPerSecond float64 `json:"workerCallsPerSecond"`
	Chunks               int     `json:"chunks"`
	State                string  `json:"state"`
	// SubmitSeconds: parse and Submit, until the 202 answer.
	SubmitSeconds float64 `json:"submitSeconds"`
	// PlainIdealSeconds is ceil(n/E)/R without the resends of faulted
	// entries; PlainWallRatio the wall time against it.
	PlainIdealCalls   int     `json:"plainIdealCalls"`
	PlainIdealSeconds float64 `json:"plainIdealSeconds"`
	PlainWallRatio    float64 `json:"plainWallRatio"`
	// MaxCallsPerSecond is the most CreateAssociationBatch calls that
	// arrived at the emulator in any 1 s window (throttled ones included).
	MaxCallsPerSecond int `json:"maxCallsInAnySecond"`
	// Receives counts worker invocations; Redelivered the messages
	// received more than once (chunks handed back).
	Receives    int `json:"receives"`
	Redelivered int `json:"redelivered"`
	// WorkerBusySeconds is the time the workers spent in Handle, summed;
	// HandleSeconds that per invocation, against HandleIdealSeconds, the
	// time a chunk's calls take at one worker's pace.
	WorkerBusySeconds  float64 `json:"workerBusySeconds"`
	HandleSeconds      float64 `json:"handleSecondsMean"`
	HandleIdealSeconds float64 `json:"handleIdealSeconds"`
	// ActiveAssociations is what the emulator holds at the end.
	ActiveAssociations int  `json:"activeAssociations"`
	AllSuccessful      bool `json:"allSuccessful"`
	// TimedOut: the job was not final within the run's time limit.
	TimedOut bool `json:"timedOut,omitempty"`
	// AutoRate: the workers ran with CALLS_PER_SECOND=auto and the rate
	// memory in the claim table, shared by the chunks running at once,
	// instead of ACCOUNT_CALLS_PER_SECOND / WORKER_MAX_CONCURRENCY each.
	// RateFound is the memory item's rate at the end (the account's, as the
	// last chunk to leave saw it), MembersLeft the leases it still holds.
	AutoRate    bool    `json:"autoRate,omitempty"`
	RateFound   float64 `json:"rateFound,omitempty"`
	MembersLeft int     `json:"membersLeft,omitempty"`
	// Seconds are the job's calls second by second (auto only).
	Seconds    []secondCounts `json:"seconds,omitempty"`
	claimTable string
}

// workerSettings are one worker's engine settings: BATCH_SIZE = E, the
// account budget split as config.WorkerCallsPerSecond splits it, and enough
// calls in flight to cover the latency at that pace. With auto, the rate is
// found (CALLS_PER_SECOND=auto, up to MAX_CALLS_PER_SECOND for the
// workers together) and the calls in flight cover one worker alone at that
// maximum.
func (b *bench) workerSettings(jp jobParams, auto bool) associate.Settings {
	if auto {
		return b.p.autoSettings(int(math.Ceil(b.p.Auto.Max*(b.p.Latency+b.p.Jitter).Seconds())) + 2)
	}
	rate := config.Config{AccountCallsPerSecond: jp.AccountRate, WorkerMaxConcurrency: jp.Workers, CallsPerSecond: 5}.WorkerCallsPerSecond()
	return associate.Settings{
		BatchSize:      b.p.MaxBatch,
		CallsPerSecond: rate,
		MaxConcurrency: int(math.Ceil(rate*(b.p.Latency+b.p.Jitter).Seconds())) + 2,
		MaxAttempts:    5,
	}
}

// callLog records when CreateAssociationBatch calls arrive at the emulator.
type callLog struct {
	mu sync.Mutex
	on bool
	at []time.Time
}

func (l *callLog) start() {
	l.mu.Lock()
	l.on, l.at = true, l.at[:0]
	l.mu.Unlock()
}

func (l *callLog) add(t time.Time) {
	l.mu.Lock()
	if l.on {
		l.at = append(l.at, t)
	}
	l.mu.Unlock()
}

// write saves the arrivals recorded, as seconds after t0, one per line
// (make bench -trace: where a run lost its call slots).
func (l *callLog) write(path string, t0 time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, at := range l.at {
		fmt.Fprintf(&b, "%.4f\n", at.Sub(t0).Seconds())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// stop ends the recording and returns the most calls in any window of w.
func (l *callLog) stop(w time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on = false
	at := slices.Clone(l.at)
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	best, lo := 0, 0
	for hi := range at {
		for at[hi].Sub(at[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// runJob submits a fan-out request of jp.N nodes as a job and runs it to
// its final state with jp.Workers workers, each playing Lambda's SQS event
// source as internal/jobs' tests do: receive up to WorkerBatch messages,
// invoke Worker.Handle with them as an events.SQSEvent under the worker's
// deadline, delete the messages not reported in BatchItemFailures.
func (b *bench) runJob(ctx context.Context, moto *testinfra.Moto, jp jobParams, auto bool, rec *JobRecord) (func(context.Context) (outcome, error), error) {
	body := fanOutBody(jp.N)
	k := b.tables.Add(1)
	claimTable, jobsTable := fmt.Sprintf("bench-%d", k), fmt.Sprintf("bench-jobs-%d", k)
	rec.claimTable = claimTable
	dcfg := b.cfg.Copy()
	dcfg.BaseEndpoint = aws.String(b.ddb.Endpoint())
	direct := awsclient.DynamoDB(dcfg) // set-up and the bench's own polling: not counted
	for _, def := range []*dynamodb.CreateTableInput{dedupe.TableDefinition(claimTable), jobs.TableDefinition(jobsTable)} {
		if _, err := direct.CreateTable(ctx, def); err != nil {
			return nil, fmt.Errorf("create table: %w", err)
		}
	}
	mcfg := b.cfg.Copy()
	mcfg.BaseEndpoint = aws.String(moto.Endpoint())
	sq := awsclient.SQS(mcfg)
	dlq, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("bench-chunks-dlq-%d", k))})
	if err != nil {
		return nil, fmt.Errorf("create queue: %w", err)
	}
	dlqAttrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return nil, fmt.Errorf("queue attributes: %w", err)
	}
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("bench-chunks-%d", k)), Attributes: map[string]string{
		"VisibilityTimeout": fmt.Sprint(jp.WorkerTimeoutSeconds),
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`,
			dlqAttrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], jp.MaxReceives),
	}})
	if err != nil {
		return nil, fmt.Errorf("create queue: %w", err)
	}
	queueURL := aws.ToString(q.QueueUrl)
	set := b.workerSettings(jp, auto)
	rec.WorkerCallsPerSecond = set.CallsPerSecond
	// A chunk's calls at one worker's share of the account's rate: the
	// static split's pace, or the rate found split W ways.
	share := set.CallsPerSecond
	if auto {
		share = jp.AccountRate / float64(jp.Workers)
	}

	return func(ctx context.Context) (outcome, error) {
		// What the functions write goes through the counting proxy.
		pcfg := b.cfg.Copy()
		pcfg.BaseEndpoint = aws.String(b.dsrv.URL)
		counted := awsclient.DynamoDB(pcfg)
		store := jobs.NewStore(counted, jobsTable, time.Hour)
		t0 := time.Now()
		// AssociateFunction's part: parse, then submit (the 202 answer).
		req, err := request.Parse(body, request.Limits{MaxEntries: jp.N})
		if err != nil {
			return outcome{}, err
		}
		acc, err := jobs.NewSubmitter(sq, queueURL, store, jp.ChunkSize).WithWorkers(jp.Workers).WithBatchSize(set.BatchSize).Submit(ctx, req, event.Caller{Kind: event.Direct})
		if err != nil {
			return outcome{}, fmt.Errorf("submit: %w", err)
		}
		rec.SubmitSeconds = round(time.Since(t0).Seconds(), 3)
		rec.Chunks = acc.Chunks

		// The job's time limit: far beyond the ideal, so only a stuck job
		// meets it; the record then says so instead of failing the bench.
		ideal := time.Duration(float64(b.p.idealCalls(jp.N)) / jp.AccountRate * float64(time.Second))
		wctx, stopWorkers := context.WithTimeout(ctx, max(10*ideal, 5*time.Minute))
		defer stopWorkers()
		var receives, redelivered, busy atomic.Int64
		var wg sync.WaitGroup
		for range jp.Workers {
			engine := associate.New(awsclient.SSM(b.ssmConfig()), dedupe.NewStore(counted, claimTable, 24*time.Hour), set, nil)
			if auto {
				// As internal/wiring: the memory in the dedupe table.
				engine.RememberRate(pace.NewMemory(counted, claimTable))
			}
			w := jobs.NewWorker(engine, store, jobs.NewAnnouncer(awsclient.EventBridge(mcfg), ""), jp.MaxReceives, nil)
			wg.Go(func() {
				eventSource(wctx, sq, queueURL, jp, w.Handle, &receives, &redelivered, &busy)
			})
		}
		// The bench watches the job (uncounted reads) and stops the
		// pollers once it is final.
		watch := jobs.NewStore(direct, jobsTable, time.Hour)
		var m jobs.Meta
		final := false
		end := time.Now()
		for !final {
			select {
			case <-wctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			if m, err = watch.Meta(context.WithoutCancel(ctx), acc.JobID); err == nil {
				final = m.State != jobs.StateQueued && m.State != jobs.StateRunning
			}
			end = time.Now()
			if wctx.Err() != nil {
				break
			}
		}
		stopWorkers()
		wg.Wait()
		if ctx.Err() != nil {
			return outcome{}, ctx.Err()
		}
		// The final state's own timestamp, when it is in the run.
		if u := time.UnixMilli(m.UpdatedAt); final && u.After(t0) && u.Before(end) {
			end = u
		}
		rec.TimedOut = !final
		rec.State = m.State
		rec.Receives = int(receives.Load())
		rec.Redelivered = int(redelivered.Load())
		rec.WorkerBusySeconds = round(time.Duration(busy.Load()).Seconds(), 3)
		if rec.Receives > 0 {
			rec.HandleSeconds = round(rec.WorkerBusySeconds/float64(rec.Receives), 3)
		}
		perInvocation := min(jp.ChunkSize*jp.WorkerBatch, jp.N)
		rec.HandleIdealSeconds = round(float64(params{MaxBatch: b.p.MaxBatch, FaultRate: b.p.FaultRate}.idealCalls(perInvocation))/share, 3)
		return outcome{successful: m.Successful, failed: m.Failed, deduplicated: m.Deduplicated, unprocessed: m.Unprocessed,
			wall: end.Sub(t0), start: t0}, nil
	}, nil
}

// eventSource plays Lambda's SQS event source for one worker, counting
// receives, redeliveries and the time spent in the handler. It runs until
// ctx ends.
func eventSource(ctx context.Context, sq *sqs.Client, queueURL string, jp jobParams,
	handle func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), receives, redelivered, busy *atomic.Int64) {
	testinfra.SQSEventSource{Client: sq, QueueURL: queueURL, BatchSize: int32(jp.WorkerBatch),
		Timeout: time.Duration(jp.WorkerTimeoutSeconds) * time.Second,
		Observe: func(ev events.SQSEvent, took time.Duration) {
			receives.Add(1)
			busy.Add(int64(took))
			for _, m := range ev.Records {
				if m.Attributes["ApproximateReceiveCount"] != "1" {
					redelivered.Add(1)
				}
			}
		}}.Run(ctx, handle, nil)
}

// measureJob runs the job strategy under its own emulator settings (rate =
// the account budget, bucket jp.Burst) and fills its record.
func (b *bench) measureJob(ctx context.Context, moto *testinfra.Moto, p params, jp jobParams, auto bool) (JobRecord, error) {
	tp := p
	tp.Rate, tp.Burst = jp.AccountRate, jp.Burst
	b.setEmulator(tp)
	defer b.setEmulator(p)
	var jr JobRecord
	jr.Job = jp
	jr.AutoRate = auto
	run, err := b.runJob(ctx, moto, jp, auto, &jr)
	if err != nil {
		return jr, err
	}
	set := b.workerSettings(jp, auto)
	desc := fmt.Sprintf("a %s-node fan-out request submitted as a job (chunks of %d), run by %d workers at %g calls/s each (ACCOUNT_CALLS_PER_SECOND=%g / WORKER_MAX_CONCURRENCY=%d)",
		num(jp.N), jp.ChunkSize, jp.Workers, set.CallsPerSecond, jp.AccountRate, jp.Workers)
	settings := map[string]any{"BATCH_SIZE": set.BatchSize, "CALLS_PER_SECOND (each)": set.CallsPerSecond, "MAX_CONCURRENCY": set.MaxConcurrency,
		"MAX_ATTEMPTS": set.MaxAttempts, "CHUNK_SIZE": jp.ChunkSize, "WorkerBatchSize": jp.WorkerBatch, "workers": jp.Workers}
	if auto {
		desc = fmt.Sprintf("a %s-node fan-out request submitted as a job (chunks of %d), run by %d workers with CALLS_PER_SECOND=auto (start %g, max %g together), the rate memory in the claim table shared by the chunks running at once",
			num(jp.N), jp.ChunkSize, jp.Workers, p.Auto.Start, p.Auto.Max)
		settings = autoSettingsMap(set)
		settings["CHUNK_SIZE"], settings["WorkerBatchSize"], settings["workers"] = jp.ChunkSize, jp.WorkerBatch, jp.Workers
	}
	b.calls.start()
	b.events.start()
	rec, err := b.measure(ctx, "job", desc, jp.N, settings, run)
	jr.MaxCallsPerSecond = b.calls.stop(time.Second)
	events := b.events.stop()
	if err != nil {
		return jr, err
	}
	if auto {
		jr.Seconds = perSecond(events, b.runStart, rec.WallSeconds)
		if jr.RateFound, jr.MembersLeft, err = b.rememberedRate(ctx, jr.claimTable); err != nil {
			logf("job: the memory item: %v", err)
		}
		if b.p.trace != "" {
			if terr := writeEvents(filepath.Join(b.p.trace, "job-auto.txt"), events, b.runStart); terr != nil {
				logf("trace: %v", terr)
			}
		}
		logf("job (auto): rate found %.1f, %d memory writes for %d chunks; answered(+throttled) per second: %s",
			jr.RateFound, rec.RateMemoryWrites, jr.Chunks, AutoRun{Seconds: jr.Seconds}.SecondsText())
	}
	rec.Burst = jp.Burst
	jr.Record = rec
	jr.PlainIdealCalls = (jp.N + p.MaxBatch - 1) / p.MaxBatch
	jr.PlainIdealSeconds = round(float64(jr.PlainIdealCalls)/jp.AccountRate, 3)
	jr.PlainWallRatio = round(jr.WallSeconds/jr.PlainIdealSeconds, 3)
	jr.ActiveAssociations = b.emu.Stats().ActiveAssociations
	jr.AllSuccessful = jr.State == jobs.StateSucceeded && jr.Successful == jp.N && jr.ActiveAssociations == jp.N &&
		jr.Failed == 0 && jr.Deduplicated == 0 && jr.Unprocessed == 0
	if jr.TimedOut {
		return jr, errors.New("job not final within the run's time limit")
	}
	return jr, nil
}
