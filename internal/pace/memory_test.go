package pace

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

var ddb *testinfra.DynamoDB

func TestMain(m *testing.M) { os.Exit(testinfra.MainWithDynamoDB(m, &ddb)) }

func TestMemoryUsesTheDedupeTablesKeyAndTTL(t *testing.T) {
	if keyAttr != dedupe.KeyAttribute || ttlAttr != dedupe.TTLAttribute {
		t.Errorf("the rate item's key %q and TTL %q must be the dedupe table's %q and %q", keyAttr, ttlAttr, dedupe.KeyAttribute, dedupe.TTLAttribute)
	}
}

// memory returns a Memory on a fresh dedupe table, with a clock the test moves.
func memory(t *testing.T) (*Memory, *clock) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal)
	table := fmt.Sprintf("pace-%d", time.Now().UnixNano())
	if _, err := ddb.Client().CreateTable(context.Background(), dedupe.TableDefinition(table)); err != nil {
		t.Fatal(err)
	}
	c := newClock()
	m := NewMemory(ddb.Client(), table)
	m.now = c.now
	return m, c
}

func TestMemoryRemembersTheRateUntilItAgesOut(t *testing.T) {
	ctx := context.Background()
	m, c := memory(t)
	s, err := m.Join(ctx, "a")
	if err != nil || s.Members != 1 || s.PerMember() != 0 {
		t.Fatalf("first join: %+v, %v; want 1 member and no rate known", s, err)
	}
	if err := m.Leave(ctx, "a", Estimate{Rate: 12}, s, LeaveGrace); err != nil {
		t.Fatal(err)
	}
	c.add(MemoryMaxAge - time.Second)
	s, err = m.Join(ctx, "b")
	if err != nil || s.Members != 1 || s.PerMember() != 12 {
		t.Fatalf("join after a's leave: %+v, %v; want a's 12 calls/s, b alone", s, err)
	}
	if err := m.Leave(ctx, "b", Estimate{Rate: 12}, s, LeaveGrace); err != nil {
		t.Fatal(err)
	}
	c.add(MemoryMaxAge + time.Second)
	s, err = m.Join(ctx, "c")
	if err != nil || s.PerMember() != 0 {
		t.Fatalf("join after the rate aged out: %+v, %v; want no rate", s, err)
	}
}

func TestMemorySharesTheRateAndTakesBackADeadMembersShare(t *testing.T) {
	ctx := context.Background()
	m, c := memory(t)
	a, _ := m.Join(ctx, "a")
	a, err := m.Sync(ctx, "a", Estimate{Rate: 40}, a) // alone: the account's rate is 40
	if err != nil || a.Members != 1 || a.Account != 0 {
		t.Fatalf("sync: %+v, %v; want a alone, no rate before its own", a, err)
	}
	b, err := m.Join(ctx, "b")
	if err != nil || b.Members != 2 || b.PerMember() != 20 {
		t.Fatalf("b joins: %+v, %v; want 2 members, 20 each", b, err)
	}
	c.add(SyncEvery)
	if a, err = m.Sync(ctx, "a", Estimate{Rate: 20}, a); err != nil || a.Members != 2 {
		t.Fatalf("a sees b: %+v, %v", a, err)
	}
	// b dies: it never syncs again. Once its lease ran out, a counts
	// itself alone, and the next write removes b.
	c.add(MemberLease)
	if a, err = m.Sync(ctx, "a", Estimate{Rate: 20}, a); err != nil || a.Members != 1 || len(a.expired) != 1 {
		t.Fatalf("after b's lease: %+v, %v; want a alone, b expired", a, err)
	}
	if a, err = m.Sync(ctx, "a", Estimate{Rate: 38}, a); err != nil || a.Members != 1 || a.Account != 40 {
		t.Fatalf("next sync: %+v, %v; want a alone, the account as a's last sync left it (20 × the 2 members it saw)", a, err)
	}
	if s, err := m.Join(ctx, "c"); err != nil || s.Account != 38 || s.Members != 2 || len(s.expired) != 0 {
		t.Fatalf("c joins: %+v, %v; want b removed, a and c, the account at a's 38", s, err)
	}
	if err := m.Leave(ctx, "c", Estimate{Rate: 19}, Share{Members: 2}, LeaveGrace); err != nil {
		t.Fatal(err)
	}
	// a's own lease ran out between two syncs (a long pause): it renews
	// itself and is not removed.
	c.add(MemberLease + time.Second)
	if a, err = m.Sync(ctx, "a", Estimate{Rate: 38}, a); err != nil || a.Members != 1 {
		t.Fatalf("late sync: %+v, %v", a, err)
	}
	if a, err = m.Sync(ctx, "a", Estimate{Rate: 38}, Share{Members: 1, expired: []string{memberPrefix + "a"}}); err != nil || a.Members != 1 {
		t.Fatalf("sync naming itself expired: %+v, %v; want no overlap error", a, err)
	}
	if err := m.Leave(ctx, "a", Estimate{Rate: 38}, Share{Members: 1, expired: []string{memberPrefix + "a"}}, LeaveGrace); err != nil {
		t.Fatalf("leave naming itself expired: %v", err)
	}
}

