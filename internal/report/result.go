// Package report is the outcome of one invocation: every entry of the
// request, and for node-targeted entries every node, in exactly one of four
// lists, with counts.
package report

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Result is the function's answer.
type Result struct {
	Successful   []Association  `json:"Successful"`
	Updated      []Updated      `json:"Updated"`
	Failed       []Failure      `json:"Failed"`
	Deduplicated []Deduplicated `json:"Deduplicated"`
	Unprocessed  []Unprocessed  `json:"Unprocessed"`
	Summary      Summary        `json:"Summary"`

	// CallLatencies are the durations of the SSM calls, for metrics.
	CallLatencies []time.Duration `json:"-"`
}

// New returns an empty result whose lists marshal as [] rather than null.
func New() Result {
	return Result{Successful: []Association{}, Updated: []Updated{}, Failed: []Failure{}, Deduplicated: []Deduplicated{}, Unprocessed: []Unprocessed{}}
}

// Fault values, as SSM reports them.
const (
	FaultClient  = "Client"
	FaultServer  = "Server"
	FaultUnknown = "Unknown"
)

// Failure is an entry that will not be associated by this invocation.
type Failure struct {
	Entry    request.Entry `json:"Entry"`
	Fault    string        `json:"Fault"`
	Message  string        `json:"Message"`
	Attempts int           `json:"Attempts"`
}

// Retryable says whether sending the entry again could succeed.
func (f Failure) Retryable() bool { return f.Fault != FaultClient }

// Reasons an entry was deduplicated.
const (
	ReasonDuplicateInRequest = "duplicate in request"
	ReasonAlreadyAssociated  = "already associated"
	ReasonInProgress         = "in progress elsewhere"
	ReasonAlreadyExists      = "already exists in SSM"
	// ReasonDifferentSettings: the node has an association of the same
	// document and name whose settings differ; Differences names them.
	// Sent with "OnExisting": "update", it is updated instead.
	ReasonDifferentSettings = "associated with different settings"
)

// Deduplicated is an entry, or one node of an entry, that was not sent
// because it is, or is being, associated already.
type Deduplicated struct {
	Entry         request.Entry `json:"Entry"`
	Reason        string        `json:"Reason"`
	AssociationId string        `json:"AssociationId,omitempty"`
	// Differences names the settings that differ from the existing
	// association's (ReasonDifferentSettings): names only, never values.
	Differences []string `json:"Differences,omitempty"`
}

// Updated is an entry, or one node of an entry, whose existing association
// ("OnExisting": "update") was updated to the entry's settings.
type Updated struct {
	Entry              request.Entry `json:"Entry"`
	AssociationId      string        `json:"AssociationId"`
	AssociationVersion string        `json:"AssociationVersion"`
	Differences        []string      `json:"Differences"`
}

// Unprocessed is an entry this invocation did not finish. Either it was not
// sent, and its claims were released; or its outcome is unknown (an answer
// was lost), and its claims are kept, marked possibly sent, so that the
// invocation that takes them over reads SSM before sending it again. Either
// way sending the request again is safe and completes it.
type Unprocessed struct {
	Entry  request.Entry `json:"Entry"`
	Reason string        `json:"Reason"`
}

// Summary counts the lists and the work it took.
type Summary struct {
	Requested    int `json:"Requested"`
	Successful   int `json:"Successful"`
	Updated      int `json:"Updated"`
	Failed       int `json:"Failed"`
	Deduplicated int `json:"Deduplicated"`
	Unprocessed  int `json:"Unprocessed"`
	Calls        int `json:"Calls"`
	Retries      int `json:"Retries"`
	Throttles    int `json:"Throttles"`
	// Reads counts the SSM reads (ListAssociations pages, DescribeAssociation)
	// made to settle entries whose outcome was in doubt.
	Reads int `json:"Reads"`
}

// Counts is the summary as metric values, named as its JSON members.
func (s Summary) Counts() map[string]int {
	return map[string]int{
		"Requested": s.Requested, "Successful": s.Successful, "Updated": s.Updated, "Failed": s.Failed,
		"Deduplicated": s.Deduplicated, "Unprocessed": s.Unprocessed,
		"Calls": s.Calls, "Retries": s.Retries, "Throttles": s.Throttles, "Reads": s.Reads,
	}
}

// Tally fills the list counts of the summary from the lists.
func (r *Result) Tally() {
	r.Summary.Successful = len(r.Successful)
	r.Summary.Updated = len(r.Updated)
	r.Summary.Failed = len(r.Failed)
	r.Summary.Deduplicated = len(r.Deduplicated)
	r.Summary.Unprocessed = len(r.Unprocessed)
}

