// Command worker is the Lambda function behind the jobs queue: each message
// is a chunk of an asynchronous job, run through the same engine as the
// synchronous function, at this worker's share of the account's SSM rate.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/tracing"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/wiring"
)

func main() {
	log := lambdacontext.NewLogger()
	tr, err := tracing.FromEnv(context.Background())
	var deps wiring.Deps
	if err == nil {
		deps, err = wiring.Load(context.Background(), tr.Instrument)
	}
	if err == nil && !deps.Config.AsyncEnabled() {
		err = errors.New("JOBS_TABLE and JOBS_QUEUE_URL: required by the worker")
	}
	if err != nil {
		log.Error("worker cannot start", "error", err.Error())
		os.Exit(1)
	}
	cfg := deps.Config
	w := jobs.NewWorker(deps.Engine(cfg.WorkerCallsPerSecond(), log), deps.JobStore(),
		jobs.NewAnnouncer(awsclient.EventBridge(deps.AWS), cfg.EventBusName), cfg.MaxReceives, log).
		WriteMetrics(os.Stdout)
	lambda.Start(tr.Handler(w.Handle))
}
