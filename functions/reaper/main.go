// Command reaper is the Lambda function that finishes what the workers
// cannot: it counts the chunks that reach the jobs dead-letter queue as
// poisoned (their entries Unprocessed, with a reason) and settles their
// jobs; on a schedule, it finishes and announces jobs whose chunks are all
// counted, and marks jobs without progress for JOB_STALL_AFTER as STALLED
// (metric JobsStalled), and counts jobs not finished JOB_MAX_RUNNING after
// their submission (metric JobsOverdue).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/tracing"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/wiring"
)

func main() {
	log := lambdacontext.NewLogger()
	tr, err := tracing.FromEnv(context.Background())
	var r *jobs.Reaper
	if err == nil {
		r, err = wiring.Reaper(context.Background(), log, os.Stdout, tr.Instrument)
	}
	if err != nil {
		log.Error("reaper cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(tr.Handler(r.Handle))
}
