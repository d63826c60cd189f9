// Command bench measures how close the function's engine comes to the bound
// SSM sets on CreateAssociationBatch (ceil(n/E) calls at R calls per second),
// side by side with what a user would otherwise do, and what it costs in
// DynamoDB, CPU and memory; plus the cost of decoding and planning 100,000
// entries, the cold start of the real bootstrap under the Lambda Runtime
// Interface Emulator, and the Lambda binary's size.
//
// It starts the SSM emulator in process (internal/ssmlocal, with call rate R,
// burst, latency L, batch limit E and a per-entry fault rate) and DynamoDB
// Local (behind a proxy that counts requests), then for every size n runs,
// interleaved, (a) the engine with its shipped defaults (at the smallest n
// only: at 5 calls per second the larger sizes would take hours) and with
// settings tuned to the emulator, (b) a sequential chunked loop as an AWS CLI
// script does, and (c) one CreateAssociation per node as Terraform does.
//
// Outputs: bench/results.json, bench/wall-time.png and BENCHMARKS.md
// (with -quick: n = 1,000 only, printed, and the git-ignored bench/out/quick/results.json).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// params are the emulator's limits and the run's shape.
type params struct {
	Rate      float64       `json:"rateCallsPerSecond"`
	Burst     int           `json:"burst"`
	Latency   time.Duration `json:"-"`
	Jitter    time.Duration `json:"-"`
	LatencyMs float64       `json:"latencyMs"`
	JitterMs  float64       `json:"jitterMs"`
	MaxBatch  int           `json:"maxBatchE"`
	FaultRate float64       `json:"entryFaultRate"`
	Seed      int64         `json:"seed"`
	Sizes     []int         `json:"sizes"`
	// PerNodeLimit: the per-node strategy runs at most this many nodes and
	// is scaled to n beyond it (0: always all).
	PerNodeLimit   int  `json:"perNodeLimit"`
	PerNodeWorkers int  `json:"perNodeWorkers"`
	Quick          bool `json:"quick"`
	// TargetRate: the engine target (n = 10,000, 3 % faults) is also
	// checked at this lower R, where DynamoDB claims weigh less (0: not).
	TargetRate float64 `json:"targetRate"`
	TargetN    int     `json:"targetN"`
	// TargetBursts are the emulator's bucket sizes of the target checks.
	TargetBursts []int `json:"targetBursts"`
	// Job is the asynchronous-job run (Job.N 0: none).
	Job jobParams `json:"job"`
	// Reconcile are the runs with and without lost answers (N 0: none).
	Reconcile reconcileParams `json:"reconcile"`
	// Auto are the runs with CALLS_PER_SECOND=auto (no rates: none).
	Auto autoParams `json:"auto"`
	// ClaimCostN is the keys of the DynamoDB write comparison.
	ClaimCostN int `json:"claimCostN"`
	// WarmUp is the size of the unrecorded engine run made first;
	// JobWarmUp the nodes of the unrecorded job run before the job rows.
	WarmUp    int `json:"warmUp"`
	JobWarmUp int `json:"jobWarmUp"`
	// Only, when set, limits the strategies run.
	Only    []string `json:"only,omitempty"`
	profile *os.File
	trace   string // folder for the runs' call arrival times; "": none
	// lostAnswerRate and errorAfterCreateRate are the emulator's answers
	// lost after executing (ssmlocal LostAnswerRate, ErrorAfterCreateRate);
	// only the read-back runs set them.
	lostAnswerRate, errorAfterCreateRate float64
	// rateSchedule changes the emulator's rate during a run (the auto
	// runs' halving).
	rateSchedule []ssmlocal.ScheduledRate
}

// idealCalls is the fewest CreateAssociationBatch calls n entries need:
// ceil(n/E), plus the calls that resend the entries the emulator is
// expected to fail (a share p of them, then p of those, …).
func (p params) idealCalls(n int) int {
	calls := 0
	for exp := float64(n); exp >= 0.5; exp *= p.FaultRate {
		calls += int(math.Ceil(exp / float64(p.MaxBatch)))
		if p.FaultRate <= 0 {
			break
		}
	}
	return calls
}

func (p params) fillIdeal(r *Record) {
	r.RateCallsPerSecond = p.Rate
	r.Burst = p.Burst
	r.IdealCalls = p.idealCalls(r.N)
	r.IdealSeconds = round(float64(r.IdealCalls)/p.Rate, 3)
	r.WallRatio = round(r.WallSeconds/r.IdealSeconds, 3)
	r.CallsRatio = round(float64(r.SSMCalls)/float64(r.IdealCalls), 3)
	if r.FirstCallAfterSeconds > 0 {
		r.DispatchSeconds = round(r.WallSeconds-r.FirstCallAfterSeconds, 3)
		r.DispatchRatio = round(r.DispatchSeconds/r.IdealSeconds, 3)
	}
}

// tuned are the engine settings matched to the emulator: batches of E, R
// calls per second, and enough calls in flight to cover the latency.
func (p params) tuned() associate.Settings {
	return associate.Settings{
		BatchSize:      p.MaxBatch,
		CallsPerSecond: p.Rate,
		MaxConcurrency: int(math.Ceil(p.Rate*(p.Latency+p.Jitter).Seconds())) + 2,
		MaxAttempts:    5,
	}
}

// shipped are the function's defaults (internal/config).
var shipped = associate.Settings{BatchSize: 10, MaxConcurrency: 4, CallsPerSecond: 5, MaxAttempts: 5}

