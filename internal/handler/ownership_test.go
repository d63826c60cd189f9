package handler

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

// TestJobOwnership: a job is read by its submitter (any session of the
// same role, through either API) and by the job readers; any other caller
// is answered exactly as for a job that does not exist.
func TestJobOwnership(t *testing.T) {
	const otherSession = "arn:aws:sts::123456789012:assumed-role/OpsAdmin/someone-else"
	metas := map[string]jobs.Meta{
		"ops-job":    {JobID: "ops-job", State: jobs.StateRunning, SubmittedBy: event.Caller{Kind: event.RESTAPI, ARN: opsSession, Account: account}},
		"ci-job":     {JobID: "ci-job", State: jobs.StateRunning, SubmittedBy: event.Caller{Kind: event.HTTPAPI, ARN: ciUser, Account: account}},
		"direct-job": {JobID: "direct-job", State: jobs.StateRunning, SubmittedBy: event.Caller{Kind: event.Direct}},
		"eb-job":     {JobID: "eb-job", State: jobs.StateRunning, SubmittedBy: event.Caller{Kind: event.EventBridge, Account: account, Source: "x", EventID: "e"}},
	}
	readers := []string{
		"arn:aws:iam::123456789012:role/audit/Auditor", // a role, with its path: any of its sessions
		"arn:aws:iam::123456789012:user/Inspector",
	}
	h, logs, _ := newHandler(t, &fakeEngine{})
	fj := &fakeJobs{metas: metas}
	h.WithJobs(fj, fj).WithJobReaders(readers)

	read := func(payload json.RawMessage) (int, string) {
		t.Helper()
		out, err := h.Invoke(context.Background(), payload)
		return apiAnswer(t, out, err)
	}
	// The answer for a job that does not exist, asked with the same ID.
	unknown := func(id string) string {
		t.Helper()
		saved := fj.metas
		fj.metas = nil
		defer func() { fj.metas = saved }()
		status, body := read(signedREST("GET", "", "arn:aws:iam::123456789012:user/Nobody", id))
		if status != 404 {
			t.Fatalf("unknown job: %d %s", status, body)
		}
		return body
	}

	tests := []struct {
		name    string
		payload json.RawMessage
		read    bool
	}{
		{"owner", signedREST("GET", "", opsSession, "ops-job"), true},
		{"owner through the HTTP API", signedHTTP("GET", "", opsSession, "ops-job"), true},
		{"another session of the owner's role", signedREST("GET", "", otherSession, "ops-job"), true},
		{"the owner's role ARN", signedREST("GET", "", "arn:aws:iam::123456789012:role/OpsAdmin", "ops-job"), true},
		{"IAM user owner", signedHTTP("GET", "", ciUser, "ci-job"), true},
		{"another role", signedREST("GET", "", "arn:aws:sts::123456789012:assumed-role/Developer/ops-admin", "ops-job"), false},
		{"same role name in another account", signedREST("GET", "", "arn:aws:sts::210987654321:assumed-role/OpsAdmin/ops-admin", "ops-job"), false},
		{"another user", signedHTTP("GET", "", "arn:aws:iam::123456789012:user/deploy/other", "ci-job"), false},
		{"the ci user's name as a role", signedREST("GET", "", "arn:aws:sts::123456789012:assumed-role/ci/x", "ci-job"), false},
		{"the account root", signedREST("GET", "", "arn:aws:iam::123456789012:root", "ops-job"), false},
		{"unsigned request for a signed job", signedREST("GET", "", "", "ops-job"), false},
		{"reader (a session of the listed role)", signedREST("GET", "", "arn:aws:sts::123456789012:assumed-role/Auditor/jane", "ops-job"), true},
		{"reader (the listed user)", signedHTTP("GET", "", "arn:aws:iam::123456789012:user/Inspector", "ci-job"), true},
		{"signed caller, direct job", signedREST("GET", "", opsSession, "direct-job"), false},
		{"signed caller, EventBridge job", signedHTTP("GET", "", ciUser, "eb-job"), false},
		{"reader, direct job", signedREST("GET", "", "arn:aws:sts::123456789012:assumed-role/Auditor/jane", "direct-job"), true},
		{"reader, EventBridge job", signedREST("GET", "", "arn:aws:iam::123456789012:user/Inspector", "eb-job"), true},
		{"unsigned request (a direct invoker), direct job", signedREST("GET", "", "", "direct-job"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			var id string
			if inv, err := event.Decode(tt.payload); err == nil {
				id = inv.JobID
			}
			status, body := read(tt.payload)
			if tt.read {
				var st struct{ JobId, State string }
				if status != 200 || json.Unmarshal([]byte(body), &st) != nil || st.JobId != id {
					t.Fatalf("answer %d %s, want the job", status, body)
				}
				return
			}
			if want := unknown(id); status != 404 || body != want {
				t.Fatalf("answer %d %s, want 404 %s as for a job that does not exist", status, body, want)
			}
			if line := lineWith(t, logs, "job status refused: the caller is neither the job's submitter nor a job reader; answered 404"); line["jobId"] != id {
				t.Errorf("refusal logged as %v", line)
			}
		})
	}
}

func TestPrincipalKey(t *testing.T) {
	same := [][2]string{
		{"arn:aws:sts::123456789012:assumed-role/R/s1", "arn:aws:sts::123456789012:assumed-role/R/s2"},
		{"arn:aws:sts::123456789012:assumed-role/R/s1", "arn:aws:iam::123456789012:role/path/to/R"},
		{"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/jane@example.com", "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123"},
		{"arn:aws:iam::123456789012:user/a/b/Bob", "arn:aws:iam::123456789012:user/BOB"},
		{"arn:aws-us-gov:sts::123456789012:assumed-role/R/s", "arn:aws-us-gov:iam::123456789012:role/R"},
		{"arn:aws:sts::123456789012:federated-user/bob", "arn:aws:sts::123456789012:federated-user/bob"},
	}
	differ := [][2]string{
		{"arn:aws:sts::123456789012:assumed-role/R/s", "arn:aws:sts::123456789012:assumed-role/R2/s"},
		{"arn:aws:sts::123456789012:assumed-role/R/s", "arn:aws:iam::123456789012:user/R"},
		{"arn:aws:sts::123456789012:assumed-role/R/s", "arn:aws-cn:sts::123456789012:assumed-role/R/s"},
		{"arn:aws:sts::123456789012:assumed-role/R/s", "arn:aws:sts::210987654321:assumed-role/R/s"},
		{"arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:user/root"},
		{"arn:aws:sts::123456789012:federated-user/bob", "arn:aws:sts::123456789012:federated-user/Bob"},
	}
	key := func(a string) string {
		k, ok := principalKey(a)
		if !ok {
			t.Fatalf("%s: no key", a)
		}
		return k
	}
	for _, p := range same {
		if key(p[0]) != key(p[1]) {
			t.Errorf("%s and %s differ", p[0], p[1])
		}
	}
	for _, p := range differ {
		if key(p[0]) == key(p[1]) {
			t.Errorf("%s and %s are the same principal", p[0], p[1])
		}
	}
	for _, a := range []string{"", "arn:aws:iam::123456789012:user/" + strings.Repeat("x", 10) + "…"} {
		if _, ok := principalKey(a); ok {
			t.Errorf("%q has a key", a)
		}
	}
}
