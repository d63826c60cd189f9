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
	if err := m.Leave(ctx, "a", 12, s); err != nil {
		t.Fatal(err)
	}
	c.add(MemoryMaxAge - time.Second)
	s, err = m.Join(ctx, "b")
	if err != nil || s.Members != 1 || s.PerMember() != 12 {
		t.Fatalf("join after a's leave: %+v, %v; want a's 12 calls/s, b alone", s, err)
	}
	if err := m.Leave(ctx, "b", 12, s); err != nil {
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
	a, err := m.Sync(ctx, "a", 40, a) // alone: the account's rate is 40
	if err != nil || a.Account != 40 {
		t.Fatalf("sync: %+v, %v", a, err)
	}
	b, err := m.Join(ctx, "b")
	if err != nil || b.Members != 2 || b.PerMember() != 20 {
		t.Fatalf("b joins: %+v, %v; want 2 members, 20 each", b, err)
	}
	c.add(SyncEvery)
	if a, err = m.Sync(ctx, "a", 20, a); err != nil || a.Members != 2 {
		t.Fatalf("a sees b: %+v, %v", a, err)
	}
	// b dies: it never syncs again. Once its lease ran out, a counts
	// itself alone, and the next write removes b.
	c.add(MemberLease)
	if a, err = m.Sync(ctx, "a", 20, a); err != nil || a.Members != 1 || len(a.expired) != 1 {
		t.Fatalf("after b's lease: %+v, %v; want a alone, b expired", a, err)
	}
	if a, err = m.Sync(ctx, "a", 38, a); err != nil || a.Members != 1 || len(a.expired) != 0 || a.Account != 38 {
		t.Fatalf("next sync: %+v, %v; want b removed, the account at a's 38", a, err)
	}
	// a's own lease ran out between two syncs (a long pause): it renews
	// itself and is not removed.
	c.add(MemberLease + time.Second)
	if a, err = m.Sync(ctx, "a", 38, a); err != nil || a.Members != 1 {
		t.Fatalf("late sync: %+v, %v", a, err)
	}
	if a, err = m.Sync(ctx, "a", 38, Share{Members: 1, expired: []string{memberPrefix + "a"}}); err != nil || a.Members != 1 {
		t.Fatalf("sync naming itself expired: %+v, %v; want no overlap error", a, err)
	}
	if err := m.Leave(ctx, "a", 38, Share{Members: 1, expired: []string{memberPrefix + "a"}}); err != nil {
		t.Fatalf("leave naming itself expired: %v", err)
	}
}
