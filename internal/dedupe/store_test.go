package dedupe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

var ddb *testinfra.DynamoDB

func TestMain(m *testing.M) { os.Exit(testinfra.MainWithDynamoDB(m, &ddb)) }

var tables atomic.Int64

// newStore returns a store on a fresh table whose clock the test sets.
func newStore(t *testing.T) (*Store, *dynamodb.Client, *time.Time) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal)
	client := ddb.Client()
	table := fmt.Sprintf("store-%d", tables.Add(1))
	if _, err := client.CreateTable(context.Background(), TableDefinition(table)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond)
	s := NewStore(client, table, time.Hour)
	s.now = func() time.Time { return now }
	return s, client, &now
}

func get(t *testing.T, c *dynamodb.Client, s *Store, key string) (record, bool) {
	t.Helper()
	out, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: keyOf(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		return record{}, false
	}
	var r record
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		t.Fatal(err)
	}
	return r, true
}

func TestClaimLifecycle(t *testing.T) {
	ctx := context.Background()
	s, c, now := newStore(t)
	lease := now.Add(30 * time.Second)

	if cl, err := s.Claim(ctx, "k", "A", lease); err != nil || cl.Outcome != Claimed {
		t.Fatalf("first claim: %+v %v", cl, err)
	}
	r, _ := get(t, c, s, "k")
	if r.Status != statusClaimed || r.Owner != "A" || r.LeaseExpiry != lease.UnixMilli() || r.Expiration <= lease.Unix() {
		t.Fatalf("claimed record %+v", r)
	}

	// A live lease keeps others out, and says whose and until when.
	if cl, err := s.Claim(ctx, "k", "B", lease); err != nil || cl.Outcome != Held || cl.Owner != "A" || !cl.LeaseExpiry.Equal(lease) {
		t.Fatalf("second claim: %+v %v", cl, err)
	}
	// Only the owner completes or releases.
	if err := s.Complete(ctx, "k", "B", Association{AssociationID: "x"}); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("complete by B: %v", err)
	}
	if err := s.Release(ctx, "k", "B"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release by B: %v", err)
	}
	if err := s.Complete(ctx, "k", "A", Association{AssociationID: "assoc-1"}); err != nil {
		t.Fatal(err)
	}
	r, _ = get(t, c, s, "k")
	if r.Status != statusAssociated || r.AssociationID != "assoc-1" || r.LeaseExpiry != 0 || r.Expiration != now.Add(time.Hour).Unix() {
		t.Fatalf("completed record %+v", r)
	}
	if cl, err := s.Claim(ctx, "k", "C", lease); err != nil || cl.Outcome != Associated || cl.AssociationID != "assoc-1" {
		t.Fatalf("claim of associated key: %+v %v", cl, err)
	}
	// Completed claims can no longer be released.
	if err := s.Release(ctx, "k", "A"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release of an associated key: %v", err)
	}
	// Past DEDUPE_TTL the association is forgotten, even though DynamoDB's
	// TTL deletion has not happened yet; that is a fresh claim, not a
	// takeover.
	*now = now.Add(time.Hour + time.Second)
	if cl, err := s.Claim(ctx, "k", "D", now.Add(time.Minute)); err != nil || cl.Outcome != Claimed {
		t.Fatalf("claim after the TTL: %+v %v", cl, err)
	}
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	ctx := context.Background()
	s, c, now := newStore(t)
	if cl, err := s.Claim(ctx, "k", "crashed", now.Add(time.Second)); !cl.Owned() || err != nil {
		t.Fatal(cl, err)
	}
	*now = now.Add(2 * time.Second)
	// Taken over, and said so: the crashed owner may have sent it.
	if cl, err := s.Claim(ctx, "k", "B", now.Add(time.Minute)); cl.Outcome != TakenOver || cl.Owner != "crashed" || err != nil {
		t.Fatalf("takeover: %+v %v", cl, err)
	}
	// The crashed owner coming back finds its claim gone.
	if err := s.Complete(ctx, "k", "crashed", Association{AssociationID: "x"}); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("late completion: %v", err)
	}
	r, _ := get(t, c, s, "k")
	if r.Owner != "B" {
		t.Fatalf("record %+v", r)
	}
}