// Retryable says whether anything is left that a later invocation could
// finish: a Failed entry whose fault is not the caller's, an Unprocessed
// one, or one in progress elsewhere (usually an earlier attempt of the same
// event that crashed holding its claims: its work is not done until a later
// invocation takes them over).
func (r *Result) Retryable() bool {
	if len(r.Unprocessed) > 0 {
		return true
	}
	for _, f := range r.Failed {
		if f.Retryable() {
			return true
		}
	}
	for _, d := range r.Deduplicated {
		if d.Reason == ReasonInProgress {
			return true
		}
	}
	return false
}

// Redacted returns the result with the Parameters values of every entry
// replaced: a result travels to API clients, queues and dead-letter queues,
// and parameters may hold secrets. Lists stay non-nil, so they marshal as []
// rather than null.
func (r Result) Redacted() Result {
	out := r
	out.Successful = redactEach(r.Successful, func(a *Association) {
		a.Parameters = request.Entry{Parameters: a.Parameters}.Redacted().Parameters
	})
	out.Updated = redactEach(r.Updated, func(u *Updated) { u.Entry = u.Entry.Redacted() })
	out.Failed = redactEach(r.Failed, func(f *Failure) { f.Entry = f.Entry.Redacted() })
	out.Deduplicated = redactEach(r.Deduplicated, func(d *Deduplicated) { d.Entry = d.Entry.Redacted() })
	out.Unprocessed = redactEach(r.Unprocessed, func(u *Unprocessed) { u.Entry = u.Entry.Redacted() })
	return out
}

func redactEach[T any](in []T, redact func(*T)) []T {
	out := make([]T, len(in))
	copy(out, in)
	for i := range out {
		redact(&out[i])
	}
	return out
}

// Association is an AssociationDescription as CreateAssociationBatch returns
// it, with only the members SSM set, and dates as epoch seconds like the
// service's own JSON.
type Association struct {
	AssociationId      string                `json:"AssociationId"`
	AssociationName    string                `json:"AssociationName,omitempty"`
	AssociationVersion string                `json:"AssociationVersion,omitempty"`
	Name               string                `json:"Name"`
	DocumentVersion    string                `json:"DocumentVersion,omitempty"`
	InstanceId         string                `json:"InstanceId,omitempty"`
	Targets            []request.Target      `json:"Targets,omitempty"`
	TargetMaps         []map[string][]string `json:"TargetMaps,omitempty"`
	Parameters         map[string][]string   `json:"Parameters,omitempty"`
	ScheduleExpression string                `json:"ScheduleExpression,omitempty"`
	Date               *EpochSeconds         `json:"Date,omitempty"`
	Status             *Status               `json:"Status,omitempty"`
	Overview           *Overview             `json:"Overview,omitempty"`
}

// Status is AssociationStatus.
type Status struct {
	Name    string        `json:"Name"`
	Message string        `json:"Message,omitempty"`
	Date    *EpochSeconds `json:"Date,omitempty"`
}

// Overview is AssociationOverview.
type Overview struct {
	Status         string `json:"Status,omitempty"`
	DetailedStatus string `json:"DetailedStatus,omitempty"`
}

// FromSDK converts an AssociationDescription.
func FromSDK(d ssmtypes.AssociationDescription) Association {
	a := Association{
		AssociationId:      aws.ToString(d.AssociationId),
		AssociationName:    aws.ToString(d.AssociationName),
		AssociationVersion: aws.ToString(d.AssociationVersion),
		Name:               aws.ToString(d.Name),
		DocumentVersion:    aws.ToString(d.DocumentVersion),
		InstanceId:         aws.ToString(d.InstanceId),
		TargetMaps:         d.TargetMaps,
		Parameters:         d.Parameters,
		ScheduleExpression: aws.ToString(d.ScheduleExpression),
		Date:               epoch(d.Date),
	}
	for _, t := range d.Targets {
		a.Targets = append(a.Targets, request.Target{Key: aws.ToString(t.Key), Values: t.Values})
	}
	if s := d.Status; s != nil {
		a.Status = &Status{Name: string(s.Name), Message: aws.ToString(s.Message), Date: epoch(s.Date)}
	}
	if o := d.Overview; o != nil {
		a.Overview = &Overview{Status: aws.ToString(o.Status), DetailedStatus: aws.ToString(o.DetailedStatus)}
	}
	return a
}

// EpochSeconds marshals a time as SSM does: seconds since the epoch, with
// milliseconds as a fraction.
type EpochSeconds time.Time

// MarshalJSON writes the time as a JSON number.
func (t EpochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads a JSON number of epoch seconds.
func (t *EpochSeconds) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("epoch seconds: %w", err)
	}
	*t = EpochSeconds(time.UnixMilli(int64(math.Round(f * 1000))))
	return nil
}

func epoch(t *time.Time) *EpochSeconds {
	if t == nil {
		return nil
	}
	e := EpochSeconds(*t)
	return &e
}
