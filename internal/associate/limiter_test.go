package associate

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// A caller that waited takes its turn's time, not its timer's: the
// timer's lateness is not carried into the next turn, so the limiter keeps
// its rate over a run (x/time/rate's behaviour, which it replaced).
func TestLimiterTurnsDoNotDrift(t *testing.T) {
	const interval = 20 * time.Millisecond
	l := newLimiter(float64(time.Second/interval), false)
	ctx := context.Background()
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	first := l.last
	for i := 1; i <= 5; i++ {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := l.last.Sub(first), time.Duration(i)*interval; got != want {
			t.Fatalf("turn %d at %v after the first, want exactly %v", i, got, want)
		}
	}
}

// A caller that finds the limiter idle starts a new turn at once, and the
// next one a whole interval later: idle time is no credit for a burst.
func TestLimiterIdleGivesNoBurst(t *testing.T) {
	const interval = 20 * time.Millisecond
	l := newLimiter(float64(time.Second/interval), false)
	ctx := context.Background()
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * interval)
	before := time.Now()
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if l.last.Before(before) {
		t.Fatalf("an idle limiter's turn was set %v in the past", before.Sub(l.last))
	}
	idle := l.last
	if err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.last.Sub(idle); got != interval {
		t.Fatalf("the turn after an idle one came %v later, want %v", got, interval)
	}
}

// A strict limiter (CALLS_PER_SECOND=auto) never lets two calls through
// less than 1/rate apart, a timer's lateness included.
func TestStrictLimiterKeepsTurnsApart(t *testing.T) {
	const interval = 20 * time.Millisecond
	l := newLimiter(float64(time.Second/interval), true)
	ctx := context.Background()
	var prev time.Time
	for i := range 6 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if now := time.Now(); i > 0 && now.Sub(prev) < interval {
			t.Fatalf("turn %d came %v after the previous, want at least %v", i, now.Sub(prev), interval)
		}
		prev = time.Now()
	}
}

// A throttled attempt waits only its turn at the paced rate, no backoff on
// top; other errors, and throttles with no pace, keep the SDK's backoff.
func TestPacedRetryerWaitsOnlyItsTurnAfterAThrottle(t *testing.T) {
	sdk := retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Second, nil })
	})
	throttle := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	server := &smithy.GenericAPIError{Code: "InternalServerError", Fault: smithy.FaultServer}
	for _, tc := range []struct {
		rate float64
		err  error
		want time.Duration
	}{
		{10, throttle, 0},
		{10, server, time.Second},
		{0, throttle, time.Second},
	} {
		p := &pacedRetryer{RetryerV2: sdk, limiter: newLimiter(tc.rate, true), throttled: func(float64) {}}
		if got, err := p.RetryDelay(1, tc.err); err != nil || got != tc.want {
			t.Errorf("rate %g, %v: delay %v, %v; want %v", tc.rate, tc.err, got, err, tc.want)
		}
	}
}
