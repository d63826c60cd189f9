package pace

import (
	"math"
	"testing"
	"time"
)

// clock is a manual clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_800_000_000, 0)} }
func near(got, want float64) bool    { return math.Abs(got-want) < 1e-6 }
func callsAt(a *Adaptive, c *clock, n int) { // n answered calls spread over one second
	for range n {
		c.add((time.Second + time.Duration(n) - 1) / time.Duration(n))
		a.Answered()
	}
}

func TestAdaptiveSlowStartDoublesWhileCallsKeepUp(t *testing.T) {
	c := newClock()
	a := NewAdaptive(5, 50, c.now)
	for _, want := range []float64{10, 20, 40, 50, 50} {
		callsAt(a, c, int(a.Rate()))
		if got := a.Rate(); !near(got, want) {
			t.Fatalf("rate %v, want %v (doubling, capped at 50)", got, want)
		}
	}
	if !a.SlowStart() {
		t.Error("no throttle yet: still in slow start")
	}
}

func TestAdaptiveDoesNotGrowWhenCallsDoNotKeepUp(t *testing.T) {
	c := newClock()
	a := NewAdaptive(10, 50, c.now)
	callsAt(a, c, 3) // the engine had only 3 calls to make in that second
	if got := a.Rate(); got != 10 {
		t.Errorf("rate %v after a second of 3 calls at 10/s, want 10 (no proof SSM allows more)", got)
	}
}

// saturated is one second in which SSM answered n calls and throttled t,
// interleaved, as when the rate is above SSM's.
func saturated(a *Adaptive, c *clock, n, t int) {
	for i := range n + t {
		c.add(time.Second / time.Duration(n+t))
		if i%((n+t)/t) == 0 {
			a.Throttled()
		} else {
			a.Answered()
		}
	}
}

func TestAdaptiveCutsToWhatSSMAnswered(t *testing.T) {
	c := newClock()
	a := NewAdaptive(40, 100, c.now)
	a.Resume(40)
	callsAt(a, c, 12) // 12 answers a second: SSM allows about 12/s
	// Its first throttle follows a clean second: a mild cut; the next,
	// within the second, cuts to what SSM answered.
	saturated(a, c, 12, 6)
	if got, want := a.Rate(), 40*0.97/2; !near(got, want) {
		// 0.95 × 12 = 11.4, but one cut takes at most half
		t.Errorf("rate %v, want %v: at most halved by one cut", got, want)
	}
	saturated(a, c, 12, 6)
	if got, want := a.Rate(), 0.95*12; math.Abs(got-want) > 0.6 {
		t.Errorf("rate %v, want about %v (0.95 × the answers of the last second)", got, want)
	}
	if a.SlowStart() {
		t.Error("a throttle ends slow start")
	}
	// Then it holds two clean seconds before probing again (the first
	// second still had throttles, of calls sent before the cut).
	r := a.Rate()
	for i, want := range []float64{r, r, r, r + stepFor(r)} {
		callsAt(a, c, int(r)+1)
		if got := a.Rate(); !near(got, want) {
			t.Fatalf("clean second %d after the cut: rate %v, want %v", i+1, got, want)
		}
	}
}

// One throttle among many answers is jitter at SSM's bucket, not its rate:
// a small cut, and the probe goes on.
func TestAdaptiveIsolatedThrottleCutsMildly(t *testing.T) {
	c := newClock()
	a := NewAdaptive(5, 100, c.now)
	a.Resume(30) // step 0.6
	callsAt(a, c, 31)
	callsAt(a, c, 31)
	callsAt(a, c, 31) // +0.6, +1.2, +2.4
	before := a.Rate()
	a.Throttled()
	if got, want := a.Rate(), before*0.97; !near(got, want) {
		t.Errorf("rate %v after one throttle in 31 calls, want %v (× 0.97)", got, want)
	}
	r := a.Rate()
	callsAt(a, c, int(r)+1)
	callsAt(a, c, int(r)+2)
	if got := a.Rate(); !near(got, r+1.2+2.4) {
		t.Errorf("rate %v, want the probe going on from k = 3/2: +1.2, +2.4 (%v)", got, r+3.6)
	}
}

