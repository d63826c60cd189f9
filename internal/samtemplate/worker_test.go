package samtemplate

import (
	"slices"
	"strconv"
	"testing"
)

// TestWorkerEventSource: the worker reads the jobs queue, reports the
// messages to keep one by one, and its concurrency, which divides the
// account's call budget, is one parameter for the event source and the code.
func TestWorkerEventSource(t *testing.T) {
	tpl := loadTemplate(t)
	sqsEvents := eventsOfType(t, tpl, workerID, "SQS")
	if len(sqsEvents) != 1 {
		t.Fatalf("%s has %d SQS events, want 1", workerID, len(sqsEvents))
	}
	ev := sqsEvents[0]
	if got := ev.get("Queue").getAtt(); got != "JobsQueue.Arn" {
		t.Errorf("SQS event Queue = %q, want !GetAtt JobsQueue.Arn", got)
	}
	if got := ev.get("FunctionResponseTypes").strs(); !slices.Equal(got, []string{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes = %v, want [ReportBatchItemFailures] (the worker returns the chunks to keep)", got)
	}
	if n := len(resource(t, tpl, workerID, "AWS::Serverless::Function").get("Properties", "Events").keys()); n != 1 {
		t.Errorf("%s has %d events, want only the jobs queue", workerID, n)
	}

	vars := tpl.get("Resources", workerID, "Properties", "Environment", "Variables")
	maxConc := ev.get("ScalingConfig", "MaximumConcurrency").ref()
	if maxConc != "WorkerMaxConcurrency" {
		t.Errorf("ScalingConfig.MaximumConcurrency = %v, want !Ref WorkerMaxConcurrency", ev.get("ScalingConfig", "MaximumConcurrency").Value)
	}
	if got := vars.get("WORKER_MAX_CONCURRENCY").ref(); got != maxConc {
		t.Errorf("WORKER_MAX_CONCURRENCY = !Ref %q, want the event source's MaximumConcurrency parameter %q", got, maxConc)
	}
	if p := tpl.get("Parameters", maxConc); p.get("MinValue").str() != "2" {
		t.Errorf("parameter %s MinValue = %q, want 2 (the least MaximumConcurrency SQS event sources accept)", maxConc, p.get("MinValue").str())
	}
	if p := tpl.get("Parameters", maxConc); p.get("MaxValue").str() != "1000" {
		t.Errorf("parameter %s MaxValue = %q, want 1000 (the most MaximumConcurrency SQS event sources accept)", maxConc, p.get("MaxValue").str())
	}

	batch := ev.get("BatchSize").ref()
	if batch != "WorkerBatchSize" {
		t.Errorf("SQS event BatchSize = %v, want !Ref WorkerBatchSize", ev.get("BatchSize").Value)
	}
	bp := tpl.get("Parameters", batch)
	if bp.get("Default").str() != "1" {
		t.Errorf("parameter %s Default = %q, want 1 (a chunk is a worker's unit of work)", batch, bp.get("Default").str())
	}
	if max, _ := strconv.Atoi(bp.get("MaxValue").str()); (max < 1 || max > 10) && !ev.get("MaximumBatchingWindowInSeconds").ok() {
		t.Errorf("parameter %s MaxValue = %q: want 1 to 10 (the SQS limit without a batching window)", batch, bp.get("MaxValue").str())
	}
}

// TestJobsQueue: chunks that never finish go to a dead-letter queue after
// MaxReceives receives, the number the worker counts to; a chunk is not
// handed to a second worker while the first may still run it.
func TestJobsQueue(t *testing.T) {
	tpl := loadTemplate(t)
	queue := resource(t, tpl, "JobsQueue", "AWS::SQS::Queue").get("Properties")
	dlq := resource(t, tpl, "JobsDeadLetterQueue", "AWS::SQS::Queue").get("Properties")

	redrive := queue.get("RedrivePolicy")
	if got := redrive.get("deadLetterTargetArn").getAtt(); got != "JobsDeadLetterQueue.Arn" {
		t.Errorf("JobsQueue RedrivePolicy.deadLetterTargetArn = %q, want !GetAtt JobsDeadLetterQueue.Arn", got)
	}
	receives := redrive.get("maxReceiveCount").ref()
	if receives == "" || !tpl.get("Parameters", receives).ok() {
		t.Errorf("JobsQueue RedrivePolicy.maxReceiveCount: want !Ref to a parameter")
	}
	if got := tpl.get("Resources", workerID, "Properties", "Environment", "Variables", "MAX_RECEIVES").ref(); got != receives {
		t.Errorf("MAX_RECEIVES = !Ref %q, want the queue's maxReceiveCount parameter %q", got, receives)
	}
	if p := tpl.get("Parameters", receives); p.get("MinValue").str() != "1" || p.get("MaxValue").str() != "1000" {
		t.Errorf("parameter %s: want 1 to 1000, the maxReceiveCount SQS accepts", receives)
	}

	// AWS: a visibility timeout of 6 x the function timeout. CloudFormation
	// cannot multiply: the queue's is looked up in a mapping keyed by the
	// worker's timeout, which only allows the mapping's keys; checked here
	// for every allowed value.
	timeout := tpl.get("Resources", workerID, "Properties", "Timeout").ref()
	if timeout == "" {
		t.Fatalf("%s Timeout must be !Ref a parameter", workerID)
	}
	f, arg := queue.get("VisibilityTimeout").fn()
	args := arg.items()
	if f != "FindInMap" || len(args) != 3 || args[1].ref() != timeout {
		t.Fatalf("JobsQueue VisibilityTimeout: want !FindInMap [<mapping>, !Ref %s, <key>]", timeout)
	}
	mapping, key := args[0].str(), args[2].str()
	allowed := tpl.get("Parameters", timeout, "AllowedValues").strs()
	if len(allowed) == 0 {
		t.Fatalf("parameter %s: want AllowedValues, the keys of mapping %s", timeout, mapping)
	}
	if !slices.Contains(allowed, tpl.get("Parameters", timeout, "Default").str()) {
		t.Errorf("parameter %s: its default is not an allowed value", timeout)
	}
	keys := tpl.get("Mappings", mapping).keys()
	slices.Sort(keys)
	want := slices.Clone(allowed)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("mapping %s has keys %v, want exactly %s's allowed values %v", mapping, keys, timeout, allowed)
	}
	for _, v := range allowed {
		to, err := strconv.Atoi(v)
		if err != nil || to < 1 || to > 900 {
			t.Errorf("%s allows %q: not a Lambda timeout (1 to 900 s)", timeout, v)
			continue
		}
		vt, err := strconv.Atoi(tpl.get("Mappings", mapping, v, key).str())
		switch {
		case err != nil:
			t.Errorf("mapping %s[%s].%s is not a number", mapping, v, key)
		case vt < 6*to:
			t.Errorf("%s %d: visibility timeout %d < 6 x %d", timeout, to, vt, to)
		case vt > 43200:
			t.Errorf("%s %d: visibility timeout %d > 43200, the SQS maximum", timeout, to, vt)
		}
	}

	if got := dlq.get("MessageRetentionPeriod").str(); got != "1209600" {
		t.Errorf("JobsDeadLetterQueue MessageRetentionPeriod = %q, want 1209600 (14 days)", got)
	}
	src, _ := strconv.Atoi(queue.get("MessageRetentionPeriod").str())
	if src == 0 {
		src = 345600 // the SQS default
	}
	if d, _ := strconv.Atoi(dlq.get("MessageRetentionPeriod").str()); d <= src {
		t.Errorf("the dead-letter queue keeps messages %d s, no longer than the jobs queue (%d s): a chunk's age counts from its first enqueue", d, src)
	}
}

