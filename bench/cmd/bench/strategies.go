package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/pace"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

const document = "AWS-UpdateSSMAgent"

func nodeID(i int) string { return fmt.Sprintf("i-%017x", i) }

// bench holds the services every run uses: one SSM emulator (Reset before
// each run) behind httptest, and DynamoDB Local behind a counting proxy.
type bench struct {
	p     params
	emu   *ssmlocal.Server
	ssm   *httptest.Server
	ddb   *testinfra.DynamoDB
	proxy *countingProxy
	dsrv  *httptest.Server
	cfg   aws.Config
	jvm   func() time.Duration
	// firstBatch is when the first CreateAssociationBatch call of the
	// current run arrived (unix ns; 0: none yet).
	firstBatch atomic.Int64
	tables     atomic.Int64
	// listings counts the ListAssociations calls of the current run that
	// start a listing (no NextToken): one per read-back of a document.
	listings atomic.Int64
	// firstRead and lastRead are when the first and the last
	// ListAssociations or DescribeAssociation call of the current run
	// arrived (unix ns; 0: none yet).
	firstRead, lastRead atomic.Int64
	// lastCreate is when the latest CreateAssociationBatch call arrived;
	// readWait the time from it to the first read (unix ns, ns).
	lastCreate, readWait atomic.Int64
	// calls records the arrival of CreateAssociationBatch calls while on;
	// events every such call with its answer (the auto runs).
	calls  callLog
	events eventLog
	// runStart is when the latest measured run started; lastTable the
	// dedupe table of the latest engine run prepared.
	runStart  time.Time
	lastTable string
}

func newBench(ctx context.Context, p params) (*bench, error) {
	b := &bench{}
	b.setEmulator(p)
	b.ssm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var arrived time.Time // a CreateAssociationBatch call's arrival
		switch target := r.Header.Get("X-Amz-Target"); {
		case strings.HasSuffix(target, ".CreateAssociationBatch"):
			now := time.Now()
			arrived = now
			b.firstBatch.CompareAndSwap(0, now.UnixNano())
			b.lastCreate.Store(now.UnixNano())
			b.calls.add(now)
		case strings.HasSuffix(target, ".DescribeAssociation"):
			b.noteRead()
		case strings.HasSuffix(target, ".ListAssociations"):
			b.noteRead()
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var in struct{ NextToken *string }
			if json.Unmarshal(body, &in) == nil && in.NextToken == nil {
				b.listings.Add(1)
			}
		}
		b.emu.ServeHTTP(w, r)
		if !arrived.IsZero() {
			b.events.add(callEvent{arrive: arrived, done: time.Now(), throttled: w.Header().Get("X-Amzn-ErrorType") == "ThrottlingException"})
		}
	}))
	var err error
	if b.ddb, err = testinfra.StartDynamoDBLocal(ctx); err != nil {
		b.ssm.Close()
		return nil, fmt.Errorf("DynamoDB Local: %w", err)
	}
	b.jvm = jvmCPU(b.ddb.Port())
	if b.proxy, err = newCountingProxy(b.ddb.Endpoint()); err != nil {
		b.close()
		return nil, err
	}
	b.dsrv = httptest.NewServer(b.proxy)
	b.cfg = aws.Config{
		Region:      testinfra.LocalRegion,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	return b, nil
}

// noteRead records the arrival of a read.
func (b *bench) noteRead() {
	now := time.Now().UnixNano()
	if b.firstRead.CompareAndSwap(0, now) {
		if lc := b.lastCreate.Load(); lc != 0 {
			b.readWait.Store(now - lc)
		}
	}
	b.lastRead.Store(now)
}

// setEmulator replaces the SSM emulator behind the server with one
// configured by p; call it only between runs.
func (b *bench) setEmulator(p params) {
	b.p = p
	b.emu = ssmlocal.New(ssmlocal.Options{
		MaxBatch:             p.MaxBatch,
		Rate:                 p.Rate,
		Burst:                p.Burst,
		Latency:              p.Latency,
		Jitter:               p.Jitter,
		EntryFaultRate:       p.FaultRate,
		LostAnswerRate:       p.lostAnswerRate,
		ErrorAfterCreateRate: p.errorAfterCreateRate,
		Seed:                 p.Seed,
		RateSchedule:         p.rateSchedule,
	})
}

func (b *bench) close() {
	if b.dsrv != nil {
		b.dsrv.Close()
	}
	b.ssm.Close()
	if b.ddb != nil {
		b.ddb.Close()
	}
}

func (b *bench) ssmConfig() aws.Config {
	c := b.cfg.Copy()
	c.BaseEndpoint = aws.String(b.ssm.URL)
	return c
}

