package main

import (
	_ "embed"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"text/template"
	"time"
)

// reportText is BENCHMARKS.md: its prose, with the numbers of one run put
// in by text/template. Every number comes from results.json of that run,
// computed here (newReport and the methods below); the template only
// formats them and picks the sentences that fit.
//
//go:embed report.md.tmpl
var reportText string

var reportTemplate = template.Must(template.New("report.md.tmpl").Funcs(template.FuncMap{
	"num":      numAny,
	"ddb":      ddbText,
	"ddbTotal": ddbTotal,
	"settings": settingsText,
	"msList":   msList,
	"verdict":  verdict,
	"atMost":   atMost,
	"under":    under,
}).Parse(reportText))

// markdown renders BENCHMARKS.md from the results of a run; out is the
// folder of its results.json and wall-time.png, as the report links them.
func markdown(res Results, out string) (string, error) {
	var b strings.Builder
	if err := reportTemplate.Execute(&b, newReport(res, out)); err != nil {
		return "", fmt.Errorf("report: %w", err)
	}
	return b.String(), nil
}

// report is what report.md.tmpl reads: the results, and what is computed
// from them. A field is nil, or a list empty, when the run measured nothing
// for it; the template then leaves its rows or paragraphs out.
type report struct {
	Results
	Out string
	// Diagnostic is the strategy that keeps the claims in memory.
	Diagnostic   string
	FaultPercent float64 // the emulator's entry fault rate, in %
	// JobIdealSeconds is the job's ideal time at the account rate.
	JobIdealSeconds float64
	// Strategies are the first record of each strategy, in run order.
	Strategies []Record
	// Rows are the results table: every record, then the target checks.
	Rows []namedRecord
	// Scaled: a row ran part of its n and was scaled to n.
	Scaled bool

	// IssueTarget is the engine at the issue's n = 10,000, Why the same n
	// with the claims in memory beside it; HappyPath the engine at
	// -target-n; TargetChecks the runs at -target-rate.
	IssueTarget  *engineTarget
	Why          *enginePair
	HappyPath    *happyPath
	TargetChecks []engineTarget
	// WorstWrites is the most DynamoDB write requests per new entry of an
	// engine run.
	WorstWrites float64

	// EngineRows are the engine's runs, then the target checks; Split the
	// engine at -target-n with its claims in DynamoDB Local and in memory.
	EngineRows []Record
	Split      *enginePair
	// LastTarget is the last target check (the largest burst).
	LastTarget *Record

	ReadBack *readBack

	// AutoSteady and AutoHalving are the CALLS_PER_SECOND=auto runs;
	// AutoPlot the plot of the first halving run ("": none). StaticJob and
	// AutoJob are the job with the static split and with the rate found.
	AutoSteady, AutoHalving []AutoRun
	AutoPlot                string
	StaticJob, AutoJob      *JobRecord

	// LeaseThird and Lease are the owner record's renewal period and
	// CLAIM_LEASE, in seconds; OwnerRows the runs that wrote to DynamoDB.
	LeaseThird, Lease float64
	OwnerRows         []ownerRow
	// ClaimCPU is the SDK's CPU per claim, scaled to the function's paces.
	ClaimCPU *claimCPU
}

// namedRecord is a record with its name in a table: the strategy, \* when
// scaled, and its R and burst when they are not the emulator's usual ones.
type namedRecord struct {
	Record
	Name string
}

// engineTarget is an engine run checked against the issue's bounds; Extra
// marks a check beyond the issue's (at the shipped rate).
type engineTarget struct {
	Record
	FaultPercent float64
	Extra        bool
}

// enginePair is the engine at one n with its claims in DynamoDB Local (E)
// and in memory (D).
type enginePair struct{ E, D *Record }

// OwnPercent is the engine's own overhead over the ideal, in %.
func (p enginePair) OwnPercent() float64 { return (p.D.WallRatio - 1) * 100 }

// Own is the seconds over the ideal with the claims in memory; Table the
// seconds the dedupe table adds to them.
func (p enginePair) Own() float64   { return p.D.WallSeconds - p.D.IdealSeconds }
func (p enginePair) Table() float64 { return p.E.WallSeconds - p.D.WallSeconds }

// TableFirst: the dedupe table costs at least as much as the engine's own
// scheduling.
func (p enginePair) TableFirst() bool { return p.Table() >= p.Own() }

// Cores is the cores this process and DynamoDB Local kept busy together.
func (p enginePair) Cores() float64 {
	return (p.E.CPUSeconds + p.E.DynamoDBLocalCPUSeconds) / p.E.WallSeconds
}

// BothTimed: both runs know when their last call arrived.
func (p enginePair) BothTimed() bool {
	return p.D.LastCallAfterSeconds > 0 && p.E.LastCallAfterSeconds > 0
}

// happyPath is the engine at -target-n, to hold against the run before the
// read-back change; Memory is the same n with the claims in memory.
type happyPath struct {
	Record
	Memory *Record
}

// NoExtra: no read, only CreateAssociationBatch, and no entry sent beyond
// what its faults force.
func (h happyPath) NoExtra() bool {
	r := h.Record
	return r.SSMReads == 0 && r.ReadCalls == 0 && r.SSMCalls == r.CreateCalls && r.EntriesSent <= r.N+r.FaultedEntries
}

// ownerRow is a run of the owner-record table; Expected is its owner
// writes as 2 + floor(wall / (CLAIM_LEASE/3)), for one invocation.
type ownerRow struct {
	namedRecord
	Job      bool
	Chunks   int
	Expected int
}

// claimCPU is the SDK's CPU per claim (the first claim-cost way), and what
// it comes to at the shipped pace and at 50 calls of 20 a second.
type claimCPU struct {
	MsPerClaim   float64 // ms of CPU per claim
	ShippedShare float64 // % of a 256 MB Lambda's vCPU at 50 claims/s
	FastVCPU     float64 // vCPU at 1,000 claims/s
	FastMB       float64 // Lambda memory that gives that vCPU
}

// OverIdeal is the wall time over the ideal.
func (r Record) OverIdeal() float64 { return r.WallSeconds - r.IdealSeconds }

// Timed: the run knows when its last CreateAssociationBatch call arrived.
func (r Record) Timed() bool { return r.LastCallAfterSeconds > 0 }

// SlotsLost is the time between the first call and the last beyond what
// the calls between them need at the record's rate.
func (r Record) SlotsLost() float64 {
	span := r.LastCallAfterSeconds - r.FirstCallAfterSeconds
	return span - float64(max(r.CreateCalls, r.SSMCalls-r.ReadCalls)-1)/r.RateCallsPerSecond
}

// AfterLastCall is the wall time after the last call's arrival.
func (r Record) AfterLastCall() float64 { return r.WallSeconds - r.LastCallAfterSeconds }

// LambdaGBSeconds is the run's wall time billed at 256 MB.
func (r Record) LambdaGBSeconds() float64 { return r.WallSeconds * 0.25 }

// BusyPercent is the workers' time in Handle against W × the wall time.
func (j JobRecord) BusyPercent() float64 {
	return 100 * j.WorkerBusySeconds / (float64(j.Job.Workers) * j.WallSeconds)
}

// HandleRatio is an invocation's time against its chunk's calls at one
// worker's pace.
func (j JobRecord) HandleRatio() float64 { return j.HandleSeconds / j.HandleIdealSeconds }

// PeakMB is the higher of peak heap and peak RSS, in MB.
func (pc PipelineCost) PeakMB() float64 { return max(pc.PeakRSSMiB, pc.PeakHeapMiB) * 1.048576 }

// Arm64MB is the Lambda binary's size in MB.
func (cs ColdStart) Arm64MB() float64 { return float64(cs.Arm64Bytes) / 1e6 }

// ownerLease is the engine runs' ClaimLease (CLAIM_LEASE's default).
const ownerLease = time.Minute

