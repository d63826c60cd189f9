package ssmlocal

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// onFakeClock restarts s's rate limiter on a fake clock (its start is the
// clock's now) with opts' rate, burst and schedule.
func onFakeClock(s *Server, opts Options) *fakeClock {
	clk := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	s.limit.now = clk.now
	s.limit.restart(opts.Rate, opts.Burst, opts.RateSchedule)
	return clk
}

// offer makes n CreateAssociationBatch calls (through the SDK, over HTTP),
// one every step of the fake clock, and counts those that were throttled.
func offer(t *testing.T, c *ssm.Client, clk *fakeClock, n int, step time.Duration, first int) (ok, throttled int) {
	t.Helper()
	for i := range n {
		clk.advance(step)
		_, err := batch(t, c, shellEntry(fmt.Sprintf("i-%017d", first+i)))
		if err == nil {
			ok++
			continue
		}
		apiErr(t, err, "ThrottlingException")
		throttled++
	}
	return ok, throttled
}

// TestRateLoweredMidRun: 50 calls a second get through at 100 calls/s;
// lowered to 10 calls/s (burst 1), about 10 a second do and the rest are
// throttled; raised again, throttles stop at once. Then the same through
// Options.RateSchedule, whose changes take effect at their own instant.
func TestRateLoweredMidRun(t *testing.T) {
	const step = 20 * time.Millisecond // 50 calls a second
	check := func(t *testing.T, phase string, ok, throttled, wantLo, wantHi int) {
		t.Helper()
		if ok < wantLo || ok > wantHi || ok+throttled != 50 {
			t.Fatalf("%s: %d allowed, %d throttled in 1 s; want %d-%d allowed", phase, ok, throttled, wantLo, wantHi)
		}
	}

	t.Run("SetRate", func(t *testing.T) {
		opts := Options{Rate: 100, Burst: 5}
		s, c, _ := newEnv(t, opts)
		clk := onFakeClock(s, opts)
		ok, th := offer(t, c, clk, 50, step, 0)
		check(t, "at 100/s", ok, th, 50, 50)
		if _, err := s.SetRate(10, 1); err != nil {
			t.Fatal(err)
		}
		ok, th = offer(t, c, clk, 50, step, 100)
		check(t, "lowered to 10/s", ok, th, 9, 11)
		lowThrottles := th
		if _, err := s.SetRate(100, 5); err != nil {
			t.Fatal(err)
		}
		ok, th = offer(t, c, clk, 50, step, 200)
		check(t, "raised to 100/s", ok, th, 50, 50)

		st := s.Stats()
		if st.ThrottledCalls != lowThrottles || st.CallsPerSecond != 100 || st.Burst != 5 {
			t.Fatalf("stats: %d throttled (want %d), rate %v/%d", st.ThrottledCalls, lowThrottles, st.CallsPerSecond, st.Burst)
		}
		want := []RateChange{
			{SinceStart: 0, CallsPerSecond: 100, Burst: 5, Source: "start"},
			{SinceStart: 1, CallsPerSecond: 10, Burst: 1, Source: "set"},
			{SinceStart: 2, CallsPerSecond: 100, Burst: 5, Source: "set"},
		}
		assertChanges(t, st.RateChanges, want, st.RateChanges[0].At)
	})

	t.Run("RateSchedule", func(t *testing.T) {
		opts := Options{Rate: 100, Burst: 5, RateSchedule: []ScheduledRate{
			{After: 2 * time.Second, CallsPerSecond: 100, Burst: 5}, // any order
			{After: time.Second, CallsPerSecond: 10, Burst: 1},
		}}
		s, c, _ := newEnv(t, opts)
		clk := onFakeClock(s, opts)
		start := clk.now()
		ok, th := offer(t, c, clk, 50, step, 0)
		check(t, "at 100/s", ok, th, 50, 50)
		ok, th = offer(t, c, clk, 50, step, 100)
		check(t, "scheduled 10/s", ok, th, 9, 11)
		ok, th = offer(t, c, clk, 50, step, 200)
		check(t, "scheduled 100/s again", ok, th, 50, 50)
		assertChanges(t, s.RateChanges(), []RateChange{
			{SinceStart: 0, CallsPerSecond: 100, Burst: 5, Source: "start"},
			{SinceStart: 1, CallsPerSecond: 10, Burst: 1, Source: "schedule"},
			{SinceStart: 2, CallsPerSecond: 100, Burst: 5, Source: "schedule"},
		}, start)
	})
}

