package associate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// fanoutBody builds a fan-out request: one Targets-form entry per node,
// which SSM creates again and again if it is sent again.
func fanoutBody(doc string, nodes []int) string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = fmt.Sprintf("%q", nodeID(n))
	}
	return fmt.Sprintf(`{"Association":{"Name":%q},"InstanceIds":[%s]}`, doc, strings.Join(ids, ","))
}

// claimsLeft lists the claim items still IN_PROGRESS in the table.
func (e *env) claimsLeft(t *testing.T) []string {
	t.Helper()
	out, err := e.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, item := range out.Items {
		var r struct{ ID, Status string }
		if err := attributevalue.UnmarshalMap(item, &r); err != nil {
			t.Fatal(err)
		}
		if r.Status == "IN_PROGRESS" {
			left = append(left, r.ID)
		}
	}
	return left
}

// assertExactlyOnce checks the promise against what SSM holds: every node
// associated once, no entry sent again after SSM created it (a Targets
// resend would be a double, an InstanceId resend a refusal), and every node
// reported Successful or Deduplicated with the ID of its association.
func assertExactlyOnce(t *testing.T, e *env, doc string, nodes int, results ...report.Result) {
	t.Helper()
	st := e.emu.Stats()
	if st.DoubleAssociations != 0 || st.DuplicatesRefused != 0 {
		t.Errorf("SSM saw %d double associations and %d resends refused as existing; doubles: %+v", st.DoubleAssociations, st.DuplicatesRefused, e.emu.Doubles())
	}
	ids := e.emu.AssociationsByNode()
	if n := assertLedger(t, e.emu); n != nodes {
		t.Errorf("SSM holds %d (document, node) pairs, want %d", n, nodes)
	}
	reported := map[string]string{}
	note := func(node, id, how string) {
		k := doc + "/" + node
		if want := ids[k]; len(want) != 1 || want[0] != id {
			t.Errorf("%s reported %s with association %q, SSM holds %v", k, how, id, want)
		}
		if prev, ok := reported[k]; ok && prev != id {
			t.Errorf("%s reported twice: %s and %s", k, prev, id)
		}
		reported[k] = id
	}
	for _, res := range results {
		for _, a := range res.Successful {
			for _, tg := range a.Targets {
				for _, n := range tg.Values {
					note(n, a.AssociationId, "Successful")
				}
			}
		}
		for _, d := range res.Deduplicated {
			for _, n := range d.Entry.Nodes() {
				switch d.Reason {
				case report.ReasonAlreadyExists, report.ReasonAlreadyAssociated:
					note(n, d.AssociationId, d.Reason)
				case report.ReasonInProgress:
				default:
					t.Errorf("%s: deduplicated %q", n, d.Reason)
				}
			}
		}
	}
	if len(reported) != nodes {
		t.Errorf("%d nodes reported with their association, want %d", len(reported), nodes)
	}
	if left := e.claimsLeft(t); len(left) != 0 {
		t.Errorf("%d claims left in progress: %v", len(left), left[:min(len(left), 5)])
	}
}

