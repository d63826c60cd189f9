package handler

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// submitter records a request as an asynchronous job.
type submitter interface {
	Submit(context.Context, *request.Request, event.Caller) (jobs.Accepted, error)
}

// jobReader reads a job's status and outcomes.
type jobReader interface {
	Meta(ctx context.Context, jobID string) (jobs.Meta, error)
	Outcomes(ctx context.Context, jobID string, limit int32, token string) (jobs.Page, error)
}

// WithJobs turns asynchronous jobs on: requests that ask for it, or that
// could not finish within the synchronous budget, become jobs.
func (h *Handler) WithJobs(s submitter, r jobReader) *Handler {
	h.jobs, h.jobStatus = s, r
	return h
}

// syncShare is the part of the budget a synchronous request may expect to
// use; above it, the request becomes a job.
const syncShare = 0.8

// estimate is how long the SSM calls of n entries take at best: the call
// rate bounds them, or, without one, concurrency and a typical call time.
func (h *Handler) estimate(n int) time.Duration {
	calls := math.Ceil(float64(n) / float64(h.cfg.BatchSize))
	if h.cfg.CallsPerSecond > 0 {
		return time.Duration(calls / h.cfg.CallsPerSecond * float64(time.Second))
	}
	const typicalCall = 500 * time.Millisecond
	return time.Duration(calls / float64(h.cfg.MaxConcurrency) * float64(typicalCall))
}

// wantsJob decides between answering now and running a job.
func (h *Handler) wantsJob(req *request.Request, budget time.Duration) bool {
	if req.Async {
		return true
	}
	if h.jobs == nil {
		return false
	}
	valid := 0
	for _, it := range req.Items {
		if it.Valid() {
			valid++
		}
	}
	return h.estimate(valid) > time.Duration(syncShare*float64(budget))
}

// submit runs req as a job and answers 202 Accepted.
func (h *Handler) submit(ctx context.Context, inv event.Invocation, req *request.Request) (any, error) {
	if h.jobs == nil {
		return h.reject(ctx, inv, request.NewError(http.StatusBadRequest,
			"Async: asynchronous jobs are not configured for this function (JOBS_TABLE and JOBS_QUEUE_URL)", nil))
	}
	acc, err := h.jobs.Submit(ctx, req, inv.Caller)
	if err != nil {
		h.log.ErrorContext(ctx, "job not submitted", "caller", inv.Caller.String(), "error", err.Error())
		return h.serverError(ctx, inv, http.StatusServiceUnavailable, "the job could not be submitted; send the request again",
			&UnavailableError{Cause: err})
	}
	if inv.StatusBase != "" {
		acc.StatusURL = inv.StatusBase + "/" + acc.JobID
	}
	attrs := []any{"caller", inv.Caller.String(), "jobId", acc.JobID, "chunks", acc.Chunks, "requested", acc.Counts.Requested,
		"settledFailed", acc.Counts.Failed, "settledDeduplicated", acc.Counts.Deduplicated}
	if acc.Unqueued != nil {
		attrs = append(attrs, "unqueued", acc.Unqueued.Error())
	}
	h.log.InfoContext(ctx, "job submitted", attrs...)
	return h.respond(inv, http.StatusAccepted, acc, nil)
}

// Status is the answer to GET /associations/{jobId}.
type Status struct {
	jobs.Meta
	Outcomes  any    `json:"Outcomes"`
	NextToken string `json:"NextToken,omitempty"`
}

// defaultPageChunks is how many chunks' outcomes one status page holds.
const defaultPageChunks = 10

// status answers a status request: the job's summary and a page of its
// outcomes, to its submitter and the job readers (mayRead); anyone else is
// answered as for a job that does not exist.
func (h *Handler) status(ctx context.Context, inv event.Invocation) (any, error) {
	if h.jobStatus == nil {
		return h.respond(inv, http.StatusNotFound, errorBody{Message: "asynchronous jobs are not configured for this function"}, nil)
	}
	m, err := h.jobStatus.Meta(ctx, inv.JobID)
	switch {
	case errors.Is(err, jobs.ErrNoJob):
		return h.noJob(inv)
	case err != nil:
		h.log.ErrorContext(ctx, "job status unavailable", "caller", inv.Caller.String(), "jobId", inv.JobID, "error", err.Error())
		return h.serverError(ctx, inv, http.StatusServiceUnavailable, "job status unavailable; try again", nil)
	}
	if !h.mayRead(inv.Caller, m) {
		h.log.WarnContext(ctx, "job status refused: the caller is neither the job's submitter nor a job reader; answered 404",
			"caller", inv.Caller.String(), "jobId", inv.JobID, "submittedBy", m.SubmittedBy.String())
		return h.noJob(inv)
	}
	limit := int32(defaultPageChunks)
	if s := inv.Query["pageSize"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return h.reject(ctx, inv, request.NewError(http.StatusBadRequest, "pageSize: must be an integer from 1 to 100", nil))
		}
		limit = int32(n)
	}
	page, err := h.jobStatus.Outcomes(ctx, inv.JobID, limit, inv.Query["nextToken"])
	switch {
	case errors.Is(err, jobs.ErrBadToken):
		return h.reject(ctx, inv, request.NewError(http.StatusBadRequest, "nextToken: not a token this API handed out", nil))
	case err != nil:
		h.log.ErrorContext(ctx, "job outcomes unavailable", "caller", inv.Caller.String(), "jobId", inv.JobID, "error", err.Error())
		return h.serverError(ctx, inv, http.StatusServiceUnavailable, "job outcomes unavailable; try again", nil)
	}
	h.log.InfoContext(ctx, "job status read", "caller", inv.Caller.String(), "jobId", inv.JobID, "state", m.State)
	return h.respond(inv, http.StatusOK, Status{Meta: m, Outcomes: page.Outcomes, NextToken: page.NextToken}, nil)
}

// noJob is the answer for a job that does not exist, and for one the
// caller may not read: the same status and body, so that it does not
// confirm that the job exists.
func (h *Handler) noJob(inv event.Invocation) (any, error) {
	return h.respond(inv, http.StatusNotFound, errorBody{Message: "no job " + strconv.Quote(inv.JobID) + " (jobs are kept for JOB_TTL)"}, nil)
}
