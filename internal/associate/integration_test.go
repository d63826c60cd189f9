package associate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// ddb is the DynamoDB Local shared by the integration tests of this package.
var ddb *testinfra.DynamoDB

func TestMain(m *testing.M) { os.Exit(testinfra.MainWithDynamoDB(m, &ddb)) }

var tableSeq atomic.Int64

// env is one test's real services: a fresh table in DynamoDB Local and an
// SSM emulator, reached through the clients the function builds.
type env struct {
	emu   *ssmlocal.Server
	store *dedupe.Store
	ssm   *ssm.Client
	ddb   *dynamodb.Client
	table string
}

func newEnv(t *testing.T, opts ssmlocal.Options) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs DynamoDB Local")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal)
	ctx := context.Background()
	cfg := aws.Config{
		Region:      testinfra.LocalRegion,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	table := fmt.Sprintf("claims-%d", tableSeq.Add(1))
	dcfg := cfg.Copy()
	dcfg.BaseEndpoint = aws.String(ddb.Endpoint())
	dclient := awsclient.DynamoDB(dcfg)
	if _, err := dclient.CreateTable(ctx, dedupe.TableDefinition(table)); err != nil {
		t.Fatalf("create table: %v", err)
	}
	emu := ssmlocal.New(opts)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	scfg := cfg.Copy()
	scfg.BaseEndpoint = aws.String(srv.URL)
	return &env{emu: emu, store: dedupe.NewStore(dclient, table, time.Hour), ssm: awsclient.SSM(scfg), ddb: dclient, table: table}
}

func (e *env) engine(set associate.Settings) *associate.Engine {
	return associate.New(e.ssm, e.store, set, nil)
}

