// Package jobs runs requests too large for one synchronous invocation as
// asynchronous jobs: the submitter records a job and splits its work into
// chunk messages on an SQS queue; workers, scaled by Lambda's SQS event
// source, run each chunk through the same engine (claims, retry only
// failed) and record its outcome; the job's counts are updated atomically
// as chunks finish, and a completion event goes to EventBridge at the end.
//
// A job lives in its own DynamoDB table (JOBS_TABLE), keyed by jobId and sk:
//
//	META            state, counts, chunks total/done/poisoned
//	CHUNK#000000    outcomes known at submission (invalid entries, duplicates)
//	CHUNK#000001    outcomes of chunk 1, merged across redeliveries, and
//	                countedAt once it is counted into the job: a chunk is
//	                counted once, and its outcomes are final from then on
package jobs
