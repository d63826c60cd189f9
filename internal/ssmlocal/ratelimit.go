package ssmlocal

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RateSetting is the call-rate limit: a token bucket refilled at
// CallsPerSecond (0: unlimited) holding at most Burst tokens. Its JSON form
// is what GET /_ssm-local/rate answers and PUT /_ssm-local/rate takes.
type RateSetting struct {
	CallsPerSecond float64
	Burst          int
}

// ScheduledRate is a change of the rate limit planned After the server's
// start (New): from then on the bucket refills at CallsPerSecond and holds
// at most Burst tokens (0: the default, max(1, ceil(CallsPerSecond))).
type ScheduledRate struct {
	After          time.Duration
	CallsPerSecond float64
	Burst          int
}

// RateChange records one setting of the rate limit: the one at start, each
// scheduled change when its time came, and each SetRate (or PUT
// /_ssm-local/rate). Burst is the effective size (the default filled in).
type RateChange struct {
	// At is when the setting took effect; SinceStart the same instant
	// measured from the server's start, in seconds.
	At             time.Time `json:"at"`
	SinceStart     float64   `json:"sinceStart"`
	CallsPerSecond float64   `json:"callsPerSecond"`
	Burst          int       `json:"burst"`
	// Source is "start", "schedule" or "set".
	Source string `json:"source"`
}

// maxDefaultBurst bounds the default burst of a huge rate.
const maxDefaultBurst = 1 << 30

// effectiveBurst is the bucket size for a setting: burst when positive, else
// max(1, ceil(rate)); 0 when the rate is unlimited and no burst was given.
func effectiveBurst(rate float64, burst int) int {
	switch {
	case burst > 0:
		return burst
	case rate <= 0:
		return 0
	case rate >= maxDefaultBurst:
		return maxDefaultBurst
	}
	return max(1, int(math.Ceil(rate)))
}

// checkRateSetting reports why a setting cannot be used, naming the field.
func checkRateSetting(callsPerSecond float64, burst int) error {
	switch {
	case math.IsNaN(callsPerSecond) || math.IsInf(callsPerSecond, 0):
		return fmt.Errorf("CallsPerSecond must be a finite number, got %v", callsPerSecond)
	case callsPerSecond < 0:
		return fmt.Errorf("CallsPerSecond must not be negative, got %v", callsPerSecond)
	case burst < 0:
		return fmt.Errorf("Burst must not be negative, got %d", burst)
	}
	return nil
}

// bucket is the token bucket shared by every operation. Scheduled changes
// are applied lazily, at their own instant, whenever the bucket is used or
// read: the tokens are refilled at the old rate up to the change and at the
// new one after it, exactly as if a timer had fired.
type bucket struct {
	mu      sync.Mutex
	now     func() time.Time
	start   time.Time
	rate    float64 // calls per second; <= 0: unlimited
	burst   int
	tokens  float64
	last    time.Time // when tokens was last brought up to date
	pending []ScheduledRate
	history []RateChange
}

func newBucket(now func() time.Time, rate float64, burst int, schedule []ScheduledRate) *bucket {
	b := &bucket{now: now}
	b.restart(rate, burst, schedule)
	return b
}

// restart starts the bucket afresh at b.now(): full, at the given setting,
// with the schedule to come. New uses it, and tests that swap the clock.
func (b *bucket) restart(rate float64, burst int, schedule []ScheduledRate) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !(rate > 0) { // negative and NaN as 0: unlimited, as Options.Rate always was
		rate = 0
	}
	b.start = b.now()
	b.last = b.start
	b.rate, b.burst = rate, effectiveBurst(rate, burst)
	b.tokens = float64(b.burst)
	b.pending = slices.Clone(schedule)
	slices.SortStableFunc(b.pending, func(x, y ScheduledRate) int { return cmpDuration(x.After, y.After) })
	b.history = []RateChange{b.record(b.start, "start")}
}

