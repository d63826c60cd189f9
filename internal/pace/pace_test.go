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

func TestAdaptiveCutsToWhatSSMAnswered(t *testing.T) {
	c := newClock()
	a := NewAdaptive(40, 100, c.now)
	a.Resume(40)
	callsAt(a, c, 12) // 12 answers a second: SSM allows about 12/s
	callsAt(a, c, 12)
	a.Throttled()
	if got, want := a.Rate(), 20.0; !near(got, want) {
		// 0.95 × 12 = 11.4, but one cut takes at most half
		t.Errorf("rate %v, want %v: at most halved by one cut", got, want)
	}
	c.add(100 * time.Millisecond)
	callsAt(a, c, 12) // 12 a second, below the new 20: no growth
	callsAt(a, c, 12)
	a.Throttled()
	if got, want := a.Rate(), 0.95*12; math.Abs(got-want) > 0.6 {
		t.Errorf("rate %v, want about %v (0.95 × the answers of the last second)", got, want)
	}
	if a.SlowStart() {
		t.Error("a throttle ends slow start")
	}
}

func TestAdaptiveCutsOncePerInterval(t *testing.T) {
	c := newClock()
	a := NewAdaptive(20, 100, c.now)
	a.Resume(20)
	callsAt(a, c, 20)
	callsAt(a, c, 20)
	a.Throttled()
	r := a.Rate()
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
