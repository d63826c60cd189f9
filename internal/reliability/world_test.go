package reliability_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/faultproxy"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

var tableSeq atomic.Int64

// world is one test's services: an SSM emulator, a fresh claim table in the
// shared DynamoDB Local reached through a fault proxy, and the clients the
// function builds (awsclient), pointed at them.
type world struct {
	emu      *ssmlocal.Server
	ssmURL   string // the emulator (or the wrapper in front of it)
	proxy    *faultproxy.Proxy
	proxyURL string // DynamoDB through the fault proxy
	table    string
	plain    *dynamodb.Client // straight to DynamoDB Local, for inspecting the table
	store    *dedupe.Store
	ssm      *ssm.Client
}

type worldOpt struct {
	// wrap, when set, wraps the emulator's handler (for answers the
	// emulator cannot give, such as an error echoing a request value).
	wrap func(http.Handler) http.Handler
	// ddbFront, when set, wraps the fault proxy (e.g. to slow writes).
	ddbFront func(http.Handler) http.Handler
}

func newWorld(t *testing.T, opts ssmlocal.Options, wo ...worldOpt) *world {
	t.Helper()
	needServices(t)
	var o worldOpt
	if len(wo) > 0 {
		o = wo[0]
	}
	ctx := context.Background()
	w := &world{emu: ssmlocal.New(opts), plain: ddb.Client()}
	w.table = fmt.Sprintf("reliability-%d-%d", time.Now().UnixNano()%1e6, tableSeq.Add(1))
	if _, err := w.plain.CreateTable(ctx, dedupe.TableDefinition(w.table)); err != nil {
		t.Fatalf("create table: %v", err)
	}

	var h http.Handler = w.emu
	if o.wrap != nil {
		h = o.wrap(h)
	}
	w.ssmURL = serve(t, h)

	p, err := faultproxy.New(ddb.Endpoint(), opts.Seed+1)
	if err != nil {
		t.Fatal(err)
	}
	w.proxy = p
	var dh http.Handler = p
	if o.ddbFront != nil {
		dh = o.ddbFront(dh)
	}
	w.proxyURL = serve(t, dh)

	cfg := aws.Config{
		Region:      testinfra.LocalRegion,
		Credentials: credentials.NewStaticCredentialsProvider(testinfra.LocalAccessKeyID, testinfra.LocalSecretAccessKey, ""),
	}
	dcfg := cfg.Copy()
	dcfg.BaseEndpoint = aws.String(w.proxyURL)
	w.store = dedupe.NewStore(awsclient.DynamoDB(dcfg), w.table, time.Hour)
	scfg := cfg.Copy()
	scfg.BaseEndpoint = aws.String(w.ssmURL)
	w.ssm = awsclient.SSM(scfg)
	return w
}

// serve runs h on a plain HTTP/1.1 server on 127.0.0.1 (what the SDK and
// the hijacking faults need) until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// functionEnv is the environment that points the real bootstrap at this
// world (DynamoDB through the fault proxy), with the given settings.
func (w *world) functionEnv(extra ...string) []string {
	env := []string{
		"AWS_ENDPOINT_URL_DYNAMODB=" + w.proxyURL,
		"AWS_ENDPOINT_URL_SSM=" + w.ssmURL,
		"AWS_ACCESS_KEY_ID=" + testinfra.LocalAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + testinfra.LocalSecretAccessKey,
		"AWS_REGION=" + testinfra.LocalRegion,
		"AWS_LAMBDA_FUNCTION_NAME=AssociateFunction",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"DEDUPE_TABLE=" + w.table,
	}
	return append(env, extra...)
}

// engineSettings are the quick settings of the in-process tests: the
// production batch size and attempts, no rate limit, short backoffs.
var engineSettings = associate.Settings{
	BatchSize: 10, MaxConcurrency: 4, MaxAttempts: 5,
	Backoff: 20 * time.Millisecond, MaxBackoff: 250 * time.Millisecond,
}

func (w *world) engine(set associate.Settings) *associate.Engine {
	return associate.New(w.ssm, w.store, set, nil)
}

// run parses body and runs it with the given budget; the lease lasts a
// minute past the deadline, as the Lambda's end lies past the work's.
func (w *world) run(t *testing.T, eng *associate.Engine, body []byte, owner string, budget time.Duration) report.Result {
	t.Helper()
	req, err := request.Parse(body, request.Limits{MaxEntries: 100000})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	res, err := eng.Run(context.Background(), associate.Job{
		Request: req, Owner: owner,
		Deadline: time.Now().Add(budget), LeaseUntil: time.Now().Add(budget + time.Minute),
	})
	if err != nil {
		if !errors.Is(err, associate.ErrUnavailable) {
			t.Fatalf("run %s: %v (summary %+v)", owner, err, res.Summary)
		}
		// Nothing was done: the handler answers 503 / UnavailableError,
		// "send the request again". Every entry must still be accounted
		// for, and be retryable.
		t.Logf("run %s: unavailable (%v); summary %+v", owner, err, res.Summary)
		if !res.Retryable() && len(res.Failed)+len(res.Unprocessed) > 0 {
			t.Errorf("run %s: unavailable but the result is not retryable", owner)
		}
	}
	return res
}

// claims lists the claim items of the table by status, straight from
// DynamoDB Local.
func (w *world) claims(t *testing.T) map[string][]claimItem {
	t.Helper()
	out := map[string][]claimItem{}
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := w.plain.Scan(context.Background(), &dynamodb.ScanInput{
			TableName: aws.String(w.table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			t.Fatalf("scan %s: %v", w.table, err)
		}
		for _, it := range page.Items {
			c := claimItem{ID: str(it["id"]), Status: str(it["status"]), Owner: str(it["owner"])}
			if n, ok := it["lease_expiry"].(*ddbtypes.AttributeValueMemberN); ok {
				var ms int64
				fmt.Sscan(n.Value, &ms)
				c.Lease = time.UnixMilli(ms)
			}
			out[c.Status] = append(out[c.Status], c)
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out
		}
		start = page.LastEvaluatedKey
	}
}

type claimItem struct {
	ID, Status, Owner string
	Lease             time.Time
}

func str(v ddbtypes.AttributeValue) string {
	if s, ok := v.(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// assertNoStuckClaims checks that no claim is left IN_PROGRESS: the scan
// for attribute status = "IN_PROGRESS" is done with a filter, as an
// operator would, and the result cross-checked with the full listing.
func (w *world) assertNoStuckClaims(t *testing.T, when string) {
	t.Helper()
	out, err := w.plain.Scan(context.Background(), &dynamodb.ScanInput{
		TableName:                 aws.String(w.table),
		FilterExpression:          aws.String("#s = :p"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberS{Value: "IN_PROGRESS"}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	stuck := w.claims(t)["IN_PROGRESS"]
	if len(out.Items) > 0 || len(stuck) > 0 {
		var ids []string
		for i, c := range stuck {
			if i == 5 {
				ids = append(ids, "…")
				break
			}
			ids = append(ids, c.ID+" (owner "+c.Owner+")")
		}
		t.Errorf("%s: %d claims left IN_PROGRESS: %s", when, len(stuck), strings.Join(ids, ", "))
	}
}

// ledger checks the emulator holds at most one association per (document,
// node) and returns, per key, its association ID.
func ledger(t *testing.T, emu *ssmlocal.Server) map[string]string {
	t.Helper()
	seen := map[string]string{}
	for k, ids := range emu.AssociationsByNode() {
		if len(ids) > 1 {
			t.Errorf("%s associated %d times: %v", k, len(ids), ids)
		}
		seen[k] = ids[0]
	}
	return seen
}

// Outcome names, as outcomes reports them.
const (
	oSuccessful  = "Successful"
	oUnprocessed = "Unprocessed"
)

func oFailed(fault string) string { return "Failed:" + fault }
func oDedup(reason string) string { return "Deduplicated:" + reason }

var dupInRequest = oDedup(report.ReasonDuplicateInRequest)

// nodesOf returns the (document/node) keys an entry addresses.
func nodesOf(doc string, id *string, ts []request.Target) []string {
	var out []string
	switch {
	case id != nil && *id != "":
		out = []string{doc + "/" + *id}
	case len(ts) > 0:
		for _, tg := range ts {
			for _, v := range tg.Values {
				out = append(out, doc+"/"+v)
			}
		}
	default:
		out = []string{doc + "/?"}
	}
	return out
}

// outcomes lists, per (document/node), the outcomes the result gives it.
func outcomes(res report.Result) map[string][]string {
	out := map[string][]string{}
	add := func(keys []string, o string) {
		for _, k := range keys {
			out[k] = append(out[k], o)
		}
	}
	for _, a := range res.Successful {
		id := a.InstanceId
		add(nodesOf(a.Name, &id, a.Targets), oSuccessful)
	}
	for _, f := range res.Failed {
		add(nodesOf(f.Entry.Name, f.Entry.InstanceId, f.Entry.Targets), oFailed(f.Fault))
	}
	for _, d := range res.Deduplicated {
		add(nodesOf(d.Entry.Name, d.Entry.InstanceId, d.Entry.Targets), oDedup(d.Reason))
	}
	for _, u := range res.Unprocessed {
		add(nodesOf(u.Entry.Name, u.Entry.InstanceId, u.Entry.Targets), oUnprocessed)
	}
	return out
}

// checkRun asserts the per-run promises and returns each key's outcome (the
// one that is not "duplicate in request"):
//   - every (document, node) occurrence of the request is in exactly one
//     list, its repeats as "duplicate in request";
//   - the summary counts the lists;
//   - anything retryable (Failed Server/Unknown, Unprocessed) makes
//     Retryable() true, and Retryable() is false otherwise;
//   - nothing valid is Failed with the client's fault (the requests of
//     these tests are valid).
func checkRun(t *testing.T, name string, rq *genRequest, res report.Result) map[string]string {
	t.Helper()
	got := outcomes(res)
	final := map[string]string{}
	for k, want := range rq.occurrences {
		list := got[k]
		if len(list) != want {
			t.Errorf("%s: %s occurs %d times in the request but has %d outcomes %v", name, k, want, len(list), list)
			continue
		}
		firsts := 0
		for _, o := range list {
			if o != dupInRequest {
				firsts++
				final[k] = o
			}
		}
		if firsts != 1 {
			t.Errorf("%s: %s has outcomes %v, want exactly one besides %q", name, k, list, report.ReasonDuplicateInRequest)
		}
	}
	for k, list := range got {
		if rq.occurrences[k] == 0 {
			t.Errorf("%s: outcome %v for %s, which the request does not name", name, list, k)
		}
	}
	s := res.Summary
	if s.Successful != len(res.Successful) || s.Failed != len(res.Failed) || s.Deduplicated != len(res.Deduplicated) || s.Unprocessed != len(res.Unprocessed) {
		t.Errorf("%s: summary %+v does not count the lists (%d/%d/%d/%d)", name, s, len(res.Successful), len(res.Failed), len(res.Deduplicated), len(res.Unprocessed))
	}
	if s.Requested != rq.entries {
		t.Errorf("%s: Requested %d, want %d entries", name, s.Requested, rq.entries)
	}
	retryable := len(res.Unprocessed) > 0
	for _, f := range res.Failed {
		if f.Fault == report.FaultClient {
			t.Errorf("%s: valid entry failed with the client's fault: %+v", name, f)
		}
		if f.Retryable() {
			retryable = true
		} else {
			t.Errorf("%s: failure %+v (fault %s) is not retryable", name, f, f.Fault)
		}
	}
	for _, d := range res.Deduplicated {
		if d.Reason == report.ReasonInProgress {
			retryable = true // held by another invocation, maybe a dead one
		}
	}
	if res.Retryable() != retryable {
		t.Errorf("%s: Retryable() = %v, but retryable outcomes present = %v", name, res.Retryable(), retryable)
	}
	return final
}

// tally counts outcomes by name.
func tally(final map[string]string) map[string]int {
	c := map[string]int{}
	for _, o := range final {
		c[o]++
	}
	return c
}

func fmtTally(c map[string]int) string {
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
	}
	return strings.Join(parts, " ")
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// reasons summarises why entries were Failed or Unprocessed.
func reasons(res report.Result) string {
	c := map[string]int{}
	for _, f := range res.Failed {
		m := f.Message
		if len(m) > 60 {
			m = m[:60] + "…"
		}
		c["failed "+f.Fault+": "+m]++
	}
	for _, u := range res.Unprocessed {
		m := u.Reason
		if len(m) > 60 {
			m = m[:60] + "…"
		}
		c["unprocessed: "+m]++
	}
	if len(c) == 0 {
		return "nothing failed or unprocessed"
	}
	return fmtTally(c)
}
