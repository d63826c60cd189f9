package associate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/pace"
)

// AutoRate finds the rate SSM allows at run time (CALLS_PER_SECOND=auto)
// instead of pacing at CallsPerSecond.
type AutoRate struct {
	Start float64 // calls/s when no rate is remembered (CALLS_PER_SECOND_START)
	Max   float64 // calls/s never exceeded by the account's invocations together (MAX_CALLS_PER_SECOND)
}

// rateMemory remembers the rate found between invocations and splits it
// between those running at once; *pace.Memory keeps it in the dedupe table.
type rateMemory interface {
	Join(ctx context.Context, owner string) (pace.Share, error)
	Sync(ctx context.Context, owner string, found pace.Estimate, last pace.Share) (pace.Share, error)
	Leave(ctx context.Context, owner string, found pace.Estimate, last pace.Share, grace time.Duration) error
}

// RememberRate keeps the rate found with AutoRate in m. Without it each
// invocation starts at AutoRate.Start and runs as if alone.
func (e *Engine) RememberRate(m rateMemory) *Engine {
	e.memory = m
	var id [6]byte
	_, _ = rand.Read(id[:])
	e.members = &members{id: "engine-" + hex.EncodeToString(id[:])}
	return e
}

// members names an Engine's runs in the rate memory. Runs one after
// another (an execution environment's invocations, a worker's chunks) take
// the same name, so that the members the others count do not drop between
// two of them, and none takes a share too large for the moment it starts;
// runs at once take distinct names.
type members struct {
	id   string
	mu   sync.Mutex
	busy []bool
}

// take returns a name no run of the engine holds, and its release.
func (m *members) take() (name string, release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.Index(m.busy, false)
	if i < 0 {
		i = len(m.busy)
		m.busy = append(m.busy, false)
	}
	m.busy[i] = true
	return fmt.Sprintf("%s-%d", m.id, i), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.busy[i] = false
	}
}

// startPace sets this run's pace: CallsPerSecond, or with AutoRate the
// rate remembered (its share of it, with others running) or Start, then
// kept in step with the other members pace.FirstSync after it starts and
// every pace.SyncEvery after that (pace.ClosingSync when the job is
// Closing), until stopPace.
// The memory failing only costs the remembered start: the run goes on.
func (r *run) startPace(ctx context.Context) {
	auto := r.set.AutoRate
	if auto == nil {
		r.pacer = pace.NewFixed(r.set.CallsPerSecond)
		r.limiter = newLimiter(r.pacer.Rate(), false)
		return
	}
	a := pace.NewAdaptive(auto.Start, auto.Max, nil)
	r.pacer, r.auto = a, a
	r.limiter = newLimiter(a.Rate(), true)
	if r.memory == nil {
		return
	}
	r.member, r.releaseMember = r.members.take()
	share, err := r.memory.Join(ctx, r.member)
	if err != nil {
		r.releaseMember()
		r.log.WarnContext(ctx, "the remembered rate could not be read; starting at CALLS_PER_SECOND_START", "error", err)
		return
	}
	r.share = share
	a.SetMax(auto.Max / float64(max(share.Members, 1)))
	if s := share.PerMember(); s > 0 {
		a.Resume(s, share.CeilingPerMember())
	}
	r.setPace()
	r.log.DebugContext(ctx, "pace", "start", a.Rate(), "members", share.Members, "remembered", share.Account)
	r.paceStop, r.paceDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.paceDone)
		every, _ := r.job.memoryTimes()
		t := time.NewTimer(min(pace.FirstSync, every))
		defer t.Stop()
		for {
			select {
			case <-r.paceStop:
				return
			case <-t.C:
				t.Reset(every)
			}
			next, err := r.memory.Sync(ctx, r.member, a.Estimate(), share)
			if err != nil {
				r.log.WarnContext(ctx, "rate memory not synced", "error", err)
				continue
			}
			// Members joined or left: take the new share of the same
			// rate. A rate still in slow start is no share of anything
			// yet: it keeps doubling, under the new maximum.
			if next.Members != share.Members && next.Members > 0 {
				a.SetMax(auto.Max / float64(next.Members))
				if !a.SlowStart() {
					a.Scale(float64(share.Members) / float64(next.Members))
				}
				r.setPace()
			}
			// Below its share of the rate the others hold, and clean
			// since the last sync: take it up.
			if a.Follow(next.PerMember(), next.CeilingPerMember()) {
				r.setPace()
			}
			share = next
			r.share = share
		}
	}()
}

