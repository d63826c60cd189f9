package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func TestRedactedKeepsShapeAndHidesValues(t *testing.T) {
	e := request.Entry{Name: "D", Parameters: map[string][]string{"token": {"hunter2", "x"}}}
	r := Result{
		Successful: []Association{{AssociationId: "a", Parameters: map[string][]string{"token": {"hunter2"}}}},
		Failed:     []Failure{{Entry: e, Fault: FaultServer}},
	}
	out := r.Redacted()
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "hunter2") || !strings.Contains(s, `"token":["****","****"]`) {
		t.Fatalf("redacted result %s", s)
	}
	if !strings.Contains(s, `"Deduplicated":[]`) || !strings.Contains(s, `"Unprocessed":[]`) {
		t.Errorf("empty lists must marshal as []: %s", s)
	}
	if r.Failed[0].Entry.Parameters["token"][0] != "hunter2" {
		t.Error("Redacted changed the original")
	}
}

func TestAssociationJSONRoundTrip(t *testing.T) {
	date := time.UnixMilli(1585059887692)
	a := FromSDK(ssmtypes.AssociationDescription{
		AssociationId: aws.String("id"), Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String("i-0471e04240EXAMPLE"),
		Date:    &date,
		Status:  &ssmtypes.AssociationStatus{Name: "Associated", Date: &date},
		Targets: []ssmtypes.Target{{Key: aws.String("InstanceIds"), Values: []string{"i-0471e04240EXAMPLE"}}},
	})
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Date":1585059887.692`) {
		t.Fatalf("date not in epoch seconds: %s", b)
	}
	var back Association
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !time.Time(*back.Date).Equal(date) || back.Targets[0].Values[0] != "i-0471e04240EXAMPLE" {
		t.Fatalf("round trip %+v", back)
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		r    Result
		want bool
	}{
		{Result{}, false},
		{Result{Failed: []Failure{{Fault: FaultClient}}}, false},
		{Result{Failed: []Failure{{Fault: FaultServer}}}, true},
		{Result{Failed: []Failure{{Fault: FaultUnknown}}}, true},
		{Result{Unprocessed: []Unprocessed{{}}}, true},
		{Result{Deduplicated: []Deduplicated{{Reason: ReasonAlreadyAssociated}, {Reason: ReasonAlreadyExists}}}, false},
		// Held by an invocation that may have crashed: Lambda must come back.
		{Result{Deduplicated: []Deduplicated{{Reason: ReasonInProgress}}}, true},
	}
	for _, tt := range tests {
		if got := tt.r.Retryable(); got != tt.want {
			t.Errorf("%+v: %v", tt.r, got)
		}
	}
}