func settingsMap(s associate.Settings) map[string]any {
	return map[string]any{"BATCH_SIZE": s.BatchSize, "MAX_CONCURRENCY": s.MaxConcurrency,
		"CALLS_PER_SECOND": s.CallsPerSecond, "MAX_ATTEMPTS": s.MaxAttempts, "ClaimConcurrency": 16}
}

// Record is one strategy at one size.
type Record struct {
	Strategy    string         `json:"strategy"`
	Description string         `json:"description"`
	N           int            `json:"n"`
	Settings    map[string]any `json:"settings,omitempty"`

	// Extrapolated: only MeasuredEntries of the N were run, and the counts
	// and times below are scaled by N/MeasuredEntries.
	MeasuredEntries     int     `json:"measuredEntries"`
	Extrapolated        bool    `json:"extrapolated"`
	MeasuredWallSeconds float64 `json:"measuredWallSeconds"`

	WallSeconds  float64 `json:"wallSeconds"`
	IdealSeconds float64 `json:"idealSeconds"`
	WallRatio    float64 `json:"wallRatio"`
	// FirstCallAfterSeconds: from the start of the run to the first
	// CreateAssociationBatch call (the engine claims every key first);
	// DispatchSeconds the rest, DispatchRatio that rest against the ideal.
	FirstCallAfterSeconds float64 `json:"firstCallAfterSeconds,omitempty"`
	// LastCallAfterSeconds: from the start of the run to the arrival of the
	// last CreateAssociationBatch call; the wall time after it is that
	// call's answer and the run's end (bookkeeping, the owner record).
	LastCallAfterSeconds float64 `json:"lastCallAfterSeconds,omitempty"`
	DispatchSeconds      float64 `json:"dispatchSeconds,omitempty"`
	DispatchRatio        float64 `json:"dispatchRatio,omitempty"`
	// RateCallsPerSecond is the emulator's R for this record (the target
	// check runs at a lower one than the rest).
	RateCallsPerSecond float64 `json:"rateCallsPerSecond"`
	Burst              int     `json:"burst"`

	SSMCalls            int     `json:"ssmCalls"`
	IdealCalls          int     `json:"idealCalls"`
	CallsRatio          float64 `json:"callsRatio"`
	ThrottledCalls      int     `json:"throttledCalls"`
	EntriesSent         int     `json:"entriesSent"`
	FaultedEntries      int     `json:"faultedEntries"`
	ResentAfterSuccess  int     `json:"resentAfterSuccess"`
	AssociationsCreated int     `json:"associationsCreated"`
	Successful          int     `json:"successful"`
	Failed              int     `json:"failed"`
	Deduplicated        int     `json:"deduplicated"`
	Unprocessed         int     `json:"unprocessed"`

	// CreateCalls are the CreateAssociationBatch calls among SSMCalls,
	// ReadCalls the ListAssociations and DescribeAssociation calls, Listings
	// the ListAssociations calls that start a listing (no NextToken), each a
	// read-back round. SSMReads is the engine's own count (Summary.Reads).
	CreateCalls int `json:"createCalls"`
	ReadCalls   int `json:"readCalls"`
	Listings    int `json:"listings"`
	ListPages   int `json:"listPages"`
	SSMReads    int `json:"ssmReads"`
	// ReadSpanSeconds is from the arrival of the first read to the last's.
	ReadSpanSeconds float64 `json:"readSpanSeconds,omitempty"`
	// ReadWaitSeconds is from the arrival of the last CreateAssociationBatch
	// call before the first read to that read: the call's own answer, the
	// round's end, then max(backoff, RECONCILE_DELAY's rest).
	ReadWaitSeconds float64 `json:"readWaitSeconds,omitempty"`
	// LostAnswers are the calls the emulator executed and then answered
	// with a closed connection (DroppedConnections) or HTTP 500
	// (ErrorsAfterCreate).
	LostAnswers        int `json:"lostAnswers"`
	DroppedConnections int `json:"droppedConnections"`
	ErrorsAfterCreate  int `json:"errorsAfterCreate"`
	// DoubleAssociations are associations created for what one already
	// covered (a Targets-form entry sent again after SSM created it).
	DoubleAssociations int `json:"doubleAssociations"`
	ActiveAssociations int `json:"activeAssociations"`

	DynamoDBRequests         map[string]int `json:"dynamoDBRequests"`
	DynamoDBWriteRequests    int            `json:"dynamoDBWriteRequests"`
	DynamoDBWriteUnits       int            `json:"dynamoDBWriteUnits"`
	WriteUnitsPerEntry       float64        `json:"writeUnitsPerEntry"`
	WriteRequestsPerNewEntry float64        `json:"writeRequestsPerNewEntry"`
	// OwnerWriteRequests are the owner-record writes among the write
	// requests (StartOwner's PutItem, RenewOwner's UpdateItem; 1 WCU each),
	// OwnerStarts the invocations that wrote one (one StartOwner each).
	// EntryWriteRequestsPerNewEntry is WriteRequestsPerNewEntry without them.
	OwnerWriteRequests            int     `json:"ownerWriteRequests"`
	OwnerStarts                   int     `json:"ownerStarts"`
	EntryWriteRequestsPerNewEntry float64 `json:"entryWriteRequestsPerNewEntry"`
	// RateMemoryWrites are the writes of the rate memory's item
	// (CALLS_PER_SECOND=auto: pace.Memory's Join, Sync and Leave, one
	// UpdateItem each), among the write requests.
	RateMemoryWrites int `json:"rateMemoryWrites,omitempty"`

	// CPU of this whole process (engine or client, SDK, and the in-process
	// SSM emulator and DynamoDB proxy), and of the DynamoDB Local JVM.
	CPUSeconds              float64 `json:"cpuSeconds"`
	CPUUserSeconds          float64 `json:"cpuUserSeconds"`
	CPUSysSeconds           float64 `json:"cpuSysSeconds"`
	DynamoDBLocalCPUSeconds float64 `json:"dynamoDBLocalCpuSeconds"`
	PeakRSSMiB              float64 `json:"peakRssMiB"`
	PeakHeapMiB             float64 `json:"peakHeapMiB"`
	// LoadAverage is the machine's 1-minute load average when the run
	// started: the cores are shared, and other work shows in the times.
	LoadAverage float64 `json:"loadAverage1m"`
}

