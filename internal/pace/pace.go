// Package pace sets the rate of CreateAssociationBatch calls. AWS publishes
// no rate for that API, so the rate is either fixed by the operator
// (CALLS_PER_SECOND=12) or found at run time (CALLS_PER_SECOND=auto), and
// then remembered between invocations and shared by those running at once
// (memory.go).
//
// An Adaptive rate, found from throttles:
//
//	start (remembered, or CALLS_PER_SECOND_START)
//	  │
//	  ▼
//	SLOW START ──a second without throttle, calls keeping up──► rate × 2
//	  │
//	  │ ThrottlingException
//	  ▼
//	CUT, once per second, by how many calls SSM throttled in the last second:
//	  in slow start: rate × 0.75 (the rate before the last doubling, or more);
//	  a tenth or more: rate = what SSM answered in that second × 0.95 (at
//	    least half, at most 0.9 of the rate), then two seconds without growth;
//	  fewer (one call that met SSM's bucket a little early, as jitter in
//	    the network does at a burst of one): rate × 0.97, and the probe goes
//	    on at half its step; another throttle within the second cuts to what
//	    SSM answered after all.
//	  │
//	  ▼
//	PROBE ──the k-th second without throttle, calls keeping up──► rate + step × 2^(k-1)
//	  │        (step: 2 % of the rate cut to; +2 %, +4 %, +8 %…, at most
//	  │         +15 % (or 1 call/s) a second: a few seconds near the rate found, and a
//	  │         rate SSM raised is found in seconds, not minutes)
//	  └──ThrottlingException──► CUT
//
// The rate never goes above its maximum (MAX_CALLS_PER_SECOND, shared by
// the invocations running at once) nor below MinRate. It grows only while
// the calls keep up with it: an engine waiting on its claims proves nothing
// about SSM's rate.
package pace

import (
	"sync"
	"time"
)

// Pacer is the rate calls go out at, told each answer and each throttle.
// Rate 0 means no limit.
type Pacer interface {
	Rate() float64
	Answered()
	Throttled()
}

// Fixed is CALLS_PER_SECOND as a number: that rate, slowed by throttles
// (× 0.85, down to a quarter) and brought back by answers (+2 % of the
// rate each), as TCP's AIMD: calling at exactly the rate SSM allows leaves
// no slack for jitter.
type Fixed struct {
	mu           sync.Mutex
	target, rate float64
}

// NewFixed paces at callsPerSecond; 0 means no limit.
func NewFixed(callsPerSecond float64) *Fixed {
	return &Fixed{target: callsPerSecond, rate: callsPerSecond}
}

func (f *Fixed) Rate() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rate
}

func (f *Fixed) Throttled() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.target > 0 {
		f.rate = max(f.rate*0.85, f.target/4)
	}
}

func (f *Fixed) Answered() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rate < f.target {
		f.rate = min(f.target, f.rate+f.target*0.02)
	}
}

// MinRate is the lowest rate Adaptive goes down to: one call every 5 s.
const MinRate = 0.2

const (
	interval = time.Second // growth is judged once per interval
	window   = time.Second // what SSM answered over it measures its rate
)

// Adaptive finds the rate SSM allows (see the package comment).
type Adaptive struct {
	mu        sync.Mutex
	now       func() time.Time
	rate, max float64
	slowStart bool

	// the interval being judged
	from      time.Time
	calls     int  // answered or throttled in it
	throttled bool // a throttle in it
	clean     int  // intervals without throttle since the last cut
	step      float64
	lastCut   time.Time
	mild      bool        // the last cut was a mild one: another throttle within the interval is not jitter
	found     float64     // the rate after the last cut to what SSM answered; 0: none yet
	answers   []time.Time // within window
	throttles []time.Time // within window
	born      time.Time   // the first answers measure less than a window
}

// NewAdaptive starts at start calls/s (in slow start), never above maxRate.
func NewAdaptive(start, maxRate float64, now func() time.Time) *Adaptive {
	if now == nil {
		now = time.Now
	}
	a := &Adaptive{now: now, max: max(maxRate, MinRate), slowStart: true}
	a.rate = clamp(start, MinRate, a.max)
	a.step = stepFor(a.rate)
	a.from, a.born = now(), now()
	return a
}