// The lowest rate refused above the rate found is remembered with it, as
// the account's, and shared like it; for CeilingMaxAge only, and only when
// a member saw it refused.
func TestMemoryRemembersTheCeilingForAMinute(t *testing.T) {
	ctx := context.Background()
	m, c := memory(t)
	a, _ := m.Join(ctx, "a")
	if err := m.Leave(ctx, "a", Estimate{Rate: 10, Ceiling: 12}, a, LeaveGrace); err != nil {
		t.Fatal(err)
	}
	c.add(LeaveGrace)
	b, err := m.Join(ctx, "b")
	if err != nil || b.PerMember() != 10 || b.CeilingPerMember() != 12 {
		t.Fatalf("join after a: %+v, %v; want 10 and a ceiling of 12", b, err)
	}
	d, err := m.Join(ctx, "d")
	if err != nil || d.Members != 2 || d.PerMember() != 5 || d.CeilingPerMember() != 6 {
		t.Fatalf("second member: %+v, %v; want half of each", d, err)
	}
	// b leaves having seen no refusal: the ceiling keeps its time.
	c.add(CeilingMaxAge / 2)
	if err := m.Leave(ctx, "b", Estimate{Rate: 5}, b, LeaveGrace); err != nil {
		t.Fatal(err)
	}
	c.add(CeilingMaxAge/2 + time.Second)
	e, err := m.Join(ctx, "e")
	if err != nil || e.Account != 5 || e.Ceiling != 0 {
		t.Fatalf("a minute after the refusal: %+v, %v; want b's rate (5 × the 1 member it saw) without a ceiling", e, err)
	}
	// A ceiling at or under the rate is no ceiling.
	if err := m.Leave(ctx, "e", Estimate{Rate: 8, Ceiling: 8}, e, LeaveGrace); err != nil {
		t.Fatal(err)
	}
	if f, err := m.Join(ctx, "f"); err != nil || f.Ceiling != 0 {
		t.Fatalf("after a ceiling not above the rate: %+v, %v", f, err)
	}
}

// A member that leaves still counts for LeaveGrace, and comes back under
// its name as the same member: the others' share does not jump between a
// worker's chunks. One that leaves with no grace counts no more at once.
func TestMemoryKeepsALeavingMemberForItsGrace(t *testing.T) {
	ctx := context.Background()
	m, c := memory(t)
	a, _ := m.Join(ctx, "a")
	b, err := m.Join(ctx, "worker/b.1") // a name is one attribute, whatever it holds
	if err != nil || b.Members != 2 {
		t.Fatalf("b joins: %+v, %v", b, err)
	}
	if err := m.Leave(ctx, "a", Estimate{Rate: 10}, a, LeaveGrace); err != nil {
		t.Fatal(err)
	}
	if b, err = m.Sync(ctx, "worker/b.1", Estimate{Rate: 10}, b); err != nil || b.Members != 2 {
		t.Fatalf("b syncs just after a left: %+v, %v; want a still counted", b, err)
	}
	c.add(LeaveGrace / 2)
	if a, err = m.Join(ctx, "a"); err != nil || a.Members != 2 || a.PerMember() != 10 {
		t.Fatalf("a comes back: %+v, %v; want the same 2 members, 10 each", a, err)
	}
	if err := m.Leave(ctx, "a", Estimate{Rate: 10}, a, LeaveGrace); err != nil {
		t.Fatal(err)
	}
	c.add(LeaveGrace)
	if b, err = m.Sync(ctx, "worker/b.1", Estimate{Rate: 10}, b); err != nil || b.Members != 1 {
		t.Fatalf("b syncs after a's grace: %+v, %v; want b alone", b, err)
	}
	// Leaving without grace (no run of a expected soon): b counts itself
	// alone at its next sync, at the same instant.
	if a, err = m.Join(ctx, "a"); err != nil || a.Members != 2 {
		t.Fatalf("a joins again: %+v, %v", a, err)
	}
	if err := m.Leave(ctx, "a", Estimate{Rate: 10}, a, 0); err != nil {
		t.Fatal(err)
	}
	if b, err = m.Sync(ctx, "worker/b.1", Estimate{Rate: 10}, b); err != nil || b.Members != 1 {
		t.Fatalf("b syncs just after a left without grace: %+v, %v; want b alone", b, err)
	}
}

// Sync answers with the rate as the last member to write left it, not the
// writer's own back: a member learns what the others hold (Adaptive.Follow).
func TestMemorySyncHearsTheOthersRate(t *testing.T) {
	ctx := context.Background()
	m, c := memory(t)
	a, _ := m.Join(ctx, "a")
	b, err := m.Join(ctx, "b")
	if err != nil || b.Members != 2 {
		t.Fatalf("b joins: %+v, %v", b, err)
	}
	c.add(SyncEvery)
	if b, err = m.Sync(ctx, "b", Estimate{Rate: 12.5}, b); err != nil || b.Members != 2 {
		t.Fatalf("b syncs: %+v, %v", b, err)
	}
	a, err = m.Sync(ctx, "a", Estimate{Rate: 5}, a)
	if err != nil || a.Members != 2 || a.Account != 25 || a.PerMember() != 12.5 || a.Ceiling != 0 {
		t.Fatalf("a syncs: %+v, %v; want b's 12.5 × 2 members, no ceiling", a, err)
	}
	c.add(SyncEvery)
	if a, err = m.Sync(ctx, "a", Estimate{Rate: 5, Ceiling: 6}, a); err != nil || a.Account != 5 {
		t.Fatalf("a syncs again: %+v, %v; want its own 5 × the 1 member it had seen", a, err)
	}
	if b, err = m.Sync(ctx, "b", Estimate{Rate: 12.5}, b); err != nil || b.Account != 10 || b.Ceiling != 12 {
		t.Fatalf("b syncs again: %+v, %v; want a's 5 and 6 × 2 members", b, err)
	}
	// A member whose own lease ran out (a pause longer than MemberLease)
	// still counts itself.
	c.add(MemberLease + time.Second)
	if a, err = m.Sync(ctx, "a", Estimate{Rate: 5}, a); err != nil || a.Members != 1 {
		t.Fatalf("a syncs after both leases ran out: %+v, %v; want a alone", a, err)
	}
}
