package associate_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/pace"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// arrivals records when CreateAssociationBatch calls reach the emulator.
type arrivals struct {
	mu sync.Mutex
	at []time.Time
}

func (a *arrivals) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".CreateAssociationBatch") {
			a.mu.Lock()
			a.at = append(a.at, time.Now())
			a.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// perSecond is the calls that arrived in [from, to) after t0, per second.
func (a *arrivals) perSecond(t0 time.Time, from, to time.Duration) float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.at {
		if d := t.Sub(t0); d >= from && d < to {
			n++
		}
	}
	return float64(n) / (to - from).Seconds()
}

// autoEnv is newEnv with the emulator behind an arrivals recorder.
func autoEnv(t *testing.T, opts ssmlocal.Options) (*env, *arrivals) {
	t.Helper()
	e := newEnv(t, ssmlocal.Options{})
	e.emu = ssmlocal.New(opts)
	calls := &arrivals{}
	srv := httptest.NewServer(calls.wrap(e.emu))
	t.Cleanup(srv.Close)
	e.ssm = awsclient.SSM(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	return e, calls
}

func fanout(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("i-%017x", 0xa000+i))
	}
	return `{"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":[` + strings.Join(ids, ",") + `]}`
}

// With CALLS_PER_SECOND=auto the engine finds a rate it is not told: it
// follows SSM's rate down when it halves, then up when it rises, and the
// rate it ends at is remembered for the next invocation.
func TestAutoRateFollowsARateItIsNotTold(t *testing.T) {
	e, calls := autoEnv(t, ssmlocal.Options{Rate: 20, Burst: 1, Latency: 20 * time.Millisecond,
		RateSchedule: []ssmlocal.ScheduledRate{{After: 6 * time.Second, CallsPerSecond: 10, Burst: 1}, {After: 12 * time.Second, CallsPerSecond: 25, Burst: 1}}})
	t0 := time.Now() // the emulator's schedule starts at New, just before
	mem := pace.NewMemory(e.ddb, e.table)
	// One entry a call: the calls, not DynamoDB Local's claims, are what a
	// loaded machine must keep up with (at 5 a call, under make test's
	// other packages, the run once went at 8.7 calls/s throughout).
	eng := e.engine(associate.Settings{BatchSize: 1, MaxConcurrency: 4, MaxAttempts: 10, Backoff: 20 * time.Millisecond,
		AutoRate: &associate.AutoRate{Start: 2, Max: 100}}).RememberRate(mem)
	// More than 30 s of calls at 25 a second.
	req, err := request.Parse([]byte(fanout(1000)), request.Limits{MaxEntries: 10000})
	if err != nil {
		t.Fatal(err)
	}
	// Calls stop a slow call's length before the deadline: past 26 s.
	end := t0.Add(30 * time.Second)
	res, err := eng.Run(context.Background(), associate.Job{Request: req, Owner: "auto-1", Deadline: end, LeaseUntil: end.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Summary
	t.Logf("emulator: %+v; rate changes %+v", e.emu.Stats(), e.emu.RateChanges())
	t.Logf("summary %+v; calls/s at 20: %.1f, after the halving to 10: %.1f, after the rise to 25: %.1f", s,
		calls.perSecond(t0, 3*time.Second, 6*time.Second), calls.perSecond(t0, 9*time.Second, 12*time.Second), calls.perSecond(t0, 22*time.Second, 26*time.Second))
	if s.Failed != 0 || s.Successful+s.Unprocessed != 1000 || s.Successful == 0 {
		t.Errorf("want only Successful, and Unprocessed past the deadline; got %+v", s)
	}
	if st := e.emu.Stats(); st.DoubleAssociations != 0 {
		t.Errorf("double associations: %d", st.DoubleAssociations)
	}
	if got := calls.perSecond(t0, 9*time.Second, 12*time.Second); got > 13 {
		t.Errorf("3 s after SSM's rate halved to 10, calls arrive at %.1f/s: want the pace followed down", got)
	}
	// Above 10 only if the pace went up: a load on the machine may slow it,
	// never lift it past a rate SSM refused. The probe starts once 50 calls
	// held the rate found (5 s at 10), and climbs 2 %, 2 %, 4 %, 8 % …
	if got := calls.perSecond(t0, 22*time.Second, 26*time.Second); got <= 10.5 {
		t.Errorf("10 s after SSM's rate rose to 25, calls arrive at %.1f/s: want the pace above the old 10", got)
	}
	if share := float64(s.Throttles) / float64(s.Calls+s.Throttles); share > 0.15 {
		t.Errorf("%d throttled attempts for %d calls: %.0f %%", s.Throttles, s.Calls, 100*share)
	}
	// The next invocation starts at the rate found, not at Start.
	next, err := mem.Join(context.Background(), "auto-2")
	if err != nil {
		t.Fatal(err)
	}
	// What is remembered is the rate found, at most 15 % above the last cut
	// (pace.Adaptive.Estimate): about the 10 of the halving or more, at most SSM's 25
	// and a probe's margin.
	if r := next.Account; r < 8 || r > 30 {
		t.Errorf("remembered %.1f calls/s, want a rate found after the rise (8 to 30)", r)
	}
}

// Two engines running at once on one memory split the rate: the second
// starts at half of what the first found, and the first takes half.
func TestAutoRateIsSharedByInvocationsRunningAtOnce(t *testing.T) {
	e, _ := autoEnv(t, ssmlocal.Options{Rate: 7, Burst: 1, Latency: 20 * time.Millisecond})
	mem := pace.NewMemory(e.ddb, e.table)
	set := associate.Settings{BatchSize: 5, MaxConcurrency: 2, MaxAttempts: 10, Backoff: 20 * time.Millisecond,
		AutoRate: &associate.AutoRate{Start: 2, Max: 100}}
	res := runRequest(t, e.engine(set).RememberRate(mem), fanout(300), "alone")
	if res.Summary.Successful != 300 {
		t.Fatalf("first run: %+v", res.Summary)
	}
	probe, err := mem.Join(context.Background(), "probe")
	if err != nil {
		t.Fatal(err)
	}
	if r := probe.Account; r < 3.5 || r > 9 {
		t.Errorf("the rate found at 7 calls/s: %.1f", r)
	}
	// The engine that left still counts for pace.LeaveGrace: its next run
	// would be the same member.
	if probe.Members != 2 || probe.PerMember() != probe.Account/2 {
		t.Errorf("probe just after the run: %+v, want the engine still counted", probe)
	}
}

// crowd is a rate memory whose members all joined at once: each Join saw
// only itself, each Sync sees them all.
type crowd struct {
	members int

	mu            sync.Mutex
	joined, first time.Time // Join, and the first Sync after it
}

func (c *crowd) Join(context.Context, string) (pace.Share, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joined = time.Now()
	return pace.Share{Members: 1}, nil
}

func (c *crowd) Sync(context.Context, string, pace.Estimate, pace.Share) (pace.Share, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first.IsZero() {
		c.first = time.Now()
	}
	return pace.Share{Members: c.members}, nil
}

func (c *crowd) Leave(context.Context, string, pace.Estimate, pace.Share, time.Duration) error {
	return nil
}

// Members that join together (a job's workers starting) learn how many
// they are at a first sync soon after, and a rate still in slow start is
// held to its share of the maximum, not cut by the members it did not see:
// it is no share of a rate found yet.
func TestAutoRateJoinedTogetherTakesItsShareOfTheMaxAtTheFirstSync(t *testing.T) {
	e, calls := autoEnv(t, ssmlocal.Options{Rate: 500, Burst: 50, Latency: 20 * time.Millisecond})
	mem := &crowd{members: 8}
	// 80 shared by 8: at most 10 each. Cut by 8 members at the first sync
	// the slow start would be at 1 then 2 and 4; syncing first after
	// pace.SyncEvery it would double past 10 to 64.
	eng := e.engine(associate.Settings{BatchSize: 1, MaxConcurrency: 4, MaxAttempts: 3, Backoff: 20 * time.Millisecond,
		AutoRate: &associate.AutoRate{Start: 8, Max: 80}}).RememberRate(mem)
	res := runRequest(t, eng, fanout(60), "crowd")
	if res.Summary.Successful != 60 {
		t.Fatalf("summary %+v", res.Summary)
	}
	mem.mu.Lock()
	t0, first := mem.joined, mem.first.Sub(mem.joined)
	mem.mu.Unlock()
	if mem.first.IsZero() {
		t.Error("no sync in the run")
	} else if first < pace.FirstSync*9/10 || first > pace.FirstSync+time.Second {
		t.Errorf("first sync %v after Join, want about pace.FirstSync (%v)", first, pace.FirstSync)
	}
	if got := calls.perSecond(t0, 2*time.Second, 4*time.Second); got < 6 || got > 11 {
		t.Errorf("calls/s 2 to 4 s after Join: %.1f, want about 10 (the max shared by 8)", got)
	}
}

// dwindling is a rate memory of two members holding 20 calls/s between
// them, until the other leaves at gone; it records the runs' syncs and the
// grace of their Leave.
type dwindling struct {
	gone time.Time

	mu    sync.Mutex
	syncs []time.Time
	grace time.Duration
}

func (d *dwindling) Join(context.Context, string) (pace.Share, error) {
	return pace.Share{Account: 20, Ceiling: 20.2, Members: 2}, nil
}

func (d *dwindling) Sync(context.Context, string, pace.Estimate, pace.Share) (pace.Share, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncs = append(d.syncs, time.Now())
	if time.Now().Before(d.gone) {
		return pace.Share{Account: 20, Ceiling: 20.2, Members: 2}, nil
	}
	return pace.Share{Account: 20, Ceiling: 20.2, Members: 1}, nil
}

func (d *dwindling) Leave(_ context.Context, _ string, _ pace.Estimate, _ pace.Share, grace time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.grace = grace
	return nil
}

// A job's closing run (its worker runs no other chunk after it) hears
// within about a second that the other member left and takes its share,
// instead of at the next pace.SyncEvery; and it leaves without grace, for
// the runs still going to do the same. A run that is not closing keeps
// pace.SyncEvery and pace.LeaveGrace.
func TestAutoRateClosingRunTakesTheShareOfAMemberThatLeftWithinASecond(t *testing.T) {
	for _, closing := range []bool{true, false} {
		t.Run(fmt.Sprintf("closing=%t", closing), func(t *testing.T) {
			e, calls := autoEnv(t, ssmlocal.Options{Rate: 500, Burst: 50, Latency: 20 * time.Millisecond})
			t0 := time.Now()
			mem := &dwindling{gone: t0.Add(1500 * time.Millisecond)}
			eng := e.engine(associate.Settings{BatchSize: 1, MaxConcurrency: 4, MaxAttempts: 3, Backoff: 20 * time.Millisecond,
				AutoRate: &associate.AutoRate{Start: 5, Max: 100}}).RememberRate(mem)
			req, err := request.Parse([]byte(fanout(110)), request.Limits{MaxEntries: 1000})
			if err != nil {
				t.Fatal(err)
			}
			res, err := eng.Run(context.Background(), associate.Job{Request: req, Owner: "closing",
				Deadline: time.Now().Add(time.Minute), LeaseUntil: time.Now().Add(2 * time.Minute), Closing: closing})
			if err != nil || res.Summary.Successful != 110 {
				t.Fatalf("run: %+v, %v", res.Summary, err)
			}
			mem.mu.Lock()
			defer mem.mu.Unlock()
			before := calls.perSecond(t0, 400*time.Millisecond, 1400*time.Millisecond)
			after := calls.perSecond(t0, 2700*time.Millisecond, 3700*time.Millisecond)
			t.Logf("calls/s %.1f before the other left, %.1f 1.2 to 2.2 s after; %d syncs; left with grace %v", before, after, len(mem.syncs), mem.grace)
			if before < 7 || before > 12 {
				t.Errorf("calls/s before the other left: %.1f, want about 10 (its share of 20)", before)
			}
			if closing {
				if after < 16 {
					t.Errorf("calls/s 1.2 to 2.2 s after the other left: %.1f, want about 20 (the whole rate)", after)
				}
				if mem.grace != 0 {
					t.Errorf("a closing run left with grace %v, want 0", mem.grace)
				}
				return
			}
			if after > 12 {
				t.Errorf("calls/s 1.2 to 2.2 s after the other left: %.1f; a run that is not closing syncs only every %v", after, pace.SyncEvery)
			}
			if mem.grace != pace.LeaveGrace {
				t.Errorf("left with grace %v, want pace.LeaveGrace (%v)", mem.grace, pace.LeaveGrace)
			}
		})
	}
}
