package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

var ddb *testinfra.DynamoDB

// TestMain starts one DynamoDB Local for every test. When it is not
// installed, the tests that need it fail in RequireTools, naming the fix.
func TestMain(m *testing.M) { os.Exit(testinfra.MainWithDynamoDB(m, &ddb)) }

// Retryers: none, to see the raw fault, or the SDK's standard one (DynamoDB's
// 4 attempts) with its waits capped, to keep the tests fast.
var (
	noRetries = func() aws.Retryer { return aws.NopRetryer{} }
	standard  = func() aws.Retryer {
		return retry.AddWithMaxBackoffDelay(retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 4 }), 5*time.Millisecond)
	}
)

// serve starts a Proxy in front of DynamoDB Local and returns it with its URL.
func serve(t *testing.T, seed int64) (*Proxy, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs DynamoDB Local, which -short does not start")
	}
	testinfra.RequireTools(t, testinfra.ToolDynamoDBLocal)
	p, err := New(ddb.Endpoint(), seed)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

// client is the real SDK client, sending to endpoint.
func client(endpoint string, retryer func() aws.Retryer) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:                          testinfra.LocalRegion,
		BaseEndpoint:                    aws.String(endpoint),
		Credentials:                     credentials.NewStaticCredentialsProvider(testinfra.LocalAccessKeyID, testinfra.LocalSecretAccessKey, ""),
		DisableValidateResponseChecksum: true,
		Retryer:                         retryer(),
	})
}

var tables atomic.Int64

// newTable creates a fresh table through the proxy at endpoint, before any rule.
func newTable(t *testing.T, endpoint string) string {
	t.Helper()
	table := fmt.Sprintf("faultproxy-%d", tables.Add(1))
	_, err := client(endpoint, noRetries).CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func put(c *dynamodb.Client, table, key string, condition ...string) error {
	in := &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item:      map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
	}
	if len(condition) > 0 {
		in.ConditionExpression = aws.String(condition[0])
	}
	_, err := c.PutItem(context.Background(), in)
	return err
}

func get(c *dynamodb.Client, table, key string) error {
	_, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
	})
	return err
}

// stored reports whether DynamoDB Local holds key, asking it directly.
func stored(t *testing.T, table, key string) bool {
	t.Helper()
	out, err := ddb.Client().GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item != nil
}

// outcome names what the SDK made of a call: "ok", the API error code, or
// "send" for a connection that failed without an answer.
func outcome(err error) string {
	var api smithy.APIError
	var send *smithyhttp.RequestSendError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &api):
		return api.ErrorCode()
	case errors.As(err, &send):
		return "send"
	}
	return "unexpected: " + err.Error()
}

func TestFaultsAsTheSDKSeesThem(t *testing.T) {
	for _, tc := range []struct {
		fault   Fault
		outcome string            // outcome of the failed PutItem
		status  int               // its HTTP status; 0: no answer at all
		kind    smithy.ErrorFault // its API error's fault, as modeled
		applied bool              // whether DynamoDB applied the write anyway
	}{
		{Throttle, "ProvisionedThroughputExceededException", 400, smithy.FaultClient, false},
		{ServerError, "InternalServerError", 500, smithy.FaultServer, false},
		{Unavailable, "ServiceUnavailable", 503, smithy.FaultUnknown, false}, // not modeled: a GenericAPIError
		{DropBeforeForward, "send", 0, 0, false},
		{DropAfterForward, "send", 0, 0, true},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			t.Parallel()
			p, url := serve(t, 1)
			table := newTable(t, url)
			c := client(url, noRetries)
			p.SetRules(Rule{Operation: "PutItem", Count: 1, Fault: tc.fault})

			err := put(c, table, "k")
			if got := outcome(err); got != tc.outcome {
				t.Fatalf("PutItem: got %s (%v), want %s", got, err, tc.outcome)
			}
			var resp *awshttp.ResponseError
			if !errors.As(err, &resp) || resp.HTTPStatusCode() != tc.status {
				t.Errorf("PutItem: response error %v, want HTTP status %d", resp, tc.status)
			}
			var throttled *types.ProvisionedThroughputExceededException
			if got := errors.As(err, &throttled); got != (tc.fault == Throttle) {
				t.Errorf("PutItem: errors.As(%T) = %v", throttled, got)
			}
			var api smithy.APIError
			if errors.As(err, &api) && api.ErrorFault() != tc.kind {
				t.Errorf("PutItem: %v has fault %v, want %v", api, api.ErrorFault(), tc.kind)
			}
			// The standard retryer retries every one of them (and only
			// Throttle counts as a throttle).
			if retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) != aws.TrueTernary {
				t.Errorf("PutItem: %v is not retryable", err)
			}
			if isThrottle := retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary; isThrottle != (tc.fault == Throttle) {
				t.Errorf("PutItem: %v throttle = %v", err, isThrottle)
			}
			if got := stored(t, table, "k"); got != tc.applied {
				t.Errorf("after the fault, item stored = %v, want %v", got, tc.applied)
			}

			// The rule is spent: the next call goes through.
			if err := put(c, table, "k2"); err != nil {
				t.Fatalf("second PutItem: %v", err)
			}
			if !stored(t, table, "k2") {
				t.Error("second PutItem not stored")
			}
			want := OpStats{Forwarded: 1, Injected: map[Fault]int{tc.fault: 1}}
			if tc.fault == DropAfterForward {
				want.Forwarded = 2
			}
			if got := p.Stats()["PutItem"]; !equal(got, want) {
				t.Errorf("PutItem stats %+v, want %+v", got, want)
			}
		})
	}
}

