package pace

import (
	"testing"
	"time"
)

// callsAt is n answered calls spread over one second.
func callsAt(a *Adaptive, c *clock, n int) {
	for range n {
		c.add((time.Second + time.Duration(n) - 1) / time.Duration(n))
		a.Answered()
	}
}

// resumed is an Adaptive resumed at rate and ceiling, its first interval
// started by a first answer.
func resumed(rate, ceiling float64) (*Adaptive, *clock) {
	c := newClock()
	a := NewAdaptive(5, 1000, c.now)
	a.Resume(rate, ceiling)
	a.Answered() // the first answer starts the first interval
	return a, c
}

// heldAt is an Adaptive at its ceiling r: resumed at r, held a second,
// refused 2 % above and back at r, held a second again.
func heldAt(t *testing.T, r float64) (*Adaptive, *clock) {
	t.Helper()
	a, c := resumed(r, 0)
	clean(a, c)
	a.Throttled(r * 1.02)
	wantRate(t, a, r, "refused within 2 % of the rate held: back to it")
	clean(a, c)
	return a, c
}

// clean is one second of calls at the rate, none throttled.
func clean(a *Adaptive, c *clock) { callsAt(a, c, int(a.Rate())+1) }

func wantRate(t *testing.T, a *Adaptive, want float64, why string) {
	t.Helper()
	if got := a.Rate(); !near(got, want) {
		t.Fatalf("rate %v, want %v: %s", got, want, why)
	}
}

func TestAdaptiveSlowStartDoublesWhileCallsKeepUp(t *testing.T) {
	c := newClock()
	a := NewAdaptive(5, 50, c.now)
	a.Answered() // the first answer starts the first interval
	for _, want := range []float64{10, 20, 40, 50} {
		callsAt(a, c, int(a.Rate()))
		wantRate(t, a, want, "doubling, capped at 50")
	}
	if !a.SlowStart() {
		t.Error("no throttle yet, 50 not held an interval: still in slow start")
	}
	callsAt(a, c, 50)
	wantRate(t, a, 50, "held at the maximum")
	if a.SlowStart() {
		t.Error("held an interval at the maximum: slow start ends")
	}
}

// slowStartCappedAt12_5 is slow start from 5 under a maximum of 12.5 (a
// job worker's share of 50): 5, 10, then 12.5 instead of 20.
func slowStartCappedAt12_5(t *testing.T) (*Adaptive, *clock) {
	t.Helper()
	c := newClock()
	a := NewAdaptive(5, 12.5, c.now)
	a.Answered()
	callsAt(a, c, 5)
	callsAt(a, c, 10)
	wantRate(t, a, 12.5, "10 doubled, capped at 12.5")
	return a, c
}

// A job's four workers each take a share of 12.5 of a maximum of 50: slow
// start ends held there, and SSM throttling it now and then (four workers'
// calls bunching at a bucket of four) costs 3 %, not half the rate: 6.25
// climbed back to 12 in five seconds.
func TestAdaptiveSlowStartHeldAtTheMaximumIsARateHeld(t *testing.T) {
	a, c := slowStartCappedAt12_5(t)
	callsAt(a, c, 13)
	wantRate(t, a, 12.5, "held at the maximum")
	a.Throttled(12.5)
	wantRate(t, a, 12.5, "an isolated throttle at a rate held: jitter")
	callsAt(a, c, 5)
	a.Throttled(12.5)
	wantRate(t, a, 12.5*mildCut, "refused again within 50 calls: more than jitter, a mild cut")
}

// The maximum cut slow start's last step short (10 to 12.5): refused there
// before it held, the rate goes back to the 10 held, not to half of 12.5.
func TestAdaptiveCappedSlowStartRefusedFallsToTheRateHeld(t *testing.T) {
	a, c := slowStartCappedAt12_5(t)
	a.Throttled(12.5)
	wantRate(t, a, 10, "10 was held clean; 12.5 refused")
	clean(a, c)
	wantRate(t, a, 11.25, "half way to the rate refused")
}

func TestAdaptiveDoesNotGrowWhenCallsDoNotKeepUp(t *testing.T) {
	c := newClock()
	a := NewAdaptive(10, 50, c.now)
	a.Answered()     // the first answer starts the first interval
	callsAt(a, c, 3) // the engine had only 3 calls to make in that second
	wantRate(t, a, 10, "a second of 3 calls at 10/s proves nothing")
}

