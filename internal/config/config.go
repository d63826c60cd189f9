// Package config reads the function's settings from its environment. Every
// setting has a default that matches template.yaml's parameter of the same
// name; a value that cannot be parsed, or is out of range, stops the function
// at start with an error naming the variable.
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the function's configuration.
type Config struct {
	// DedupeTable is the DynamoDB table that holds claims (DEDUPE_TABLE).
	DedupeTable string
	// BatchSize is the number of entries per CreateAssociationBatch call
	// (BATCH_SIZE). AWS publishes no maximum; 10 is a conservative default.
	BatchSize int
	// MaxConcurrency bounds the calls in flight (MAX_CONCURRENCY).
	MaxConcurrency int
	// CallsPerSecond bounds the calls started per second; 0 means no bound
	// (CALLS_PER_SECOND). AWS publishes no rate for this API.
	CallsPerSecond float64
	// AutoRate: CALLS_PER_SECOND=auto, the rate is found at run time from
	// throttles, from CallsPerSecondStart up to MaxCallsPerSecond
	// (CALLS_PER_SECOND_START, MAX_CALLS_PER_SECOND), remembered in the
	// dedupe table and shared by the invocations running at once.
	AutoRate                               bool
	CallsPerSecondStart, MaxCallsPerSecond float64
	// MaxAttempts bounds how often one entry is sent (MAX_ATTEMPTS).
	MaxAttempts int
	// DedupeTTL is how long an association is remembered (DEDUPE_TTL).
	DedupeTTL time.Duration
	// MaxEntries bounds the entries of one request (MAX_ENTRIES).
	MaxEntries int
	// APITimeout is the budget of a request that came through API Gateway,
	// whose integration gives up long before the Lambda does (API_TIMEOUT).
	APITimeout time.Duration
	// ClaimLease is how long an invocation's claims stay its own without a
	// heartbeat; a crashed invocation's are taken over after it
	// (CLAIM_LEASE).
	ClaimLease time.Duration
	// ReconcileDelay is how long after a lost answer SSM is read back for
	// the entries in doubt (RECONCILE_DELAY).
	ReconcileDelay time.Duration

	// AllowedDocuments are the SSM documents entries may name: names, or
	// prefixes ending in "*"; "*" alone allows every document
	// (ALLOWED_DOCUMENTS). At most MaxAllowedDocuments: the template grants
	// IAM on each, in that many slots.
	AllowedDocuments []string
	// AllowedTargetKeys are the Targets keys entries may use, with the
	// pseudo keys TargetMaps and TargetLocations; names or prefixes ending
	// in "*" (ALLOWED_TARGET_KEYS).
	AllowedTargetKeys []string
	// JobReaderPrincipalARNs are the IAM principals that may read every job,
	// not only their own (JOB_READER_PRINCIPAL_ARNS; associate function
	// only).
	JobReaderPrincipalARNs []string

	// Asynchronous jobs: on when JobsTable and JobsQueueURL are both set.
	JobsTable    string        // JOBS_TABLE
	JobsQueueURL string        // JOBS_QUEUE_URL
	EventBusName string        // EVENT_BUS_NAME: where job completion events go; empty: none
	ChunkSize    int           // CHUNK_SIZE: entries per queue message
	JobTTL       time.Duration // JOB_TTL: how long a job's record is kept

	// Worker only.
	AccountCallsPerSecond float64 // ACCOUNT_CALLS_PER_SECOND: SSM call budget shared by all workers; 0: CALLS_PER_SECOND per worker
	WorkerMaxConcurrency  int     // WORKER_MAX_CONCURRENCY: the queue event source's MaximumConcurrency
	MaxReceives           int     // MAX_RECEIVES: the queue's maxReceiveCount
}

// AsyncEnabled says whether asynchronous jobs are configured.
func (c Config) AsyncEnabled() bool { return c.JobsTable != "" && c.JobsQueueURL != "" }

// WorkerCallsPerSecond is one worker's share of the account's SSM call
// budget: the event source never runs more than WorkerMaxConcurrency
// workers, so their calls together stay within ACCOUNT_CALLS_PER_SECOND.
// With AutoRate the workers share the rate found instead (internal/pace).
func (c Config) WorkerCallsPerSecond() float64 {
	if c.AccountCallsPerSecond <= 0 {
		return c.CallsPerSecond
	}
	return c.AccountCallsPerSecond / float64(c.WorkerMaxConcurrency)
}

// Variable describes one environment variable the function reads.
type Variable struct {
	Name    string
	Default string
	Doc     string
}

