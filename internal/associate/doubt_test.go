package associate

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// One test per way an answer can go missing, and per way the engine used to
// resend or release blindly.

// executedThen makes the first call execute (its associations kept in the
// fake's ledger), then fail with err: an answer lost after SSM acted.
func executedThen(s *fakeSSM, err error) func(int, []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
	return func(call int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		out := succeedAll(entries)
		if call == 1 {
			s.keep(out.Successful...)
			return nil, err
		}
		return out, nil
	}
}

func TestLostAnswerIsReadBackNotResent(t *testing.T) {
	for name, err := range map[string]error{
		"connection reset": errors.New("read tcp 127.0.0.1:1234->127.0.0.1:4583: read: connection reset by peer"),
		"HTTP 500":         apiError("InternalServerError", smithy.FaultServer),
		"timeout":          &smithy.OperationError{ServiceID: "SSM", OperationName: "CreateAssociationBatch", Err: errors.New("net/http: timeout awaiting response headers")},
	} {
		t.Run(name, func(t *testing.T) {
			s, c := &fakeSSM{}, newFakeClaims()
			s.respond = executedThen(s, err)
			set := settings()
			set.MaxConcurrency = 1
			res := runJob(t, s, c, set, job(nodeRequest("D1", 1, 2, 3)))
			if res.Summary.Successful != 3 || res.Summary.Reads == 0 {
				t.Fatalf("summary %+v", res.Summary)
			}
			for _, n := range []int{1, 2, 3} {
				if s.sent[node(n)] != 1 {
					t.Errorf("%s sent %d times after SSM created it", node(n), s.sent[node(n)])
				}
			}
			// Reported with SSM's own IDs, and recorded with them.
			for _, a := range res.Successful {
				if c.items["node#D1#"+a.InstanceId].assocID != a.AssociationId || a.AssociationId == "" {
					t.Errorf("%s: reported %q, recorded %+v", a.InstanceId, a.AssociationId, c.items["node#D1#"+a.InstanceId])
				}
			}
			if left := c.inProgress(); len(left) != 0 {
				t.Errorf("claims left: %v", left)
			}
		})
	}
}

func TestLostAnswerWithNothingCreatedIsSentAgain(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = func(call int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		if call == 1 {
			return nil, apiError("InternalServerError", smithy.FaultServer) // failed before it acted
		}
		return succeedAll(entries), nil
	}
	res := runJob(t, s, c, settings(), job(nodeRequest("D1", 1)))
	if res.Summary.Successful != 1 || s.sent[node(1)] != 2 || s.reads == 0 {
		t.Fatalf("summary %+v, sent %d, reads %d: want read back, then sent again", res.Summary, s.sent[node(1)], s.reads)
	}
}

