package reconcile_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// env is an in-process SSM emulator reached through a real SDK client, and
// a recorder around that client that sees every read the Reader makes.
type env struct {
	emu    *ssmlocal.Server
	client *ssm.Client
	rec    *recorder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	emu := ssmlocal.New(ssmlocal.Options{})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	client := ssm.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1, // one HTTP call per SSM call: Reads() counts are exact
	})
	return &env{emu: emu, client: client, rec: &recorder{t: t, ssm: client}}
}

// recorder passes reads to the real client, logs them in order, and fails
// the test on any use of the InstanceId filter.
type recorder struct {
	t   *testing.T
	ssm *ssm.Client

	mu     sync.Mutex
	events []string
	lists  []ssm.ListAssociationsInput
	// described are the AssociationIds described, in order.
	described []string
	// afterList, when set, runs after each ListAssociations answer.
	afterList func()
}

func (r *recorder) log(event string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event)
}

func (r *recorder) wait(context.Context) error {
	r.log("wait")
	return nil
}

func (r *recorder) ListAssociations(ctx context.Context, in *ssm.ListAssociationsInput, opts ...func(*ssm.Options)) (*ssm.ListAssociationsOutput, error) {
	for _, f := range in.AssociationFilterList {
		if f.Key == ssmtypes.AssociationFilterKeyInstanceId {
			r.t.Errorf("ListAssociations with the InstanceId filter")
		}
	}
	r.log("list")
	r.mu.Lock()
	r.lists = append(r.lists, *in)
	r.mu.Unlock()
	out, err := r.ssm.ListAssociations(ctx, in, opts...)
	if r.afterList != nil {
		r.afterList()
	}
	return out, err
}

func (r *recorder) DescribeAssociation(ctx context.Context, in *ssm.DescribeAssociationInput, opts ...func(*ssm.Options)) (*ssm.DescribeAssociationOutput, error) {
	r.log("describe")
	r.mu.Lock()
	r.described = append(r.described, aws.ToString(in.AssociationId))
	r.mu.Unlock()
	return r.ssm.DescribeAssociation(ctx, in, opts...)
}

func (r *recorder) count(event string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e == event {
			n++
		}
	}
	return n
}

// create makes one association per entry, each in its own call, and returns
// their IDs.
func (e *env) create(t *testing.T, entries ...request.Entry) []string {
	t.Helper()
	ids := make([]string, len(entries))
	for i, en := range entries {
		id, refused := e.tryCreate(t, en)
		if refused {
			t.Fatalf("create %s: refused as already existing", en.Name)
		}
		ids[i] = id
	}
	return ids
}

// tryCreate makes one association; refused reports "Association Already
// Exists", which the emulator answers for an identical Targets entry only
// in its older behaviour.
func (e *env) tryCreate(t *testing.T, en request.Entry) (id string, refused bool) {
	t.Helper()
	out, err := e.client.CreateAssociationBatch(context.Background(), &ssm.CreateAssociationBatchInput{
		Entries: []ssmtypes.CreateAssociationBatchRequestEntry{en.SDK()},
	})
	if err != nil {
		t.Fatalf("CreateAssociationBatch: %v", err)
	}
	if len(out.Failed) > 0 {
		msg := aws.ToString(out.Failed[0].Message)
		if strings.Contains(msg, "Already Exists") {
			return "", true
		}
		t.Fatalf("CreateAssociationBatch failed entry: %s", msg)
	}
	return aws.ToString(out.Successful[0].AssociationId), false
}

// createBatch makes all entries in one call.
func (e *env) createBatch(t *testing.T, entries []request.Entry) {
	t.Helper()
	sdk := make([]ssmtypes.CreateAssociationBatchRequestEntry, len(entries))
	for i, en := range entries {
		sdk[i] = en.SDK()
	}
	out, err := e.client.CreateAssociationBatch(context.Background(), &ssm.CreateAssociationBatchInput{Entries: sdk})
	if err != nil {
		t.Fatalf("CreateAssociationBatch: %v", err)
	}
	if len(out.Failed) > 0 || len(out.Successful) != len(entries) {
		t.Fatalf("CreateAssociationBatch: %d successful, %d failed", len(out.Successful), len(out.Failed))
	}
}

func nodeID(n int) string { return fmt.Sprintf("i-%017x", n) }

const shellDoc = "AWS-RunShellScript"

// shell is a Targets-form AWS-RunShellScript entry on the given nodes.
func shell(nodes ...string) request.Entry {
	return request.Entry{
		Name:               shellDoc,
		Targets:            []request.Target{{Key: request.InstanceIDsKey, Values: nodes}},
		Parameters:         map[string][]string{"commands": {"echo hello", "uptime"}},
		ScheduleExpression: aws.String("rate(30 minutes)"),
		MaxErrors:          aws.String("1"),
		MaxConcurrency:     aws.String("10%"),
	}
}

// patch is the AWS-RunPatchBaseline association of one operation ("Scan" or
// "Install") on a node, named after the operation as the standard setup does.
func patch(operation, node string) request.Entry {
	return request.Entry{
		Name:               "AWS-RunPatchBaseline",
		AssociationName:    aws.String("patch-" + strings.ToLower(operation)),
		Targets:            []request.Target{{Key: request.InstanceIDsKey, Values: []string{node}}},
		Parameters:         map[string][]string{"Operation": {operation}},
		ScheduleExpression: aws.String("cron(0 2 ? * SUN *)"),
	}
}

// ids returns the AssociationId of each description, "" for nil.
func ids(ds []*ssmtypes.AssociationDescription) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		if d != nil {
			out[i] = aws.ToString(d.AssociationId)
		}
	}
	return out
}
