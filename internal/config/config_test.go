package config

import (
	"strings"
	"testing"
	"time"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := FromLookup(lookup(map[string]string{"DEDUPE_TABLE": "claims"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{DedupeTable: "claims", BatchSize: 10, MaxConcurrency: 4, CallsPerSecond: 5, MaxAttempts: 5,
		DedupeTTL: 24 * time.Hour, MaxEntries: 10000, APITimeout: 25 * time.Second, ClaimLease: time.Minute, ReconcileDelay: 5 * time.Second,
		ChunkSize: 500, JobTTL: 168 * time.Hour, WorkerMaxConcurrency: 2, MaxReceives: 5}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
}

func TestValues(t *testing.T) {
	c, err := FromLookup(lookup(map[string]string{"DEDUPE_TABLE": "t", "BATCH_SIZE": "50", "CALLS_PER_SECOND": "0",
		"MAX_CONCURRENCY": "8", "MAX_ATTEMPTS": "2", "DEDUPE_TTL": "90m", "MAX_ENTRIES": "5", "API_TIMEOUT": "10s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BatchSize != 50 || c.CallsPerSecond != 0 || c.MaxConcurrency != 8 || c.MaxAttempts != 2 ||
		c.DedupeTTL != 90*time.Minute || c.MaxEntries != 5 || c.APITimeout != 10*time.Second {
		t.Fatalf("got %+v", c)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "DEDUPE_TABLE: required"},
		{map[string]string{"DEDUPE_TABLE": "t", "BATCH_SIZE": "ten"}, `BATCH_SIZE: "ten" is not an integer`},
		{map[string]string{"DEDUPE_TABLE": "t", "BATCH_SIZE": "0"}, "BATCH_SIZE: 0 out of range"},
		{map[string]string{"DEDUPE_TABLE": "t", "MAX_CONCURRENCY": "-1"}, "MAX_CONCURRENCY: -1 out of range"},
		{map[string]string{"DEDUPE_TABLE": "t", "CALLS_PER_SECOND": "fast"}, `CALLS_PER_SECOND: "fast" is not a number`},
		{map[string]string{"DEDUPE_TABLE": "t", "CALLS_PER_SECOND": "-2"}, "CALLS_PER_SECOND: -2 out of range"},
		{map[string]string{"DEDUPE_TABLE": "t", "MAX_ATTEMPTS": "0"}, "MAX_ATTEMPTS: 0 out of range"},
		{map[string]string{"DEDUPE_TABLE": "t", "DEDUPE_TTL": "1 day"}, `DEDUPE_TTL: "1 day" is not a duration`},
		{map[string]string{"DEDUPE_TABLE": "t", "DEDUPE_TTL": "1s"}, "DEDUPE_TTL: 1s out of range"},
		{map[string]string{"DEDUPE_TABLE": "t", "MAX_ENTRIES": "0"}, "MAX_ENTRIES: 0 out of range"},
		{map[string]string{"DEDUPE_TABLE": "t", "API_TIMEOUT": "25"}, `API_TIMEOUT: "25" is not a duration`},
		{map[string]string{"DEDUPE_TABLE": "t", "JOBS_TABLE": "jobs"}, "JOBS_TABLE and JOBS_QUEUE_URL: set both"},
		{map[string]string{"DEDUPE_TABLE": "t", "CHUNK_SIZE": "0"}, "CHUNK_SIZE: 0 out of range"},
		{map[string]string{"DEDUPE_TABLE": "t", "WORKER_MAX_CONCURRENCY": "1"}, "WORKER_MAX_CONCURRENCY: 1 out of range"},
		{map[string]string{"DEDUPE_TABLE": "t", "ACCOUNT_CALLS_PER_SECOND": "x"}, `ACCOUNT_CALLS_PER_SECOND: "x" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := FromLookup(lookup(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEveryVariableHasADoc(t *testing.T) {
	for _, v := range Variables {
		if v.Doc == "" || strings.ToUpper(v.Name) != v.Name {
			t.Errorf("variable %+v", v)
		}
	}
}

func TestWorkerShareOfTheAccountRate(t *testing.T) {
	c, err := FromLookup(lookup(map[string]string{"DEDUPE_TABLE": "t", "ACCOUNT_CALLS_PER_SECOND": "20", "WORKER_MAX_CONCURRENCY": "4"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.WorkerCallsPerSecond(); got != 5 {
		t.Errorf("WorkerCallsPerSecond = %v, want 20/4", got)
	}
	c.AccountCallsPerSecond = 0
	if got := c.WorkerCallsPerSecond(); got != c.CallsPerSecond {
		t.Errorf("without an account budget each worker uses CALLS_PER_SECOND, got %v", got)
	}
	if c.AsyncEnabled() {
		t.Error("async on without a jobs table")
	}
}

func TestReaper(t *testing.T) {
	c, err := ReaperFromLookup(lookup(map[string]string{"JOBS_TABLE": "jobs"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Reaper{JobsTable: "jobs", JobTTL: 168 * time.Hour, StallAfter: 6 * time.Hour}); c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	for env, msg := range map[string]map[string]string{
		"JOBS_TABLE: required":             {},
		"JOB_STALL_AFTER: 1s out of range": {"JOBS_TABLE": "j", "JOB_STALL_AFTER": "1s"},
		`JOB_STALL_AFTER: "soon" is not`:   {"JOBS_TABLE": "j", "JOB_STALL_AFTER": "soon"},
	} {
		if _, err := ReaperFromLookup(lookup(msg)); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%v: error %v, want %q", msg, err, env)
		}
	}
	for _, v := range ReaperVariables {
		if v.Doc == "" {
			t.Errorf("variable %+v", v)
		}
	}
}