// Resume starts at a rate found earlier instead (remembered, or a share of
// the account's): no slow start, which would double past it at once.
func (a *Adaptive) Resume(rate float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rate = clamp(rate, MinRate, a.max)
	a.slowStart, a.clean, a.step = false, 0, stepFor(a.rate)
	a.from, a.calls, a.throttled = a.now(), 0, false
}

// SetMax changes the maximum (the account's maximum shared by the
// invocations running at once); a rate above it comes down to it.
func (a *Adaptive) SetMax(maxRate float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.max = max(maxRate, MinRate)
	a.rate = min(a.rate, a.max)
}

// Scale multiplies the rate by f: the share taken when invocations join
// or leave.
func (a *Adaptive) Scale(f float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rate = clamp(a.rate*f, MinRate, a.max)
}

func (a *Adaptive) Rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rate
}

// Found is the rate to remember: the rate cut to after SSM last throttled,
// or the rate if it never did (or has allowed more since without a
// throttle, then the lower of the two): a probe in progress is not a rate
// SSM allowed.
func (a *Adaptive) Found() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.found <= 0 {
		return a.rate
	}
	return min(a.rate, a.found*(1+maxProbe))
}

// SlowStart reports whether no throttle was seen yet.
func (a *Adaptive) SlowStart() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.slowStart
}

func (a *Adaptive) Answered() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.answers = append(a.answers, now)
	a.calls++
	a.judge(now)
}

func (a *Adaptive) Throttled() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.calls++
	a.throttled = true
	a.throttles = append(a.throttles, now)
	recent := !a.lastCut.IsZero() && now.Sub(a.lastCut) < interval
	// The calls in flight when SSM started refusing come back throttled
	// together: one cut to what SSM answered per interval.
	if recent && !a.mild {
		return
	}
	a.trim(now)
	answered, throttled := float64(len(a.answers)), float64(len(a.throttles))
	a.mild = !a.slowStart && !recent && throttled < 0.1*(answered+throttled)
	switch {
	case a.mild:
		a.rate = clamp(a.rate*0.97, MinRate, a.max)
		a.clean /= 2
	case a.slowStart:
		// What SSM answered in the last second was paced before the last
		// doubling: it says little. Three quarters of the rate refused
		// is at least as much as the rate before it.
		a.rate = clamp(a.rate*0.75, MinRate, a.max)
		a.step, a.clean, a.found = stepFor(a.rate), 0, a.rate
	default:
		measured := answered / max(min(window, now.Sub(a.born)), interval/10).Seconds()
		a.rate = clamp(max(a.rate*0.5, min(a.rate*0.9, measured*0.95)), MinRate, a.max)
		a.step, a.clean, a.found = stepFor(a.rate), -holdAfterCut, a.rate
	}
	a.slowStart, a.lastCut = false, now
	a.from, a.calls, a.throttled = now, 0, false
}

// maxProbe bounds one second's growth while probing, as a share of the
// rate: a step past SSM's rate costs the throttles of a second.
const maxProbe = 0.15

// holdAfterCut is the seconds without growth after a cut to what SSM
// answered: the rate found is held a while before probing past it again.
const holdAfterCut = 2

// judge grows the rate at the end of an interval without throttle in which
// the calls kept up with it.
func (a *Adaptive) judge(now time.Time) {
	el := now.Sub(a.from)
	if el < interval {
		return
	}
	keptUp := float64(a.calls) >= 0.8*a.rate*el.Seconds()
	switch {
	case a.throttled, !keptUp:
	case a.slowStart:
		a.rate = min(a.rate*2, a.max)
	default:
		if a.clean++; a.clean > 0 {
			step := min(a.step*float64(uint(1)<<min(a.clean-1, 20)), max(a.rate*maxProbe, 1))
			a.rate = min(a.rate+step, a.max)
		}
	}
	a.from, a.calls, a.throttled = now, 0, false
	a.trim(now)
}

func (a *Adaptive) trim(now time.Time) {
	a.answers = within(a.answers, now)
	a.throttles = within(a.throttles, now)
}

// within drops the times older than window.
func within(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) > window {
		i++
	}
	return ts[i:]
}

// stepFor is the additive step after a cut at rate: 2 % of it, at least
// 0.05 call/s.
func stepFor(rate float64) float64 { return max(rate*0.02, 0.05) }

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }
