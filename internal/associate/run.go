package associate

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// run is the state of one Engine.Run.
type run struct {
	*Engine
	job Job

	mu          sync.Mutex // guards res and unreachable
	res         report.Result
	unreachable error // the last error that meant SSM could not be reached

	records   sync.WaitGroup // claim completions and releases in flight
	dynamo    chan struct{}  // semaphore bounding DynamoDB requests
	completed atomic.Int64   // claims recorded as associated
	throttles atomic.Int64   // throttled attempts, retried by the SDK or not
	latency   latencyTracker
}

// latencyTracker remembers how long calls take, to judge whether one more
// fits before the deadline.
type latencyTracker struct {
	mu   sync.Mutex
	max  time.Duration // starts as Settings.CallEstimate
	all  []time.Duration
	seen bool
}

func (l *latencyTracker) observe(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.seen {
		l.max = d
	}
	l.seen = true
	l.max = max(l.max, d)
	l.all = append(l.all, d)
}

// expected is what the next call should be allowed: the slowest call so far,
// or the estimate before any call returned.
func (l *latencyTracker) expected() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

// Latencies returns every call's duration, for metrics.
func (l *latencyTracker) samples() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.all...)
}