func equal(a, b OpStats) bool {
	if a.Forwarded != b.Forwarded || len(a.Injected) != len(b.Injected) {
		return false
	}
	for f, n := range a.Injected {
		if b.Injected[f] != n {
			return false
		}
	}
	return true
}

func TestStandardRetryerRecovers(t *testing.T) {
	for f := range Fault(numFaults) {
		if f == Unprocessed || f == TransactionConflict || f == Denied {
			// A BatchWriteItem success, a cancelled transaction and a
			// refusal: not failures the SDK retries.
			continue
		}
		t.Run(f.String(), func(t *testing.T) {
			t.Parallel()
			p, url := serve(t, 1)
			table := newTable(t, url)
			p.SetRules(Rule{Operation: "PutItem", Count: 2, Fault: f})

			if err := put(client(url, standard), table, "k"); err != nil {
				t.Fatalf("PutItem after 2 × %v: %v", f, err)
			}
			if !stored(t, table, "k") {
				t.Error("item not stored")
			}
			want := OpStats{Forwarded: 1, Injected: map[Fault]int{f: 2}}
			if f == DropAfterForward {
				want.Forwarded = 3 // the write was applied three times
			}
			if got := p.Stats()["PutItem"]; !equal(got, want) {
				t.Errorf("PutItem stats %+v, want %+v", got, want)
			}
		})
	}
}

// A claim whose answer is lost is retried by the SDK, and the retry then
// collides with the claim itself: the caller sees ConditionalCheckFailed for
// a write that is its own.
func TestDropAfterForwardMakesTheRetryMeetItsOwnWrite(t *testing.T) {
	p, url := serve(t, 1)
	table := newTable(t, url)
	p.SetRules(Rule{Operation: "PutItem", Count: 1, Fault: DropAfterForward})

	err := put(client(url, standard), table, "claim", "attribute_not_exists(pk)")
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		t.Fatalf("conditional PutItem: got %v, want ConditionalCheckFailedException", err)
	}
	if !stored(t, table, "claim") {
		t.Error("the first, dropped, PutItem was not applied")
	}
	if got, want := p.Stats()["PutItem"], (OpStats{Forwarded: 2, Injected: map[Fault]int{DropAfterForward: 1}}); !equal(got, want) {
		t.Errorf("PutItem stats %+v, want %+v", got, want)
	}
}