// TestQueuesAreEncryptedAndTLSOnly: every queue of the stack uses SSE and
// refuses requests that are not TLS.
func TestQueuesAreEncryptedAndTLSOnly(t *testing.T) {
	tpl := loadTemplate(t)
	resources := tpl.get("Resources")
	denied := map[string]bool{}
	for _, id := range resources.keys() {
		r := resources.get(id)
		if r.get("Type").str() != "AWS::SQS::QueuePolicy" {
			continue
		}
		for _, st := range r.get("Properties", "PolicyDocument", "Statement").items() {
			if st.get("Effect").str() == "Deny" && st.get("Principal").str() == "*" &&
				slices.Contains(st.get("Action").strs(), "sqs:*") &&
				st.get("Condition", "Bool", "aws:SecureTransport").str() == "false" {
				for _, q := range r.get("Properties", "Queues").items() {
					queueID := q.ref()
					if st.get("Resource").getAtt() == queueID+".Arn" {
						denied[queueID] = true
					}
				}
			}
		}
	}
	queues := 0
	for _, id := range resources.keys() {
		r := resources.get(id)
		if r.get("Type").str() != "AWS::SQS::Queue" {
			continue
		}
		queues++
		checkQueueEncryption(t, tpl, id)
		if !denied[id] {
			t.Errorf("%s: no queue policy denies requests without TLS (aws:SecureTransport false)", id)
		}
	}
	if queues < 4 {
		t.Errorf("%d queues, want the failure, event dead-letter, jobs and jobs dead-letter queues", queues)
	}
}

