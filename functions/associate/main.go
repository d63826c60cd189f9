// Command associate is the Lambda function: it wires the configuration, the
// AWS clients and the engine, and hands the handler to the Lambda runtime.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/handler"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/tracing"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/wiring"
)

func main() {
	log := lambdacontext.NewLogger()
	tr, err := tracing.FromEnv(context.Background())
	if err != nil {
		log.Error("function cannot start", "error", err.Error())
		os.Exit(1)
	}
	deps, err := wiring.Load(context.Background(), tr.Instrument)
	if err != nil {
		log.Error("function cannot start", "error", err.Error())
		os.Exit(1)
	}
	cfg := deps.Config
	h := handler.New(deps.Engine(cfg.CallsPerSecond, log), cfg, log, os.Stdout).
		WithJobReaders(cfg.JobReaderPrincipalARNs)
	if cfg.AsyncEnabled() {
		store := deps.JobStore()
		h.WithJobs(jobs.NewSubmitter(awsclient.SQS(deps.AWS), cfg.JobsQueueURL, store, cfg.ChunkSize).WithWorkers(cfg.WorkerMaxConcurrency).WithBatchSize(cfg.BatchSize), store)
	}
	lambda.Start(tr.Handler(h.Invoke))
}