// outcome is what a strategy reports besides what the services counted.
type outcome struct {
	successful, failed, deduplicated, unprocessed int
	retries, throttles                            int
	reads                                         int // Summary.Reads
	measured                                      int // entries actually run (< n when extrapolated)
	start                                         time.Time
	// wall, when set, is the strategy's own measure of its time (the job's:
	// from the submission to its final state, without stopping the pollers).
	wall time.Duration
}

// measure runs one strategy on a fresh emulator and collects every number.
func (b *bench) measure(ctx context.Context, strategy, desc string, n int, settings map[string]any, run func(context.Context) (outcome, error)) (Record, error) {
	load := loadAverage()
	b.emu.Reset()
	b.firstBatch.Store(0)
	b.listings.Store(0)
	b.firstRead.Store(0)
	b.lastRead.Store(0)
	b.lastCreate.Store(0)
	b.readWait.Store(0)
	runtime.GC()
	resetPeakRSS()
	hs := startHeapSampler()
	var jvm0 time.Duration
	if b.jvm != nil {
		jvm0 = b.jvm()
	}
	d0 := b.proxy.snapshot()
	cpu0 := processCPU()
	t0 := time.Now()
	b.runStart = t0
	tracing := b.p.trace != "" && strategy != "job" // the job keeps its own call log
	if tracing {
		b.calls.start()
	}
	out, err := run(ctx)
	wall := time.Since(t0)
	if tracing {
		b.calls.stop(time.Second)
		if terr := b.calls.write(filepath.Join(b.p.trace, fmt.Sprintf("%s-%d.txt", strategy, n)), t0); terr != nil {
			logf("trace: %v", terr)
		}
	}
	if out.wall > 0 {
		wall = out.wall
	}
	cpu := processCPU().sub(cpu0)
	dAll := diffCounts(b.proxy.snapshot(), d0)
	d := requestsOnly(dAll)
	var jvm time.Duration
	if b.jvm != nil {
		jvm = b.jvm() - jvm0
	}
	heap := hs.Stop()
	rss := peakRSS()
	st := b.emu.Stats()
	if err != nil {
		return Record{}, fmt.Errorf("%s n=%d: %w", strategy, n, err)
	}
	if out.measured == 0 {
		out.measured = n
	}
	scale := float64(n) / float64(out.measured)
	sc := func(v int) int { return int(math.Round(float64(v) * scale)) }

	rec := Record{
		Strategy:    strategy,
		Description: desc,
		N:           n,
		Settings:    settings,

		MeasuredEntries:     out.measured,
		Extrapolated:        out.measured < n,
		MeasuredWallSeconds: round(wall.Seconds(), 3),
		WallSeconds:         round(wall.Seconds()*scale, 3),

		SSMCalls:            sc(st.Calls),
		ThrottledCalls:      sc(st.ThrottledCalls),
		EntriesSent:         sc(st.EntriesReceived),
		FaultedEntries:      sc(st.EntriesFailedByInjection),
		ResentAfterSuccess:  sc(st.DuplicatesRefused),
		AssociationsCreated: sc(st.AssociationsCreated),
		CreateCalls:         sc(st.Operations["CreateAssociationBatch"]),
		ReadCalls:           sc(st.Operations["ListAssociations"] + st.Operations["DescribeAssociation"]),
		Listings:            sc(int(b.listings.Load())),
		ListPages:           sc(st.Operations["ListAssociations"]),
		SSMReads:            sc(out.reads),
		LostAnswers:         sc(st.DroppedConnections + st.ErrorsAfterCreate),
		DroppedConnections:  sc(st.DroppedConnections),
		ErrorsAfterCreate:   sc(st.ErrorsAfterCreate),
		DoubleAssociations:  sc(st.DoubleAssociations),
		ActiveAssociations:  sc(st.ActiveAssociations),
		Successful:          sc(out.successful),
		Failed:              sc(out.failed),
		Deduplicated:        sc(out.deduplicated),
		Unprocessed:         sc(out.unprocessed),

		DynamoDBRequests: d,

		CPUSeconds:              round(cpu.total().Seconds()*scale, 3),
		CPUUserSeconds:          round(cpu.user.Seconds()*scale, 3),
		CPUSysSeconds:           round(cpu.sys.Seconds()*scale, 3),
		DynamoDBLocalCPUSeconds: round(jvm.Seconds()*scale, 3),
		PeakRSSMiB:              mb(rss),
		PeakHeapMiB:             mb(int64(heap)),
		LoadAverage:             load,
	}
	if fb := b.firstBatch.Load(); fb != 0 && (strings.HasPrefix(strategy, "engine") || strategy == "job") {
		rec.FirstCallAfterSeconds = round(time.Unix(0, fb).Sub(t0).Seconds(), 3)
		rec.LastCallAfterSeconds = round(time.Unix(0, b.lastCreate.Load()).Sub(t0).Seconds(), 3)
	}
	rec.DynamoDBWriteRequests, rec.DynamoDBWriteUnits = writeCost(dAll)
	if n > 0 {
		rec.WriteUnitsPerEntry = round(float64(rec.DynamoDBWriteUnits)/float64(n), 3)
	}
	if fr := b.firstRead.Load(); fr != 0 {
		rec.ReadSpanSeconds = round(time.Duration(b.lastRead.Load()-fr).Seconds(), 3)
		rec.ReadWaitSeconds = round(time.Duration(b.readWait.Load()).Seconds(), 3)
	}
	rec.OwnerWriteRequests = ownerWrites(dAll)
	rec.RateMemoryWrites = dAll[paceMark+"UpdateItem"]
	rec.OwnerStarts = dAll[ownerMark+"PutItem"]
	if rec.Successful > 0 {
		rec.WriteRequestsPerNewEntry = round(float64(rec.DynamoDBWriteRequests)/float64(rec.Successful), 3)
		rec.EntryWriteRequestsPerNewEntry = round(float64(rec.DynamoDBWriteRequests-rec.OwnerWriteRequests)/float64(rec.Successful), 3)
	}
	b.p.fillIdeal(&rec)
	return rec, nil
}

