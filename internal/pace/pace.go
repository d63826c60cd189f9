// Package pace sets the rate of CreateAssociationBatch calls. AWS publishes
// no rate for that API, so the rate is either fixed by the operator
// (CALLS_PER_SECOND=12) or found at run time (CALLS_PER_SECOND=auto), and
// then remembered between invocations and shared by those running at once
// (memory.go).
//
// An Adaptive rate is found from throttles, by bisection between lo, the
// highest rate held an interval (1 s) without throttle, and hi, the
// lowest rate refused. Each throttle is judged at the rate its call went
// out at: the calls in flight at a rate already cut from cut nothing more.
//
//	start: CALLS_PER_SECOND_START, or a rate remembered (then PROBE from it)
//	  │
//	  ▼
//	SLOW START ──a clean interval, calls keeping up──► rate × 2, at most the
//	  │          maximum; held an interval there: AT THE CEILING (a rate held)
//	  │ throttled at s: lo = rate = s/2 (held the interval before; the rate
//	  │ held, when the maximum cut the last step short), hi = s
//	  ▼
//	BISECT ──a clean interval──► lo = rate; rate = (lo + hi)/2, at most +15 %
//	  │      ──throttled at s above lo──► hi = s; rate = (lo + hi)/2, or lo
//	  │        when refused again before a clean interval
//	  │
//	  │  throttled at s ≤ lo, a rate held:
//	  │    isolated, at most 2 in 100 calls: JITTER, the rate stays;
//	  │    more: lo = rate = s × 0.97, twice at most before a clean
//	  │    interval, unless within 20 calls of a cut other than a step
//	  │    of the bisection;
//	  │    past those (SSM's rate fell, or a burst of tokens spent): lo
//	  │    unproven, rate = s × 0.9, then × 0.75 until an interval is
//	  │    clean
//	  │
//	  │ hi within 2 % of lo: rate = lo
//	  ▼
//	AT THE CEILING ──3 s and probeAfterCalls calls there──►
//	PROBE past it: rate × 1.02, then + 2 %, 4 %, 8 % … (at most 15 %) each
//	  │ clean interval: a rate SSM raised is found in seconds
//	  └──throttled at s──► hi = s, BISECT; rate = lo at once when the first
//	     step past the ceiling was refused: it still holds
//
// Sharing the memory (memory.go), a member that had no call throttled
// since its last Sync and finds its share of the rate the others hold
// above its own FOLLOWs it: it resumes from that share.
//
// At a bucket of one token every call that reaches SSM less than 1/R after
// the previous one is throttled, so a rate a little above R is refused at
// once and the bracket closes on R within a few seconds; a call a little
// late and the next on time are refused too, which JITTER lets pass. A
// bucket of more tokens lets a rate above R seem clean for seconds, and is
// found by refusals soon after a cut. The rate never goes above its
// maximum (MAX_CALLS_PER_SECOND, shared by the invocations running at
// once) nor below MinRate. It grows only while the calls keep up with it:
// an engine waiting on its claims proves nothing about SSM's rate.
package pace

import (
	"sync"
	"time"
)