// An invocation's claims come before its first call: the first interval
// starts at the first answer, so a second of calls after them counts.
func TestAdaptiveJudgesFromTheFirstAnswer(t *testing.T) {
	c := newClock()
	a := NewAdaptive(10, 50, c.now)
	c.add(500 * time.Millisecond) // claims
	for range 11 {                // answers from 0.6 s to 1.6 s
		c.add(100 * time.Millisecond)
		a.Answered()
	}
	wantRate(t, a, 20, "a second of 10 calls from the first answer: slow start doubles")
}

// slowStartTo40 is slow start from 10, throttled at 40.
func slowStartTo40(t *testing.T) (*Adaptive, *clock) {
	c := newClock()
	a := NewAdaptive(10, 100, c.now)
	a.Answered() // the first answer starts the first interval
	callsAt(a, c, 10)
	callsAt(a, c, 20)
	a.Throttled(40)
	if a.SlowStart() {
		t.Fatal("a throttle ends slow start")
	}
	return a, c
}

func TestAdaptiveLeavesSlowStartAtTheRateBeforeTheLastDoubling(t *testing.T) {
	a, _ := slowStartTo40(t)
	wantRate(t, a, 20, "20 was held clean; 40 refused")
}

// The calls in flight at 40 come back throttled after the cut: their rate
// is already known too high, and they cut nothing more.
func TestAdaptiveThrottlesOfCallsSentBeforeACutCutNothing(t *testing.T) {
	a, c := slowStartTo40(t)
	for range 5 {
		c.add(10 * time.Millisecond)
		a.Throttled(40)
	}
	wantRate(t, a, 20, "throttles of calls sent at 40")
}

// Between the rate held clean and the rate refused, the rate halves the
// gap each second, up when the second was clean, down when refused, and
// stays once the gap is within 2 %.
func TestAdaptiveBisectsBetweenHeldAndRefused(t *testing.T) {
	a, c := slowStartTo40(t) // [20, 40]
	clean(a, c)
	wantRate(t, a, 23, "held 20: up, at most 15 % a second")
	clean(a, c)
	wantRate(t, a, 26.45, "held 23: up 15 %")
	clean(a, c)
	wantRate(t, a, 30.4175, "held 26.45: up 15 %")
	a.Throttled(30.4175)
	wantRate(t, a, (26.45+30.4175)/2, "refused above the rate held: half way down")
	r := a.Rate()
	clean(a, c)
	wantRate(t, a, (r+30.4175)/2, "held: half way up to the rate refused")
	clean(a, c)
	clean(a, c)
	held := a.Rate()
	if held < 30.4175*(1-tight) || held >= 30.4175 {
		t.Fatalf("rate %v, want within 2 %% under the rate refused, 30.4175", held)
	}
	clean(a, c)
	wantRate(t, a, held, "at the ceiling: it stays")
	if got := a.Estimate().Rate; !near(got, held) {
		t.Errorf("found %v, want the rate held %v", got, held)
	}
}

// jitter is the throttles at the rate held that tolerates lets pass, each
// after window/tolerated answers.
func jitter(t *testing.T, a *Adaptive, c *clock) {
	t.Helper()
	r := a.Rate()
	for range tolerated {
		for range window / tolerated {
			c.add(10 * time.Millisecond)
			a.Answered()
		}
		a.Throttled(r)
		wantRate(t, a, r, "a throttle at the rate held, isolated, few in the last calls: jitter")
	}
}

// Throttles at a rate held clean, isolated and at most 2 in the last 100
// calls, are jitter: the rate stays. One more cuts it.
func TestAdaptiveToleratesJitter(t *testing.T) {
	a, c := heldAt(t, 30)
	jitter(t, a, c)
	a.Throttled(30)
	wantRate(t, a, 30*mildCut, "a third throttle in 100 calls, right after the second")
}

// A throttle at a rate held clean past the jitter cuts it by 3 %, and
// another before an interval is clean by 3 % again (on busy cores two
// come within a second now and then); a third means SSM's rate fell: × 0.9,
// then × 0.75 until clean.
func TestAdaptiveCutsMildlyThenFollowsAFall(t *testing.T) {
	a, c := heldAt(t, 30)
	jitter(t, a, c)
	a.Throttled(30)
	wantRate(t, a, 30*mildCut, "one throttle at the rate held, past the jitter")
	want := 30 * mildCut
	for _, cut := range []float64{mildCut, 0.9, 0.75, 0.75} {
		c.add(50 * time.Millisecond)
		a.Throttled(want)
		want *= cut
		wantRate(t, a, want, "refused again before a clean interval")
	}
	clean(a, c)
	if got := a.Rate(); got <= want || got > want*(1+maxProbe)+1e-9 {
		t.Errorf("rate %v after a clean second at %v: want a climb of at most 15 %%", got, want)
	}
}