// fanOutBody is the request a user sends the function for n nodes.
func fanOutBody(n int) []byte {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = nodeID(i)
	}
	b, _ := json.Marshal(map[string]any{
		"Association": map[string]any{"Name": document},
		"InstanceIds": ids,
	})
	return b
}

// runEngine is strategy (a): the function's engine, as functions/associate
// wires it (awsclient clients, dedupe.Store on a fresh table), in process.
func (b *bench) runEngine(set associate.Settings) func(context.Context, int) func(context.Context) (outcome, error) {
	return b.runEngineWith(set, false)
}

// runEngineWith runs the engine with its claims in memory instead of in
// dedupe.Store when inMemory is set: a diagnostic that takes DynamoDB Local
// out of the run.
func (b *bench) runEngineWith(set associate.Settings, inMemory bool) func(context.Context, int) func(context.Context) (outcome, error) {
	return b.runEngineOpts(set, engineOpts{inMemory: inMemory})
}

// engineOpts are the ways an engine run differs from the function's.
type engineOpts struct {
	// inMemory keeps the claims in a map instead of the dedupe table.
	inMemory bool
	// rateMemory remembers the rate found (AutoRate) in the dedupe table,
	// as internal/wiring does with CALLS_PER_SECOND=auto.
	rateMemory bool
}

func (b *bench) runEngineOpts(set associate.Settings, o engineOpts) func(context.Context, int) func(context.Context) (outcome, error) {
	return func(ctx context.Context, n int) func(context.Context) (outcome, error) {
		body := fanOutBody(n)
		// A fresh table per run, created before the measurement starts.
		dcfg := b.cfg.Copy()
		dcfg.BaseEndpoint = aws.String(b.ddb.Endpoint())
		table := fmt.Sprintf("bench-%d", b.tables.Add(1))
		b.lastTable = table
		_, createErr := awsclient.DynamoDB(dcfg).CreateTable(ctx, dedupe.TableDefinition(table))
		return func(ctx context.Context) (outcome, error) {
			if createErr != nil {
				return outcome{}, fmt.Errorf("create table: %w", createErr)
			}
			// The engine's DynamoDB requests go through the counting proxy.
			dcfg := b.cfg.Copy()
			dcfg.BaseEndpoint = aws.String(b.dsrv.URL)
			dclient := awsclient.DynamoDB(dcfg)
			start := time.Now()
			req, err := request.Parse(body, request.Limits{MaxEntries: n})
			if err != nil {
				return outcome{}, err
			}
			var eng *associate.Engine
			if o.inMemory {
				eng = associate.New(awsclient.SSM(b.ssmConfig()), newMemoryClaims(), set, nil)
			} else {
				eng = associate.New(awsclient.SSM(b.ssmConfig()), dedupe.NewStore(dclient, table, 24*time.Hour), set, nil)
			}
			if o.rateMemory {
				eng.RememberRate(pace.NewMemory(dclient, table))
			}
			res, err := eng.Run(ctx, associate.Job{
				Request:    req,
				Owner:      fmt.Sprintf("bench-%s-%d", table, rand.Int64()),
				Deadline:   start.Add(40 * time.Minute),
				LeaseUntil: start.Add(45 * time.Minute),
			})
			if err != nil {
				return outcome{}, err
			}
			s := res.Summary
			return outcome{successful: s.Successful, failed: s.Failed, deduplicated: s.Deduplicated,
				unprocessed: s.Unprocessed, retries: s.Retries, throttles: s.Throttles, reads: s.Reads}, nil
		}
	}
}