func cmpDuration(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (b *bucket) record(at time.Time, source string) RateChange {
	return RateChange{At: at, SinceStart: at.Sub(b.start).Seconds(), CallsPerSecond: b.rate, Burst: b.burst, Source: source}
}

// refill brings the tokens up to t at the current rate.
func (b *bucket) refill(t time.Time) {
	if t.After(b.last) {
		if b.rate > 0 {
			b.tokens = min(float64(b.burst), b.tokens+b.rate*t.Sub(b.last).Seconds())
		}
		b.last = t
	}
}

// apply changes the setting at t: tokens refilled at the old rate up to t,
// then capped at the new burst. A bucket that was unlimited starts full.
func (b *bucket) apply(t time.Time, rate float64, burst int, source string) {
	b.refill(t)
	wasUnlimited := b.rate <= 0
	b.rate, b.burst = max(rate, 0), effectiveBurst(rate, burst)
	if wasUnlimited {
		b.tokens = float64(b.burst)
	}
	b.tokens = min(b.tokens, float64(b.burst))
	b.history = append(b.history, b.record(t, source))
}

// catchUp applies the scheduled changes due by now, each at its own instant.
func (b *bucket) catchUp(now time.Time) {
	for len(b.pending) > 0 {
		at := b.start.Add(b.pending[0].After)
		if at.After(now) {
			return
		}
		c := b.pending[0]
		b.pending = b.pending[1:]
		b.apply(at, c.CallsPerSecond, c.Burst, "schedule")
	}
}

// allowAt takes a token at instant now, or reports that there is none. An
// instant before the last one seen takes from the tokens as they are.
func (b *bucket) allowAt(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate <= 0 && len(b.pending) == 0 {
		return true
	}
	b.catchUp(now)
	if b.rate <= 0 {
		return true
	}
	b.refill(now)
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

func (b *bucket) set(rate float64, burst int) RateSetting {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.catchUp(now)
	b.apply(now, rate, burst, "set")
	return RateSetting{CallsPerSecond: b.rate, Burst: b.burst}
}

func (b *bucket) current() (RateSetting, []RateChange) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.catchUp(b.now())
	return RateSetting{CallsPerSecond: b.rate, Burst: b.burst}, slices.Clone(b.history)
}

// SetRate changes the rate limit at once, while the server runs: from now
// on the bucket refills at callsPerSecond (0: unlimited) and holds at most
// burst tokens (0: max(1, ceil(callsPerSecond))). The tokens earned at the
// old rate are kept, capped at the new burst; a bucket that was unlimited
// starts full. A later change of Options.RateSchedule still applies when
// its time comes. It returns the setting in force and is safe for
// concurrent use (with calls, other SetRate and Stats).
func (s *Server) SetRate(callsPerSecond float64, burst int) (RateSetting, error) {
	if err := checkRateSetting(callsPerSecond, burst); err != nil {
		return RateSetting{}, err
	}
	return s.limit.set(callsPerSecond, burst), nil
}

// Rate returns the rate limit in force (scheduled changes due applied).
func (s *Server) Rate() RateSetting {
	r, _ := s.limit.current()
	return r
}

// RateChanges lists every setting of the rate limit since start, in order:
// the one of Options at start, then the scheduled changes that came due and
// every SetRate, each with the instant it took effect. Together they draw
// the allowed rate over time. Reset keeps it, as it keeps the bucket.
func (s *Server) RateChanges() []RateChange {
	_, h := s.limit.current()
	return h
}

// ParseRateSchedule reads the -rate-changes form: comma-separated
// "<after>=<calls per second>[/<burst>]", after a Go duration from the
// server's start ("10s=20/1,30s=40/5": 20 calls/s with burst 1 from 10 s
// on, 40 calls/s with burst 5 from 30 s on). A missing burst is 0 (the
// default, max(1, ceil(rate))); rate 0 means unlimited. The instants must
// be distinct; the result is in their order.
func ParseRateSchedule(s string) ([]ScheduledRate, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []ScheduledRate
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		after, setting, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want <after>=<calls per second>[/<burst>], e.g. 10s=20/1", item)
		}
		d, err := time.ParseDuration(strings.TrimSpace(after))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%q: the time %q must be a non-negative duration such as 10s", item, after)
		}
		rateText, burstText, hasBurst := strings.Cut(setting, "/")
		r, err := strconv.ParseFloat(strings.TrimSpace(rateText), 64)
		if err != nil {
			return nil, fmt.Errorf("%q: the calls per second %q are not a number", item, rateText)
		}
		var b int
		if hasBurst {
			if b, err = strconv.Atoi(strings.TrimSpace(burstText)); err != nil {
				return nil, fmt.Errorf("%q: the burst %q is not a whole number", item, burstText)
			}
		}
		if err := checkRateSetting(r, b); err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		out = append(out, ScheduledRate{After: d, CallsPerSecond: r, Burst: b})
	}
	slices.SortStableFunc(out, func(x, y ScheduledRate) int { return cmpDuration(x.After, y.After) })
	for i := 1; i < len(out); i++ {
		if out[i].After == out[i-1].After {
			return nil, fmt.Errorf("two changes at %v", out[i].After)
		}
	}
	return out, nil
}

// checkSchedule validates Options.RateSchedule.
func checkSchedule(schedule []ScheduledRate) error {
	var errs []error
	for i, c := range schedule {
		if c.After < 0 {
			errs = append(errs, fmt.Errorf("RateSchedule[%d]: After must not be negative, got %v", i, c.After))
		}
		if err := checkRateSetting(c.CallsPerSecond, c.Burst); err != nil {
			errs = append(errs, fmt.Errorf("RateSchedule[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