func TestAdaptiveCutsOncePerInterval(t *testing.T) {
	c := newClock()
	a := NewAdaptive(20, 100, c.now)
	a.Resume(20)
	callsAt(a, c, 20)
	callsAt(a, c, 20)
	before := a.Rate()
	a.Throttled() // mild: one in 21
	if got := a.Rate(); !near(got, before*0.97) {
		t.Errorf("rate %v after one throttle, want × 0.97", got)
	}
	c.add(50 * time.Millisecond)
	a.Throttled() // a second one: SSM's rate, not jitter
	r := a.Rate()
	if r >= before*0.97 {
		t.Errorf("rate %v after a second throttle, want a cut to what SSM answered", r)
	}
	for range 5 { // the other calls in flight come back throttled too
		c.add(50 * time.Millisecond)
		a.Throttled()
	}
	if got := a.Rate(); got != r {
		t.Errorf("rate %v after 5 more throttles within a second, want %v: one cut per interval", got, r)
	}
	c.add(time.Second)
	a.Throttled()
	if got := a.Rate(); got >= r {
		t.Errorf("rate %v, want below %v: a throttle a second later cuts again", got, r)
	}
}

func TestAdaptiveProbesAdditivelyThenFaster(t *testing.T) {
	c := newClock()
	a := NewAdaptive(5, 1000, c.now)
	a.Resume(100) // step 2
	prev, steps := a.Rate(), []float64{}
	for range 4 {
		callsAt(a, c, int(a.Rate())+1)
		steps = append(steps, a.Rate()-prev)
		prev = a.Rate()
	}
	for i, want := range []float64{2, 4, 8, 16} {
		if !near(steps[i], want) {
			t.Fatalf("growth steps %v, want 2, 4, 8, 16 (step × 2^(k-1), k: seconds since the cut)", steps)
		}
	}
}

func TestAdaptiveNeverLeavesItsBounds(t *testing.T) {
	c := newClock()
	a := NewAdaptive(0, 8, c.now)
	if got := a.Rate(); got != MinRate {
		t.Errorf("start 0: rate %v, want MinRate", got)
	}
	for range 20 {
		c.add(2 * time.Second)
		a.Throttled()
	}
	if got := a.Rate(); got != MinRate {
		t.Errorf("after throttles with no answer: rate %v, want MinRate %v", got, MinRate)
	}
	for range 20 {
		callsAt(a, c, 10)
	}
	if got := a.Rate(); got != 8 {
		t.Errorf("rate %v, want the maximum 8", got)
	}
	a.SetMax(3)
	if got := a.Rate(); got != 3 {
		t.Errorf("after SetMax(3): rate %v", got)
	}
	a.Scale(10)
	if got := a.Rate(); got != 3 {
		t.Errorf("Scale beyond the maximum: rate %v, want 3", got)
	}
	a.Scale(0.5)
	if got := a.Rate(); got != 1.5 {
		t.Errorf("Scale(0.5): rate %v, want 1.5", got)
	}
}

func TestAdaptiveResumesWithoutSlowStart(t *testing.T) {
	c := newClock()
	a := NewAdaptive(5, 50, c.now)
	a.Resume(30)
	callsAt(a, c, 30)
	if got := a.Rate(); got > 31 {
		t.Errorf("resumed at 30: rate %v after a clean second, want a small additive step, not slow start's doubling", got)
	}
}

func TestFixedIsTodaysPace(t *testing.T) {
	f := NewFixed(10)
	f.Throttled()
	if got := f.Rate(); !near(got, 8.5) {
		t.Errorf("after a throttle: %v, want 8.5", got)
	}
	for range 100 {
		f.Throttled()
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
	u.Throttled()
	if u.Rate() != 0 {
		t.Error("0 stays unlimited")
	}
}

func TestAdaptiveLeavesSlowStartAtThreeQuartersOfTheRateRefused(t *testing.T) {
	c := newClock()
	a := NewAdaptive(10, 100, c.now)
	callsAt(a, c, 10)
	callsAt(a, c, 20) // 40 now
	a.Throttled()
	if got := a.Rate(); !near(got, 30) || a.SlowStart() {
		t.Errorf("rate %v, want 30 (0.75 × 40) and slow start over", got)
	}
}

func TestAdaptiveFoundIsNotAProbeInProgress(t *testing.T) {
	c := newClock()
	a := NewAdaptive(5, 100, c.now)
	if got := a.Found(); got != 5 {
		t.Errorf("never throttled: found %v, want the rate", got)
	}
	a.Resume(20)
	callsAt(a, c, 20)
	saturated(a, c, 12, 6) // cut to what SSM answered, about 11.4
	found := a.Found()
	for range 8 { // probing well above it, no throttle
		callsAt(a, c, int(a.Rate())+1)
	}
	if a.Rate() < found*1.3 {
		t.Fatalf("rate %v: the probe should have grown past %v", a.Rate(), found)
	}
	if got := a.Found(); !near(got, found*(1+maxProbe)) {
		t.Errorf("found %v while probing at %v, want at most %v", got, a.Rate(), found*(1+maxProbe))
	}
}