func entryFor(i int) ssmtypes.CreateAssociationBatchRequestEntry {
	return ssmtypes.CreateAssociationBatchRequestEntry{
		Name:    aws.String(document),
		Targets: []ssmtypes.Target{{Key: aws.String(request.InstanceIDsKey), Values: []string{nodeID(i)}}},
	}
}

// runScript is strategy (b): what a user scripting the AWS CLI does. One
// call at a time with chunks of E entries, no dedupe; when a call fails, or
// any entry of it comes back in Failed with a fault other than Client, the
// whole chunk is sent again (up to 5 times, 1 s after a call error). The
// client is the real ssm.Client with the SDK's standard retryer (3 attempts,
// as AWS CLI v2's default "standard" mode); each CLI process starts with a
// full retry quota, so the quota is off. The AWS CLI's own process start
// (hundreds of ms per call) is not modelled: this script is a best case.
func (b *bench) runScript(_ context.Context, n int) func(context.Context) (outcome, error) {
	return func(ctx context.Context) (outcome, error) {
		client := ssm.NewFromConfig(b.ssmConfig(), func(o *ssm.Options) {
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.RateLimiter = ratelimit.None })
		})
		var out outcome
		for lo := 0; lo < n; lo += b.p.MaxBatch {
			hi := min(lo+b.p.MaxBatch, n)
			chunk := make([]ssmtypes.CreateAssociationBatchRequestEntry, 0, hi-lo)
			for i := lo; i < hi; i++ {
				chunk = append(chunk, entryFor(i))
			}
			for attempt := 1; attempt <= 5; attempt++ {
				if attempt > 1 {
					out.retries++
				}
				res, err := client.CreateAssociationBatch(ctx, &ssm.CreateAssociationBatchInput{Entries: chunk})
				if err != nil {
					if ctx.Err() != nil {
						return out, ctx.Err()
					}
					time.Sleep(time.Second)
					continue
				}
				again := false
				for _, f := range res.Failed {
					if f.Fault != ssmtypes.FaultClient {
						again = true
					}
				}
				if !again {
					break
				}
			}
		}
		st := b.emu.Stats()
		out.successful = st.ActiveAssociations
		out.failed = n - st.ActiveAssociations
		return out, nil
	}
}

// runPerNode is strategy (c): one CreateAssociation per node, as a
// Terraform aws_ssm_association resource per node does, with Terraform's
// default -parallelism of 10 workers. The SDK retryer gets 25 attempts (the
// AWS provider's max_retries default) and no retry quota; a node still
// failing is tried again up to 3 times. Terraform also reads every
// resource back after creating it (DescribeAssociation), which is not
// modelled: real Terraform makes about twice these calls.
//
// At more than limit nodes only the first limit are run and the counts are
// scaled to n (the strategy is bound by the call rate, so its time is
// linear in n); the record says so.
func (b *bench) runPerNode(workers, limit int) func(context.Context, int) func(context.Context) (outcome, error) {
	return func(_ context.Context, n int) func(context.Context) (outcome, error) {
		m := n
		if limit > 0 && m > limit {
			m = limit
		}
		return func(ctx context.Context) (outcome, error) {
			client := ssm.NewFromConfig(b.ssmConfig(), func(o *ssm.Options) {
				o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
					so.MaxAttempts = 25
					so.RateLimiter = ratelimit.None
				})
			})
			var (
				next      atomic.Int64
				wg        sync.WaitGroup
				ok, fails atomic.Int64
				firstErr  error
				errOnce   sync.Once
			)
			for range workers {
				wg.Go(func() {
					for i := int(next.Add(1) - 1); i < m; i = int(next.Add(1) - 1) {
						e := entryFor(i)
						var err error
						for range 3 {
							_, err = client.CreateAssociation(ctx, &ssm.CreateAssociationInput{Name: e.Name, Targets: e.Targets})
							var exists *ssmtypes.AssociationAlreadyExists
							if err == nil || errors.As(err, &exists) {
								err = nil
								break
							}
							if ctx.Err() != nil {
								break
							}
						}
						if err != nil {
							fails.Add(1)
							errOnce.Do(func() { firstErr = err })
							continue
						}
						ok.Add(1)
					}
				})
			}
			wg.Wait()
			if ctx.Err() != nil {
				return outcome{}, ctx.Err()
			}
			_ = firstErr
			return outcome{successful: int(ok.Load()), failed: int(fails.Load()), measured: m}, nil
		}
	}
}
