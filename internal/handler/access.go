package handler

import (
	"strings"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

// WithJobReaders lets the principals arns (JOB_READER_PRINCIPAL_ARNS) read
// every job through GET /associations/{jobId}; any other caller reads only
// the jobs it submitted. An entry matches as principalKey says: a role ARN
// (arn:aws:iam::123456789012:role/Auditor, with or without its path)
// matches every session of the role. Empty entries are ignored.
func (h *Handler) WithJobReaders(arns []string) *Handler {
	h.readers = map[string]bool{}
	for _, a := range arns {
		if k, ok := principalKey(strings.TrimSpace(a)); ok {
			h.readers[k] = true
		}
	}
	return h
}

// mayRead decides whether caller may read job m. The answer to a caller
// who may not is the answer for a job that does not exist, so that the
// status route does not confirm that a job ID exists.
//
//   - The job's submitter reads it: the same IAM principal (principalKey),
//     through either API.
//   - A job reader (WithJobReaders) reads every job.
//   - A job with no submitter ARN — submitted by a direct invocation, a
//     schedule or EventBridge, or through an API without IAM authorisation —
//     belongs to no IAM principal: among callers that sign their request,
//     only the job readers read it. A status request without a user ARN may
//     read it too: through the template's APIs (IAM authorisation on every
//     route) such a request can only be an API Gateway envelope sent with
//     lambda:InvokeFunction — a caller who could write any user ARN into
//     it, whom no check here could stop — or a local run (sam local, make
//     invoke).
func (h *Handler) mayRead(caller event.Caller, m jobs.Meta) bool {
	if c, ok := principalKey(caller.ARN); ok {
		if h.readers[c] {
			return true
		}
		owner, ok := principalKey(m.SubmittedBy.ARN)
		return ok && owner == c
	}
	return caller.ARN == "" && m.SubmittedBy.ARN == ""
}

// principalKey is the IAM principal an ARN names, as a comparable key; ok
// is false for an empty or cut ARN (event.Caller cuts an overlong one).
//
// An API caller's ARN is the signer's: arn:aws:iam::123:user/path/Name for
// an IAM user, arn:aws:sts::123:assumed-role/Name/session for a role's
// session (which leaves out the role's path). The principal behind a
// session is its role: the session name is chosen by whoever assumes the
// role (sts:AssumeRole's RoleSessionName), so it tells two holders of the
// role apart only as far as they choose to, and it changes from run to run
// for a CI job or a Lambda. So a session and the role ARN
// (arn:aws:iam::123:role/path/Name) have the same key — partition, account
// and role name — and so do two sessions of one role: a job submitted by
// one session is read by the others, and a reader entry naming the role
// (or any of its sessions) reads with every session. Role and user names
// are unique in an account whatever their case or path, so the name is
// compared without either. Any other ARN (root, federated-user) is its own
// key, compared exactly; the account's root ARN stands for the root user
// only, not for the account's principals.
func principalKey(arn string) (string, bool) {
	if arn == "" || strings.HasSuffix(arn, "…") {
		return "", false
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[4] == "" {
		return "exact:" + arn, true
	}
	partition, service, account, resource := parts[1], parts[2], parts[4], parts[5]
	kind, name := "", ""
	switch segs := strings.Split(resource, "/"); {
	case service == "sts" && segs[0] == "assumed-role" && len(segs) == 3:
		kind, name = "role", segs[1]
	case service == "iam" && (segs[0] == "role" || segs[0] == "user") && len(segs) >= 2:
		kind, name = segs[0], segs[len(segs)-1]
	}
	if name == "" {
		return "exact:" + arn, true
	}
	return strings.Join([]string{partition, account, kind, strings.ToLower(name)}, ":"), true
}
