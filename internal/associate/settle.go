package associate

import (
	"strings"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Settle decides what a request's entries need no call for: invalid
// entries are Failed (Client) with their problems, later duplicates in the
// request are Deduplicated. It returns the rest as work, and a result
// holding what it settled. The engine and the job submitter both start here,
// so a request reports the same whichever way it runs.
func Settle(items []request.Item) ([]plan.Item, report.Result) {
	res := report.New()
	res.Summary.Requested = len(items)
	for _, it := range items {
		if !it.Valid() {
			res.Failed = append(res.Failed, report.Failure{Entry: it.Entry, Fault: report.FaultClient, Message: problems(it.Problems)})
		}
	}
	todo, dups := plan.InRequest(items)
	res.Deduplicated = append(res.Deduplicated, dups...)
	return todo, res
}

func problems(ps []request.FieldError) string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "; ")
}