// Pacer is the rate calls go out at, told each answer and each throttle
// with the rate the throttled call went out at. Rate 0 means no limit.
type Pacer interface {
	Rate() float64
	Answered()
	Throttled(sent float64)
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

// Throttled slows the pace whatever rate the call went out at.
func (f *Fixed) Throttled(float64) {
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
	interval = time.Second // a rate is judged clean after an interval without throttle
	// tight: hi within this share of lo is the ceiling found.
	tight = 0.02
	// mildCut is the cut after a throttle at the rate held, past jitter;
	// mildCuts of them at most before a clean interval.
	mildCut, mildCuts = 0.97, 2
	// maxProbe bounds one interval's growth, as a share of the rate: a
	// step past SSM's rate costs a throttle or two.
	maxProbe = 0.15
	// window and tolerated: throttles at a rate held are jitter while at
	// most tolerated in the last window calls (2 %), window/tolerated
	// calls apart.
	window, tolerated = 100, 2
	// againCalls: a throttle at a rate held within this many calls of
	// the last cut is a rate refused again.
	againCalls = 20
	// probeAfter is the least time at the ceiling before a probe past it,
	// and probeAfterCalls the least calls: a refused probe costs one
	// throttled call, at most one in probeAfterCalls.
	probeAfter      = 3 * time.Second
	probeAfterCalls = 50
)

// fallCuts are the cuts after the 2nd, 3rd, 4th … throttle with no clean
// interval between: SSM's rate fell (a halving is followed in five).
var fallCuts = [...]float64{0.9, 0.75}

// Adaptive finds the rate SSM allows (see the package comment).
type Adaptive struct {
	mu          sync.Mutex
	now         func() time.Time
	rate, max   float64
	slowStart   bool
	lo, hi      float64 // the highest rate held clean (0: none proven), the lowest refused since (0: none)
	mild        int     // cuts of mildCut since the last clean interval
	falls       int     // cuts for SSM's rate falling since the last clean interval
	down        bool    // a bisection down since the last clean interval
	refusedHere bool    // hi was refused in this invocation, not remembered
	count       int     // calls answered or throttled, in all
	cutAt       int     // count at the last cut
	refused     []int   // count at each throttle at a rate held, of the last window calls
	// throttledSince: a call was throttled since the last Follow.
	throttledSince bool

	// the interval being judged (from zero: none before the first answer)
	from  time.Time
	calls int // answered or throttled in it

	// at the ceiling, and probing past it
	topSince time.Time // when the ceiling was reached (zero: not at it)
	topAt    int       // count then
	probe    int       // clean intervals probing (0: not probing)
	probedAt float64   // the ceiling the probe started from
}

// NewAdaptive starts at start calls/s (in slow start), never above maxRate.
func NewAdaptive(start, maxRate float64, now func() time.Time) *Adaptive {
	if now == nil {
		now = time.Now
	}
	a := &Adaptive{now: now, max: max(maxRate, MinRate), slowStart: true}
	a.rate = clamp(start, MinRate, a.max)
	return a
}

// Resume starts from a rate found earlier instead (remembered, or a share
// of the account's), held, and the ceiling refused above it (0: none
// known): no slow start, which would double past it at once, but the
// bisection between them, or a probe from it when no ceiling is known, as
// SSM's rate may have risen since.
func (a *Adaptive) Resume(rate, ceiling float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.resume(rate, ceiling)
}

// Follow takes up share, this member's share of the rate the last member
// to write the memory held, with its ceiling, when share is above the rate
// and no call was throttled since the last Follow; it reports whether it
// did. Throttles shared by members (slow starts together, a burst spent
// together) can leave one far below the others, and at a ceiling of its
// own it would probe up only after probeAfterCalls calls: 10 s at 5/s.
func (a *Adaptive) Follow(share, ceiling float64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	clean := !a.throttledSince
	a.throttledSince = false
	if !clean || !above(min(share, a.max), a.rate*(1+tight)) {
		return false
	}
	a.resume(share, ceiling)
	return true
}

func (a *Adaptive) resume(rate, ceiling float64) {
	a.lo = clamp(rate, MinRate, a.max)
	a.rate, a.hi, a.probe = a.lo, 0, 1
	if ceiling > a.lo {
		a.hi, a.probe = ceiling, 0
		a.rate = min(a.bisect(), a.lo*(1+maxProbe), a.max)
	}
	a.slowStart, a.mild, a.falls, a.down, a.refusedHere = false, 0, 0, false, false
	a.topSince, a.probedAt = time.Time{}, 0
	a.from, a.calls = time.Time{}, 0
}

// SetMax changes the maximum (the account's maximum shared by the
// invocations running at once); a rate above it comes down to it.
func (a *Adaptive) SetMax(maxRate float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.max = max(maxRate, MinRate)
	a.rate = min(a.rate, a.max)
}

// Scale multiplies the rate and its bracket by f: the share taken when
// invocations join or leave.
func (a *Adaptive) Scale(f float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rate = clamp(a.rate*f, MinRate, a.max)
	a.lo, a.hi, a.probedAt = a.lo*f, a.hi*f, a.probedAt*f
}

func (a *Adaptive) Rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rate
}

// Estimate is what to remember: the rate found, the highest rate held
// clean (not a probe in progress; the rate itself before any was), and the
// lowest rate refused above it in this invocation (0: none).
func (a *Adaptive) Estimate() Estimate {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := Estimate{Rate: a.rate}
	if a.lo > 0 {
		e.Rate = min(a.lo, a.max)
	}
	if a.refusedHere && a.hi > e.Rate {
		e.Ceiling = a.hi
	}
	return e
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
	a.calls++
	a.count++
	a.judge(a.now())
}

