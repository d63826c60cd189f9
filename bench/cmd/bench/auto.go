package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// autoParams shape the runs with the rate unknown to the function
// (CALLS_PER_SECOND=auto, issue #17): the engine with AutoRate{Start, Max}
// and its rate memory in the run's dedupe table, as internal/wiring builds
// it, against an emulator at each of Rates (with Ns[i] nodes) and each of
// Bursts; then the same with the emulator's rate changed from HalveFrom to
// HalveTo HalveAt after its start (HalveN nodes, each burst).
type autoParams struct {
	Rates  []float64 `json:"rates"`
	Ns     []int     `json:"ns"`
	Bursts []int     `json:"bursts"`
	// Latency is the emulator's latency in these runs (no jitter).
	Latency        time.Duration `json:"-"`
	LatencyMs      float64       `json:"latencyMs"`
	MaxConcurrency int           `json:"maxConcurrency"`
	Start          float64       `json:"start"`
	Max            float64       `json:"max"`
	// Cut is where the bound's window starts in the steady runs: the time
	// before it (slow start) is not held to the bound.
	Cut        time.Duration `json:"-"`
	CutSeconds float64       `json:"cutSeconds"`
	HalveFrom  float64       `json:"halveFrom"`
	HalveTo    float64       `json:"halveTo"`
	HalveAt    time.Duration `json:"-"`
	HalveAtSec float64       `json:"halveAtSeconds"`
	HalveN     int           `json:"halveN"`
	// Job: also run the asynchronous job with AutoRate and the shared
	// memory instead of ACCOUNT_CALLS_PER_SECOND's static split.
	Job bool `json:"job"`
}

// Follow and target bounds of issue #17.
const (
	autoTailBound     = 1.15 // wall after the cut ≤ this × the bound
	autoThrottleBound = 5.0  // throttled calls ≤ this % of calls
	autoFollowBound   = 5.0  // s from the halving until the calls follow
	autoFollowSlack   = 1.1  // "follow": arrivals ≤ this × the new rate
	autoJobBound      = 1.10 // the auto job's wall ≤ this × its ideal
)

// AutoRun is one run with CALLS_PER_SECOND=auto: the usual record, and
// what the rate's discovery did.
type AutoRun struct {
	Record
	// Kind is "steady" (the emulator's rate fixed for the run) or
	// "halving" (RateFrom, then RateTo from ChangeAtSeconds on).
	Kind     string  `json:"kind"`
	RateFrom float64 `json:"rateFrom"`
	RateTo   float64 `json:"rateTo"`
	// LatencyMs is the emulator's latency (no jitter).
	LatencyMs float64 `json:"latencyMs"`
	// ChangeAtSeconds is when the emulator's rate changed, from the run's
	// start (halving runs; read from ssmlocal's RateChanges).
	ChangeAtSeconds float64 `json:"changeAtSeconds,omitempty"`
	// The bound: from CutSeconds (10 s into the run, or the change) to the
	// run's end, TailSeconds, against AnsweredAfterCut calls at RateTo:
	// BoundSeconds = AnsweredAfterCut / RateTo; TailRatio = Tail / Bound.
	// A call is answered after the cut when SSM's answer (which comes with
	// its token: the emulator's latency is before the bucket) is.
	CutSeconds       float64 `json:"cutSeconds"`
	TailSeconds      float64 `json:"tailSeconds"`
	AnsweredAfterCut int     `json:"answeredAfterCut"`
	BoundSeconds     float64 `json:"boundSeconds"`
	TailRatio        float64 `json:"tailRatio"`
	// ThrottledPercent is ThrottledCalls against every
	// CreateAssociationBatch call of the run (throttled included);
	// ThrottledAfterCut those answered after the cut
	// (ThrottledAfterCutPercent).
	ThrottledPercent  float64 `json:"throttledPercent"`
	ThrottledAfterCut int     `json:"throttledAfterCut"`
	// RateFound is the memory item's rate at the end (the rate the
	// invocation left at, × the members it last saw); MembersLeft the
	// member leases still in the item (0: the invocation left).
	RateFound   float64 `json:"rateFound"`
	MembersLeft int     `json:"membersLeft"`
	// MemoryWritesPerSecond is RateMemoryWrites over the wall time.
	MemoryWritesPerSecond float64 `json:"memoryWritesPerSecond"`
	// FollowSeconds (halving) is from the change until the arrival rate,
	// over a sliding 1 s window, throttled calls included, stays at or
	// below autoFollowSlack × RateTo to the end of the run.
	FollowSeconds float64 `json:"followSeconds,omitempty"`
	// PeakBefore is the most arrivals in a 1 s window ending in the second
	// before the change (halving). FirstWithinSeconds is from the change
	// until a window first holds at most the limit (the first reaction);
	// PeakAfter the most arrivals in a window ending after that.
	PeakBefore         int     `json:"peakBeforeChange,omitempty"`
	FirstWithinSeconds float64 `json:"firstWithinSeconds,omitempty"`
	PeakAfter          int     `json:"peakAfterFirstWithin,omitempty"`
	// FollowLimit is autoFollowSlack × RateTo (halving).
	FollowLimit float64 `json:"followLimit,omitempty"`
	// Seconds are the run's calls second by second from its start: arrivals
	// (throttled included), answered and throttled by their answer's time.
	Seconds []secondCounts `json:"seconds"`
	// Allowed is the emulator's rate over time, from the run's start.
	Allowed []allowedStep `json:"allowed"`
}

// secondCounts are the calls of one second of a run.
type secondCounts struct {
	Arrived   int `json:"arrived"`
	Answered  int `json:"answered"`
	Throttled int `json:"throttled"`
}

// allowedStep is one setting of the emulator's rate (ssmlocal.RateChange),
// from the run's start.
type allowedStep struct {
	FromSeconds    float64 `json:"fromSeconds"`
	CallsPerSecond float64 `json:"callsPerSecond"`
	Burst          int     `json:"burst"`
}

// callEvent is one CreateAssociationBatch call at the emulator.
type callEvent struct {
	arrive, done time.Time
	throttled    bool
}

// eventLog records every CreateAssociationBatch call with its outcome
// while on (the auto runs).
type eventLog struct {
	mu sync.Mutex
	on bool
	ev []callEvent
}

func (l *eventLog) start() {
	l.mu.Lock()
	l.on, l.ev = true, nil
	l.mu.Unlock()
}

func (l *eventLog) add(e callEvent) {
	l.mu.Lock()
	if l.on {
		l.ev = append(l.ev, e)
	}
	l.mu.Unlock()
}

func (l *eventLog) stop() []callEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.on = false
	ev := l.ev
	l.ev = nil
	slices.SortFunc(ev, func(a, b callEvent) int { return a.arrive.Compare(b.arrive) })
	return ev
}

// autoSettings are the engine's settings with CALLS_PER_SECOND=auto:
// BATCH_SIZE = E, the rate found from CALLS_PER_SECOND_START up to
// MAX_CALLS_PER_SECOND, and maxConcurrency calls in flight.
func (p params) autoSettings(maxConcurrency int) associate.Settings {
	return associate.Settings{
		BatchSize:      p.MaxBatch,
		MaxConcurrency: maxConcurrency,
		MaxAttempts:    5,
		AutoRate:       &associate.AutoRate{Start: p.Auto.Start, Max: p.Auto.Max},
	}
}

func autoSettingsMap(s associate.Settings) map[string]any {
	return map[string]any{"BATCH_SIZE": s.BatchSize, "MAX_CONCURRENCY": s.MaxConcurrency, "CALLS_PER_SECOND": "auto",
		"CALLS_PER_SECOND_START": s.AutoRate.Start, "MAX_CALLS_PER_SECOND": s.AutoRate.Max, "MAX_ATTEMPTS": s.MaxAttempts,
		"ClaimConcurrency": 16}
}

// measureAuto runs every auto run: the steady ones, then the halvings.
func (b *bench) measureAuto(ctx context.Context, p params) ([]AutoRun, error) {
	ap := p.Auto
	var out []AutoRun
	for i, rate := range ap.Rates {
		for _, burst := range ap.Bursts {
			r, err := b.measureAutoRun(ctx, p, ap.Ns[i], rate, rate, burst, nil)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
	}
	if ap.HalveN > 0 && ap.HalveFrom > 0 && ap.HalveTo > 0 {
		for _, burst := range ap.Bursts {
			schedule := []ssmlocal.ScheduledRate{{After: ap.HalveAt, CallsPerSecond: ap.HalveTo, Burst: burst}}
			r, err := b.measureAutoRun(ctx, p, ap.HalveN, ap.HalveFrom, ap.HalveTo, burst, schedule)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// measureAutoRun runs the engine with CALLS_PER_SECOND=auto on n nodes
// against an emulator at rate (then rateTo, by schedule) with burst.
func (b *bench) measureAutoRun(ctx context.Context, p params, n int, rate, rateTo float64, burst int, schedule []ssmlocal.ScheduledRate) (AutoRun, error) {
	ap := p.Auto
	tp := p
	tp.Rate, tp.Burst = rate, burst
	tp.Latency, tp.Jitter = ap.Latency, 0
	tp.LatencyMs, tp.JitterMs = ap.LatencyMs, 0
	tp.rateSchedule = schedule
	set := tp.autoSettings(ap.MaxConcurrency)
	kind, what := "steady", fmt.Sprintf("R=%g/s", rate)
	if len(schedule) > 0 {
		kind, what = "halving", fmt.Sprintf("R=%g/s, then %g/s from %v", rate, rateTo, schedule[0].After)
	}
	logf("auto (%s): engine with CALLS_PER_SECOND=auto at n=%d, emulator %s burst %d, L=%v …", kind, n, what, burst, ap.Latency)
	prepare := b.runEngineAuto(set)(ctx, n) // creates the run's table
	table := b.lastTable
	b.setEmulator(tp) // a fresh bucket; the schedule counts from here
	defer b.setEmulator(p)
	b.events.start()
	rec, err := b.measure(ctx, "engine-auto", fmt.Sprintf("the engine with CALLS_PER_SECOND=auto (start %g, max %g) and its rate memory in the run's dedupe table", ap.Start, ap.Max),
		n, autoSettingsMap(set), prepare)
	events := b.events.stop()
	if err != nil {
		return AutoRun{}, err
	}
	t0 := b.runStart
	rec.Burst = burst
	ar := AutoRun{Record: rec, Kind: kind, RateFrom: rate, RateTo: rateTo, LatencyMs: ap.LatencyMs}
	for _, c := range b.emu.RateChanges() {
		at := round(c.At.Sub(t0).Seconds(), 3)
		ar.Allowed = append(ar.Allowed, allowedStep{FromSeconds: at, CallsPerSecond: c.CallsPerSecond, Burst: c.Burst})
		if c.Source == "schedule" && ar.ChangeAtSeconds == 0 {
			ar.ChangeAtSeconds = at
		}
	}
	ar.CutSeconds = ap.CutSeconds
	if kind == "halving" {
		ar.CutSeconds = ar.ChangeAtSeconds
	}
	cut := time.Duration(ar.CutSeconds * float64(time.Second))
	for _, e := range events {
		if e.done.Sub(t0) < cut {
			continue
		}
		if e.throttled {
			ar.ThrottledAfterCut++
		} else {
			ar.AnsweredAfterCut++
		}
	}
	ar.TailSeconds = round(rec.WallSeconds-ar.CutSeconds, 3)
	ar.BoundSeconds = round(float64(ar.AnsweredAfterCut)/rateTo, 3)
	if ar.BoundSeconds > 0 {
		ar.TailRatio = round(ar.TailSeconds/ar.BoundSeconds, 3)
	}
	if rec.SSMCalls > 0 {
		ar.ThrottledPercent = round(100*float64(rec.ThrottledCalls)/float64(rec.SSMCalls), 2)
	}
	if rec.WallSeconds > 0 {
		ar.MemoryWritesPerSecond = round(float64(rec.RateMemoryWrites)/rec.WallSeconds, 3)
	}
	ar.Seconds = perSecond(events, t0, rec.WallSeconds)
	if kind == "halving" {
		change := t0.Add(time.Duration(ar.ChangeAtSeconds * float64(time.Second)))
		ar.FollowLimit = round(autoFollowSlack*rateTo, 2)
		ar.FollowSeconds, ar.PeakBefore = follow(events, change, ar.FollowLimit)
		ar.FirstWithinSeconds, ar.PeakAfter = firstWithin(events, change, ar.FollowLimit)
	}
	if ar.RateFound, ar.MembersLeft, err = b.rememberedRate(ctx, table); err != nil {
		logf("auto: the memory item: %v", err)
	}
	if b.p.trace != "" {
		name := fmt.Sprintf("auto-%s-R%g-b%d-n%d.txt", kind, rate, burst, n)
		if terr := writeEvents(filepath.Join(b.p.trace, name), events, t0); terr != nil {
			logf("trace: %v", terr)
		}
	}
	logf("auto (%s) R=%g→%g burst %d n=%d: %.1f s; after %.1f s: %.1f s against %d answered / %g = %.1f s (%.3f×), %d throttled (%.1f %%); %d calls, %d throttled (%.1f %%); rate found %.1f; memory writes %d (%.2f/s)%s",
		kind, rate, rateTo, burst, n, rec.WallSeconds, ar.CutSeconds, ar.TailSeconds, ar.AnsweredAfterCut, rateTo, ar.BoundSeconds, ar.TailRatio,
		ar.ThrottledAfterCut, ar.ThrottledAfterCutPercent(), rec.SSMCalls, rec.ThrottledCalls, ar.ThrottledPercent, ar.RateFound, rec.RateMemoryWrites, ar.MemoryWritesPerSecond,
		map[bool]string{true: fmt.Sprintf("; followed %.2f s after the change at %.2f s", ar.FollowSeconds, ar.ChangeAtSeconds), false: ""}[kind == "halving"])
	logf("auto: answered(+throttled) per second: %s", ar.SecondsText())
	return ar, nil
}

// runEngineAuto is the engine with CALLS_PER_SECOND=auto, wired as
// internal/wiring does: its rate memory is pace.NewMemory on the dedupe
// table (a fresh one per run: nothing is remembered, the rate is unknown),
// through the counting proxy.
func (b *bench) runEngineAuto(set associate.Settings) func(context.Context, int) func(context.Context) (outcome, error) {
	return b.runEngineOpts(set, engineOpts{rateMemory: true})
}

// rememberedRate reads the rate memory's item (uncounted): its rate, and
// the member leases it still holds.
func (b *bench) rememberedRate(ctx context.Context, table string) (float64, int, error) {
	dcfg := b.cfg.Copy()
	dcfg.BaseEndpoint = aws.String(b.ddb.Endpoint())
	out, err := awsclient.DynamoDB(dcfg).GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]ddbtypes.AttributeValue{dedupe.KeyAttribute: &ddbtypes.AttributeValueMemberS{Value: rateMemoryKey}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, 0, err
	}
	if out.Item == nil {
		return 0, 0, fmt.Errorf("no item %s in %s", rateMemoryKey, table)
	}
	members := 0
	for name := range out.Item {
		if strings.HasPrefix(name, "m_") {
			members++
		}
	}
	var rate float64
	if v, ok := out.Item["rate"].(*ddbtypes.AttributeValueMemberN); ok {
		_, _ = fmt.Sscan(v.Value, &rate)
	}
	return round(rate, 2), members, nil
}

// rateMemoryKey is the key of pace.Memory's item in the dedupe table.
const rateMemoryKey = "pace#CreateAssociationBatch"

// perSecond counts the calls of each second from t0 to the run's end.
func perSecond(events []callEvent, t0 time.Time, wall float64) []secondCounts {
	out := make([]secondCounts, int(math.Ceil(wall)))
	at := func(t time.Time) int { return int(t.Sub(t0) / time.Second) }
	for _, e := range events {
		if i := at(e.arrive); i >= 0 && i < len(out) {
			out[i].Arrived++
		}
		if i := at(e.done); i >= 0 && i < len(out) {
			if e.throttled {
				out[i].Throttled++
			} else {
				out[i].Answered++
			}
		}
	}
	return out
}

// follow is the time from change until the arrivals over a sliding 1 s
// window (throttled calls included) stay at or below limit to the end of
// the run, and the most arrivals in a window ending in the second before
// the change. A window ending at t counts the arrivals in (t−1 s, t]; its
// count only rises at an arrival, so the last window over the limit ends
// at an arrival, and it comes back within the limit when enough of its
// earliest arrivals have left it.
func follow(events []callEvent, change time.Time, limit float64) (float64, int) {
	at := make([]time.Time, len(events))
	for i, e := range events {
		at[i] = e.arrive
	}
	allowed := int(math.Floor(limit))
	lo, peak := 0, 0
	var back time.Time // when the last window over the limit came back within it
	for hi := range at {
		for at[hi].Sub(at[lo]) >= time.Second {
			lo++
		}
		count := hi - lo + 1
		if at[hi].Before(change) {
			if change.Sub(at[hi]) <= time.Second {
				peak = max(peak, count)
			}
			continue
		}
		if count > allowed {
			// It is back within the limit when its (count−allowed)-th
			// arrival leaves the window, 1 s after that arrival.
			back = at[lo+count-allowed-1].Add(time.Second)
		}
	}
	if back.IsZero() || !back.After(change) {
		return 0, peak
	}
	return round(back.Sub(change).Seconds(), 3), peak
}

// firstWithin is the time from change until a sliding 1 s window of
// arrivals first holds at most limit (on a 1 ms grid), and the most
// arrivals in a window ending after that.
func firstWithin(events []callEvent, change time.Time, limit float64) (float64, int) {
	if len(events) == 0 {
		return 0, 0
	}
	at := make([]time.Time, len(events))
	for i, e := range events {
		at[i] = e.arrive
	}
	count := func(t time.Time) int { // arrivals in (t−1 s, t]
		hi, _ := slices.BinarySearchFunc(at, t, func(a, t time.Time) int {
			if a.After(t) {
				return 1
			}
			return -1
		})
		lo, _ := slices.BinarySearchFunc(at, t.Add(-time.Second), func(a, t time.Time) int {
			if a.After(t) {
				return 1
			}
			return -1
		})
		return hi - lo
	}
	end := at[len(at)-1]
	first := time.Time{}
	for t := change; !t.After(end); t = t.Add(time.Millisecond) {
		if float64(count(t)) <= limit {
			first = t
			break
		}
	}
	if first.IsZero() {
		return round(end.Sub(change).Seconds(), 3), 0
	}
	peak := 0
	for i := range at {
		if at[i].After(first) {
			peak = max(peak, count(at[i]))
		}
	}
	return round(first.Sub(change).Seconds(), 3), peak
}

// writeEvents saves a run's calls: arrival and answer, seconds after t0,
// and whether SSM throttled it.
func writeEvents(path string, events []callEvent, t0 time.Time) error {
	var sb strings.Builder
	sb.WriteString("arrive\tanswer\tthrottled\n")
	for _, e := range events {
		fmt.Fprintf(&sb, "%.4f\t%.4f\t%t\n", e.arrive.Sub(t0).Seconds(), e.done.Sub(t0).Seconds(), e.throttled)
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// CallsAfterCut is the calls answered after the cut, throttled included.
func (a AutoRun) CallsAfterCut() int { return a.AnsweredAfterCut + a.ThrottledAfterCut }

// ThrottledAfterCutPercent is ThrottledAfterCut against CallsAfterCut:
// the target, "after the first 10 s".
func (a AutoRun) ThrottledAfterCutPercent() float64 {
	if n := a.CallsAfterCut(); n > 0 {
		return round(100*float64(a.ThrottledAfterCut)/float64(n), 2)
	}
	return 0
}

// SecondsText is the run second by second: calls answered, "+t" when t
// were throttled.
func (a AutoRun) SecondsText() string {
	parts := make([]string, len(a.Seconds))
	for i, s := range a.Seconds {
		parts[i] = fmt.Sprint(s.Answered)
		if s.Throttled > 0 {
			parts[i] += fmt.Sprintf("+%d", s.Throttled)
		}
	}
	return strings.Join(parts, " ")
}