func TestRulesMatchInOrder(t *testing.T) {
	p, url := serve(t, 1)
	table := newTable(t, url)
	c := client(url, noRetries)
	p.SetRules(
		Rule{Operation: "PutItem", Count: 1, Fault: Throttle},
		Rule{Count: 2, Fault: Unavailable}, // any operation
	)
	steps := []struct {
		call func() error
		want string
	}{
		{func() error { return get(c, table, "k") }, "ServiceUnavailable"}, // PutItem's rule does not match
		{func() error { return put(c, table, "k") }, "ProvisionedThroughputExceededException"},
		{func() error { return put(c, table, "k") }, "ServiceUnavailable"}, // PutItem's rule is spent
		{func() error { return put(c, table, "k") }, "ok"},                 // both are
		{func() error { return get(c, table, "k") }, "ok"},
		{func() error { p.SetRules(Rule{Operation: "GetItem", Count: 1, Fault: ServerError}); return nil }, "ok"},
		{func() error { return put(c, table, "k") }, "ok"},
		{func() error { return get(c, table, "k") }, "InternalServerError"},
		{func() error { p.SetRules(); return get(c, table, "k") }, "ok"},
	}
	for i, s := range steps {
		if err := s.call(); outcome(err) != s.want {
			t.Fatalf("step %d: got %s (%v), want %s", i, outcome(err), err, s.want)
		}
	}
	st := p.Stats()
	if got, want := st["GetItem"], (OpStats{Forwarded: 2, Injected: map[Fault]int{Unavailable: 1, ServerError: 1}}); !equal(got, want) {
		t.Errorf("GetItem stats %+v, want %+v", got, want)
	}
	if got, want := st["PutItem"], (OpStats{Forwarded: 2, Injected: map[Fault]int{Throttle: 1, Unavailable: 1}}); !equal(got, want) {
		t.Errorf("PutItem stats %+v, want %+v", got, want)
	}
	if got, want := st["CreateTable"], (OpStats{Forwarded: 1}); !equal(got, want) {
		t.Errorf("CreateTable stats %+v, want %+v", got, want)
	}
	if st.Forwarded() != 5 || st.Injected(Unavailable) != 2 || st.Injected(DropAfterForward) != 0 {
		t.Errorf("totals: forwarded %d, Unavailable %d, DropAfterForward %d", st.Forwarded(), st.Injected(Unavailable), st.Injected(DropAfterForward))
	}
}

func TestRateRulesAreReproducible(t *testing.T) {
	_, url := serve(t, 0)
	table := newTable(t, url)

	// pattern sends 40 GetItems one after another through a fresh proxy and
	// returns which failed ('x') and which passed ('.').
	pattern := func(seed int64, rate float64) string {
		p, url := serve(t, seed)
		p.SetRules(Rule{Operation: "GetItem", Rate: rate, Fault: ServerError})
		c := client(url, noRetries)
		var b strings.Builder
		for range 40 {
			switch err := get(c, table, "k"); outcome(err) {
			case "ok":
				b.WriteByte('.')
			case "InternalServerError":
				b.WriteByte('x')
			default:
				t.Fatalf("GetItem: %v", err)
			}
		}
		st := p.Stats()["GetItem"]
		if st.Forwarded != strings.Count(b.String(), ".") || st.Injected[ServerError] != strings.Count(b.String(), "x") {
			t.Errorf("seed %d: stats %+v for %s", seed, st, b.String())
		}
		return b.String()
	}

	a, again, other := pattern(42, 0.5), pattern(42, 0.5), pattern(7, 0.5)
	t.Logf("seed 42: %s\nseed 7:  %s", a, other)
	if a != again {
		t.Errorf("seed 42 gave %s, then %s", a, again)
	}
	if a == other {
		t.Errorf("seeds 42 and 7 both gave %s", a)
	}
	if n := strings.Count(a, "x"); n < 8 || n > 32 {
		t.Errorf("rate 0.5 failed %d of 40", n)
	}
	if got := pattern(42, 0); got != strings.Repeat(".", 40) {
		t.Errorf("rate 0: %s", got)
	}
	if got := pattern(42, 1); got != strings.Repeat("x", 40) {
		t.Errorf("rate 1: %s", got)
	}
}

// Many clients at once, while the rules change: every request is counted
// exactly once, as the fault its client saw or as forwarded. Run with -race.
func TestConcurrentUse(t *testing.T) {
	p, url := serve(t, 3)
	table := newTable(t, url)
	rules := [][]Rule{
		{{Rate: 0.3, Fault: Throttle}, {Operation: "PutItem", Rate: 0.2, Fault: DropBeforeForward}},
		{{Operation: "PutItem", Count: 3, Fault: ServerError}, {Rate: 0.1, Fault: Unavailable}},
	}
	p.SetRules(rules[0]...)

	const workers, calls = 8, 25
	var (
		mu       sync.Mutex
		outcomes = map[string]int{}
		wg       sync.WaitGroup
		done     = make(chan struct{})
	)
	for w := range workers {
		wg.Go(func() {
			c := client(url, noRetries)
			for i := range calls {
				o := outcome(put(c, table, fmt.Sprintf("w%d-%d", w, i)))
				mu.Lock()
				outcomes[o]++
				mu.Unlock()
			}
		})
	}
	go func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
				p.SetRules(rules[i%2]...)
				_ = p.Stats().Forwarded()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	wg.Wait()
	close(done)

	st := p.Stats()["PutItem"]
	want := map[string]int{
		"ok":                                     st.Forwarded,
		"ProvisionedThroughputExceededException": st.Injected[Throttle],
		"send":                                   st.Injected[DropBeforeForward],
		"InternalServerError":                    st.Injected[ServerError],
		"ServiceUnavailable":                     st.Injected[Unavailable],
	}
	total := 0
	for o, n := range outcomes {
		total += n
		if want[o] != n {
			t.Errorf("%d calls ended %s, stats say %d", n, o, want[o])
		}
	}
	if total != workers*calls {
		t.Errorf("%d outcomes for %d calls", total, workers*calls)
	}
	t.Logf("outcomes %v", outcomes)
}

// The wire level, against a fake target: requests and answers pass through
// unchanged, Host included, and an injected throttle is DynamoDB's answer.
func TestWire(t *testing.T) {
	type seen struct {
		host, path string
		header     http.Header
		body       string
	}
	got := make(chan seen, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Host, r.URL.RequestURI(), r.Header, string(body)}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amz-Crc32", "12345")
		w.Header().Set("X-Amzn-Requestid", "REQ1")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, `{"TableNames":[]}`)
	}))
	defer target.Close()
	p, err := New(target.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(p)
	defer proxy.Close()

	send := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/?q=1", strings.NewReader(`{"Limit":1}`))
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Date", "20260101T000000Z")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=abc")
		req.Header.Add("X-Multi", "a")
		req.Header.Add("X-Multi", "b")
		resp, err := proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := send()
	s := <-got
	proxyURL, _ := url.Parse(proxy.URL)
	if s.host != proxyURL.Host || s.path != "/?q=1" || s.body != `{"Limit":1}` {
		t.Errorf("target saw Host %q, %q, body %q", s.host, s.path, s.body)
	}
	for _, h := range []string{"X-Amz-Target", "Content-Type", "X-Amz-Date", "Authorization", "X-Multi", "Content-Length"} {
		if want := resp.Request.Header.Values(h); h != "Content-Length" && strings.Join(s.header.Values(h), ",") != strings.Join(want, ",") {
			t.Errorf("target saw %s %q, want %q", h, s.header.Values(h), want)
		}
	}
	if s.header.Get("Content-Length") != "11" || s.header.Get("X-Forwarded-For") != "" {
		t.Errorf("target saw Content-Length %q, X-Forwarded-For %q", s.header.Get("Content-Length"), s.header.Get("X-Forwarded-For"))
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTeapot || string(body) != `{"TableNames":[]}` ||
		resp.Header.Get("X-Amz-Crc32") != "12345" || resp.Header.Get("X-Amzn-Requestid") != "REQ1" {
		t.Errorf("client got %d %v %s", resp.StatusCode, resp.Header, body)
	}

	p.SetRules(Rule{Count: 1, Fault: Throttle})
	resp = send()
	body, _ = io.ReadAll(resp.Body)
	wantBody := `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",` +
		`"message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}`
	if resp.StatusCode != http.StatusBadRequest || string(body) != wantBody ||
		resp.Header.Get("Content-Type") != "application/x-amz-json-1.0" ||
		resp.Header.Get("X-Amz-Crc32") != strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10) ||
		resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("throttle: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	select {
	case s := <-got:
		t.Errorf("the throttled request reached the target: %+v", s)
	default:
	}
	if st := p.Stats()["ListTables"]; !equal(st, OpStats{Forwarded: 1, Injected: map[Fault]int{Throttle: 1}}) {
		t.Errorf("ListTables stats %+v", st)
	}
}