// TestReaperFunction: the reaper reads the jobs dead-letter queue (every
// chunk that reaches it is counted into its job) and runs on a schedule;
// the dead-letter queue's visibility timeout covers 6 x its largest
// timeout.
func TestReaperFunction(t *testing.T) {
	tpl := loadTemplate(t)
	fn := resource(t, tpl, reaperID, "AWS::Serverless::Function")
	if n := len(fn.get("Properties", "Events").keys()); n != 2 {
		t.Errorf("%s has %d events, want the dead-letter queue and the schedule", reaperID, n)
	}
	sqsEvents := eventsOfType(t, tpl, reaperID, "SQS")
	if len(sqsEvents) != 1 || sqsEvents[0].get("Queue").getAtt() != "JobsDeadLetterQueue.Arn" {
		t.Fatalf("%s: want one SQS event on !GetAtt JobsDeadLetterQueue.Arn", reaperID)
	}
	if got := sqsEvents[0].get("FunctionResponseTypes").strs(); !slices.Equal(got, []string{"ReportBatchItemFailures"}) {
		t.Errorf("%s SQS event FunctionResponseTypes = %v, want [ReportBatchItemFailures]", reaperID, got)
	}
	sched := eventsOfType(t, tpl, reaperID, "Schedule")
	if len(sched) != 1 || sched[0].get("Schedule").ref() == "" || sched[0].get("Enabled").str() != "true" {
		t.Errorf("%s: want one enabled Schedule event from a parameter", reaperID)
	}
	timeout := fn.get("Properties", "Timeout").ref()
	maxTimeout, err := strconv.Atoi(tpl.get("Parameters", timeout, "MaxValue").str())
	if err != nil {
		t.Fatalf("parameter %s: want a MaxValue", timeout)
	}
	dlq := resource(t, tpl, "JobsDeadLetterQueue", "AWS::SQS::Queue").get("Properties")
	if vt, _ := strconv.Atoi(dlq.get("VisibilityTimeout").str()); vt < 6*maxTimeout {
		t.Errorf("JobsDeadLetterQueue VisibilityTimeout %d < 6 x the largest %s (%d)", vt, timeout, maxTimeout)
	}
	alarm := resource(t, tpl, "JobsStalledAlarm", "AWS::CloudWatch::Alarm").get("Properties")
	if alarm.get("MetricName").str() != "JobsStalled" || alarm.get("Namespace").str() != "SSMAssociationBatcher" {
		t.Errorf("JobsStalledAlarm watches %s/%s, want SSMAssociationBatcher/JobsStalled", alarm.get("Namespace").str(), alarm.get("MetricName").str())
	}
}
