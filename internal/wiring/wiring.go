// Package wiring builds what the functions run on — configuration, AWS
// clients, the claim store and the engine — so that the two main packages
// stay thin and cannot drift apart.
package wiring

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/pace"
)

// Deps are the configuration and the AWS configuration of a function.
type Deps struct {
	Config config.Config
	AWS    aws.Config
}

// Load reads the function's configuration and the AWS configuration, and
// applies instrument (tracing.Tracing.Instrument) to the latter before any
// client is built from it.
func Load(ctx context.Context, instrument ...func(*aws.Config)) (Deps, error) {
	cfg, err := config.Load()
	if err != nil {
		return Deps{}, err
	}
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return Deps{}, fmt.Errorf("setup: %w", err)
	}
	for _, f := range instrument {
		f(&awsCfg)
	}
	return Deps{Config: cfg, AWS: awsCfg}, nil
}

// Engine builds the engine, pacing its SSM calls at callsPerSecond.
func (d Deps) Engine(callsPerSecond float64, log *slog.Logger) *associate.Engine {
	ddb := awsclient.DynamoDB(d.AWS)
	store := dedupe.NewStore(ddb, d.Config.DedupeTable, d.Config.DedupeTTL)
	eng := associate.New(awsclient.SSM(d.AWS), store, Settings(d.Config, d.AWS.Region, callsPerSecond), log)
	if d.Config.AutoRate {
		eng.RememberRate(pace.NewMemory(ddb, d.Config.DedupeTable))
	}
	return eng
}

// Settings are the engine's settings from the configuration, with its SSM
// calls paced at callsPerSecond. Allow always comes from ALLOWED_DOCUMENTS
// and ALLOWED_TARGET_KEYS (their defaults when unset): never the engine's
// zero Allow, which allows every document name and target key. region is
// where the SSM client calls (AWS_REGION in Lambda): the only Region whose
// documents an entry may name by ARN.
func Settings(c config.Config, region string, callsPerSecond float64) associate.Settings {
	return associate.Settings{
		BatchSize:      c.BatchSize,
		MaxConcurrency: c.MaxConcurrency,
		CallsPerSecond: callsPerSecond,
		MaxAttempts:    c.MaxAttempts,
		ClaimLease:     c.ClaimLease,
		ReconcileDelay: c.ReconcileDelay,
		AutoRate:       autoRate(c),
		Allow: associate.Allow{
			Documents:  slices.Clone(c.AllowedDocuments),
			TargetKeys: slices.Clone(c.AllowedTargetKeys),
			Region:     region,
		},
	}
}

// autoRate is CALLS_PER_SECOND=auto's settings; nil for a number.
func autoRate(c config.Config) *associate.AutoRate {
	if !c.AutoRate {
		return nil
	}
	return &associate.AutoRate{Start: c.CallsPerSecondStart, Max: c.MaxCallsPerSecond}
}

// JobStore is the store of asynchronous jobs.
func (d Deps) JobStore() *jobs.Store {
	return jobs.NewStore(awsclient.DynamoDB(d.AWS), d.Config.JobsTable, d.Config.JobTTL)
}

// Reaper builds the reaper function's handler from its own, smaller
// configuration (config.ReaperVariables): it needs the jobs table and the
// bus, never SSM or the claims. instrument is applied to the AWS
// configuration, as in Load.
func Reaper(ctx context.Context, log *slog.Logger, metrics io.Writer, instrument ...func(*aws.Config)) (*jobs.Reaper, error) {
	cfg, err := config.LoadReaper()
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	for _, f := range instrument {
		f(&awsCfg)
	}
	store := jobs.NewStore(awsclient.DynamoDB(awsCfg), cfg.JobsTable, cfg.JobTTL)
	return jobs.NewReaper(store, jobs.NewAnnouncer(awsclient.EventBridge(awsCfg), cfg.EventBusName), cfg.StallAfter, log, metrics).
		MaxRunning(cfg.MaxRunning), nil
}
