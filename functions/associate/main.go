// Command associate is the Lambda function: it wires the configuration, the
// AWS clients and the engine, and hands the handler to the Lambda runtime.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/handler"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

func main() {
	log := lambdacontext.NewLogger()
	h, err := setup(context.Background(), log)
	if err != nil {
		log.Error("function cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Invoke)
}

func setup(ctx context.Context, log *slog.Logger) (*handler.Handler, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	store := dedupe.NewStore(awsclient.DynamoDB(awsCfg), cfg.DedupeTable, cfg.DedupeTTL)
	engine := associate.New(awsclient.SSM(awsCfg), store, associate.Settings{
		BatchSize:      cfg.BatchSize,
		MaxConcurrency: cfg.MaxConcurrency,
		CallsPerSecond: cfg.CallsPerSecond,
		MaxAttempts:    cfg.MaxAttempts,
	}, log)
	h := handler.New(engine, cfg, log, os.Stdout)
	if cfg.AsyncEnabled() {
		store := jobs.NewStore(awsclient.DynamoDB(awsCfg), cfg.JobsTable, cfg.JobTTL)
		h.WithJobs(jobs.NewSubmitter(awsclient.SQS(awsCfg), cfg.JobsQueueURL, store, cfg.ChunkSize), store)
	}
	return h, nil
}
