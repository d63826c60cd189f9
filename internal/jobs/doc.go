// Package jobs runs requests too large for one synchronous invocation as
// asynchronous jobs: the submitter records a job and splits its work into
// chunk messages on an SQS queue; workers, scaled by Lambda's SQS event
// source, run each chunk through the same engine (claims, retry only
// failed) and record its outcome; the job's counts are updated atomically
// as chunks finish, and a completion event goes to EventBridge at the end.
//
// A job lives in its own DynamoDB table (JOBS_TABLE), keyed by jobId and sk:
//
//	META            state, counts, chunks total/done/poisoned; submittedBy
//	                (the caller that submitted it: trigger kind, IAM ARN,
//	                account, EventBridge source and event ID), finishedBy
//	                (the Finish that made it final), the announcement claim
//	                (announcer, announceUntil) and announcedAt
//	CHUNK#000000    outcomes known at submission (invalid entries, duplicates)
//	CHUNK#000001    outcomes of chunk 1, merged across redeliveries, and
//	                countedAt once it is counted into the job: a chunk is
//	                counted once, and its outcomes are final from then on
//	CHUNK#000001#<run>#01 …  further parts of a chunk's outcomes when they
//	                exceed one item; <run> is the Record call whose parts
//	                count (the chunk's item names it)
//
// Any caller that sees every chunk counted settles the job (Store.Settle):
// Finish, conditional, then one completion event under a claim. The
// Reaper counts chunks that reach the dead-letter queue, settles jobs
// nobody finished, and marks jobs without progress STALLED.
package jobs