// assertChanges compares the record with want, At checked as start +
// SinceStart.
func assertChanges(t *testing.T, got, want []RateChange, start time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("rate changes %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		at := start.Add(time.Duration(w.SinceStart * float64(time.Second)))
		if !g.At.Equal(at) || math.Abs(g.SinceStart-w.SinceStart) > 1e-9 || g.CallsPerSecond != w.CallsPerSecond ||
			g.Burst != w.Burst || g.Source != w.Source {
			t.Fatalf("rate change %d = %+v, want %+v at %v", i, g, w, at)
		}
	}
}

// TestBucketConsistency: the tokens at a change are those earned at the old
// rate up to its instant, capped at the new burst.
func TestBucketConsistency(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	take := func(b *bucket, n int) (got int) {
		for range n {
			if b.allowAt(clk.now()) {
				got++
			}
		}
		return got
	}

	b := newBucket(clk.now, 1, 10, nil)
	if got := take(b, 20); got != 10 {
		t.Fatalf("a new bucket starts full: %d of 20, want 10", got)
	}
	clk.advance(4 * time.Second) // 4 tokens earned
	b.set(1, 2)                  // capped at 2
	if got := take(b, 5); got != 2 {
		t.Fatalf("lowered burst: %d, want 2", got)
	}
	clk.advance(3 * time.Second) // 3 earned, capped at 2
	b.set(1, 100)                // raising the burst adds nothing
	if got := take(b, 5); got != 2 {
		t.Fatalf("raised burst: %d, want 2", got)
	}
	b.set(0, 0) // unlimited
	if got := take(b, 1000); got != 1000 {
		t.Fatalf("unlimited: %d of 1000", got)
	}
	b.set(0.5, 0) // limited again: starts full, default burst 1
	if r, _ := b.current(); r.Burst != 1 {
		t.Fatalf("default burst of 0.5/s = %d, want 1", r.Burst)
	}
	if got := take(b, 3); got != 1 {
		t.Fatalf("from unlimited: %d, want the full bucket of 1", got)
	}
	clk.advance(2 * time.Second)
	if got := take(b, 3); got != 1 {
		t.Fatalf("refilled at 0.5/s for 2 s: %d, want 1", got)
	}

	// A schedule seen late is applied at its own instants: at 100/s from
	// 1 s, then 1/s burst 3 from 2 s; read at 10 s the bucket is full (3).
	b = newBucket(clk.now, 1, 1, []ScheduledRate{{After: time.Second, CallsPerSecond: 100, Burst: 50}, {After: 2 * time.Second, CallsPerSecond: 1, Burst: 3}})
	take(b, 1)
	clk.advance(10 * time.Second)
	if got := take(b, 10); got != 3 {
		t.Fatalf("after a late schedule: %d, want 3", got)
	}
	if h := b.history; len(h) != 3 || h[1].SinceStart != 1 || h[2].SinceStart != 2 {
		t.Fatalf("history %+v", h)
	}
}