// Variables lists every variable Load reads, with its default. The README and
// template.yaml are checked against this list.
var Variables = []Variable{
	{"DEDUPE_TABLE", "", "DynamoDB table holding dedupe claims (required)"},
	{"BATCH_SIZE", "10", "entries per CreateAssociationBatch call (AWS documents no maximum)"},
	{"MAX_CONCURRENCY", "4", "CreateAssociationBatch calls in flight at once"},
	{"CALLS_PER_SECOND", "5", "CreateAssociationBatch calls started per second; 0 = unlimited (AWS documents no rate); auto = found from throttles, remembered and shared"},
	{"CALLS_PER_SECOND_START", "5", "with CALLS_PER_SECOND=auto: the rate of a first invocation, before any rate is remembered (above the maximum: the maximum)"},
	{"MAX_CALLS_PER_SECOND", "50", "with CALLS_PER_SECOND=auto: the rate never exceeded, by all invocations together"},
	{"MAX_ATTEMPTS", "5", "times one entry is sent before it is reported Failed"},
	{"DEDUPE_TTL", "24h", "how long an associated (document, node) is remembered"},
	{"MAX_ENTRIES", "10000", "entries accepted in one request"},
	{"API_TIMEOUT", "25s", "working budget for requests that came through API Gateway"},
	{"CLAIM_LEASE", "60s", "a crashed invocation's claims are taken over after this long without its heartbeat"},
	{"RECONCILE_DELAY", "5s", "wait after a lost answer before SSM is read back for the entries in doubt"},
	{"JOBS_TABLE", "", "DynamoDB table of asynchronous jobs; with JOBS_QUEUE_URL, turns asynchronous jobs on"},
	{"JOBS_QUEUE_URL", "", "SQS queue of job chunks"},
	{"EVENT_BUS_NAME", "", "EventBridge bus for 'Association Job Completed' events; empty: none are sent"},
	{"CHUNK_SIZE", "2000", "entries per job chunk at most (one queue message, one worker run); a larger job is split into a multiple of WORKER_MAX_CONCURRENCY chunks of equal size"},
	{"WORKER_MAX_CONCURRENCY", "2", "workers at most (the SQS event source's MaximumConcurrency); a job of more than one chunk is split into a multiple of it"},
	{"JOB_TTL", "168h", "how long a job's status and outcomes are kept"},
	{"ALLOWED_DOCUMENTS", DefaultAllowedDocuments, "SSM documents entries may name: comma-separated names or prefixes ending in *, at most 10; * allows all"},
	{"ALLOWED_TARGET_KEYS", DefaultAllowedTargetKeys, "Targets keys entries may use (tag:*, resource-groups:Name, …, and TargetMaps, TargetLocations), comma-separated, names or prefixes ending in *"},
}

// DefaultAllowedDocuments are AWS-owned documents that run no
// caller-supplied commands: command documents (AWS-RunShellScript, …) must
// be listed by the deployer.
const DefaultAllowedDocuments = "AWS-UpdateSSMAgent,AWS-GatherSoftwareInventory,AWS-RunPatchBaseline,AWS-ConfigureAWSPackage"

// DefaultAllowedTargetKeys lets entries name nodes one by one: tags,
// resource groups, TargetMaps and TargetLocations, which can reach many
// nodes or other accounts, are opt-in.
const DefaultAllowedTargetKeys = "InstanceIds"

// MaxAllowedDocuments bounds ALLOWED_DOCUMENTS: template.yaml derives the
// IAM resources of the SSM actions from the same list, in this many slots
// (CloudFormation cannot map over a list).
const MaxAllowedDocuments = 10

// AssociateVariables are read by the associate function only, on top of
// Variables: the status route's readers.
var AssociateVariables = []Variable{
	{"JOB_READER_PRINCIPAL_ARNS", "", "IAM principal ARNs (comma-separated) that may read every job; others read only their own"},
}

// WorkerVariables are read by the worker function on top of Variables.
var WorkerVariables = []Variable{
	{"ACCOUNT_CALLS_PER_SECOND", "0", "SSM calls per second shared by all workers; 0 = CALLS_PER_SECOND for each worker"},
	{"MAX_RECEIVES", "5", "receives of a chunk before it goes to the dead-letter queue (the queue's maxReceiveCount)"},
}

// ReaperVariables are what the reaper function reads: it only needs the
// jobs table and the bus (JOB_TTL keeps the outcomes it records as long as
// the others).
var ReaperVariables = []Variable{
	{"JOBS_TABLE", "", "DynamoDB table of asynchronous jobs (required)"},
	{"EVENT_BUS_NAME", "", "EventBridge bus for 'Association Job Completed' events; empty: none are sent"},
	{"JOB_TTL", "168h", "how long a job's status and outcomes are kept"},
	{"JOB_STALL_AFTER", "6h", "a job that is not finished and made no progress for this long is marked STALLED"},
	{"JOB_MAX_RUNNING", "24h", "a job not finished this long after it was submitted is counted overdue (metric JobsOverdue), however it progresses"},
}

