package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// Event source and detail type of the completion event.
const (
	EventSource        = "ssm-association-batcher"
	CompletedEventType = "Association Job Completed"
)

type putEventsAPI interface {
	PutEvents(context.Context, *eventbridge.PutEventsInput, ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Announcer puts completion events on an EventBridge bus.
type Announcer struct {
	client putEventsAPI
	bus    string
}

// NewAnnouncer returns an announcer on bus (a name or ARN); with no bus,
// completions are not announced.
func NewAnnouncer(client putEventsAPI, bus string) *Announcer {
	return &Announcer{client: client, bus: bus}
}

// Completed puts the job's summary on the bus: its state, counts and
// SubmittedBy (who submitted it), never its entries.
func (a *Announcer) Completed(ctx context.Context, m Meta) error {
	if a.bus == "" {
		return nil
	}
	detail, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode completion of %s: %w", m.JobID, err)
	}
	out, err := a.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(a.bus),
		Source:       aws.String(EventSource),
		DetailType:   aws.String(CompletedEventType),
		Detail:       aws.String(string(detail)),
		Resources:    []string{},
	}}})
	if err != nil {
		return fmt.Errorf("put completion of %s: %w", m.JobID, err)
	}
	if out.FailedEntryCount > 0 && len(out.Entries) > 0 {
		return fmt.Errorf("put completion of %s: %s: %s", m.JobID, aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage))
	}
	return nil
}