func TestDoubtNeverReleasesTheClaim(t *testing.T) {
	// SSM cannot be read either: the entry stays in doubt, Unprocessed, and
	// its claim is kept and marked, never released as "not sent".
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = executedThen(s, errors.New("connection reset by peer"))
	reads := &failingReads{fakeSSM: s}
	res, err := New(reads, c, settings(), nil).Run(context.Background(), job(nodeRequest("D1", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unprocessed) != 1 || s.sent[node(1)] != 1 {
		t.Fatalf("summary %+v, sent %d", res.Summary, s.sent[node(1)])
	}
	if cl := c.items["node#D1#"+node(1)]; !cl.sent || cl.associated || c.ops["release"] != 0 {
		t.Errorf("claim %+v, ops %v: want kept and marked possibly sent", cl, c.ops)
	}
	if !res.Retryable() {
		t.Error("an entry in doubt must make the invocation retryable")
	}
}

type failingReads struct{ *fakeSSM }

func (f *failingReads) ListAssociations(context.Context, *ssm.ListAssociationsInput, ...func(*ssm.Options)) (*ssm.ListAssociationsOutput, error) {
	return nil, apiError("InternalServerError", smithy.FaultServer)
}

func TestTakenOverClaimIsReadBackBeforeSending(t *testing.T) {
	s, c := &fakeSSM{}, newFakeClaims()
	// A crashed invocation held nodes 1 and 2, and had created node 1's
	// association before it died.
	for _, n := range []int{1, 2} {
		c.items["node#D1#"+node(n)] = fakeClaim{owner: "crashed", lease: time.Now().Add(-time.Second)}
	}
	created := success(nodeRequest("D1", 1).Items[0].Entry.SDK())
	created.Date = aws.Time(time.Now().Add(-time.Minute))
	s.keep(created)
	res := runJob(t, s, c, settings(), job(nodeRequest("D1", 1, 2, 3)))
	got := outcomeOf(t, res)
	if got[node(1)] != "Deduplicated" || got[node(2)] != "Successful" || got[node(3)] != "Successful" {
		t.Fatalf("outcomes %v", got)
	}
	if s.sent[node(1)] != 0 {
		t.Errorf("node 1 sent %d times, though SSM had it", s.sent[node(1)])
	}
	for _, d := range res.Deduplicated {
		if d.Reason != report.ReasonAlreadyExists || d.AssociationId != aws.ToString(created.AssociationId) {
			t.Errorf("deduplicated %+v, want already exists with %s", d, aws.ToString(created.AssociationId))
		}
	}
}

func TestAlreadyExistsIsSettledNodeByNode(t *testing.T) {
	// One entry names three nodes; SSM refuses it as already existing
	// because of node 2 alone.
	s, c := &fakeSSM{}, newFakeClaims()
	existing := success(request.Entry{Name: "D1", Targets: []request.Target{{Key: "InstanceIds", Values: []string{node(2)}}}}.SDK())
	existing.Date = aws.Time(time.Now().Add(-time.Hour)) // made long before this run
	s.keep(existing)
	s.respond = func(_ int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		out := &ssm.CreateAssociationBatchOutput{}
		for _, e := range entries {
			if len(e.Targets) > 0 && slices.Contains(e.Targets[0].Values, node(2)) {
				e := e
				out.Failed = append(out.Failed, ssmtypes.FailedCreateAssociation{Entry: &e, Fault: ssmtypes.FaultClient, Message: aws.String("Association Already Exists")})
				continue
			}
			out.Successful = append(out.Successful, success(e))
		}
		return out, nil
	}
	e := request.Entry{Name: "D1", Targets: []request.Target{{Key: "InstanceIds", Values: []string{node(1), node(2), node(3)}}}}
	res := runJob(t, s, c, settings(), job(&request.Request{Items: []request.Item{{Entry: e, Path: "Entries[0]"}}}))
	if res.Summary.Successful != 1 || len(res.Deduplicated) != 1 {
		t.Fatalf("summary %+v", res.Summary)
	}
	if d := res.Deduplicated[0]; d.Entry.Nodes()[0] != node(2) || d.AssociationId != aws.ToString(existing.AssociationId) {
		t.Errorf("deduplicated %+v, want node 2 with its association", d)
	}
	if nodes := res.Successful[0].Targets[0].Values; len(nodes) != 2 || nodes[0] != node(1) || nodes[1] != node(3) {
		t.Errorf("sent again for %v, want nodes 1 and 3", nodes)
	}
	if !c.items["node#D1#"+node(2)].associated || !c.items["node#D1#"+node(1)].associated {
		t.Errorf("claims %+v", c.items)
	}
}

func TestResultsAreMatchedByTheirWholeContent(t *testing.T) {
	// Two entries alike but for their names and TargetLocations, answered
	// in the reverse order: each must get its own association. (Alike but
	// for TargetLocations alone, they are one association: one key, and
	// the second is a duplicate in the request.)
	s, c := &fakeSSM{}, newFakeClaims()
	s.respond = func(_ int, entries []ssmtypes.CreateAssociationBatchRequestEntry) (*ssm.CreateAssociationBatchOutput, error) {
		out := succeedAll(entries)
		for i, j := 0, len(out.Successful)-1; i < j; i, j = i+1, j-1 {
			out.Successful[i], out.Successful[j] = out.Successful[j], out.Successful[i]
		}
		return out, nil
	}
	tags := []request.Target{{Key: "tag:Env", Values: []string{"prod"}}}
	var items []request.Item
	for i, account := range []string{"111111111111", "222222222222"} {
		items = append(items, request.Item{Path: "Entries[" + string(rune('0'+i)) + "]", Entry: request.Entry{
			Name: "D1", Targets: tags, AssociationName: aws.String("run-" + account),
			TargetLocations: []request.TargetLocation{{Accounts: []string{account}, Regions: []string{"eu-west-1"}}},
		}})
	}
	res := runJob(t, s, c, settings(), job(&request.Request{Items: items}))
	if res.Summary.Successful != 2 || s.calls != 1 {
		t.Fatalf("summary %+v in %d calls", res.Summary, s.calls)
	}
	for _, d := range s.ledger {
		want := aws.ToString(d.AssociationId)
		e := items[0].Entry
		if d.TargetLocations[0].Accounts[0] == "222222222222" {
			e = items[1].Entry
		}
		key := dedupe.TargetsKey(e)
		if got := c.items[key].assocID; got != want {
			t.Errorf("%s recorded with %s, want %s", d.TargetLocations[0].Accounts[0], got, want)
		}
	}
}