func TestIntegrationLostAnswersBothForms(t *testing.T) {
	const n = 1200
	nodes := make([]int, n)
	for i := range nodes {
		nodes[i] = i
	}
	for _, form := range []struct{ name, body string }{
		{"InstanceId", batchBody("AWS-UpdateSSMAgent", nodes)},
		{"Targets", fanoutBody("AWS-UpdateSSMAgent", nodes)},
	} {
		t.Run(form.name, func(t *testing.T) {
			opts := ssmlocal.DefaultOptions()
			opts.MaxAssociations = 0
			// 24 % expected, so that the test's floor of 10 % holds whatever
			// order concurrent calls draw the seeded faults in.
			opts.LostAnswerRate = 0.12       // executed, then the connection closed
			opts.ErrorAfterCreateRate = 0.12 // executed, then HTTP 500
			opts.EntryFaultRate = 0.03
			opts.ThrottleRate = 0.05
			opts.Seed = 11
			e := newEnv(t, opts)
			eng := e.engine(associate.Settings{BatchSize: 10, MaxConcurrency: 4, MaxAttempts: 8,
				Backoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, ReconcileDelay: 20 * time.Millisecond})
			res := runRequest(t, eng, form.body, "run-1")

			st := e.emu.Stats()
			lost := st.DroppedConnections + st.ErrorsAfterCreate
			creates := st.Operations["CreateAssociationBatch"] - st.ThrottledCalls
			t.Logf("summary %+v; %d of %d executed calls lost their answer; emulator %+v", res.Summary, lost, creates, st)
			if lost*10 < creates {
				t.Fatalf("only %d of %d calls lost their answer: the test needs at least 10 %%", lost, creates)
			}
			if st.EntriesFailedByInjection == 0 || st.ThrottledCalls == 0 || res.Summary.Reads == 0 {
				t.Fatalf("faults or reads not exercised: %+v", st)
			}
			if res.Summary.Successful+res.Summary.Deduplicated != n || res.Summary.Failed+res.Summary.Unprocessed != 0 {
				t.Errorf("summary %+v, want every node Successful or Deduplicated", res.Summary)
			}
			assertExactlyOnce(t, e, "AWS-UpdateSSMAgent", n, res)

			// Sent again: nothing to do, every node from the table with its ID.
			before := e.emu.Stats().Operations["CreateAssociationBatch"]
			res2 := runRequest(t, eng, form.body, "run-2")
			if calls := e.emu.Stats().Operations["CreateAssociationBatch"] - before; calls != 0 || res2.Summary.Deduplicated != n {
				t.Errorf("second run: %d calls, summary %+v", calls, res2.Summary)
			}
			assertExactlyOnce(t, e, "AWS-UpdateSSMAgent", n, res2)
		})
	}
}

// A call whose answer comes after the deadline is cut: its entries are in
// doubt, their claims kept (not released as "not sent"), and the next
// invocation reads SSM before sending anything.
func TestIntegrationCallCutAtTheDeadline(t *testing.T) {
	opts := ssmlocal.DefaultOptions()
	e := newEnv(t, opts)
	e.emu.DelayAfterCreate(1, time.Minute)
	nodes := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	body := fanoutBody("AWS-UpdateSSMAgent", nodes)
	set := associate.Settings{BatchSize: 4, MaxConcurrency: 1, MaxAttempts: 3, CallEstimate: 10 * time.Millisecond,
		Backoff: 10 * time.Millisecond, ReconcileDelay: 50 * time.Millisecond, ClaimLease: 3 * time.Second}
	req, err := request.Parse([]byte(body), request.Limits{MaxEntries: 100})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.engine(set).Run(context.Background(), associate.Job{
		Request: req, Owner: "cut", Deadline: time.Now().Add(time.Second), LeaseUntil: time.Now().Add(time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	unknown := 0
	for _, u := range res.Unprocessed {
		if strings.Contains(u.Reason, "outcome unknown") {
			unknown++
		}
	}
	// The held call takes the whole budget: its 4 entries are in doubt, the
	// other 8 were never sent.
	if len(res.Unprocessed) != 12 || unknown != 4 {
		t.Fatalf("%d unprocessed, %d of them in doubt; want 12 and the 4 of the cut call", len(res.Unprocessed), unknown)
	}
	if left := e.claimsLeft(t); len(left) != 4 {
		t.Fatalf("claims left %v: the cut call's must be kept, and only those", left)
	}
	// The first invocation's owner record ends ReconcileDelay after it
	// answered; the next one takes the keys over and reads SSM.
	time.Sleep(100 * time.Millisecond)
	res2 := runRequest(t, e.engine(set), body, "next")
	if res2.Summary.Successful != 8 || res2.Summary.Deduplicated != 4 || res2.Summary.Reads == 0 {
		t.Fatalf("second run summary %+v", res2.Summary)
	}
	exists := 0
	for _, d := range res2.Deduplicated {
		if d.Reason == report.ReasonAlreadyExists {
			exists++
		}
	}
	if exists != 4 {
		t.Errorf("%d already exists in SSM, want the 4 the cut call created", exists)
	}
	assertExactlyOnce(t, e, "AWS-UpdateSSMAgent", len(nodes), res, res2)
}