func TestDeadOwnersClaimsAreTakenOverBeforeTheirLease(t *testing.T) {
	ctx := context.Background()
	s, c, now := newStore(t)
	// A's claim lasts 15 minutes (its Lambda timeout), its heartbeat 30 s.
	if err := s.StartOwner(ctx, "A", now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if cl, err := s.Claim(ctx, "k", "A", now.Add(15*time.Minute)); cl.Outcome != Claimed || err != nil {
		t.Fatal(cl, err)
	}
	// While the heartbeat lives, the key is A's.
	*now = now.Add(20 * time.Second)
	if cl, err := s.Claim(ctx, "k", "B", now.Add(time.Minute)); cl.Outcome != Held || err != nil {
		t.Fatalf("claim while A lives: %+v %v", cl, err)
	}
	if err := s.RenewOwner(ctx, "A", now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A dies: no renewal. Once its record ran out, B takes the key over.
	*now = now.Add(31 * time.Second)
	s.owners = ownerCache{} // B's container read A alive before; a new one has no memory
	cl, err := s.Claim(ctx, "k", "B", now.Add(time.Minute))
	if cl.Outcome != TakenOver || cl.Owner != "A" || err != nil {
		t.Fatalf("claim after A died: %+v %v", cl, err)
	}
	if r, _ := get(t, c, s, "k"); r.Owner != "B" || r.Status != statusClaimed {
		t.Fatalf("record %+v", r)
	}
	// A dead owner stays dead: it cannot renew, so it knows to stop.
	if err := s.RenewOwner(ctx, "A", now.Add(time.Minute)); !errors.Is(err, ErrOwnerExpired) {
		t.Fatalf("renewal of a dead owner: %v", err)
	}
}

func TestClaimWithoutOwnerRecordWaitsForItsLease(t *testing.T) {
	// Claims of a version without owner records: their own lease decides.
	ctx := context.Background()
	s, _, now := newStore(t)
	if cl, _ := s.Claim(ctx, "k", "old", now.Add(time.Minute)); cl.Outcome != Claimed {
		t.Fatal(cl)
	}
	if cl, err := s.Claim(ctx, "k", "B", now.Add(time.Minute)); cl.Outcome != Held || err != nil {
		t.Fatalf("%+v %v", cl, err)
	}
}

func TestPossiblySentClaimIsNeverReleased(t *testing.T) {
	ctx := context.Background()
	s, c, now := newStore(t)
	if cl, _ := s.Claim(ctx, "k", "A", now.Add(time.Minute)); cl.Outcome != Claimed {
		t.Fatal(cl)
	}
	if err := s.MarkPossiblySent(ctx, "k", "B"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("mark by B: %v", err)
	}
	if err := s.MarkPossiblySent(ctx, "k", "A"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "k", "A"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("release of a possibly sent claim: %v", err)
	}
	r, found := get(t, c, s, "k")
	if !found || r.PossiblySent != now.UnixMilli() || r.Owner != "A" {
		t.Fatalf("record %+v", r)
	}
	// Recording the association still works.
	if err := s.CompleteAll(ctx, "A", []Association{{Key: "k", AssociationID: "a"}}); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseIsAlwaysSet(t *testing.T) {
	// A deadline already passed (0 ms left) must not leave a claim without
	// an expiry (Powertools #4759).
	s, c, now := newStore(t)
	if cl, err := s.Claim(context.Background(), "k", "A", now.Add(-time.Second)); !cl.Owned() || err != nil {
		t.Fatal(cl, err)
	}
	r, _ := get(t, c, s, "k")
	if r.LeaseExpiry <= now.UnixMilli() {
		t.Fatalf("lease %d not after now %d", r.LeaseExpiry, now.UnixMilli())
	}
}

func TestReleaseLetsOthersIn(t *testing.T) {
	ctx := context.Background()
	s, c, now := newStore(t)
	if cl, _ := s.Claim(ctx, "k", "A", now.Add(time.Minute)); !cl.Owned() {
		t.Fatal("claim")
	}
	if err := s.Release(ctx, "k", "A"); err != nil {
		t.Fatal(err)
	}
	if _, found := get(t, c, s, "k"); found {
		t.Fatal("released claim still stored")
	}
	if cl, _ := s.Claim(ctx, "k", "B", now.Add(time.Minute)); cl.Outcome != Claimed {
		t.Fatal("claim after release", cl)
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	s, _, now := newStore(t)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			cl, err := s.Claim(context.Background(), "contested", fmt.Sprint(i), now.Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if cl.Owned() {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners", wins.Load())
	}
}

func TestUnreachableTable(t *testing.T) {
	s, _, now := newStore(t)
	s.table = "no-such-table"
	_, err := s.Claim(context.Background(), "k", "A", now.Add(time.Minute))
	if err == nil || errors.Is(err, ErrNotOwner) {
		t.Fatalf("claim on a missing table: %v", err)
	}
}

// The SDK's retry of a claim whose answer was lost finds the invocation's
// own record: what that write replaced is unknown (a dead owner's key that
// may have been sent), so it counts as a takeover, read back before sending.
func TestOwnClaimFoundAgainIsATakeover(t *testing.T) {
	ctx := context.Background()
	s, _, now := newStore(t)
	if cl, err := s.Claim(ctx, "k", "A", now.Add(time.Minute)); cl.Outcome != Claimed || err != nil {
		t.Fatal(cl, err)
	}
	if cl, err := s.Claim(ctx, "k", "A", now.Add(time.Minute)); cl.Outcome != TakenOver || !cl.Owned() || err != nil {
		t.Fatalf("the same owner's claim again: %+v %v, want TakenOver", cl, err)
	}
}
