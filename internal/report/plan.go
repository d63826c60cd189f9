package report

import "github.com/ssm-association-batcher/ssm-association-batcher/internal/request"

// Plan is a dry run's answer ("DryRun": true): what a run of the request
// would do, node by node, read from the claim table with nothing written to
// SSM or the table.
type Plan struct {
	DryRun  bool        `json:"DryRun"`
	Actions []Action    `json:"Actions"`
	Summary PlanSummary `json:"Summary"`
}

// Actions of a plan.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionSkip   = "skip"
	ActionFail   = "fail"
)

// Action is what would happen to an entry, or to one node of an entry.
type Action struct {
	Entry  request.Entry `json:"Entry"`
	Action string        `json:"Action"`
	// Reason says why a node is skipped or would fail, or what a create
	// does first.
	Reason        string   `json:"Reason,omitempty"`
	AssociationId string   `json:"AssociationId,omitempty"`
	Differences   []string `json:"Differences,omitempty"`
}

// PlanSummary counts the actions and what they would cost.
type PlanSummary struct {
	Requested int `json:"Requested"`
	Create    int `json:"Create"`
	Update    int `json:"Update"`
	Skip      int `json:"Skip"`
	Fail      int `json:"Fail"`
	// Calls is the least number of SSM calls the run would make: the
	// CreateAssociationBatch calls of the creates, and a DescribeAssociation
	// and an UpdateAssociation per association to update (once however
	// many of its nodes are in Update).
	Calls int `json:"Calls"`
	// EstimatedSeconds is Calls at the configured call rate.
	EstimatedSeconds float64 `json:"EstimatedSeconds"`
}

// Redacted returns the plan with every Parameters value replaced.
func (p Plan) Redacted() Plan {
	out := p
	out.Actions = redactEach(p.Actions, func(a *Action) { a.Entry = a.Entry.Redacted() })
	return out
}
