package jobs_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// TestReaperCountsOverdueJobs: a job still open JOB_MAX_RUNNING after it was
// submitted is counted in JobsOverdue, however recent its progress (it is
// not stalled), and left as it is; a younger job is not, nor one whose
// chunks are all counted (the sweep finishes it), nor any without
// MaxRunning.
func TestReaperCountsOverdueJobs(t *testing.T) {
	e := newEnv(t, ssmlocal.DefaultOptions(), 5, 60*time.Second)
	ctx := context.Background()
	for _, id := range []string{"late", "young", "late-but-done"} {
		if err := e.store.Create(ctx, id, 1, 1, report.New()); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Started(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// Submitted two hours ago; its last progress is a moment ago.
	for _, id := range []string{"late", "late-but-done"} {
		if _, err := e.ddbClient.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(e.jobsTable), Key: jobKey(id),
			UpdateExpression:          aws.String("SET createdAt = :c"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":c": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(-2*time.Hour).UnixMilli(), 10)}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	one := report.New()
	one.Successful = []report.Association{{AssociationId: "a", Name: "AWS-UpdateSSMAgent", InstanceId: nodeID(1)}}
	one.Tally()
	if _, _, err := e.store.Record(ctx, "late-but-done", 1, one, true, false); err != nil {
		t.Fatal(err)
	}

	// Without MaxRunning, nothing is overdue.
	var out bytes.Buffer
	res, err := jobs.NewReaper(e.store, e.announcer(), time.Hour, nil, &out).Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Overdue != 0 || !strings.Contains(out.String(), `"JobsOverdue":0`) {
		t.Errorf("sweep without MaxRunning: %+v, metrics %s: want nothing overdue", res, out.String())
	}

	out.Reset()
	var logs bytes.Buffer
	rp := jobs.NewReaper(e.store, e.announcer(), time.Hour, slog.New(slog.NewJSONHandler(&logs, nil)), &out).MaxRunning(time.Hour)
	res, err = rp.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Overdue != 1 || res.Stalled != 0 {
		t.Errorf("sweep %+v: want 1 overdue (late), none stalled", res)
	}
	if !strings.Contains(out.String(), `"JobsOverdue":1`) {
		t.Errorf("metrics %s: want JobsOverdue 1", out.String())
	}
	if n := strings.Count(logs.String(), `"msg":"job overdue`); n != 1 || !strings.Contains(logs.String(), `"jobId":"late"`) {
		t.Errorf("logs: %d overdue lines, want one naming late:\n%s", n, logs.String())
	}
	late, err := e.direct.Meta(ctx, "late")
	if err != nil || late.State != jobs.StateRunning {
		t.Errorf("late job %+v, %v: want it left RUNNING", late, err)
	}
	done, err := e.direct.Meta(ctx, "late-but-done")
	if err != nil || done.State != jobs.StateSucceeded {
		t.Errorf("late-but-done job %+v, %v: want it finished by the sweep", done, err)
	}
}