// Results is bench/results.json.
type Results struct {
	Generated   time.Time      `json:"generated"`
	Machine     Machine        `json:"machine"`
	Params      params         `json:"params"`
	Records     []Record       `json:"records"`
	Targets     []Record       `json:"targetChecks,omitempty"`
	Jobs        []JobRecord    `json:"jobs,omitempty"`
	Reconcile   []ReconcileRun `json:"reconcile,omitempty"`
	Auto        []AutoRun      `json:"autoRate,omitempty"`
	ClaimCosts  []ClaimCost    `json:"claimCosts,omitempty"`
	Pipeline    *PipelineCost  `json:"pipeline100k,omitempty"`
	GoBench     []GoBench      `json:"goBenchmarks,omitempty"`
	GoBenchCmd  string         `json:"goBenchmarkCommand,omitempty"`
	ColdStart   *ColdStart     `json:"coldStart,omitempty"`
	TotalSecond float64        `json:"totalSeconds"`
	// Merged are later runs whose rows replaced this run's (-merge).
	Merged []mergedRun `json:"merged,omitempty"`
}

// mergedRun is a run of some rows only, merged into the results of a whole
// run (-merge).
type mergedRun struct {
	Generated   time.Time `json:"generated"`
	What        string    `json:"what"`
	TotalSecond float64   `json:"totalSeconds"`
}

func main() {
	var (
		p      params
		sizes  string
		out    string
		md     string
		colds  int
		render bool
		only   string
		prof   string
		merge  bool
		auto   bool
	)
	flag.StringVar(&only, "strategies", "", "run only these strategies (comma separated; \"pipeline\" is the in-memory pipeline of 100,000 entries; for profiling, with -md '')")
	flag.StringVar(&p.trace, "trace", "", "write each run's CreateAssociationBatch arrival times (seconds from its start) to this folder, one file per run")
	flag.StringVar(&prof, "cpuprofile", "", "write a CPU profile of the strategy runs to this file")
	flag.BoolVar(&render, "render", false, "measure nothing: redraw the plot and BENCHMARKS.md from -out/results.json (running the Go benchmarks if it has none)")
	flag.BoolVar(&p.Quick, "quick", false, "n = 1,000 only, no pipeline/cold start measurements; writes bench/out/quick/results.json (git-ignored)")
	flag.Float64Var(&p.Rate, "rate", 50, "SSM emulator: calls per second (R)")
	flag.IntVar(&p.Burst, "burst", 10, "SSM emulator: token bucket size")
	flag.DurationVar(&p.Latency, "latency", 50*time.Millisecond, "SSM emulator: latency of every call (L)")
	flag.DurationVar(&p.Jitter, "jitter", 20*time.Millisecond, "SSM emulator: uniform extra latency in [0, jitter)")
	flag.IntVar(&p.MaxBatch, "max-batch", 20, "SSM emulator: entries per CreateAssociationBatch call (E)")
	flag.Float64Var(&p.FaultRate, "fault-rate", 0.03, "SSM emulator: share of entries failed with Fault Server")
	flag.Int64Var(&p.Seed, "seed", 1, "SSM emulator: seed of faults and jitter")
	flag.StringVar(&sizes, "sizes", "1000,10000,50000", "entry counts n, comma separated")
	flag.IntVar(&p.WarmUp, "warm-up", 10000, "entries of the engine run (not recorded) that warms DynamoDB Local's JVM up first (0: none)")
	flag.IntVar(&p.JobWarmUp, "job-warm-up", 16000, "nodes of the job run (static split, not recorded) that warms DynamoDB Local's JVM up for the job's own requests before the job rows (0: none)")
	flag.IntVar(&p.ClaimCostN, "claim-cost", 10000, "keys of the DynamoDB write comparison (claims and completions one per request against batched; 0: none)")
	flag.IntVar(&p.PerNodeLimit, "per-node-limit", 1000, "per-node strategy: run at most this many nodes and scale (0: all)")
	flag.IntVar(&p.PerNodeWorkers, "per-node-workers", 10, "per-node strategy: concurrent calls (Terraform's -parallelism default)")
	flag.StringVar(&out, "out", "bench", "output folder (relative to the project root)")
	flag.StringVar(&md, "md", "BENCHMARKS.md", "report to write (relative to the project root unless absolute; empty: none)")
	flag.IntVar(&colds, "cold-starts", 5, "cold starts to measure (median reported)")
	flag.Float64Var(&p.TargetRate, "target-rate", 5, "also run the engine at n=-target-n under this emulator rate (0: skip)")
	flag.IntVar(&p.TargetN, "target-n", 10000, "size of the run at -target-rate")
	targetBursts := flag.String("target-bursts", "1,5", "emulator bucket sizes of the target checks (one run each)")
	flag.IntVar(&p.Job.N, "job-n", 100_000, "asynchronous job: fan-out nodes (0: no job run; not run with -quick)")
	flag.IntVar(&p.Job.Workers, "job-workers", 4, "asynchronous job: workers (WORKER_MAX_CONCURRENCY)")
	flag.Float64Var(&p.Job.AccountRate, "job-rate", 50, "asynchronous job: the account's SSM budget (ACCOUNT_CALLS_PER_SECOND) and the emulator's R during the job")
	flag.IntVar(&p.Job.Burst, "job-burst", 0, "asynchronous job: the emulator's bucket during the job (0: -job-workers)")
	flag.IntVar(&p.Job.ChunkSize, "job-chunk", 2000, "asynchronous job: CHUNK_SIZE (at most; split into a multiple of -job-workers chunks, as the function does)")
	flag.IntVar(&p.Job.WorkerBatch, "job-batch", 1, "asynchronous job: messages per worker invocation (WorkerBatchSize, 1 to 10)")
	flag.IntVar(&p.Job.WorkerTimeoutSeconds, "job-worker-timeout", 60, "asynchronous job: worker deadline and queue visibility timeout, seconds")
	flag.IntVar(&p.Job.MaxReceives, "job-max-receives", 5, "asynchronous job: MAX_RECEIVES")
	flag.IntVar(&p.Reconcile.N, "reconcile-n", 3000, "read-back runs: fan-out nodes, run with and without lost answers (0: none; at most 500 with -quick)")
	flag.Float64Var(&p.Reconcile.LostRate, "lost-rate", 0.10, "read-back runs: share of CreateAssociationBatch calls that execute and then lose their answer (half a closed connection, half HTTP 500)")
	flag.DurationVar(&p.Reconcile.Delay, "reconcile-delay", 200*time.Millisecond, "read-back runs: the engine's RECONCILE_DELAY")
	flag.DurationVar(&p.Reconcile.DefaultDelay, "reconcile-default-delay", 5*time.Second, "read-back runs: also run with lost answers at this RECONCILE_DELAY (the shipped default; 0: not; not with -quick)")
	reconcileBatches := flag.String("reconcile-batches", "20,10", "read-back runs: BATCH_SIZEs (the emulator's E follows; only the first with -quick)")
	autoRates := flag.String("auto-rates", "7,12,40", "CALLS_PER_SECOND=auto runs: the emulator's rates, unknown to the function (empty: none; not with -quick)")
	autoNs := flag.String("auto-n", "3000,5000,10000", "CALLS_PER_SECOND=auto runs: nodes at each of -auto-rates")
	autoBursts := flag.String("auto-bursts", "1,5", "CALLS_PER_SECOND=auto runs: the emulator's bucket sizes (one run each)")
	flag.DurationVar(&p.Auto.Latency, "auto-latency", 100*time.Millisecond, "CALLS_PER_SECOND=auto runs: the emulator's latency (no jitter)")
	flag.IntVar(&p.Auto.MaxConcurrency, "auto-concurrency", 8, "CALLS_PER_SECOND=auto runs: MAX_CONCURRENCY")
	flag.Float64Var(&p.Auto.Start, "auto-start", 5, "CALLS_PER_SECOND=auto: CALLS_PER_SECOND_START")
	flag.Float64Var(&p.Auto.Max, "auto-max", 50, "CALLS_PER_SECOND=auto: MAX_CALLS_PER_SECOND")
	flag.DurationVar(&p.Auto.Cut, "auto-cut", 10*time.Second, "CALLS_PER_SECOND=auto runs: the bound is held from this time into the run on")
	flag.Float64Var(&p.Auto.HalveFrom, "halve-from", 40, "CALLS_PER_SECOND=auto: the halving run's emulator rate at start")
	flag.Float64Var(&p.Auto.HalveTo, "halve-to", 20, "CALLS_PER_SECOND=auto: … and after -halve-at")
	flag.DurationVar(&p.Auto.HalveAt, "halve-at", 10*time.Second, "CALLS_PER_SECOND=auto: when the rate changes, from the emulator's start")
	flag.IntVar(&p.Auto.HalveN, "halve-n", 10000, "CALLS_PER_SECOND=auto: the halving run's nodes (0: no halving run)")
	flag.BoolVar(&p.Auto.Job, "auto-job", true, "also run the asynchronous job with CALLS_PER_SECOND=auto and the shared rate memory (strategy job-auto)")
	flag.BoolVar(&auto, "auto-only", false, "run only the CALLS_PER_SECOND=auto rows and the job with it (as -strategies auto,job-auto)")
	flag.BoolVar(&merge, "merge", false, "merge the rows measured into -out/results.json instead of replacing it (with -strategies or -auto-only), then write the report from the whole")
	flag.Parse()
	if p.Job.Burst <= 0 {
		p.Job.Burst = p.Job.Workers
	}
	p.LatencyMs = float64(p.Latency) / float64(time.Millisecond)
	p.JitterMs = float64(p.Jitter) / float64(time.Millisecond)
	for f := range strings.SplitSeq(*reconcileBatches, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			p.Reconcile.Batches = append(p.Reconcile.Batches, v)
		}
	}
	p.Auto.LatencyMs = float64(p.Auto.Latency) / float64(time.Millisecond)
	p.Auto.CutSeconds = p.Auto.Cut.Seconds()
	p.Auto.HalveAtSec = p.Auto.HalveAt.Seconds()
	p.Auto.Rates = floats(*autoRates, "-auto-rates")
	p.Auto.Ns = ints(*autoNs, "-auto-n")
	p.Auto.Bursts = ints(*autoBursts, "-auto-bursts")
	if len(p.Auto.Ns) < len(p.Auto.Rates) {
		fatal(fmt.Errorf("-auto-n: %d sizes for %d rates", len(p.Auto.Ns), len(p.Auto.Rates)))
	}
	p.Auto.Ns = p.Auto.Ns[:len(p.Auto.Rates)]
	if len(p.Auto.Bursts) == 0 {
		p.Auto.Rates, p.Auto.Ns, p.Auto.HalveN = nil, nil, 0
	}
	if p.Quick {
		p.Auto.Rates, p.Auto.Ns, p.Auto.HalveN, p.Auto.Job = nil, nil, 0, false
		sizes = "1000"
		p.Reconcile.N = min(p.Reconcile.N, 500)
		p.Reconcile.DefaultDelay = 0
		p.Reconcile.Batches = p.Reconcile.Batches[:min(len(p.Reconcile.Batches), 1)]
		p.TargetRate = 0
		p.Job.N = 0
		p.WarmUp = min(p.WarmUp, 500)
		if p.PerNodeLimit == 0 || p.PerNodeLimit > 100 {
			p.PerNodeLimit = 100
		}
		out = filepath.Join(out, "out", "quick") // git-ignored: a quick run changes no tracked file
		md = ""
	}
	p.Reconcile.DelayMs = float64(p.Reconcile.Delay) / float64(time.Millisecond)
	p.Reconcile.DefaultDelayMs = float64(p.Reconcile.DefaultDelay) / float64(time.Millisecond)
	for f := range strings.SplitSeq(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-sizes: %q is not a positive number", f))
		}
		p.Sizes = append(p.Sizes, n)
	}
	slices.Sort(p.Sizes)
	for f := range strings.SplitSeq(*targetBursts, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			p.TargetBursts = append(p.TargetBursts, v)
		}
	}
	if p.Rate <= 0 || p.MaxBatch <= 0 {
		fatal(fmt.Errorf("-rate and -max-batch must be positive: the ideal is ceil(n/E)/R"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if render {
		if err := rerender(ctx, out, md); err != nil {
			fatal(err)
		}
		return
	}
	if only != "" {
		p.Only = strings.Split(only, ",")
	}
	if auto {
		p.Only = append(p.Only, "auto", "job-auto")
	}
	if merge && len(p.Only) == 0 {
		fatal(errors.New("-merge: with -strategies or -auto-only (a whole run replaces the results)"))
	}
	if p.trace != "" {
		if err := os.MkdirAll(p.trace, 0o755); err != nil {
			fatal(err)
		}
	}
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		p.profile = f
	}
	if err := run(ctx, p, out, md, colds, merge); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// floats and ints read a comma-separated list of positive numbers.
func floats(s, flagName string) []float64 {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0) {
			fatal(fmt.Errorf("%s: %q is not a positive number", flagName, f))
		}
		out = append(out, v)
	}
	return out
}

func ints(s, flagName string) []int {
	var out []int
	for _, v := range floats(s, flagName) {
		if v != math.Trunc(v) {
			fatal(fmt.Errorf("%s: %v is not a whole number", flagName, v))
		}
		out = append(out, int(v))
	}
	return out
}

// wants says whether the run measures what is named: everything without
// -strategies, else what it lists.
func (p params) wants(name string) bool { return len(p.Only) == 0 || slices.Contains(p.Only, name) }

func run(ctx context.Context, p params, out, md string, colds int, merge bool) error {
	begin := time.Now()
	root, err := testinfra.ProjectRoot()
	if err != nil {
		return err
	}
	if err := testinfra.CheckTools(testinfra.ToolDynamoDBLocal, testinfra.ToolJava); err != nil {
		return err
	}
	jobOK := p.Job.N > 0 && p.Job.Workers > 0 && p.Job.AccountRate > 0
	runJob := jobOK && p.wants("job")
	runAutoJob := jobOK && p.Auto.Job && p.wants("job-auto")
	if runJob || runAutoJob {
		if err := testinfra.CheckTools(testinfra.ToolMoto); err != nil {
			return err
		}
	}
	res := Results{Generated: time.Now().UTC().Truncate(time.Second), Machine: machine(), Params: p}

	if !p.Quick && (len(p.Only) == 0 || slices.Contains(p.Only, "pipeline")) {
		// First, while the process is small: the in-memory pipeline.
		logf("pipeline: decode, validate, dedupe and plan 100,000 entries")
		pc, err := measurePipeline(100_000, 3)
		if err != nil {
			return err
		}
		res.Pipeline = &pc
		logf("pipeline: %.3f s CPU, peak heap %.1f MiB, peak RSS %.1f MiB", pc.CPUSeconds, pc.PeakHeapMiB, pc.PeakRSSMiB)
	}

	logf("starting DynamoDB Local and the SSM emulator (R=%g/s burst %d, L=%v+[0,%v), E=%d, faults %.1f%%)",
		p.Rate, p.Burst, p.Latency, p.Jitter, p.MaxBatch, p.FaultRate*100)
	b, err := newBench(ctx, p)
	if err != nil {
		return err
	}
	defer b.close()

	tuned := p.tuned()
	type strategy struct {
		name, desc string
		settings   map[string]any
		prepare    func(context.Context, int) func(context.Context) (outcome, error)
		only       func(n int) bool
	}
	strategies := []strategy{
		{"engine-defaults", "the function's engine with its shipped defaults", settingsMap(shipped),
			b.runEngine(shipped), func(n int) bool { return n == p.Sizes[0] }},
		{"engine-tuned", "the function's engine tuned to the emulator: BATCH_SIZE=E, CALLS_PER_SECOND=R, MAX_CONCURRENCY=ceil(R·(L+jitter))+2", settingsMap(tuned),
			b.runEngine(tuned), nil},
		{diagnosticStrategy, "diagnostic, not a deployable setup: engine-tuned with its claims kept in a map in this process instead of DynamoDB Local, to separate the engine's own scheduling from the dedupe table's cost on these cores", settingsMap(tuned),
			b.runEngineWith(tuned, true), func(n int) bool { return n == p.TargetN }},
		{"cli-script", "sequential loop of CreateAssociationBatch over chunks of E, whole chunk resent on any non-Client failure (AWS CLI script)",
			map[string]any{"chunk": p.MaxBatch, "concurrency": 1, "maxSendsPerChunk": 5, "sdkAttempts": 3}, func(ctx context.Context, n int) func(context.Context) (outcome, error) { return b.runScript(ctx, n) }, nil},
		{"per-node", "one CreateAssociation per node, 10 at a time (Terraform resource per node, default -parallelism)",
			map[string]any{"concurrency": p.PerNodeWorkers, "sdkAttempts": 25, "triesPerNode": 3, "limit": p.PerNodeLimit},
			b.runPerNode(p.PerNodeWorkers, p.PerNodeLimit), nil},
	}
	// DynamoDB Local is a JVM: its first tens of thousands of requests run
	// interpreted or half-compiled (a first n = 10,000 run here takes 1.7×
	// the time of the next). A warm-up run (not recorded) keeps that out of
	// the numbers: DynamoDB itself has no such start.
	if p.WarmUp > 0 {
		logf("warm-up: engine-tuned at n=%d (not recorded)", p.WarmUp)
		if _, err := b.measure(ctx, "warm-up", "", p.WarmUp, nil, b.runEngine(tuned)(ctx, p.WarmUp)); err != nil {
			return err
		}
	}
	if p.profile != nil {
		if err := pprof.StartCPUProfile(p.profile); err != nil {
			return err
		}
	}
	for _, n := range p.Sizes {
		for _, s := range strategies {
			if s.only != nil && !s.only(n) || len(p.Only) > 0 && !slices.Contains(p.Only, s.name) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			logf("n=%d %s …", n, s.name)
			rec, err := b.measure(ctx, s.name, s.desc, n, s.settings, s.prepare(ctx, n))
			if err != nil {
				return err
			}
			res.Records = append(res.Records, rec)
			extra := ""
			if rec.Extrapolated {
				extra = fmt.Sprintf(" (ran %d nodes in %.1f s, scaled)", rec.MeasuredEntries, rec.MeasuredWallSeconds)
			}
			logf("n=%d %s: %.1f s = %.2f× ideal %.1f s; %d calls (ideal %d), %d throttled, %d resent after success, %d faulted, DynamoDB %v, CPU %.1f s, RSS %.0f MiB%s",
				n, s.name, rec.WallSeconds, rec.WallRatio, rec.IdealSeconds, rec.SSMCalls, rec.IdealCalls, rec.ThrottledCalls,
				rec.ResentAfterSuccess, rec.FaultedEntries, rec.DynamoDBRequests, rec.CPUSeconds, rec.PeakRSSMiB, extra)
		}
	}

	if p.profile != nil {
		pprof.StopCPUProfile()
	}
	var broken []string
	if p.Reconcile.N > 0 && len(p.Reconcile.Batches) > 0 && (len(p.Only) == 0 || slices.Contains(p.Only, "reconcile")) {
		res.Reconcile, broken, err = b.measureReconcile(ctx, p)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
	}

	// The target checks are engine-tuned runs: with -strategies, only when
	// it names them (or "targets").
	for _, burst := range p.TargetBursts {
		if p.TargetRate <= 0 || p.TargetN <= 0 || !p.wants("targets") && !p.wants("engine-tuned") {
			break
		}
		tp := p
		tp.Rate, tp.Burst = p.TargetRate, burst
		tt := tp.tuned()
		logf("target check: engine-tuned at n=%d under R=%g/s burst %d (ideal %.0f s) …", p.TargetN, tp.Rate, burst, float64(tp.idealCalls(p.TargetN))/tp.Rate)
		b.setEmulator(tp)
		rec, err := b.measure(ctx, "engine-tuned", "target check: the engine tuned to an emulator at a lower call rate, where the claims weigh less", p.TargetN, settingsMap(tt), b.runEngine(tt)(ctx, p.TargetN))
		b.setEmulator(p)
		if err != nil {
			return err
		}
		rec.Burst = burst
		res.Targets = append(res.Targets, rec)
		logf("target check: %.1f s = %.3f× ideal %.1f s (first call after %.1f s; dispatch %.3f× ideal); %d calls (ideal %d), %d throttled, %d resent after success",
			rec.WallSeconds, rec.WallRatio, rec.IdealSeconds, rec.FirstCallAfterSeconds, rec.DispatchRatio, rec.SSMCalls, rec.IdealCalls, rec.ThrottledCalls, rec.ResentAfterSuccess)
	}

	if len(p.Auto.Rates) > 0 || p.Auto.HalveN > 0 {
		if p.wants("auto") {
			if res.Auto, err = b.measureAuto(ctx, p); err != nil {
				return fmt.Errorf("auto: %w", err)
			}
		}
	}

	if p.ClaimCostN > 0 && !p.Quick && len(p.Only) == 0 {
		logf("DynamoDB: %d claims and completions, one request per key and batched (%d per request) …", p.ClaimCostN, p.MaxBatch)
		if res.ClaimCosts, err = b.measureClaimCosts(ctx, p.ClaimCostN, p.MaxBatch); err != nil {
			return fmt.Errorf("claim cost: %w", err)
		}
		for _, c := range res.ClaimCosts {
			logf("DynamoDB: %s by %s: %d requests, %.2f s, CPU %.2f s here and %.2f s in DynamoDB Local", c.Write, c.How, c.Requests, c.WallSeconds, c.CPUSeconds, c.JVMCPUSecond)
		}
	}

	if runJob || runAutoJob {
		moto, err := testinfra.StartMoto(ctx)
		if err != nil {
			return fmt.Errorf("moto: %w", err)
		}
		// The engine's warm-up leaves the job's own requests (its records,
		// the rate memory) cold, and the JVM still compiling: the first
		// job measured after it ran its first chunks at about 36 calls/s
		// of 50 (2026-12-03), the one after that at 50.
		if p.JobWarmUp > 0 {
			jp := p.Job
			jp.N = p.JobWarmUp
			logf("warm-up: a job of %d nodes, %d workers (not recorded)", jp.N, jp.Workers)
			if _, err := b.measureJob(ctx, moto, p, jp, false); err != nil {
				moto.Close()
				return fmt.Errorf("job warm-up: %w", err)
			}
		}
		for _, auto := range []bool{false, true} {
			if auto && !runAutoJob || !auto && !runJob {
				continue
			}
			jp := p.Job
			how := fmt.Sprintf("%d workers sharing %g calls/s", jp.Workers, jp.AccountRate)
			if auto {
				how = fmt.Sprintf("%d workers with CALLS_PER_SECOND=auto (start %g, max %g) sharing the rate memory", jp.Workers, p.Auto.Start, p.Auto.Max)
			}
			logf("job: %d nodes submitted as a job, %s (emulator R=%g/s burst %d; ideal %.0f s) …",
				jp.N, how, jp.AccountRate, jp.Burst, float64(p.idealCalls(jp.N))/jp.AccountRate)
			jr, err := b.measureJob(ctx, moto, p, jp, auto)
			if jr.N > 0 {
				res.Jobs = append(res.Jobs, jr)
			}
			if err != nil && jr.N == 0 {
				moto.Close()
				return fmt.Errorf("job: %w", err)
			}
			if err != nil {
				logf("job: %v", err)
			}
			logf("job: %.1f s = %.3f× ideal %.1f s (%.3f× ceil(n/E)/R = %.1f s; submitted in %.1f s, first call after %.1f s); %d calls (ideal %d), %d throttled, at most %d calls in any 1 s, %d resent after success; %s: %d successful, %d failed, %d deduplicated, %d unprocessed; %d receives, %d redelivered",
				jr.WallSeconds, jr.WallRatio, jr.IdealSeconds, jr.PlainWallRatio, jr.PlainIdealSeconds, jr.SubmitSeconds, jr.FirstCallAfterSeconds,
				jr.SSMCalls, jr.IdealCalls, jr.ThrottledCalls, jr.MaxCallsPerSecond, jr.ResentAfterSuccess, jr.State, jr.Successful, jr.Failed,
				jr.Deduplicated, jr.Unprocessed, jr.Receives, jr.Redelivered)
		}
		moto.Close()
	}

	if !p.Quick && colds > 0 && len(p.Only) == 0 {
		logf("cold start: building the bootstrap and starting it under the Runtime Interface Emulator %d times", colds)
		cs, err := measureColdStart(ctx, root, b, colds)
		if err != nil {
			return err
		}
		res.ColdStart = &cs
		logf("cold start: median %.1f ms to the first response (warm %.1f ms); arm64 binary %.1f MiB", cs.MedianMs, cs.WarmMedianMs, cs.Arm64SizeMiB)
	}
	if !p.Quick && len(p.Only) == 0 {
		logf("Go benchmarks (in-memory pipeline, parse)")
		if res.GoBench, res.GoBenchCmd, err = runGoBenchmarks(ctx, root); err != nil {
			return err
		}
	}
	res.TotalSecond = round(time.Since(begin).Seconds(), 1)
	if merge {
		if res, err = mergeInto(root, out, res); err != nil {
			return err
		}
	}
	if err := write(res, root, out, md); err != nil {
		return err
	}
	if len(broken) > 0 {
		return fmt.Errorf("exactly once broken in %d read-back run(s): %s", len(broken), strings.Join(broken, "; "))
	}
	return nil
}

