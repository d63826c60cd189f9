package reliability_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/faultproxy"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// TestReliabilityBookkeepingBrownout makes DynamoDB refuse the writes that
// close claims — the completion (BatchWriteItem) of an associated node and the
// release (DeleteItem) of a failed one — for the SDK's five attempts in a
// row, as a brownout of a few seconds would, and checks that no claim is
// left IN_PROGRESS once the invocation has answered, and that a retry of
// the request within the lease is not told "in progress elsewhere" for
// work nobody is doing.
func TestReliabilityBookkeepingBrownout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rule  faultproxy.Rule
		entry string
		want  string
	}{
		{"CompleteRefused", faultproxy.Rule{Operation: "BatchWriteItem", Count: 5, Fault: faultproxy.Unavailable},
			fmt.Sprintf(`{"Name":%q,"InstanceId":%q}`, docAgent, nodeID(1)), oSuccessful},
		// DynamoDB throttles the completions by handing the whole batch
		// back unprocessed: the request succeeds, so no SDK retry helps.
		{"CompleteUnprocessed", faultproxy.Rule{Operation: "BatchWriteItem", Count: 5, Fault: faultproxy.Unprocessed},
			fmt.Sprintf(`{"Name":%q,"InstanceId":%q}`, docAgent, nodeID(3)), oSuccessful},
		{"ReleaseRefused", faultproxy.Rule{Operation: "DeleteItem", Count: 5, Fault: faultproxy.Unavailable},
			fmt.Sprintf(`{"Name":"No-Such-Document","InstanceId":%q}`, nodeID(2)), oFailed(report.FaultClient)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, ssmlocal.DefaultOptions())
			w.proxy.SetRules(tc.rule)
			eng := w.engine(engineSettings)
			body := []byte(`{"Entries":[` + tc.entry + `]}`)
			res := w.run(t, eng, body, "run-1", time.Minute)
			for k, o := range outcomes(res) {
				if o[0] != tc.want {
					t.Fatalf("%s ended %v, want %s", k, o, tc.want)
				}
			}
			if n := w.proxy.Stats().Injected(tc.rule.Fault); n != 5 {
				t.Fatalf("%d faults injected, want 5", n)
			}
			w.assertNoStuckClaims(t, "after the brownout")
			// The same request again (an EventBridge retry, an operator)
			// within the first invocation's lease.
			again := w.run(t, eng, body, "run-2", time.Minute)
			for k, o := range outcomes(again) {
				if o[0] == oDedup(report.ReasonInProgress) {
					t.Errorf("retry: %s reported %q, but no invocation is working on it", k, report.ReasonInProgress)
				}
			}
		})
	}
}