func runRequest(t *testing.T, eng *associate.Engine, body string, owner string) report.Result {
	t.Helper()
	req, err := request.Parse([]byte(body), request.Limits{MaxEntries: 100000})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	res, err := eng.Run(context.Background(), associate.Job{
		Request: req, Owner: owner,
		Deadline: time.Now().Add(2 * time.Minute), LeaseUntil: time.Now().Add(3 * time.Minute),
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

func nodeID(n int) string { return fmt.Sprintf("i-%017x", n) }

// batchBody builds a CreateAssociationBatch request over nodes.
func batchBody(doc string, nodes []int, extra ...string) string {
	var entries []string
	for _, n := range nodes {
		entries = append(entries, fmt.Sprintf(`{"Name":%q,"InstanceId":%q}`, doc, nodeID(n)))
	}
	entries = append(entries, extra...)
	return `{"Entries":[` + strings.Join(entries, ",") + `]}`
}

// outcomes maps each (document, node) to the lists its entries ended in, in
// order, and checks that every entry of the request is in exactly one list:
// a node named by two entries has two outcomes, the later one
// "duplicate in request".
func outcomes(t *testing.T, res report.Result) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	records := 0
	put := func(doc string, id *string, ts []request.Target, list string) {
		records++
		var nodes []string
		switch {
		case id != nil && *id != "":
			nodes = []string{*id}
		case len(ts) == 1 && ts[0].Key == "InstanceIds":
			nodes = ts[0].Values
		default:
			b, _ := json.Marshal(ts)
			nodes = []string{string(b)}
		}
		for _, n := range nodes {
			out[doc+"/"+n] = append(out[doc+"/"+n], list)
		}
	}
	for _, a := range res.Successful {
		put(a.Name, &a.InstanceId, a.Targets, "Successful")
	}
	for _, f := range res.Failed {
		put(f.Entry.Name, f.Entry.InstanceId, f.Entry.Targets, "Failed:"+f.Fault)
	}
	for _, d := range res.Deduplicated {
		put(d.Entry.Name, d.Entry.InstanceId, d.Entry.Targets, "Deduplicated:"+d.Reason)
	}
	for _, u := range res.Unprocessed {
		put(u.Entry.Name, u.Entry.InstanceId, u.Entry.Targets, "Unprocessed")
	}
	if records != res.Summary.Requested {
		t.Errorf("%d outcomes for %d entries requested", records, res.Summary.Requested)
	}
	for k, lists := range out {
		for _, l := range lists[1:] {
			if l != "Deduplicated:"+report.ReasonDuplicateInRequest {
				t.Errorf("%s has outcomes %v", k, lists)
			}
		}
	}
	return out
}

// assertLedger checks the emulator holds at most one association per
// (document, node), and returns how many pairs it holds.
func assertLedger(t *testing.T, emu *ssmlocal.Server) int {
	t.Helper()
	pairs := emu.AssociationsByNode()
	for k, ids := range pairs {
		if len(ids) > 1 {
			t.Errorf("%s associated %d times: %v", k, len(ids), ids)
		}
	}
	return len(pairs)
}

func TestIntegrationThousandEntries(t *testing.T) {
	opts := ssmlocal.DefaultOptions()
	opts.EntryFaultRate = 0.05
	opts.ThrottleRate = 0.1 // whole calls throttled, retried by the SDK
	opts.Seed = 1
	e := newEnv(t, opts)

	nodes := make([]int, 0, 1100)
	for n := range 1000 {
		nodes = append(nodes, n)
	}
	nodes = append(nodes, 10, 20, 30, 40, 50) // duplicates in the request
	invalid := []string{
		`{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-123"}`,
		`{"Name":"AWS-RunShellScript","Targets":[{"Key":"InstanceIds","Values":["` + nodeID(5000) + `"]}],"Parameters":{"commands":["echo hi"]},"ScheduleExpression":"rate(5 minutes)"}`,
	}
	// SSM itself refuses this one: the document does not exist.
	refused := fmt.Sprintf(`{"Name":"No-Such-Document","InstanceId":%q}`, nodeID(6000))
	body := batchBody("AWS-UpdateSSMAgent", nodes, append(invalid, refused)...)

	eng := e.engine(associate.Settings{BatchSize: 10, MaxConcurrency: 4, CallsPerSecond: 200, MaxAttempts: 6,
		Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	res := runRequest(t, eng, body, "run-1")
	got := outcomes(t, res)

	counts := map[string]int{}
	for _, lists := range got {
		counts[lists[0]]++
	}
	if res.Summary.Requested != len(nodes)+3 {
		t.Errorf("Requested = %d, want %d", res.Summary.Requested, len(nodes)+3)
	}
	// Every node of the request in exactly one list: 1000 distinct update
	// entries, 2 invalid, 1 refused; the 5 repeats are deduplicated
	// entries of nodes already counted, so check them from the list.
	if counts["Successful"] != 1000 {
		t.Errorf("Successful %d, want 1000 (counts %v)", counts["Successful"], counts)
	}
	if len(res.Deduplicated) != 5 || res.Deduplicated[0].Reason != report.ReasonDuplicateInRequest {
		t.Errorf("Deduplicated %+v", res.Deduplicated)
	}
	if res.Summary.Failed != 3 {
		t.Errorf("Failed %d, want 3: %+v", res.Summary.Failed, res.Failed)
	}
	for _, f := range res.Failed {
		if f.Fault != report.FaultClient {
			t.Errorf("failure %+v should be the client's", f)
		}
	}
	st := e.emu.Stats()
	if st.EntriesFailedByInjection == 0 || st.ThrottledCalls == 0 {
		t.Fatalf("faults were not exercised: %+v", st)
	}
	// Nothing that succeeded was sent again: every entry SSM received was
	// either created once, failed by injection (and resent), or refused
	// for the missing document.
	if st.DuplicatesRefused != 0 {
		t.Errorf("%d entries were sent again after they had succeeded", st.DuplicatesRefused)
	}
	if want := 1000 + st.EntriesFailedByInjection + 1; st.EntriesReceived != want {
		t.Errorf("SSM received %d entries, want %d (1000 + %d injected faults + 1 refused)", st.EntriesReceived, want, st.EntriesFailedByInjection)
	}
	if res.Summary.Retries != st.EntriesFailedByInjection {
		t.Errorf("Retries %d, injected faults %d", res.Summary.Retries, st.EntriesFailedByInjection)
	}
	if n := assertLedger(t, e.emu); n != 1000 {
		t.Errorf("ledger has %d (document, node) pairs, want 1000", n)
	}
	t.Logf("summary %+v; emulator %+v", res.Summary, st)

	// The same request again: no SSM call at all, everything deduplicated
	// from the table, with its association ID.
	before := e.emu.Stats().Calls
	res2 := runRequest(t, eng, body, "run-2")
	if calls := e.emu.Stats().Calls - before; calls != 1 { // the refused entry is tried again
		t.Errorf("second run made %d SSM calls, want 1 (the refused entry only)", calls)
	}
	if res2.Summary.Deduplicated != 1005 || res2.Summary.Successful != 0 {
		t.Errorf("second run summary %+v", res2.Summary)
	}
	for _, d := range res2.Deduplicated {
		if d.Reason == report.ReasonAlreadyAssociated && d.AssociationId == "" {
			t.Fatalf("deduplicated without its AssociationId: %+v", d)
		}
	}
}

func TestIntegrationConcurrentOverlappingRuns(t *testing.T) {
	opts := ssmlocal.DefaultOptions()
	opts.Latency = 5 * time.Millisecond
	opts.EntryFaultRate = 0.03
	opts.Seed = 2
	e := newEnv(t, opts)
	set := associate.Settings{BatchSize: 10, MaxConcurrency: 4, MaxAttempts: 8, Backoff: 10 * time.Millisecond}

	// Three invocations over overlapping ranges of 0..599.
	ranges := [][2]int{{0, 300}, {150, 450}, {300, 600}}
	results := make([]report.Result, len(ranges))
	var wg sync.WaitGroup
	for i, r := range ranges {
		var nodes []int
		for n := r[0]; n < r[1]; n++ {
			nodes = append(nodes, n)
		}
		wg.Go(func() {
			results[i] = runRequest(t, e.engine(set), batchBody("AWS-UpdateSSMAgent", nodes), fmt.Sprintf("inv-%d", i))
		})
	}
	wg.Wait()

	successful := map[string]int{}
	for _, res := range results {
		for k, lists := range outcomes(t, res) {
			switch list := lists[0]; list {
			case "Successful":
				successful[k]++
			case "Deduplicated:" + report.ReasonInProgress, "Deduplicated:" + report.ReasonAlreadyAssociated, "Deduplicated:" + report.ReasonAlreadyExists:
			default:
				t.Errorf("%s ended %s", k, list)
			}
		}
	}
	if len(successful) != 600 {
		t.Errorf("%d nodes associated, want 600", len(successful))
	}
	for k, n := range successful {
		if n != 1 {
			t.Errorf("%s reported Successful by %d invocations", k, n)
		}
	}
	if n := assertLedger(t, e.emu); n != 600 {
		t.Errorf("ledger has %d pairs, want 600", n)
	}
	if st := e.emu.Stats(); st.DuplicatesRefused != 0 {
		t.Errorf("%d entries sent that SSM already had", st.DuplicatesRefused)
	}
}
