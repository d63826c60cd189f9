// Command ssm-local serves the ssmlocal SSM State Manager emulator over
// HTTP, for the AWS CLI and SDKs (--endpoint-url / BaseEndpoint). Flags are
// documented in docs/ssm-local.md and by -h.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "ssm-local:", err)
		os.Exit(2)
	}
}

// config is the parsed command line.
type config struct {
	addr          string
	opts          ssmlocal.Options
	documentsFile string
	nodesFile     string
}

// parseFlags turns the command line into a config; files are not read here.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := config{opts: ssmlocal.DefaultOptions()}
	fs := flag.NewFlagSet("ssm-local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:4583", "listen address")
	fs.IntVar(&c.opts.MaxBatch, "max-batch", 0, "entries per CreateAssociationBatch call; more fails with ValidationException (0 = unlimited)")
	fs.IntVar(&c.opts.MaxAssociations, "max-associations", c.opts.MaxAssociations, "active associations (0 = unlimited)")
	fs.Float64Var(&c.opts.Rate, "rate", 0, "calls per second, token bucket; excess gets ThrottlingException (0 = unlimited)")
	fs.IntVar(&c.opts.Burst, "burst", 0, "token bucket size (0 = max(1, ceil(rate)))")
	fs.Func("rate-changes", "`after=rate[/burst],...`: changes of -rate and -burst timed from the server's start; 10s=20/1,30s=40/5 is 20 calls/s burst 1 after 10 s, then 40 calls/s burst 5 after 30 s", func(v string) error {
		sched, err := ssmlocal.ParseRateSchedule(v)
		c.opts.RateSchedule = sched
		return err
	})
	fs.DurationVar(&c.opts.Latency, "latency", 0, "added to every call")
	fs.DurationVar(&c.opts.Jitter, "jitter", 0, "uniform random extra latency in [0, jitter)")
	fs.Float64Var(&c.opts.EntryFaultRate, "entry-fault-rate", 0, "probability that an entry fails with Fault Server")
	fs.Float64Var(&c.opts.ThrottleRate, "throttle-rate", 0, "probability that a call gets ThrottlingException")
	fs.Float64Var(&c.opts.ErrorRate, "error-rate", 0, "probability that a call gets InternalServerError (HTTP 500)")
	fs.Float64Var(&c.opts.LostAnswerRate, "lost-answer-rate", 0, "probability that a create or update call executes, then its connection is closed without a response")
	fs.Float64Var(&c.opts.ErrorAfterCreateRate, "error-after-create-rate", 0, "probability that a create or update call executes, then answers InternalServerError (HTTP 500)")
	fs.Float64Var(&c.opts.SlowAnswerRate, "slow-answer-rate", 0, "probability that a create or update call executes, then holds its answer for -slow-answer-delay")
	fs.DurationVar(&c.opts.SlowAnswerDelay, "slow-answer-delay", ssmlocal.DefaultSlowAnswerDelay, "how long -slow-answer-rate holds an answer (ends early if the client goes away)")
	fs.Int64Var(&c.opts.Seed, "seed", 0, "seed of the random faults and jitter")
	fs.Int64Var(&c.opts.MaxBodyBytes, "max-body-bytes", ssmlocal.DefaultMaxBodyBytes, "largest request body; larger gets HTTP 413 (negative = unlimited)")
	fs.StringVar(&c.documentsFile, "documents", "", "JSON file with documents added to the built-in catalogue")
	fs.StringVar(&c.nodesFile, "nodes", "", "JSON file with the managed-node inventory (default: every well-formed ID is a managed Linux node)")
	if err := fs.Parse(args); err != nil {
		return config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for name, p := range map[string]float64{"entry-fault-rate": c.opts.EntryFaultRate, "throttle-rate": c.opts.ThrottleRate, "error-rate": c.opts.ErrorRate,
		"lost-answer-rate": c.opts.LostAnswerRate, "error-after-create-rate": c.opts.ErrorAfterCreateRate, "slow-answer-rate": c.opts.SlowAnswerRate} {
		if p < 0 || p > 1 {
			return config{}, fmt.Errorf("-%s %v: must be between 0 and 1", name, p)
		}
	}
	if c.opts.Rate < 0 || c.opts.Burst < 0 || c.opts.MaxBatch < 0 || c.opts.MaxAssociations < 0 || c.opts.Latency < 0 || c.opts.Jitter < 0 {
		return config{}, errors.New("-rate, -burst, -max-batch, -max-associations, -latency and -jitter must not be negative")
	}
	if c.opts.SlowAnswerDelay <= 0 {
		return config{}, fmt.Errorf("-slow-answer-delay %v: must be positive", c.opts.SlowAnswerDelay)
	}
	return c, nil
}

// options reads the -documents and -nodes files into the options.
func (c config) options() (ssmlocal.Options, error) {
	o := c.opts
	if c.documentsFile != "" {
		docs, err := ssmlocal.LoadDocuments(c.documentsFile)
		if err != nil {
			return o, fmt.Errorf("-documents: %w", err)
		}
		o.Documents = docs
	}
	if c.nodesFile != "" {
		nodes, err := ssmlocal.LoadNodes(c.nodesFile)
		if err != nil {
			return o, fmt.Errorf("-nodes: %w", err)
		}
		o.Nodes = nodes
	}
	return o, nil
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(stdout, "ssm-local listening on http://%s (stats: GET /_ssm-local/stats, rate: GET/PUT /_ssm-local/rate)\n", ln.Addr())
	return serve(ctx, ln, ssmlocal.New(opts))
}

// serve serves h on ln until ctx is done, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
