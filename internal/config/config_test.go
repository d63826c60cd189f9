package config

import (
	"reflect"
	"slices"
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
	want := Config{DedupeTable: "claims", BatchSize: 10, MaxConcurrency: 4, CallsPerSecond: 5, CallsPerSecondStart: 5, MaxCallsPerSecond: 50, MaxAttempts: 5,
		DedupeTTL: 24 * time.Hour, MaxEntries: 10000, APITimeout: 25 * time.Second, ClaimLease: time.Minute, ReconcileDelay: 5 * time.Second,
		ChunkSize: 2000, JobTTL: 168 * time.Hour, WorkerMaxConcurrency: 2, MaxReceives: 5,
		AllowedDocuments:  []string{"AWS-UpdateSSMAgent", "AWS-GatherSoftwareInventory", "AWS-RunPatchBaseline", "AWS-ConfigureAWSPackage"},
		AllowedTargetKeys: []string{"InstanceIds"}}
	if !reflect.DeepEqual(c, want) {
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
		{map[string]string{"DEDUPE_TABLE": "t", "CALLS_PER_SECOND": "fast"}, `CALLS_PER_SECOND: "fast" is neither a number nor auto`},
		{map[string]string{"DEDUPE_TABLE": "t", "CALLS_PER_SECOND": "Auto"}, `CALLS_PER_SECOND: "Auto" is neither a number nor auto`},
		{map[string]string{"DEDUPE_TABLE": "t", "CALLS_PER_SECOND_START": "0"}, "CALLS_PER_SECOND_START: 0 out of range, want 0.2 to 10000"},
		{map[string]string{"DEDUPE_TABLE": "t", "MAX_CALLS_PER_SECOND": "x"}, `MAX_CALLS_PER_SECOND: "x" is not a number`},
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
		{map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_DOCUMENTS": "AWS-RunPatchBaseline, MyOrg-*"}, `ALLOWED_DOCUMENTS: " MyOrg-*" is not a document name`},
		{map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_DOCUMENTS": "AWS-*-Patch"}, `ALLOWED_DOCUMENTS: "AWS-*-Patch" is not`},
		{map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_DOCUMENTS": "AWS-?"}, `ALLOWED_DOCUMENTS: "AWS-?" is not`},
		{map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_DOCUMENTS": "a,,b"}, `ALLOWED_DOCUMENTS: "" is not`},
		{map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_DOCUMENTS": "d0,d1,d2,d3,d4,d5,d6,d7,d8,d9,d10"}, "ALLOWED_DOCUMENTS: 11 items, at most 10"},
		{map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_TARGET_KEYS": "InstanceIds,"}, `ALLOWED_TARGET_KEYS: "" is not a Targets key`},
		{map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_TARGET_KEYS": "tag:*Env"}, `ALLOWED_TARGET_KEYS: "tag:*Env" is not`},
		{map[string]string{"DEDUPE_TABLE": "t", "JOB_READER_PRINCIPAL_ARNS": "Auditor"}, `JOB_READER_PRINCIPAL_ARNS: "Auditor" is not an IAM principal ARN`},
		{map[string]string{"DEDUPE_TABLE": "t", "JOB_READER_PRINCIPAL_ARNS": "arn:aws:iam::123456789012:role/*"}, `JOB_READER_PRINCIPAL_ARNS: "arn:aws:iam::123456789012:role/*" is not`},
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
	for _, v := range append(slices.Clone(Variables), AssociateVariables...) {
		if v.Doc == "" || strings.ToUpper(v.Name) != v.Name {
			t.Errorf("variable %+v", v)
		}
	}
}

func TestAutoRate(t *testing.T) {
	c, err := FromLookup(lookup(map[string]string{"DEDUPE_TABLE": "t", "CALLS_PER_SECOND": "auto"}))
	if err != nil || !c.AutoRate || c.CallsPerSecondStart != 5 || c.MaxCallsPerSecond != 50 {
		t.Errorf("CALLS_PER_SECOND=auto: %+v, %v; want auto from 5 up to 50", c, err)
	}
	c, err = FromLookup(lookup(map[string]string{"DEDUPE_TABLE": "t", "CALLS_PER_SECOND": "12"}))
	if err != nil || c.AutoRate || c.CallsPerSecond != 12 {
		t.Errorf("CALLS_PER_SECOND=12: %+v, %v; want a fixed 12", c, err)
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
	if want := (Reaper{JobsTable: "jobs", JobTTL: 168 * time.Hour, StallAfter: 6 * time.Hour, MaxRunning: 24 * time.Hour}); c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	for env, msg := range map[string]map[string]string{
		"JOBS_TABLE: required":                    {},
		"JOB_STALL_AFTER: 1s out of range":        {"JOBS_TABLE": "j", "JOB_STALL_AFTER": "1s"},
		`JOB_STALL_AFTER: "soon" is not`:          {"JOBS_TABLE": "j", "JOB_STALL_AFTER": "soon"},
		"JOB_MAX_RUNNING: 30s out of range":       {"JOBS_TABLE": "j", "JOB_MAX_RUNNING": "30s"},
		"JOB_MAX_RUNNING: 9000h0m0s out of range": {"JOBS_TABLE": "j", "JOB_MAX_RUNNING": "9000h"},
		`JOB_MAX_RUNNING: "a day" is not`:         {"JOBS_TABLE": "j", "JOB_MAX_RUNNING": "a day"},
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

// TestAllowLists: ALLOWED_DOCUMENTS, ALLOWED_TARGET_KEYS and
// JOB_READER_PRINCIPAL_ARNS as a deployer writes them.
func TestAllowLists(t *testing.T) {
	ten := "d0,d1,d2,d3,d4,d5,d6,d7,d8,MyOrg-*"
	c, err := FromLookup(lookup(map[string]string{"DEDUPE_TABLE": "t",
		"ALLOWED_DOCUMENTS":         ten,
		"ALLOWED_TARGET_KEYS":       "InstanceIds,tag:*,resource-groups:Name,tag:Cost Center,TargetMaps,TargetLocations",
		"JOB_READER_PRINCIPAL_ARNS": "arn:aws:iam::123456789012:role/Auditor,arn:aws-us-gov:iam::123456789012:user/ops/alice,arn:aws:sts::123456789012:assumed-role/Ops/bob@example.com",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Split(ten, ","); !slices.Equal(c.AllowedDocuments, want) {
		t.Errorf("AllowedDocuments = %q, want %q", c.AllowedDocuments, want)
	}
	if want := []string{"InstanceIds", "tag:*", "resource-groups:Name", "tag:Cost Center", "TargetMaps", "TargetLocations"}; !slices.Equal(c.AllowedTargetKeys, want) {
		t.Errorf("AllowedTargetKeys = %q, want %q", c.AllowedTargetKeys, want)
	}
	if len(c.JobReaderPrincipalARNs) != 3 || c.JobReaderPrincipalARNs[0] != "arn:aws:iam::123456789012:role/Auditor" {
		t.Errorf("JobReaderPrincipalARNs = %q", c.JobReaderPrincipalARNs)
	}
	// "*" alone allows every document and key; it is a deployer's choice.
	c, err = FromLookup(lookup(map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_DOCUMENTS": "*", "ALLOWED_TARGET_KEYS": "*"}))
	if err != nil || !slices.Equal(c.AllowedDocuments, []string{"*"}) || !slices.Equal(c.AllowedTargetKeys, []string{"*"}) {
		t.Errorf("* alone: %q %q, %v", c.AllowedDocuments, c.AllowedTargetKeys, err)
	}
	// The documents' bound is the template's number of IAM slots.
	if MaxAllowedDocuments != 10 {
		t.Errorf("MaxAllowedDocuments = %d; template.yaml has 10 slots", MaxAllowedDocuments)
	}
}

// TestEmptyAllowListsTakeTheDefaults: a variable set empty (as a template
// may) is the default, never "allow nothing" nor "allow everything".
func TestEmptyAllowListsTakeTheDefaults(t *testing.T) {
	c, err := FromLookup(lookup(map[string]string{"DEDUPE_TABLE": "t", "ALLOWED_DOCUMENTS": "", "ALLOWED_TARGET_KEYS": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.AllowedDocuments, ","); got != DefaultAllowedDocuments {
		t.Errorf("ALLOWED_DOCUMENTS empty: %q, want the default %q", got, DefaultAllowedDocuments)
	}
	if got := strings.Join(c.AllowedTargetKeys, ","); got != DefaultAllowedTargetKeys {
		t.Errorf("ALLOWED_TARGET_KEYS empty: %q, want the default %q", got, DefaultAllowedTargetKeys)
	}
	for _, d := range c.AllowedDocuments {
		if strings.Contains(d, "*") || strings.Contains(d, "RunShellScript") || strings.Contains(d, "RunPowerShellScript") {
			t.Errorf("default document %q: the default must name documents that run no caller-supplied commands", d)
		}
	}
}