// mergeInto puts the rows of a partial run (-merge) into the results of
// the whole run in out: its auto runs and its jobs replace those of the
// same kind, and it is listed in Merged.
func mergeInto(root, out string, part Results) (Results, error) {
	raw, err := os.ReadFile(filepath.Join(root, out, "results.json"))
	if err != nil {
		return part, fmt.Errorf("-merge: %w", err)
	}
	var whole Results
	if err := json.Unmarshal(raw, &whole); err != nil {
		return part, fmt.Errorf("-merge: %w", err)
	}
	var what []string
	if len(part.Auto) > 0 {
		whole.Auto = part.Auto
		whole.Params.Auto = part.Params.Auto
		what = append(what, "auto")
	}
	for _, j := range part.Jobs {
		whole.Jobs = slices.DeleteFunc(whole.Jobs, func(o JobRecord) bool { return o.AutoRate == j.AutoRate })
		what = append(what, map[bool]string{true: "job-auto", false: "job"}[j.AutoRate])
	}
	whole.Jobs = append(whole.Jobs, part.Jobs...)
	if len(part.Jobs) > 0 {
		whole.Params.JobWarmUp = part.Params.JobWarmUp
	}
	slices.SortStableFunc(whole.Jobs, func(a, b JobRecord) int {
		return map[bool]int{false: 0, true: 1}[a.AutoRate] - map[bool]int{false: 0, true: 1}[b.AutoRate]
	})
	if len(part.Records) > 0 || len(part.Targets) > 0 || len(part.Reconcile) > 0 || part.Pipeline != nil {
		return part, errors.New("-merge: only the auto runs and the jobs can be merged")
	}
	if len(what) == 0 {
		return part, errors.New("-merge: nothing measured to merge")
	}
	// An earlier merge of the same rows was replaced whole: not listed.
	joined := strings.Join(what, ", ")
	whole.Merged = slices.DeleteFunc(whole.Merged, func(m mergedRun) bool { return m.What == joined })
	whole.Merged = append(whole.Merged, mergedRun{Generated: part.Generated, What: joined, TotalSecond: part.TotalSecond})
	return whole, nil
}

