// Package cli is the operator's command line, batcher: it sends request
// files to the function (through the Lambda Invoke API or the SigV4-signed
// API), follows asynchronous jobs, reads their outcomes, plans, and runs the
// engine in its own process. cmd/batcher only hands it the process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go/logging"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/wiring"
)

// Exit statuses, after the AWS CLI's.
const (
	ExitOK = 0
	// ExitIncomplete: something is Failed or Unprocessed (or, planned,
	// would fail), or the function answered IncompleteError.
	ExitIncomplete = 1
	ExitUsage      = 252 // the command line is wrong
	ExitConfig     = 253 // the AWS or function configuration is wrong
	ExitRefused    = 254 // the function or the API answered an error
	ExitError      = 255 // anything else (network, a file, …)
)

// Usage is batcher --help.
const Usage = `batcher: the operator's command line of ssm-association-batcher.

Usage:
  batcher submit FILE  [--function NAME | --api URL] [--wait] [--output table|json]
  batcher plan   FILE  [--function NAME | --api URL] [--output table|json]
  batcher status JOBID [--function NAME | --api URL] [--wait] [--output table|json]
  batcher result JOBID [--function NAME | --api URL] [--wait] [--page-size N] [--output table|json]
  batcher local  FILE  [--timeout 15m] [--output table|json]
  batcher help | --help

Commands:
  submit  send a request file (a CreateAssociationBatch request or a fan-out
          request; "-" reads stdin). A synchronous answer is printed; a job
          (202) is printed as accepted, or followed to its end with --wait.
  plan    the dry run: the file is sent with "DryRun": true and the plan is
          printed. Nothing is sent to SSM, claimed or queued.
  status  a job's state and counts (GET /associations/{jobId}); --wait
          follows it until it finishes.
  result  a job's outcomes, every page (NextToken), as one result.
  local   run the engine in this process against the endpoints of the
          environment (AWS, or AWS_ENDPOINT_URL_SSM/_DYNAMODB for the SSM
          emulator and DynamoDB Local), configured as the function is:
          DEDUPE_TABLE (required), BATCH_SIZE, CALLS_PER_SECOND,
          ALLOWED_DOCUMENTS, … (README, Configuration). No jobs.

Options:
  --function NAME    invoke this function (name, ARN or alias ARN) through
                     the Lambda Invoke API [$BATCHER_FUNCTION]. Requests
                     are direct invocations; status requests are API
                     Gateway REST events of GET /associations/{jobId}.
  --api URL          call the API instead: its RestApiUrl or HttpApiUrl
                     output (or stage URL), SigV4-signed for execute-api
                     [$BATCHER_API_URL]
  --endpoint-url URL the Lambda endpoint (default: AWS_ENDPOINT_URL_LAMBDA,
                     else AWS's; the Runtime Interface Emulator: its
                     http://host:port, with --function function)
  --region REGION    AWS region (default: AWS_REGION, the profile's)
  --profile NAME     shared config profile (default: AWS_PROFILE)
  --output FORMAT    table (default: counts per outcome, then one line per
                     node that did not succeed) or json (the answer as the
                     function returned it)
  --wait             follow a job until it finishes: a progress bar on a
                     terminal (stderr), plain lines otherwise; a job the
                     reaper marked STALLED stops it with exit status 1
  --interval D       how often --wait asks (default 2s)
  --no-progress      --wait without the bar or lines
  --page-size N      status pages of N items (1-100; default the function's)
  --timeout D        local: the run's budget (default 15m)

Exit status: 0 when nothing is Failed or Unprocessed; 1 when something is
(or the function answered IncompleteError, or a plan has a "fail", or
--wait found the job STALLED); 252 usage; 253 configuration; 254 the
function or the API answered an error; 255 any other error.
`

// Env is the process as the command sees it.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	Getenv         func(string) string
	Now            func() time.Time
}

type options struct {
	region, profile, output, function, api, endpointURL string
	wait, noProgress                                    bool
	interval, timeout                                   time.Duration
	pageSize                                            int
	help                                                bool
}

// usageError is a command line the command cannot run.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries the exit status of a failure already reported.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

// Run runs the command line args (without the program's name) and returns
// the exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Stdin == nil {
		env.Stdin = os.Stdin
	}
	code, err := run(ctx, args, env)
	if err != nil {
		var ue usageError
		var ee exitError
		switch {
		case errors.As(err, &ue):
			fmt.Fprintf(env.Stderr, "batcher: %s\nSee 'batcher --help'.\n", ue.msg)
			return ExitUsage
		case errors.As(err, &ee):
			fmt.Fprintf(env.Stderr, "batcher: %s\n", ee.err)
			return ee.code
		default:
			fmt.Fprintf(env.Stderr, "batcher: %s\n", err)
			return ExitError
		}
	}
	return code
}