// TracingVariables are read by all three functions' tracing
// (internal/tracing), which also honours the other standard OTEL_*
// variables; the template exposes the one a deployer must choose.
var TracingVariables = []Variable{
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "where traces go, over OTLP/HTTP (e.g. a collector layer's http://localhost:4318); empty: tracing off, at no cost"},
}

// Reaper is the reaper function's configuration.
type Reaper struct {
	JobsTable    string        // JOBS_TABLE
	EventBusName string        // EVENT_BUS_NAME
	JobTTL       time.Duration // JOB_TTL
	StallAfter   time.Duration // JOB_STALL_AFTER
	MaxRunning   time.Duration // JOB_MAX_RUNNING
}

// LoadReaper reads the reaper's configuration from the process environment.
func LoadReaper() (Reaper, error) { return ReaperFromLookup(os.LookupEnv) }

// ReaperFromLookup reads the reaper's configuration through lookup.
func ReaperFromLookup(lookup func(string) (string, bool)) (Reaper, error) {
	get := func(name string) string {
		if v, ok := lookup(name); ok && v != "" {
			return v
		}
		for _, v := range ReaperVariables {
			if v.Name == name {
				return v.Default
			}
		}
		return ""
	}
	var (
		c    Reaper
		errs []error
	)
	if c.JobsTable = get("JOBS_TABLE"); c.JobsTable == "" {
		errs = append(errs, errors.New("JOBS_TABLE: required, the name of the jobs DynamoDB table"))
	}
	c.EventBusName = get("EVENT_BUS_NAME")
	c.JobTTL = durationVar(get, "JOB_TTL", time.Hour, 366*24*time.Hour, &errs)
	c.StallAfter = durationVar(get, "JOB_STALL_AFTER", time.Minute, 366*24*time.Hour, &errs)
	c.MaxRunning = durationVar(get, "JOB_MAX_RUNNING", time.Minute, 366*24*time.Hour, &errs)
	if err := errors.Join(errs...); err != nil {
		return Reaper{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// Load reads the configuration from the process environment.
func Load() (Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup reads the configuration through lookup, so tests need not touch
// the process environment.
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) string {
		if v, ok := lookup(name); ok && v != "" {
			return v
		}
		for _, v := range append(append(Variables[:len(Variables):len(Variables)], WorkerVariables...), AssociateVariables...) {
			if v.Name == name {
				return v.Default
			}
		}
		return ""
	}
	var (
		c    Config
		errs []error
	)
	c.DedupeTable = get("DEDUPE_TABLE")
	if c.DedupeTable == "" {
		errs = append(errs, errors.New("DEDUPE_TABLE: required, the name of the dedupe DynamoDB table"))
	}
	c.BatchSize = intVar(get, "BATCH_SIZE", 1, 1000, &errs)
	c.MaxConcurrency = intVar(get, "MAX_CONCURRENCY", 1, 100, &errs)
	c.MaxAttempts = intVar(get, "MAX_ATTEMPTS", 1, 20, &errs)
	c.MaxEntries = intVar(get, "MAX_ENTRIES", 1, 1_000_000, &errs)
	c.DedupeTTL = durationVar(get, "DEDUPE_TTL", time.Minute, 366*24*time.Hour, &errs)
	c.APITimeout = durationVar(get, "API_TIMEOUT", time.Second, 15*time.Minute, &errs)
	c.ClaimLease = durationVar(get, "CLAIM_LEASE", 3*time.Second, 15*time.Minute, &errs)
	c.ReconcileDelay = durationVar(get, "RECONCILE_DELAY", 0, 5*time.Minute, &errs)

	if c.AutoRate = get("CALLS_PER_SECOND") == "auto"; !c.AutoRate {
		c.CallsPerSecond = rateVar(get, "CALLS_PER_SECOND", &errs)
	}
	c.CallsPerSecondStart = positiveRateVar(get, "CALLS_PER_SECOND_START", &errs)
	c.MaxCallsPerSecond = positiveRateVar(get, "MAX_CALLS_PER_SECOND", &errs)
	c.AccountCallsPerSecond = rateVar(get, "ACCOUNT_CALLS_PER_SECOND", &errs)
	c.JobsTable = get("JOBS_TABLE")
	c.JobsQueueURL = get("JOBS_QUEUE_URL")
	c.EventBusName = get("EVENT_BUS_NAME")
	if (c.JobsTable == "") != (c.JobsQueueURL == "") {
		errs = append(errs, errors.New("JOBS_TABLE and JOBS_QUEUE_URL: set both to turn asynchronous jobs on, or neither"))
	}
	c.ChunkSize = intVar(get, "CHUNK_SIZE", 1, 10000, &errs)
	c.JobTTL = durationVar(get, "JOB_TTL", time.Hour, 366*24*time.Hour, &errs)
	c.WorkerMaxConcurrency = intVar(get, "WORKER_MAX_CONCURRENCY", 2, 1000, &errs)
	c.MaxReceives = intVar(get, "MAX_RECEIVES", 1, 1000, &errs)
	c.AllowedDocuments = listVar(get, "ALLOWED_DOCUMENTS", MaxAllowedDocuments, documentPattern,
		"a document name of letters, digits, _ - and ., or a prefix of one ending in *, or * alone", &errs)
	c.AllowedTargetKeys = listVar(get, "ALLOWED_TARGET_KEYS", 0, targetKeyPattern,
		"a Targets key such as InstanceIds, tag:Env, resource-groups:Name, TargetMaps or TargetLocations, or a prefix of one ending in *", &errs)
	c.JobReaderPrincipalARNs = listVar(get, "JOB_READER_PRINCIPAL_ARNS", 0, principalPattern,
		"an IAM principal ARN such as arn:aws:iam::123456789012:role/Auditor", &errs)
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

func intVar(get func(string) string, name string, lo, hi int, errs *[]error) int {
	s := get(name)
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		*errs = append(*errs, fmt.Errorf("%s: %q is not an integer", name, s))
	case n < lo || n > hi:
		*errs = append(*errs, fmt.Errorf("%s: %d out of range, want %d to %d", name, n, lo, hi))
	}
	return n
}

func durationVar(get func(string) string, name string, lo, hi time.Duration, errs *[]error) time.Duration {
	s := get(name)
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		*errs = append(*errs, fmt.Errorf("%s: %q is not a duration such as 25s or 24h", name, s))
	case d < lo || d > hi:
		*errs = append(*errs, fmt.Errorf("%s: %s out of range, want %s to %s", name, d, lo, hi))
	}
	return d
}

func rateVar(get func(string) string, name string, errs *[]error) float64 {
	s := get(name)
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil && name == "CALLS_PER_SECOND":
		*errs = append(*errs, fmt.Errorf("%s: %q is neither a number nor auto", name, s))
	case err != nil:
		*errs = append(*errs, fmt.Errorf("%s: %q is not a number", name, s))
	case f < 0 || f > 10000:
		*errs = append(*errs, fmt.Errorf("%s: %v out of range, want 0 (unlimited) to 10000", name, f))
	}
	return f
}