// rerender redraws the outputs of an earlier run.
func rerender(ctx context.Context, out, md string) error {
	root, err := testinfra.ProjectRoot()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(root, out, "results.json"))
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(raw, &res); err != nil {
		return err
	}
	if len(res.GoBench) == 0 && !res.Params.Quick {
		if res.GoBench, res.GoBenchCmd, err = runGoBenchmarks(ctx, root); err != nil {
			return err
		}
	}
	return write(res, root, out, md)
}

func write(res Results, root, out, md string) error {
	p := res.Params
	dir := filepath.Join(root, out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	printTable(os.Stdout, res)
	if !p.Quick && len(res.Records) > 0 {
		if err := plotWallTime(filepath.Join(dir, "wall-time.png"), res); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	if runs := plottedAutoRuns(res); !p.Quick && len(runs) > 0 {
		if err := plotAutoRates(filepath.Join(dir, autoPlot), runs); err != nil {
			return fmt.Errorf("plot: %w", err)
		}
	}
	if md != "" {
		text, err := markdown(res, out)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(md) {
			md = filepath.Join(root, md)
		}
		if err := os.WriteFile(md, []byte(text), 0o644); err != nil {
			return err
		}
	}
	logf("wrote %s (measured in %.0f s)", filepath.Join(out, "results.json"), res.TotalSecond)
	return nil
}

func printTable(w *os.File, res Results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// The column names are BENCHMARKS.md's, for the same measures.
	fmt.Fprintln(tw, "n\tstrategy\twall s\tideal s\t× ideal\tSSM calls\tideal calls\tthrottled\tentries resent after success\twrite requests / new entry\twrite units / entry\tCPU s (process)\tpeak RSS MiB\t")
	for _, r := range res.Records {
		name := r.Strategy
		if r.Extrapolated {
			name += "*"
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.1f\t%.2f\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.1f\t%.0f\t\n", r.N, name, r.WallSeconds, r.IdealSeconds,
			r.WallRatio, r.SSMCalls, r.IdealCalls, r.ThrottledCalls, r.ResentAfterSuccess, r.WriteRequestsPerNewEntry, r.WriteUnitsPerEntry, r.CPUSeconds, r.PeakRSSMiB)
	}
	for _, j := range res.Jobs {
		fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.1f\t%.2f\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.1f\t%.0f\t\n", j.N, fmt.Sprintf("job(%d workers)", j.Job.Workers), j.WallSeconds, j.IdealSeconds,
			j.WallRatio, j.SSMCalls, j.IdealCalls, j.ThrottledCalls, j.ResentAfterSuccess, j.WriteRequestsPerNewEntry, j.WriteUnitsPerEntry, j.CPUSeconds, j.PeakRSSMiB)
	}
	tw.Flush()
	if len(res.Reconcile) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "n\tbatch\tlost\tdelay\twall s\t×ideal\tcreate calls\tlost answers\treads\treads/lost\textra s\textra s/lost\tdoubles\trefused\towner writes\t")
	for _, r := range res.Reconcile {
		perLost, extra, extraPer := "-", "-", "-"
		if r.LostAnswers > 0 {
			perLost = fmt.Sprintf("%.1f", float64(r.SSMReads)/float64(r.LostAnswers))
			if base := baseline(res.Reconcile, r.BatchSize); base != nil {
				extra = fmt.Sprintf("%.1f", r.WallSeconds-base.WallSeconds)
				extraPer = fmt.Sprintf("%.2f", (r.WallSeconds-base.WallSeconds)/float64(r.LostAnswers))
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%g%%\t%v\t%.1f\t%.2f\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t\n", r.N, r.BatchSize, r.LostAnswerRate*100,
			durMs(r.ReconcileDelayMs), r.WallSeconds, r.WallRatio, r.CreateCalls, r.LostAnswers, r.SSMReads,
			perLost, extra, extraPer, r.DoubleAssociations, r.ResentAfterSuccess, r.OwnerWriteRequests)
	}
	tw.Flush()
}
