// Command worker is the Lambda function behind the jobs queue: each message
// is a chunk of an asynchronous job, run through the same engine as the
// synchronous function, at this worker's share of the account's SSM rate.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

func main() {
	log := lambdacontext.NewLogger()
	w, err := setup(context.Background(), log)
	if err != nil {
		log.Error("worker cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(w.Handle)
}

func setup(ctx context.Context, log *slog.Logger) (*jobs.Worker, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, err
	}
	if !cfg.AsyncEnabled() {
		return nil, errors.New("JOBS_TABLE and JOBS_QUEUE_URL: required by the worker")
	}
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	ddb := awsclient.DynamoDB(awsCfg)
	engine := associate.New(awsclient.SSM(awsCfg), dedupe.NewStore(ddb, cfg.DedupeTable, cfg.DedupeTTL), associate.Settings{
		BatchSize:      cfg.BatchSize,
		MaxConcurrency: cfg.MaxConcurrency,
		CallsPerSecond: cfg.WorkerCallsPerSecond(),
		MaxAttempts:    cfg.MaxAttempts,
	}, log)
	announcer := jobs.NewAnnouncer(awsclient.EventBridge(awsCfg), cfg.EventBusName)
	return jobs.NewWorker(engine, jobs.NewStore(ddb, cfg.JobsTable, cfg.JobTTL), announcer, cfg.MaxReceives, log), nil
}