// parse reads flags and positional arguments in any order, as the AWS CLI
// does.
func parse(args []string, getenv func(string) string) (options, []string, error) {
	o := options{function: getenv("BATCHER_FUNCTION"), api: getenv("BATCHER_API_URL")}
	fs := flag.NewFlagSet("batcher", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.region, "region", "", "")
	fs.StringVar(&o.profile, "profile", "", "")
	fs.StringVar(&o.output, "output", "table", "")
	fs.StringVar(&o.function, "function", o.function, "")
	fs.StringVar(&o.api, "api", o.api, "")
	fs.StringVar(&o.endpointURL, "endpoint-url", "", "")
	fs.BoolVar(&o.wait, "wait", false, "")
	fs.BoolVar(&o.noProgress, "no-progress", false, "")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "")
	fs.IntVar(&o.pageSize, "page-size", 0, "")
	fs.BoolVar(&o.help, "help", false, "")
	fs.BoolVar(&o.help, "h", false, "")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, nil, usageError{err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch o.output {
	case "table", "json":
	default:
		return o, nil, usageError{fmt.Sprintf("--output %q: want table or json", o.output)}
	}
	if o.pageSize < 0 || o.pageSize > 100 {
		return o, nil, usageError{"--page-size: from 1 to 100"}
	}
	if o.interval <= 0 {
		return o, nil, usageError{"--interval: must be positive"}
	}
	return o, pos, nil
}

func run(ctx context.Context, args []string, env Env) (int, error) {
	o, pos, err := parse(args, env.Getenv)
	if err != nil {
		return 0, err
	}
	if o.help || len(pos) == 0 || pos[0] == "help" {
		if len(pos) == 0 && !o.help {
			fmt.Fprint(env.Stderr, Usage)
			return ExitUsage, nil
		}
		fmt.Fprint(env.Stdout, Usage)
		return ExitOK, nil
	}
	cmd, rest := pos[0], pos[1:]
	if len(rest) != 1 {
		what := "FILE"
		if cmd == "status" || cmd == "result" {
			what = "JOBID"
		}
		return 0, usageError{fmt.Sprintf("%s takes one %s", cmd, what)}
	}
	c := &command{o: o, env: env}
	switch cmd {
	case "submit", "plan":
		b, err := c.remote(ctx)
		if err != nil {
			return 0, err
		}
		body, err := c.readFile(rest[0])
		if err != nil {
			return 0, err
		}
		if cmd == "plan" {
			if body, err = withDryRun(body); err != nil {
				return 0, err
			}
		}
		return c.submit(ctx, b, body)
	case "local":
		body, err := c.readFile(rest[0])
		if err != nil {
			return 0, err
		}
		b, err := c.local(ctx)
		if err != nil {
			return 0, err
		}
		return c.submit(ctx, b, body)
	case "status", "result":
		b, err := c.remote(ctx)
		if err != nil {
			return 0, err
		}
		if cmd == "status" {
			return c.status(ctx, b, rest[0])
		}
		return c.result(ctx, b, rest[0])
	default:
		return 0, usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

type command struct {
	o   options
	env Env
}

func (c *command) readFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(c.env.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, exitError{ExitError, err}
	}
	return b, nil
}

// withDryRun sets "DryRun": true in a request.
func withDryRun(body []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, exitError{ExitError, errors.New("the request file is not a JSON object")}
	}
	m["DryRun"] = json.RawMessage("true")
	return json.Marshal(m)
}

func (c *command) awsConfig(ctx context.Context) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if c.o.region != "" {
		opts = append(opts, awsconfig.WithRegion(c.o.region))
	}
	if c.o.profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(c.o.profile))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, exitError{ExitConfig, fmt.Errorf("AWS configuration: %w", err)}
	}
	return cfg, nil
}

// remote is the backend --function or --api names.
func (c *command) remote(ctx context.Context) (Backend, error) {
	switch {
	case c.o.function != "" && c.o.api != "":
		return nil, usageError{"--function and --api: give one"}
	case c.o.function == "" && c.o.api == "":
		return nil, usageError{"say where the function is: --function NAME or --api URL"}
	}
	cfg, err := c.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	if c.o.api != "" {
		if cfg.Region == "" {
			return nil, exitError{ExitConfig, errors.New("no region to sign for: --region or AWS_REGION")}
		}
		return APIBackend{URL: c.o.api, Region: cfg.Region, Credentials: cfg.Credentials,
			HTTP: &http.Client{Timeout: 60 * time.Second}}, nil
	}
	client := lambda.NewFromConfig(cfg, func(lo *lambda.Options) {
		if c.o.endpointURL != "" {
			lo.BaseEndpoint = aws.String(c.o.endpointURL)
		}
	})
	return FunctionBackend{Client: client, Function: c.o.function}, nil
}