func newReport(res Results, out string) report {
	p := res.Params
	rep := report{
		Results:      res,
		Out:          out,
		Diagnostic:   diagnosticStrategy,
		FaultPercent: p.FaultRate * 100,
		LeaseThird:   (ownerLease / 3).Seconds(),
		Lease:        ownerLease.Seconds(),
	}
	if len(res.Jobs) > 0 {
		rep.JobIdealSeconds = float64(p.idealCalls(p.Job.N)) / p.Job.AccountRate
	}
	seen := map[string]bool{}
	for _, r := range res.Records {
		if !seen[r.Strategy] {
			seen[r.Strategy] = true
			rep.Strategies = append(rep.Strategies, r)
		}
	}
	for _, r := range slices.Concat(res.Records, res.Targets) {
		rep.Rows = append(rep.Rows, named(r, p))
		rep.Scaled = rep.Scaled || r.Extrapolated
	}

	if r := find(res, "engine-tuned", 10000); r != nil {
		rep.IssueTarget = &engineTarget{Record: *r, FaultPercent: rep.FaultPercent}
	}
	if d, e := find(res, diagnosticStrategy, 10000), find(res, "engine-tuned", 10000); d != nil && e != nil {
		rep.Why = &enginePair{E: e, D: d}
	}
	if r := find(res, "engine-tuned", p.TargetN); r != nil {
		rep.HappyPath = &happyPath{Record: *r, Memory: find(res, diagnosticStrategy, p.TargetN)}
	}
	for _, t := range res.Targets {
		rep.TargetChecks = append(rep.TargetChecks, engineTarget{Record: t, FaultPercent: rep.FaultPercent, Extra: true})
	}
	for _, r := range res.Records {
		if strings.HasPrefix(r.Strategy, "engine") {
			rep.WorstWrites = max(rep.WorstWrites, r.WriteRequestsPerNewEntry)
			rep.EngineRows = append(rep.EngineRows, r)
		}
	}
	rep.EngineRows = append(rep.EngineRows, res.Targets...)
	if e, d := find(res, "engine-tuned", p.TargetN), find(res, diagnosticStrategy, p.TargetN); e != nil && d != nil {
		rep.Split = &enginePair{E: e, D: d}
	}
	if len(res.Targets) > 0 {
		rep.LastTarget = &res.Targets[len(res.Targets)-1]
	}

	rep.ReadBack = newReadBack(res)

	for _, a := range res.Auto {
		if a.Kind == "halving" {
			rep.AutoHalving = append(rep.AutoHalving, a)
		} else {
			rep.AutoSteady = append(rep.AutoSteady, a)
		}
	}
	if len(plottedAutoRuns(res)) > 0 {
		rep.AutoPlot = out + "/" + autoPlot
	}
	for i := range res.Jobs {
		if res.Jobs[i].AutoRate {
			rep.AutoJob = &res.Jobs[i]
		} else if rep.StaticJob == nil {
			rep.StaticJob = &res.Jobs[i]
		}
	}

	owner := func(r Record, job bool, chunks int) {
		if r.DynamoDBWriteRequests == 0 {
			return
		}
		rep.OwnerRows = append(rep.OwnerRows, ownerRow{namedRecord: named(r, p), Job: job, Chunks: chunks,
			Expected: 2 + int(r.WallSeconds/rep.LeaseThird)})
	}
	for _, r := range rep.EngineRows {
		owner(r, false, 0)
	}
	for _, r := range res.Reconcile {
		owner(r.Record, false, 0)
	}
	for _, a := range res.Auto {
		k := len(rep.OwnerRows)
		owner(a.Record, false, 0)
		if len(rep.OwnerRows) > k {
			rep.OwnerRows[k].Name = a.Name()
		}
	}
	for _, j := range res.Jobs {
		owner(j.Record, true, j.Chunks)
	}
	if len(res.ClaimCosts) > 0 {
		if c := res.ClaimCosts[0]; c.N > 0 {
			perClaim := c.CPUSeconds / float64(c.N) // s of the SDK's CPU per claim
			rep.ClaimCPU = &claimCPU{
				MsPerClaim:   perClaim * 1000,
				ShippedShare: 100 * 50 * perClaim / 0.15,
				FastVCPU:     1000 * perClaim,
				FastMB:       math.Ceil(1000*perClaim/(1.0/1769)/128) * 128,
			}
		}
	}
	return rep
}

// Name is the run's name in a table: `engine-auto` and the emulator's
// rate (and its change) and burst.
func (a AutoRun) Name() string {
	if a.Kind == "halving" {
		return fmt.Sprintf("`%s` (R=%g→%g, burst %d)", a.Strategy, a.RateFrom, a.RateTo, a.Burst)
	}
	return fmt.Sprintf("`%s` (R=%g, burst %d)", a.Strategy, a.RateFrom, a.Burst)
}

// Short: the run ended before the cut, or SSM answered nothing after it;
// the bound says nothing of it.
func (a AutoRun) Short() bool { return a.TailSeconds <= 0 || a.AnsweredAfterCut == 0 }

// AnsweredBeforeCut is the calls SSM answered before the cut.
func (a AutoRun) AnsweredBeforeCut() int {
	return a.SSMCalls - a.ThrottledCalls - a.AnsweredAfterCut
}

// FoundShare is the rate found against SSM's rate at the end, in %.
func (a AutoRun) FoundShare() float64 { return 100 * a.RateFound / a.RateTo }

// MemoryCost is the run's memory writes: per invocation (every auto run is
// one) and per second.
func (a AutoRun) MemoryCost() string {
	return fmt.Sprintf("%d (%.2f/s)", a.RateMemoryWrites, a.MemoryWritesPerSecond)
}

// ChunkMemoryWrites is the rate memory's writes per chunk (per invocation)
// of an auto job.
func (j JobRecord) ChunkMemoryWrites() float64 {
	if j.Chunks == 0 {
		return 0
	}
	return float64(j.RateMemoryWrites) / float64(j.Chunks)
}

// MemoryWritesPerSecond is the auto job's memory writes over its wall time.
func (j JobRecord) MemoryWritesPerSecond() float64 {
	if j.WallSeconds == 0 {
		return 0
	}
	return float64(j.RateMemoryWrites) / j.WallSeconds
}

// busySeconds are the seconds from the job's first call to its last.
func (j JobRecord) busySeconds() []secondCounts {
	lo, hi := int(j.FirstCallAfterSeconds), int(j.LastCallAfterSeconds)
	if hi >= len(j.Seconds) {
		hi = len(j.Seconds) - 1
	}
	if lo > hi {
		return nil
	}
	return j.Seconds[lo : hi+1]
}

// MedianAnswered is the median of the calls SSM answered each second from
// the job's first call to its last.
func (j JobRecord) MedianAnswered() int {
	var v []int
	for _, s := range j.busySeconds() {
		v = append(v, s.Answered)
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// RampSeconds is how long after the first call the calls answered, over 5
// s, stayed under 80 % of the median.
func (j JobRecord) RampSeconds() int {
	busy, med := j.busySeconds(), float64(j.MedianAnswered())
	for i := 0; i+5 <= len(busy); i++ {
		sum := 0
		for _, s := range busy[i : i+5] {
			sum += s.Answered
		}
		if float64(sum)/5 >= 0.8*med {
			return i
		}
	}
	return 0
}

// SecondsText is the auto job second by second (see AutoRun.SecondsText).
func (j JobRecord) SecondsText() string { return AutoRun{Seconds: j.Seconds}.SecondsText() }

// MinFollow is the least "followed" time of a halving: a sliding 1 s
// window after the change still holds the calls made at the old rate, so
// even calls that drop to the new rate at once take this long to hold
// no more than the limit.
func (report) MinFollow(a autoParams) float64 {
	limit := autoFollowSlack * a.HalveTo
	if a.HalveFrom <= limit {
		return 0
	}
	return (a.HalveFrom - limit) / (a.HalveFrom - a.HalveTo)
}

// AboveR are the auto runs whose rate found is above SSM's rate at their
// end.
func (r report) AboveR() []AutoRun {
	var out []AutoRun
	for _, a := range r.Auto {
		if a.RateFound > a.RateTo {
			out = append(out, a)
		}
	}
	return out
}

// MemoryWritesRange is the fewest to the most rate-memory writes of an
// auto run.
func (r report) MemoryWritesRange() string {
	lo, hi := math.MaxInt, 0
	for _, a := range r.Auto {
		lo, hi = min(lo, a.RateMemoryWrites), max(hi, a.RateMemoryWrites)
	}
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// Verdict bounds of issue #17, for the template.
func (report) AutoTailBound() float64     { return autoTailBound }
func (report) AutoThrottleBound() float64 { return autoThrottleBound }
func (report) AutoFollowBound() float64   { return autoFollowBound }
func (report) AutoFollowSlack() float64   { return autoFollowSlack }
func (report) AutoJobBound() float64      { return autoJobBound }

// named gives a record its name in a table.
func named(r Record, p params) namedRecord {
	name := "`" + r.Strategy + "`"
	if r.Extrapolated {
		name += "\\*"
	}
	if r.RateCallsPerSecond != p.Rate {
		name += fmt.Sprintf(" (R=%g, burst %d)", r.RateCallsPerSecond, r.Burst)
	}
	return namedRecord{Record: r, Name: name}
}

func settingsText(s map[string]any) string {
	keys := slices.Sorted(maps.Keys(s))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, s[k]))
	}
	return strings.Join(parts, " ")
}

func ddbText(d map[string]int) string {
	if len(d) == 0 {
		return "0"
	}
	keys := slices.Sorted(maps.Keys(d))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, num(d[k])))
	}
	return strings.Join(parts, ", ")
}

// ddbTotal is the number of DynamoDB requests in counts.
func ddbTotal(counts map[string]int) string {
	n := 0
	for _, c := range counts {
		n += c
	}
	return num(n)
}

// num prints an integer with thousands separators.
func num(v int) string {
	s := fmt.Sprint(v)
	if v < 0 {
		return "-" + num(-v)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// numAny is num for the template, which passes int and int64 alike.
func numAny(v any) (string, error) {
	switch v := v.(type) {
	case int:
		return num(v), nil
	case int64:
		return num(int(v)), nil
	}
	return "", fmt.Errorf("num: %T is not an integer", v)
}

func find(res Results, strategy string, n int) *Record {
	for i := range res.Records {
		if res.Records[i].Strategy == strategy && res.Records[i].N == n {
			return &res.Records[i]
		}
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// atMost is the verdict on v ≤ bound, and by how much v exceeds it.
func atMost(v, bound float64) string { return verdict(v <= bound) + by(v, bound) }

// under is the verdict on v < bound, and by how much v exceeds it.
func under(v, bound float64) string { return verdict(v < bound) + by(v, bound) }

// by says by how much a measured value exceeds its bound.
func by(v, bound float64) string {
	if v <= bound {
		return ""
	}
	pct := (v/bound - 1) * 100
	if pct < 1 {
		return fmt.Sprintf(" by %.1f %%", pct) // not "by 0 %"
	}
	return fmt.Sprintf(" by %.0f %%", pct)
}

func msList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ") + " ms"
}