// memoryTimes are how often the run syncs the rate memory, and how long
// its lease outlives it: shorter for a Closing run, which no run of its
// engine is expected to follow.
func (j Job) memoryTimes() (syncEvery, leaveGrace time.Duration) {
	if j.Closing {
		return pace.ClosingSync, 0
	}
	return pace.SyncEvery, pace.LeaveGrace
}

// stopPace ends the sync and records the rate the run ended at.
func (r *run) stopPace(ctx context.Context) {
	if r.paceStop == nil {
		return
	}
	close(r.paceStop)
	<-r.paceDone
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	_, grace := r.job.memoryTimes()
	if err := r.memory.Leave(rctx, r.member, r.auto.Estimate(), r.share, grace); err != nil {
		r.log.WarnContext(ctx, "the rate found was not remembered", "error", err)
	}
	r.releaseMember()
}

// limiter paces calls one after the other, one turn each 1/rate: a burst
// of one, as SSM's own bucket is undocumented and bursts are what get
// throttled. Turns are counted from the last turn, not from when its caller
// woke, so the rate holds over a run; a strict limiter counts from when
// the caller woke instead, so that no two calls are ever less than 1/rate
// apart: it runs a little below its rate (a timer's lateness a turn), and
// the rate found from throttles (CALLS_PER_SECOND=auto) is not misread when
// a turn late by a timer's lateness and the next on time meet a bucket of
// one. Written by hand because
// x/time/rate's SetLimit repays the debt of a reservation made at the old
// rate at the new one: after a rise two calls went out 12 ms apart, and the
// second was throttled.
type limiter struct {
	turn   chan struct{} // one waiter at a time
	strict bool          // turns at least 1/rate apart, counted from when each caller woke

	mu   sync.Mutex
	rate float64   // calls per second; 0: no limit
	last time.Time // the last turn given
}

func newLimiter(callsPerSecond float64, strict bool) *limiter {
	return &limiter{turn: make(chan struct{}, 1), strict: strict, rate: max(callsPerSecond, 0)}
}

// SetLimit changes the rate for the calls not yet let through.
func (l *limiter) SetLimit(callsPerSecond float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate = max(callsPerSecond, 0)
}

// Limit is the rate, in calls per second; 0: no limit.
func (l *limiter) Limit() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

// errPastDeadline: the wait would end after the context's deadline.
var errPastDeadline = errors.New("the call rate leaves no turn before the deadline")

// Wait waits for this caller's turn. It fails at once when the turn would
// come after ctx's deadline.
func (l *limiter) Wait(ctx context.Context) error {
	_, err := l.Turn(ctx)
	return err
}

// Turn is Wait, and reports the rate the turn was given at: a throttle is
// judged at the rate its call went out at (pace.Pacer.Throttled).
func (l *limiter) Turn(ctx context.Context) (float64, error) {
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-l.turn }()
	for waited := false; ; waited = true {
		l.mu.Lock()
		now := time.Now()
		at := now
		if l.rate > 0 && !l.last.IsZero() {
			at = l.last.Add(time.Duration(float64(time.Second) / l.rate))
		}
		if !at.After(now) {
			// A caller that waited takes its turn's time, not its timer's
			// (up to a millisecond late on busy cores, 5 % of a 20 ms
			// turn), unless strict. One that found the limiter idle starts
			// a new turn now: no burst.
			l.last = now
			if waited && !l.strict && l.rate > 0 && now.Sub(at) < time.Duration(float64(time.Second)/l.rate) {
				l.last = at
			}
			rate := l.rate
			l.mu.Unlock()
			return rate, nil
		}
		l.mu.Unlock()
		if d, ok := ctx.Deadline(); ok && at.After(d) {
			return 0, errPastDeadline
		}
		// Sleep at most 100 ms at a time: a rate raised meanwhile counts.
		t := time.NewTimer(min(at.Sub(now), 100*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
	}
}

// throttled counts a throttled attempt, sent at the rate given, and slows
// the pace.
func (r *run) throttled(sent float64) {
	r.throttles.Add(1)
	r.pacer.Throttled(sent)
	r.setPace()
}

// answered lets the pace grow after a call SSM answered.
func (r *run) answered() {
	r.pacer.Answered()
	r.setPace()
}

// setPace moves the limiter to the pacer's rate.
func (r *run) setPace() {
	if lim := r.pacer.Rate(); lim > 0 {
		r.limiter.SetLimit(lim)
	}
}