// local builds the engine as the function does (internal/config,
// internal/wiring), from this process's environment.
func (c *command) local(ctx context.Context) (Backend, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, exitError{ExitConfig, err}
	}
	awsCfg, err := c.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	if c.env.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" {
		// DynamoDB Local's responses fail the SDK's CRC32 check, which the
		// SDK reports as a warning on every call; real DynamoDB's do not.
		awsCfg.Logger = logging.Nop{}
	}
	log := slog.New(slog.NewTextHandler(c.env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	deps := wiring.Deps{Config: cfg, AWS: awsCfg}
	return LocalBackend{Engine: deps.Engine(cfg.CallsPerSecond, log), MaxEntries: cfg.MaxEntries, Budget: c.o.timeout, Notes: c.env.Stderr}, nil
}

func (c *command) json() bool { return c.o.output == "json" }

// failed reports an error answer, and its exit status.
func (c *command) failed(a Answer) int {
	if c.json() {
		c.env.Stdout.Write(append(a.Body, '\n'))
	}
	WriteError(c.env.Stderr, a)
	if a.ErrorType == "IncompleteError" {
		return ExitIncomplete
	}
	return ExitRefused
}

func exitFor(c jobs.Counts) int {
	if c.Failed > 0 || c.Unprocessed > 0 {
		return ExitIncomplete
	}
	return ExitOK
}

func (c *command) submit(ctx context.Context, b Backend, body []byte) (int, error) {
	a, err := b.Submit(ctx, body)
	if err != nil {
		return 0, err
	}
	if a.ErrorType != "" || a.Status < 200 || a.Status > 299 {
		return c.failed(a), nil
	}
	if a.Status == http.StatusAccepted {
		var acc jobs.Accepted
		if err := json.Unmarshal(a.Body, &acc); err != nil || acc.JobID == "" {
			return 0, fmt.Errorf("a 202 answer without a job: %.200s", a.Body)
		}
		if c.o.wait {
			if _, code, err := c.follow(ctx, b, acc.JobID); err != nil || code != ExitOK {
				return code, err
			}
			return c.outcomes(ctx, b, acc.JobID)
		}
		if c.json() {
			c.env.Stdout.Write(append(a.Body, '\n'))
		} else {
			WriteAccepted(c.env.Stdout, acc)
			fmt.Fprintf(c.env.Stdout, "follow it: batcher status %s --wait%s\n", acc.JobID, c.where())
		}
		return exitFor(acc.Counts), nil
	}
	var probe struct {
		DryRun  bool            `json:"DryRun"`
		Actions json.RawMessage `json:"Actions"`
	}
	_ = json.Unmarshal(a.Body, &probe)
	if probe.DryRun && probe.Actions != nil {
		var p report.Plan
		if err := json.Unmarshal(a.Body, &p); err != nil {
			return 0, fmt.Errorf("read the plan: %w", err)
		}
		if c.json() {
			c.env.Stdout.Write(append(a.Body, '\n'))
		} else {
			WritePlan(c.env.Stdout, p)
		}
		if p.Summary.Fail > 0 {
			return ExitIncomplete, nil
		}
		return ExitOK, nil
	}
	var r report.Result
	if err := json.Unmarshal(a.Body, &r); err != nil {
		return 0, fmt.Errorf("read the result: %w", err)
	}
	if c.json() {
		c.env.Stdout.Write(append(a.Body, '\n'))
	} else {
		WriteResult(c.env.Stdout, r, nil)
	}
	s := r.Summary
	return exitFor(jobs.Counts{Failed: s.Failed, Unprocessed: s.Unprocessed}), nil
}

// where repeats --function or --api for a follow-up command.
func (c *command) where() string {
	if c.o.api != "" {
		return " --api " + c.o.api
	}
	if c.o.function != "" {
		return " --function " + c.o.function
	}
	return ""
}

// statusPage asks for one page; a non-200 answer is reported and ends the
// command with its exit status.
func (c *command) statusPage(ctx context.Context, b Backend, jobID, token string, pageSize int) (JobStatus, Answer, int, error) {
	a, err := b.Status(ctx, jobID, token, pageSize)
	if err != nil {
		return JobStatus{}, a, 0, err
	}
	if a.ErrorType != "" || a.Status != http.StatusOK {
		return JobStatus{}, a, c.failed(a), nil
	}
	var s JobStatus
	if err := json.Unmarshal(a.Body, &s); err != nil {
		return JobStatus{}, a, 0, fmt.Errorf("read the job's status: %w", err)
	}
	return s, a, ExitOK, nil
}

// follow polls the job until it finishes, showing its progress on stderr.
// A job the reaper marked STALLED ends it with ExitIncomplete: it made no
// progress for JOB_STALL_AFTER (hours), so waiting on would most likely
// wait forever, and the operator is the one to look.
func (c *command) follow(ctx context.Context, b Backend, jobID string) (JobStatus, int, error) {
	s, code, err := c.poll(ctx, b, jobID)
	if err == nil && code == ExitOK && s.State == jobs.StateStalled {
		fmt.Fprintf(c.env.Stderr, "job %s is STALLED: it made no progress for the reaper's JOB_STALL_AFTER; stopped following it. "+
			"It still finishes if its chunks run again (see the jobs queue and WorkerFunction's logs): batcher status %s --wait%s\n",
			jobID, jobID, c.where())
		return s, ExitIncomplete, nil
	}
	return s, code, err
}

// poll asks for the job's state every --interval, showing its progress,
// until it is final or STALLED.
func (c *command) poll(ctx context.Context, b Backend, jobID string) (JobStatus, int, error) {
	p := NewProgress(c.env.Stderr, c.o.noProgress, c.env.Now)
	defer p.Close()
	for {
		s, _, code, err := c.statusPage(ctx, b, jobID, "", 1)
		if err != nil || code != ExitOK {
			return s, code, err
		}
		p.Update(s)
		if s.Finished() || s.State == jobs.StateStalled {
			return s, ExitOK, nil
		}
		select {
		case <-ctx.Done():
			return s, 0, exitError{ExitError, fmt.Errorf("stopped following job %s (%s): %w", jobID, s.State, ctx.Err())}
		case <-time.After(c.o.interval):
		}
	}
}

func (c *command) status(ctx context.Context, b Backend, jobID string) (int, error) {
	if c.o.wait {
		if _, code, err := c.follow(ctx, b, jobID); err != nil || code != ExitOK {
			return code, err
		}
	}
	s, a, code, err := c.statusPage(ctx, b, jobID, "", c.o.pageSize)
	if err != nil || code != ExitOK {
		return code, err
	}
	if c.json() {
		c.env.Stdout.Write(append(a.Body, '\n'))
	} else {
		WriteStatus(c.env.Stdout, s)
	}
	return exitFor(s.Counts), nil
}

// result is batcher result: the job followed when --wait, then its
// outcomes.
func (c *command) result(ctx context.Context, b Backend, jobID string) (int, error) {
	if c.o.wait {
		if _, code, err := c.follow(ctx, b, jobID); err != nil || code != ExitOK {
			return code, err
		}
	}
	return c.outcomes(ctx, b, jobID)
}

// outcomes reads every page of the job's outcomes and prints them as one
// result.
func (c *command) outcomes(ctx context.Context, b Backend, jobID string) (int, error) {
	all := report.New()
	var (
		last  JobStatus
		token string
	)
	for page := 0; ; page++ {
		s, _, code, err := c.statusPage(ctx, b, jobID, token, c.o.pageSize)
		if err != nil || code != ExitOK {
			return code, err
		}
		merge(&all, s.Outcomes)
		last = s
		if s.NextToken == "" {
			break
		}
		if page > 1_000_000 {
			return 0, errors.New("too many pages")
		}
		token = s.NextToken
	}
	all.Tally()
	all.Summary.Requested = last.Counts.Requested
	last.Outcomes, last.NextToken = all, ""
	if !last.Finished() {
		fmt.Fprintf(c.env.Stderr, "note: job %s is %s: these are the outcomes so far\n", jobID, last.State)
	}
	if c.json() {
		out, err := json.Marshal(last)
		if err != nil {
			return 0, err
		}
		c.env.Stdout.Write(append(out, '\n'))
	} else {
		fmt.Fprintf(c.env.Stdout, "job %s %s, chunks %d/%d\n\n", last.JobID, last.State, last.ChunksDone, last.Chunks)
		WriteResult(c.env.Stdout, all, &last.Counts)
	}
	return exitFor(last.Counts), nil
}

func merge(into *report.Result, r report.Result) {
	into.Successful = append(into.Successful, r.Successful...)
	into.Updated = append(into.Updated, r.Updated...)
	into.Failed = append(into.Failed, r.Failed...)
	into.Deduplicated = append(into.Deduplicated, r.Deduplicated...)
	into.Unprocessed = append(into.Unprocessed, r.Unprocessed...)
	into.Summary.Calls += r.Summary.Calls
	into.Summary.Retries += r.Summary.Retries
	into.Summary.Throttles += r.Summary.Throttles
	into.Summary.Reads += r.Summary.Reads
}
