package testinfra

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSEventSource plays Lambda's SQS event source for one function instance,
// against a real queue (moto's, in tests): receive up to BatchSize messages,
// invoke the handler with them as an SQS event under the function's
// timeout, and delete the messages it did not report in BatchItemFailures.
// A handler error hands the whole batch back, as Lambda does.
type SQSEventSource struct {
	Client    *sqs.Client
	QueueURL  string
	BatchSize int32         // 1 to 10; 0 means 10
	Timeout   time.Duration // the function's timeout
	// Observe, when set, sees every invocation and how long it took.
	Observe func(ev events.SQSEvent, took time.Duration)
}

// Run polls until ctx ends or done reports true.
func (s SQSEventSource) Run(ctx context.Context, handle func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), done func() bool) {
	batch := s.BatchSize
	if batch <= 0 {
		batch = 10
	}
	for ctx.Err() == nil && (done == nil || !done()) {
		out, err := s.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.QueueURL), MaxNumberOfMessages: batch,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"}, WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) == 0 {
			continue
		}
		ev := ToSQSEvent(out.Messages...)
		ictx, cancel := context.WithTimeout(ctx, s.Timeout)
		start := time.Now()
		resp, err := handle(ictx, ev)
		cancel()
		if s.Observe != nil {
			s.Observe(ev, time.Since(start))
		}
		if err != nil {
			continue
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, r := range ev.Records {
			if !failed[r.MessageId] {
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.ReceiptHandle)})
			}
		}
		if len(del) > 0 {
			// The event source deletes even when the run is ending.
			_, _ = s.Client.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.QueueURL), Entries: del})
		}
	}
}

// ToSQSEvent turns received messages into the event Lambda delivers.
func ToSQSEvent(msgs ...sqstypes.Message) events.SQSEvent {
	ev := events.SQSEvent{}
	for _, m := range msgs {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			attrs[k] = events.SQSMessageAttribute{StringValue: v.StringValue, DataType: aws.ToString(v.DataType)}
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Attributes: m.Attributes, MessageAttributes: attrs, EventSource: "aws:sqs"})
	}
	return ev
}