// A throttle at the rate held past the jitter, within againCalls answers
// of the last cut, is a rate refused again although a second was clean
// between: a burst of tokens let it seem so. Later, it is a mild cut.
func TestAdaptiveThrottleSoonAfterACutIsRefusedAgain(t *testing.T) {
	for _, soon := range []bool{true, false} {
		a, c := heldAt(t, 10) // 11 answers since the cut
		want := 10 * 0.9
		if !soon {
			jitter(t, a, c) // and 100 answers more
			want = 10 * mildCut
		}
		a.Throttled(10)
		wantRate(t, a, want, "a throttle at the rate held")
	}
}

// Right after a step of the bisection was refused, a throttle at the rate
// held (clean a whole interval) is a mild cut, not a fall, however soon.
func TestAdaptiveThrottleAtTheRateHeldAfterARefusedStepIsMild(t *testing.T) {
	a, c := heldAt(t, 30) // at the ceiling, 30 held, 30.6 refused
	for range 3 {
		clean(a, c) // 3 s there: a probe 2 % past it
	}
	probe := a.Rate()
	if !above(probe, 30) {
		t.Fatalf("rate %v after 3 clean seconds at the ceiling, want a probe past 30", probe)
	}
	a.Throttled(probe)
	wantRate(t, a, 30, "a probe's first step refused: back to the rate held")
	c.add(50 * time.Millisecond)
	a.Answered()
	a.Throttled(30)
	wantRate(t, a, 30*mildCut, "refused at the rate held, 1 call after the refused step")
	c.add(50 * time.Millisecond)
	a.Throttled(30 * mildCut)
	wantRate(t, a, 30*mildCut*mildCut, "refused again: mildly, a second time")
	c.add(50 * time.Millisecond)
	a.Throttled(30 * mildCut * mildCut)
	wantRate(t, a, 30*mildCut*mildCut*0.9, "a third time: SSM's rate fell")
}

// A remembered start refused at once: nothing held yet, a cut of 10 %.
func TestAdaptiveResumedRefusedAtOnce(t *testing.T) {
	a, _ := resumed(30, 0)
	a.Throttled(30)
	wantRate(t, a, 27, "nothing held: × 0.9")
}

// At the ceiling for 3 s and probeAfterCalls calls, the rate probes past
// it: + 2 %, then 2 %, 4 %, 8 % … at most 15 % a clean second. A first step
// refused goes back to the ceiling at once.
func TestAdaptiveProbesPastTheCeiling(t *testing.T) {
	a, c := heldAt(t, 100) // at the ceiling from now
	for range 2 {
		clean(a, c)
		wantRate(t, a, 100, "at the ceiling")
	}
	clean(a, c)
	wantRate(t, a, 102, "3 s and 300 answers at the ceiling: probe")
	a.Throttled(102)
	wantRate(t, a, 100, "the probe's first step refused: the ceiling holds")
	for range 4 {
		clean(a, c)
	}
	wantRate(t, a, 102, "3 s at the ceiling again: probe")
	r := a.Rate()
	var steps []float64
	for range 5 {
		clean(a, c)
		steps = append(steps, a.Rate()/r-1)
		r = a.Rate()
	}
	for i, want := range []float64{0.02, 0.04, 0.08, 0.15, 0.15} {
		if !near(steps[i], want) {
			t.Fatalf("probe steps %v, want + 2, 4, 8, 15, 15 %% (the cap)", steps)
		}
	}
	if got := a.Estimate().Rate; got >= a.Rate() {
		t.Errorf("found %v while probing at %v: want the rate last held, not the probe", got, a.Rate())
	}
}

func TestAdaptiveNeverLeavesItsBounds(t *testing.T) {
	c := newClock()
	a := NewAdaptive(0, 8, c.now)
	a.Answered() // the first answer starts the first interval
	wantRate(t, a, MinRate, "start 0")
	for range 20 {
		c.add(2 * time.Second)
		a.Throttled(a.Rate())
	}
	wantRate(t, a, MinRate, "throttles with no answer")
	for range 100 {
		callsAt(a, c, 10)
		if a.Rate() > 8 {
			t.Fatalf("rate %v above the maximum 8", a.Rate())
		}
	}
	wantRate(t, a, 8, "the maximum")
	a.SetMax(3)
	wantRate(t, a, 3, "after SetMax(3)")
	a.Scale(10)
	wantRate(t, a, 3, "Scale beyond the maximum")
	a.Scale(0.5)
	wantRate(t, a, 1.5, "Scale(0.5)")
}

func TestAdaptiveResumesWithoutSlowStart(t *testing.T) {
	a, c := resumed(30, 0)
	callsAt(a, c, 30)
	wantRate(t, a, 30.6, "resumed at 30: a probe's first step, not slow start's doubling")
	a.Throttled(30.6)
	wantRate(t, a, 30, "refused above 30, held")
}

func TestFixedIsTodaysPace(t *testing.T) {
	f := NewFixed(10)
	f.Throttled(10)
	if got := f.Rate(); !near(got, 8.5) {
		t.Errorf("after a throttle: %v, want 8.5", got)
	}
	for range 100 {
		f.Throttled(20) // whatever rate it went out at
	}
	if got := f.Rate(); got != 2.5 {
		t.Errorf("floor: %v, want a quarter of 10", got)
	}
	for range 100 {
		f.Answered()
	}
	if got := f.Rate(); got != 10 {
		t.Errorf("back to %v, want 10 and never above", got)
	}
	u := NewFixed(0)
	u.Throttled(0)
	if u.Rate() != 0 {
		t.Error("0 stays unlimited")
	}
}

// A remembered ceiling resumes the bisection; the ceiling is remembered
// again only when refused in this invocation.
func TestAdaptiveResumesBetweenTheRateAndTheCeiling(t *testing.T) {
	a, _ := resumed(10, 20)
	wantRate(t, a, 11.5, "half way to the ceiling 20, at most 15 % above the rate held")
	if e := a.Estimate(); e != (Estimate{Rate: 10}) {
		t.Errorf("estimate %+v before any refusal here, want the rate held and no ceiling", e)
	}
	a.Throttled(11.5)
	wantRate(t, a, 10.75, "refused at 11.5: half way down to 10")
	if e := a.Estimate(); e != (Estimate{Rate: 10, Ceiling: 11.5}) {
		t.Errorf("estimate %+v, want 10 held and 11.5 refused", e)
	}
	a.Resume(10, 10.1)
	a.Answered() // the first answer starts the first interval
	wantRate(t, a, 10, "a ceiling within 2 %: at it")
}

// A member left at its own ceiling far below the others (throttles shared
// at the start) takes up its share of the rate they hold at its next sync,
// unless one of its calls was throttled since the last: then the share
// may be what is refused.
func TestAdaptiveFollowsTheOthersWhenClean(t *testing.T) {
	a, c := heldAt(t, 5)
	if a.Follow(12.5, 0) {
		t.Fatal("refused at 5.1 since it started: want the share not followed")
	}
	clean(a, c)
	if !a.Follow(12.5, 0) {
		t.Fatal("clean since the last sync, at 5 against a share of 12.5: want it followed")
	}
	wantRate(t, a, 12.5, "the share the others hold")
	if e := a.Estimate(); !near(e.Rate, 12.5) {
		t.Errorf("estimate %+v: want the share held", e)
	}
	clean(a, c)
	clean(a, c)
	if a.Rate() <= 12.5 {
		t.Errorf("rate %v: no ceiling known, want a probe past the share", a.Rate())
	}

	b, _ := heldAt(t, 5)
	b.Follow(0, 0) // a sync
	b.Throttled(5)
	held := b.Rate()
	if b.Follow(12.5, 0) {
		t.Error("throttled since the last sync: want the share not followed")
	}
	wantRate(t, b, held, "not followed")
	if !b.Follow(12.5, 0) {
		t.Error("clean since the last sync: want the share followed")
	}

	d, _ := heldAt(t, 10)
	d.Follow(0, 0)
	for _, share := range []float64{10, 10.1, 8} {
		if d.Follow(share, 0) {
			t.Errorf("share %v at a rate of 10: want nothing followed (within 2 %% or below)", share)
		}
	}
	wantRate(t, d, 10, "nothing followed")

	e := NewAdaptive(5, 12.5, newClock().now)
	if !e.Follow(40, 50) {
		t.Fatal("want a share above the rate followed")
	}
	wantRate(t, e, 12.5, "never above the member's maximum")
}