// Throttled takes a throttle of a call that went out at sent calls/s.
func (a *Adaptive) Throttled(sent float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	a.count++
	a.throttledSince = true
	s := sent
	if s <= 0 {
		s = a.rate
	}
	if above(s, a.rate) {
		// It went out before the last cut: that rate is already known to
		// be too high.
		if a.hi <= 0 || s < a.hi {
			a.hi, a.refusedHere = s, true
		}
		return
	}
	if a.tolerates(s) {
		return
	}
	refusedProbe := a.probe > 0 && s <= a.probedAt*(1+tight)
	recent, prevHi := a.count-a.cutAt, a.hi
	a.hi, a.cutAt, a.refusedHere = s, a.count, true
	switch {
	case a.slowStart:
		// The rate before the last doubling was held clean; with a burst
		// of tokens it may have only seemed so, so from it, not from
		// the middle, the bisection climbs. When the maximum cut the
		// last step short (10 to a share of 12.5), the rate before it is
		// more than half the rate refused: from it.
		held := a.lo
		a.lo = s / 2
		if above(held, a.lo) && above(s, held) {
			a.lo = held
		}
		a.rate = a.lo
	case a.lo > 0 && above(s, a.lo):
		// Half way down to the rate held; to it when refused again
		// before a clean interval, or on a probe's first step.
		a.rate = a.bisect()
		if refusedProbe || a.down {
			a.rate = a.lo
		}
		a.down = true
	case a.lo > 0 && a.falls == 0 && a.mild < mildCuts && (a.mild > 0 || a.down || recent >= againCalls):
		// The rate held clean, refused more than jitter explains: on
		// busy cores a late call and the next on time, twice within a
		// second now and then at a bucket of one (a cut of 10 % for the
		// second cost 1.15× to 1.2× at 40 calls/s); a burst spent; or
		// the first sign of SSM's rate falling. Right after a step of
		// the bisection was refused, lo held clean a whole interval.
		// The rate refused before stays the bisection's top.
		a.lo = s * mildCut
		a.hi = max(prevHi, s)
		a.rate = a.lo
		a.mild++
	default:
		// Refused again past the mild cuts before any interval was
		// clean, or within againCalls of the last cut (a burst of tokens
		// lets a rate above SSM's seem clean for a second), or nothing
		// held clean yet (a remembered start): lo no longer holds. Cut
		// deeper each time until an interval is clean.
		a.lo = 0
		a.rate = s * fallCuts[min(a.falls, len(fallCuts)-1)]
		a.falls++
	}
	a.rate = clamp(a.rate, MinRate, a.max)
	a.slowStart, a.probe, a.topSince = false, 0, time.Time{}
	a.from, a.calls = a.now(), 0
}

// tolerates reports whether a throttle at s is jitter to let pass: at a
// rate held clean, at most tolerated such in the last window calls and
// none in the last window/tolerated. At a bucket of one token a call that
// reaches SSM a little late and the next one on time are less than 1/R
// apart; cutting for each such throttle would sink the rate far below
// SSM's. A burst of tokens spent by a rate a little above SSM's is
// refused at a steady beat instead.
func (a *Adaptive) tolerates(s float64) bool {
	for len(a.refused) > 0 && a.refused[0] <= a.count-window {
		a.refused = a.refused[1:]
	}
	if a.slowStart || a.lo <= 0 || above(s, a.lo) || a.count-a.cutAt < againCalls {
		// A rate not held yet is the bisection's business; one refused
		// soon after a cut, a burst's tokens spent.
		return false
	}
	isolated := len(a.refused) == 0 || a.count-a.refused[len(a.refused)-1] >= window/tolerated
	a.refused = append(a.refused, a.count)
	return isolated && len(a.refused) <= tolerated
}

// open reports whether hi is more than tight above lo: the ceiling is not
// found yet.
func (a *Adaptive) open() bool { return a.hi-a.lo > tight*a.hi }

// bisect is the rate between lo and hi, or lo once the ceiling is found.
func (a *Adaptive) bisect() float64 {
	if !a.open() {
		return a.lo
	}
	return (a.lo + a.hi) / 2
}

// judge moves the rate at the end of an interval without throttle in
// which the calls kept up with it: that rate is held clean.
func (a *Adaptive) judge(now time.Time) {
	if a.from.IsZero() {
		// The first answer starts the first interval: an invocation's
		// claims before its first call say nothing of SSM's rate.
		a.from, a.calls = now, 0
		return
	}
	el := now.Sub(a.from)
	if el < interval {
		return
	}
	keptUp := float64(a.calls) >= 0.8*a.rate*el.Seconds()
	a.from, a.calls = now, 0
	if !keptUp {
		return
	}
	a.mild, a.falls, a.down = 0, 0, false
	a.lo = a.rate
	switch {
	case a.slowStart && !above(a.max, a.rate):
		// Held clean at the maximum: slow start ends there, at a rate
		// held, where an isolated throttle is jitter and more cut it by
		// 3 %, not by half.
		a.slowStart = false
	case a.slowStart:
		a.rate = min(a.rate*2, a.max)
	case a.probe > 0:
		a.probe++
		a.rate = min(a.rate*(1+min(tight*float64(uint(1)<<min(max(a.probe-2, 0), 20)), maxProbe)), a.max)
	case a.open():
		// Half way to the rate refused, at most maxProbe more: a rate
		// refused while SSM's was falling says little of the new one.
		a.rate = min(a.bisect(), a.lo*(1+maxProbe))
	case a.topSince.IsZero():
		a.topSince, a.topAt = now, a.count
	case now.Sub(a.topSince) >= probeAfter && a.count-a.topAt >= probeAfterCalls:
		// Long enough at the ceiling: SSM may allow more now.
		a.probedAt, a.probe, a.topSince = max(a.hi, a.lo), 1, time.Time{}
		a.rate = min(a.rate*(1+tight), a.max)
	}
}

// above reports whether rate a is above b, rounding aside.
func above(a, b float64) bool { return a > b*(1+1e-9) }

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }
