package associate

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/pace"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/reconcile"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
)

// run is the state of one Engine.Run.
type run struct {
	*Engine
	job     Job
	limiter *limiter       // paces calls, and the SDK's retries of them (pace.go)
	pacer   pace.Pacer     // the rate the limiter follows (pace.go)
	auto    *pace.Adaptive // the pacer, with AutoRate: what it found is remembered
	// With AutoRate and a memory: this run's share of the rate found, as
	// last written; changed only by the sync goroutine until paceDone.
	share              pace.Share
	member             string // this run's name in the memory (members.take)
	releaseMember      func()
	paceStop, paceDone chan struct{}
	book               *bookkeeper
	reader             *reconcile.Reader // reads SSM to settle entries in doubt
	owner              ownerLease        // this invocation's heartbeat in the claim table

	mu          sync.Mutex // guards res, unreachable, takenOver and lastDoubt
	res         report.Result
	unreachable error                     // the last error that meant SSM could not be reached
	takenOver   []plan.Item               // claimed from dead owners: to read SSM for before sending
	updates     map[string]*pendingUpdate // existing associations to settle, by ID
	lastDoubt   time.Time                 // when the last entry fell in doubt

	claimErr     atomic.Pointer[error] // the last error of a claim
	claimedAny   atomic.Bool           // some key was claimed
	completed    atomic.Int64          // claims recorded as associated
	possiblySent atomic.Int64          // entries that may have reached SSM without an answer
	throttles    atomic.Int64          // throttled attempts, retried by the SDK or not
	latency      latencyTracker
}

// record changes the result under the lock.
func (r *run) record(change func(*report.Result)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	change(&r.res)
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