// TestRateEndpoint: GET answers the setting, PUT and POST set it; a bad
// body is a 400 whose message names the field, and changes nothing.
func TestRateEndpoint(t *testing.T) {
	s, _, url := newEnv(t, Options{Rate: 5, Burst: 2})
	do := func(method, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url+"/_ssm-local/rate", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	getRate := func() RateSetting {
		t.Helper()
		code, body := do(http.MethodGet, "")
		var r RateSetting
		if err := json.Unmarshal([]byte(body), &r); code != http.StatusOK || err != nil {
			t.Fatalf("GET: %d %s %v", code, body, err)
		}
		return r
	}
	if r := getRate(); r != (RateSetting{CallsPerSecond: 5, Burst: 2}) {
		t.Fatalf("GET %+v", r)
	}
	if code, body := do(http.MethodPut, `{"CallsPerSecond": 20, "Burst": 1}`); code != http.StatusOK || !strings.Contains(body, `"CallsPerSecond":20`) {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if r := getRate(); r != (RateSetting{CallsPerSecond: 20, Burst: 1}) {
		t.Fatalf("after PUT %+v", r)
	}
	if code, body := do(http.MethodPost, `{"CallsPerSecond": 2.5}`); code != http.StatusOK || !strings.Contains(body, `"Burst":3`) {
		t.Fatalf("POST without Burst (default ceil(2.5) = 3): %d %s", code, body)
	}
	if code, _ := do(http.MethodPut, `{"CallsPerSecond": 0, "Burst": 0}`); code != http.StatusOK || s.Rate().CallsPerSecond != 0 {
		t.Fatalf("PUT 0 (unlimited): %d %+v", code, s.Rate())
	}
	if _, err := s.SetRate(7, 4); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ body, field string }{
		{`{"CallsPerSecond": -1, "Burst": 1}`, "CallsPerSecond must not be negative"},
		{`{"CallsPerSecond": 1, "Burst": -1}`, "Burst must not be negative"},
		{`{"CallsPerSecond": "fast", "Burst": 1}`, "CallsPerSecond must be a number"},
		{`{"CallsPerSecond": 1, "Burst": 1.5}`, "Burst must be a whole number"},
		{`{"CallsPerSecond": 1, "Burst": "2"}`, "Burst must be a whole number"},
		{`{"CallsPerSecond": 1, "Burst": 1e30}`, "Burst must be a whole number"},
		{`{"CallsPerSecond": 1, "Rate": 1}`, `unknown field "Rate"`},
		{`{"Burst": 1}`, "CallsPerSecond is required"},
		{`{"CallsPerSecond": null}`, "CallsPerSecond is required"},
		{`{"CallsPerSecond": 1} {}`, "unexpected data"},
		{`[1, 2]`, "one JSON object"},
		{``, "one JSON object"},
		{strings.Repeat(" ", 5000) + `{"CallsPerSecond": 1}`, "could not read"},
	} {
		code, body := do(http.MethodPut, tt.body)
		var msg struct{ Message string }
		if err := json.Unmarshal([]byte(body), &msg); code != http.StatusBadRequest || err != nil || !strings.Contains(msg.Message, tt.field) {
			t.Errorf("PUT %.40q: %d %s, want 400 naming %q", tt.body, code, body, tt.field)
		}
	}
	if r := s.Rate(); r != (RateSetting{CallsPerSecond: 7, Burst: 4}) {
		t.Fatalf("a refused PUT changed the rate: %+v", r)
	}
	if code, _ := do(http.MethodDelete, ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE: %d", code)
	}
	if _, err := s.SetRate(math.NaN(), 1); err == nil || !strings.Contains(err.Error(), "CallsPerSecond") {
		t.Fatalf("SetRate(NaN): %v", err)
	}
	if _, err := s.SetRate(math.Inf(1), 1); err == nil {
		t.Fatal("SetRate(+Inf): want an error")
	}

	// The stats JSON carries the setting and its record.
	resp, err := http.Get(url + "/_ssm-local/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		CallsPerSecond float64      `json:"callsPerSecond"`
		Burst          int          `json:"burst"`
		RateChanges    []RateChange `json:"rateChanges"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.CallsPerSecond != 7 || st.Burst != 4 || len(st.RateChanges) != 5 ||
		st.RateChanges[0].Source != "start" || st.RateChanges[4].Source != "set" || st.RateChanges[4].SinceStart <= 0 {
		t.Fatalf("stats: %v %+v", err, st)
	}
}

// TestSetRateConcurrent: SetRate, calls, Stats and the endpoint at once
// (run under -race); every setting is recorded once, and the last one set
// is in force.
func TestSetRateConcurrent(t *testing.T) {
	s, c, url := newEnv(t, Options{Rate: 1000, Burst: 10, RateSchedule: []ScheduledRate{{After: time.Millisecond, CallsPerSecond: 500, Burst: 3}}})
	const setters, sets = 4, 50
	var wg sync.WaitGroup
	for g := range setters {
		wg.Go(func() {
			for i := range sets {
				if _, err := s.SetRate(float64(1+g*sets+i), 1+i%7); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 30 {
			_, _ = batch(t, c, shellEntry(fmt.Sprintf("i-%017d", i)))
		}
	})
	wg.Go(func() {
		for range 30 {
			_ = s.Stats()
			_ = s.RateChanges()
			resp, err := http.Get(url + "/_ssm-local/rate")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}
	})
	wg.Go(func() {
		for range 20 {
			s.Reset()
			resp, err := http.Post(url+"/_ssm-local/rate", "application/json", strings.NewReader(`{"CallsPerSecond": 3, "Burst": 2}`))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}
	})
	wg.Wait()
	if _, err := s.SetRate(42, 6); err != nil {
		t.Fatal(err)
	}
	h := s.RateChanges()
	if r := s.Rate(); r != (RateSetting{CallsPerSecond: 42, Burst: 6}) {
		t.Fatalf("in force %+v", r)
	}
	sets_, scheduled := 0, 0
	for i, ch := range h {
		switch ch.Source {
		case "set":
			sets_++
		case "schedule":
			scheduled++
		}
		if i > 0 && ch.At.Before(h[i-1].At) {
			t.Fatalf("record out of order at %d: %+v", i, h)
		}
	}
	if want := setters*sets + 20 + 1; sets_ != want || scheduled != 1 || h[0].Source != "start" {
		t.Fatalf("%d sets (want %d), %d scheduled (want 1), first %+v", sets_, want, scheduled, h[0])
	}
}

func TestParseRateSchedule(t *testing.T) {
	got, err := ParseRateSchedule("30s=40/5, 10s=20/1,1m=0,1m30s=2.5")
	if err != nil {
		t.Fatal(err)
	}
	want := []ScheduledRate{{10 * time.Second, 20, 1}, {30 * time.Second, 40, 5}, {time.Minute, 0, 0}, {90 * time.Second, 2.5, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, err := ParseRateSchedule(""); got != nil || err != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"10s", "10=20", "-1s=20", "10s=fast", "10s=20/x", "10s=20/1.5", "10s=-1", "10s=20/-1",
		"10s=NaN", "10s=Inf", "10s=1,10s=2", "10s=20,"} {
		if _, err := ParseRateSchedule(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("New with a negative scheduled rate: want a panic")
		}
	}()
	New(Options{RateSchedule: []ScheduledRate{{After: time.Second, CallsPerSecond: -1}}})
}

// TestRateTokenTakenWhenTheDelayWasDue: a call takes its token at its
// arrival plus Latency, whenever the emulator's timer fires: the clock
// moving on during the delay (a timer late on busy cores) earns it
// nothing, so the bucket does not read the emulator's lateness as the
// caller's pace.
func TestRateTokenTakenWhenTheDelayWasDue(t *testing.T) {
	opts := Options{Rate: 1, Burst: 1, Latency: 300 * time.Millisecond}
	s, c, _ := newEnv(t, opts)
	clk := onFakeClock(s, opts)
	if _, err := batch(t, c, shellEntry("i-00000000000000001")); err != nil {
		t.Fatalf("first call, bucket full: %v", err)
	}
	clk.advance(500 * time.Millisecond) // half a token by the second's due time
	done := make(chan error, 1)
	go func() {
		_, err := c.CreateAssociationBatch(ctx(t), &ssm.CreateAssociationBatchInput{Entries: []types.CreateAssociationBatchRequestEntry{shellEntry("i-00000000000000002")}})
		done <- err
	}()
	for s.Stats().Calls < 2 {
		time.Sleep(time.Millisecond)
	}
	clk.advance(time.Second) // while it is held: its timer "fires" 1 s late
	apiErr(t, <-done, "ThrottlingException")
	if st := s.Stats(); st.ThrottledCalls != 1 {
		t.Errorf("ThrottledCalls = %d, want 1", st.ThrottledCalls)
	}
}