func TestNewRejectsBadTargets(t *testing.T) {
	for _, target := range []string{"", "127.0.0.1:8000", "ftp://127.0.0.1:8000", "http://", "http://127.0.0.1:8000/prefix", "http://h/?a=b"} {
		if _, err := New(target, 0); err == nil {
			t.Errorf("New(%q) accepted it", target)
		}
	}
	for _, target := range []string{"http://127.0.0.1:8000", "https://dynamodb.us-east-1.amazonaws.com/"} {
		if _, err := New(target, 0); err != nil {
			t.Errorf("New(%q): %v", target, err)
		}
	}
}

func TestUnprocessedHandsTheBatchBack(t *testing.T) {
	p, url := serve(t, 1)
	table := newTable(t, url)
	c := client(url, standard)
	p.SetRules(Rule{Operation: "BatchWriteItem", Count: 1, Fault: Unprocessed})
	writes := map[string][]types.WriteRequest{table: {
		{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}}},
		{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "b"}}}},
	}}
	out, err := c.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: writes})
	if err != nil {
		t.Fatalf("BatchWriteItem: %v (an unprocessed batch is a success)", err)
	}
	back := out.UnprocessedItems[table]
	if len(back) != 2 || back[0].PutRequest.Item["pk"].(*types.AttributeValueMemberS).Value != "a" ||
		back[1].PutRequest.Item["pk"].(*types.AttributeValueMemberS).Value != "b" {
		t.Fatalf("UnprocessedItems %+v, want the two writes sent", out.UnprocessedItems)
	}
	if stored(t, table, "a") || stored(t, table, "b") {
		t.Fatal("an unprocessed write was applied")
	}
	// Sent again as handed back, they are written.
	out, err = c.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: out.UnprocessedItems})
	if err != nil || len(out.UnprocessedItems) != 0 {
		t.Fatalf("second BatchWriteItem: %v, unprocessed %v", err, out.UnprocessedItems)
	}
	if !stored(t, table, "a") || !stored(t, table, "b") {
		t.Fatal("the resent writes were not applied")
	}
	if got, want := p.Stats()["BatchWriteItem"], (OpStats{Forwarded: 1, Injected: map[Fault]int{Unprocessed: 1}}); !equal(got, want) {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// TransactionConflict cancels a transaction as DynamoDB does when another
// one holds an item: the SDK returns a TransactionCanceledException whose
// reasons, item by item, name the conflict; nothing is written, and the
// same transaction sent again is applied.
func TestTransactionConflictCancelsTheTransaction(t *testing.T) {
	p, url := serve(t, 1)
	table := newTable(t, url)
	c := client(url, standard)
	p.SetRules(Rule{Operation: "TransactWriteItems", Count: 1, Fault: TransactionConflict})
	put := func(pk string) types.TransactWriteItem {
		return types.TransactWriteItem{Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}}}
	}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{put("a"), put("b")}}
	_, err := c.TransactWriteItems(context.Background(), in)
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatalf("TransactWriteItems: %v, want a TransactionCanceledException", err)
	}
	var codes []string
	for _, r := range tce.CancellationReasons {
		codes = append(codes, aws.ToString(r.Code))
	}
	if !slices.Equal(codes, []string{"None", "TransactionConflict"}) {
		t.Fatalf("cancellation reasons %v, want [None TransactionConflict]", codes)
	}
	if stored(t, table, "a") || stored(t, table, "b") {
		t.Fatal("a cancelled transaction wrote")
	}
	if _, err := c.TransactWriteItems(context.Background(), in); err != nil {
		t.Fatalf("sent again: %v", err)
	}
	if !stored(t, table, "a") || !stored(t, table, "b") {
		t.Fatal("the transaction sent again was not applied")
	}
	if got, want := p.Stats()["TransactWriteItems"], (OpStats{Forwarded: 1, Injected: map[Fault]int{TransactionConflict: 1}}); !equal(got, want) {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// TransactionConflict refuses a single-item write as DynamoDB does while a
// transaction holds the item: TransactionConflictException, typed by the
// SDK, nothing written; the same write sent again is applied.
func TestTransactionConflictRefusesAnUpdate(t *testing.T) {
	p, url := serve(t, 1)
	table := newTable(t, url)
	c := client(url, noRetries)
	p.SetRules(Rule{Operation: "UpdateItem", Count: 1, Fault: TransactionConflict})
	in := &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
		UpdateExpression: aws.String("SET n = :n"), ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "1"}}}
	_, err := c.UpdateItem(context.Background(), in)
	var tce *types.TransactionConflictException
	if !errors.As(err, &tce) {
		t.Fatalf("UpdateItem: %v, want a TransactionConflictException", err)
	}
	var resp *awshttp.ResponseError
	if !errors.As(err, &resp) || resp.HTTPStatusCode() != http.StatusBadRequest {
		t.Errorf("UpdateItem: response error %v, want HTTP 400", resp)
	}
	if stored(t, table, "a") {
		t.Fatal("a refused update wrote")
	}
	if _, err := c.UpdateItem(context.Background(), in); err != nil {
		t.Fatalf("sent again: %v", err)
	}
	if !stored(t, table, "a") {
		t.Fatal("the update sent again was not applied")
	}
	if got, want := p.Stats()["UpdateItem"], (OpStats{Forwarded: 1, Injected: map[Fault]int{TransactionConflict: 1}}); !equal(got, want) {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// A Match rule fails only the requests whose body it accepts, and the
// body is still forwarded whole; Fired counts each rule's failures.
func TestMatchPicksRequestsByBody(t *testing.T) {
	p, url := serve(t, 1)
	table := newTable(t, url)
	c := client(url, noRetries)
	p.SetRules(
		Rule{Operation: "PutItem", Match: BodyContains(`"target"`), Count: 5, Fault: ServerError},
		Rule{Operation: "PutItem", Match: BodyContains("never"), Rate: 1, Fault: Throttle},
	)
	for _, key := range []string{"other", "target", "another"} {
		err := put(c, table, key)
		switch want := map[bool]string{true: "InternalServerError", false: "ok"}[key == "target"]; {
		case outcome(err) != want:
			t.Errorf("PutItem %s: %s (%v), want %s", key, outcome(err), err, want)
		case (err == nil) != stored(t, table, key):
			t.Errorf("PutItem %s answered %v, stored %v", key, err, stored(t, table, key))
		}
	}
	if got := p.Fired(); !slices.Equal(got, []int{1, 0}) {
		t.Errorf("fired %v, want [1 0]", got)
	}
	if got, want := p.Stats()["PutItem"], (OpStats{Forwarded: 2, Injected: map[Fault]int{ServerError: 1}}); !equal(got, want) {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

// Denied refuses a call for good: AccessDeniedException, which the SDK does
// not retry, and nothing written.
func TestDeniedIsNotRetried(t *testing.T) {
	p, url := serve(t, 1)
	table := newTable(t, url)
	p.SetRules(Rule{Operation: "PutItem", Count: 1, Fault: Denied})
	err := put(client(url, standard), table, "k")
	if got := outcome(err); got != "AccessDeniedException" {
		t.Fatalf("PutItem: %s (%v), want AccessDeniedException", got, err)
	}
	if stored(t, table, "k") {
		t.Error("a denied PutItem wrote")
	}
	if got, want := p.Stats()["PutItem"], (OpStats{Injected: map[Fault]int{Denied: 1}}); !equal(got, want) {
		t.Errorf("stats %+v, want %+v (one attempt, not retried)", got, want)
	}
}

// SetRules panics on a rule it cannot carry out: a fault it does not know,
// Unprocessed (a BatchWriteItem answer) for another operation, or
// TransactionConflict for an operation that is not a write.
func TestSetRulesRejectsImpossibleRules(t *testing.T) {
	for name, rule := range map[string]Rule{
		"unknown fault":                  {Fault: Fault(99)},
		"Unprocessed on PutItem":         {Operation: "PutItem", Fault: Unprocessed},
		"TransactionConflict on GetItem": {Operation: "GetItem", Fault: TransactionConflict},
		"TransactionConflict on any":     {Fault: TransactionConflict},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := New("http://127.0.0.1:1", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if recover() == nil {
					t.Errorf("SetRules accepted %+v", rule)
				}
			}()
			p.SetRules(rule)
		})
	}
}