// positiveRateVar reads a rate of calls per second above 0.
func positiveRateVar(get func(string) string, name string, errs *[]error) float64 {
	s := get(name)
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil:
		*errs = append(*errs, fmt.Errorf("%s: %q is not a number", name, s))
	case f < 0.2 || f > 10000:
		*errs = append(*errs, fmt.Errorf("%s: %v out of range, want 0.2 to 10000", name, f))
	}
	return f
}

var (
	// documentPattern: SSM document names (CreateDocument allows
	// [a-zA-Z0-9_\-.]{3,128}), or a prefix of one ending in "*", or "*".
	documentPattern = regexp.MustCompile(`^([a-zA-Z0-9_.-]{1,128}\*?|\*)$`)
	// targetKeyPattern: SSM's Target.Key (up to 163 characters: letters,
	// digits, spaces and _ . : / = + - @) without a leading or trailing
	// space, or a prefix of one ending in "*".
	targetKeyPattern = regexp.MustCompile(`^([\p{L}\p{N}_.:/=+@-]([\p{L}\p{N} _.:/=+@-]{0,161}[\p{L}\p{N}_.:/=+@-])?\*?|\*)$`)
	// principalPattern: an IAM or STS principal ARN, without wildcards.
	principalPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:(iam|sts)::[0-9]{12}:(root|(user|role|assumed-role|federated-user)/[A-Za-z0-9+=.@_/-]+)$`)
)

// listVar reads a comma-separated list. Each item must match pattern (what
// describes); max > 0 bounds the items. An empty value is an empty list.
func listVar(get func(string) string, name string, max int, pattern *regexp.Regexp, what string, errs *[]error) []string {
	s := get(name)
	if s == "" {
		return nil
	}
	items := strings.Split(s, ",")
	for _, it := range items {
		if !pattern.MatchString(it) {
			*errs = append(*errs, fmt.Errorf("%s: %q is not %s (comma-separated, no spaces around commas)", name, it, what))
			return nil
		}
	}
	if max > 0 && len(items) > max {
		*errs = append(*errs, fmt.Errorf("%s: %d items, at most %d (the template grants IAM on each, in %d slots)", name, len(items), max, max))
		return nil
	}
	return items
}
