package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// JobStatus is the answer of GET /associations/{jobId} (handler.Status),
// with its page of outcomes read as a result.
type JobStatus struct {
	jobs.Meta
	Outcomes  report.Result `json:"Outcomes"`
	NextToken string        `json:"NextToken,omitempty"`
}

// Finished reports whether the job reached a final state. STALLED is not
// one (a chunk that runs again moves the job on); --wait stops on it all
// the same (command.follow).
func (s JobStatus) Finished() bool {
	switch s.State {
	case jobs.StateSucceeded, jobs.StatePartial, jobs.StateFailed:
		return true
	}
	return false
}

// apiError is the body of a 4xx/5xx answer.
type apiError struct {
	Message string `json:"message"`
	Errors  []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"errors"`
	RequestID    string `json:"requestId"`
	APIRequestID string `json:"apiRequestId"`
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// counts is one line per outcome.
func writeCounts(w io.Writer, c jobs.Counts) {
	t := table(w)
	fmt.Fprintln(t, "OUTCOME\tNODES")
	for _, r := range []struct {
		name string
		n    int
	}{{"Successful", c.Successful}, {"Updated", c.Updated}, {"Deduplicated", c.Deduplicated}, {"Failed", c.Failed}, {"Unprocessed", c.Unprocessed}} {
		fmt.Fprintf(t, "%s\t%d\n", r.name, r.n)
	}
	fmt.Fprintf(t, "Requested\t%d\n", c.Requested)
	t.Flush()
}

// WriteResult prints a result as a summary table: the counts per outcome,
// then one line per node that did not succeed (Failed, Unprocessed, and
// Deduplicated when the change was not made: other settings, or in progress
// elsewhere). counts, when set, replaces the result's own (a job's).
func WriteResult(w io.Writer, r report.Result, counts *jobs.Counts) {
	c := jobs.Counts{Requested: r.Summary.Requested, Successful: r.Summary.Successful, Updated: r.Summary.Updated,
		Failed: r.Summary.Failed, Deduplicated: r.Summary.Deduplicated, Unprocessed: r.Summary.Unprocessed}
	if counts != nil {
		c = *counts
	}
	writeCounts(w, c)
	if counts == nil {
		s := r.Summary
		fmt.Fprintf(w, "SSM calls %d, retries %d, throttles %d, reads %d\n", s.Calls, s.Retries, s.Throttles, s.Reads)
	}
	type line struct{ node, doc, outcome, detail string }
	var lines []line
	for _, f := range r.Failed {
		d := fmt.Sprintf("%s: %s", f.Fault, f.Message)
		if f.Attempts > 0 {
			d += fmt.Sprintf(" (%d attempts)", f.Attempts)
		}
		lines = append(lines, line{Node(f.Entry), document(f.Entry), "Failed", d})
	}
	for _, u := range r.Unprocessed {
		lines = append(lines, line{Node(u.Entry), document(u.Entry), "Unprocessed", u.Reason})
	}
	for _, d := range r.Deduplicated {
		if d.Reason != report.ReasonDifferentSettings && d.Reason != report.ReasonInProgress {
			continue
		}
		detail := d.Reason
		if len(d.Differences) > 0 {
			detail += ": " + strings.Join(d.Differences, ", ")
		}
		if d.AssociationId != "" {
			detail += " (" + d.AssociationId + ")"
		}
		lines = append(lines, line{Node(d.Entry), document(d.Entry), "Deduplicated", detail})
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w)
	t := table(w)
	fmt.Fprintln(t, "NODE\tDOCUMENT\tOUTCOME\tDETAIL")
	for _, l := range lines {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", l.node, l.doc, l.outcome, oneLine(l.detail))
	}
	t.Flush()
}

// WritePlan prints a dry run: the counts per action and what they cost,
// then one line per node.
func WritePlan(w io.Writer, p report.Plan) {
	s := p.Summary
	t := table(w)
	fmt.Fprintln(t, "ACTION\tNODES")
	fmt.Fprintf(t, "create\t%d\nupdate\t%d\nskip\t%d\nfail\t%d\nRequested\t%d\n", s.Create, s.Update, s.Skip, s.Fail, s.Requested)
	t.Flush()
	fmt.Fprintf(w, "SSM calls at least %d, about %s at CALLS_PER_SECOND; nothing was sent\n",
		s.Calls, (time.Duration(s.EstimatedSeconds * float64(time.Second))).Round(100*time.Millisecond))
	if len(p.Actions) == 0 {
		return
	}
	fmt.Fprintln(w)
	t = table(w)
	fmt.Fprintln(t, "NODE\tDOCUMENT\tACTION\tDETAIL")
	for _, a := range p.Actions {
		detail := a.Reason
		if len(a.Differences) > 0 {
			detail = strings.TrimPrefix(detail+"; differs: "+strings.Join(a.Differences, ", "), "; ")
		}
		if a.AssociationId != "" {
			detail += " (" + a.AssociationId + ")"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", Node(a.Entry), document(a.Entry), a.Action, oneLine(detail))
	}
	t.Flush()
}

// WriteAccepted prints a job the function accepted (202).
func WriteAccepted(w io.Writer, a jobs.Accepted) {
	t := table(w)
	fmt.Fprintln(t, "JOB\tSTATE\tCHUNKS\tREQUESTED")
	fmt.Fprintf(t, "%s\t%s\t%d\t%d\n", a.JobID, a.State, a.Chunks, a.Counts.Requested)
	t.Flush()
	if a.Counts.Failed+a.Counts.Deduplicated+a.Counts.Unprocessed > 0 {
		fmt.Fprintf(w, "settled at submission: Failed %d, Deduplicated %d, Unprocessed %d\n", a.Counts.Failed, a.Counts.Deduplicated, a.Counts.Unprocessed)
	}
	if a.StatusURL != "" {
		fmt.Fprintf(w, "status: %s\n", a.StatusURL)
	}
}

// WriteStatus prints a job's state and counts.
func WriteStatus(w io.Writer, s JobStatus) {
	t := table(w)
	fmt.Fprintln(t, "JOB\tSTATE\tCHUNKS\tDONE\tPOISONED\tCREATED\tUPDATED")
	fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.JobID, s.State, s.Chunks, s.ChunksDone, s.ChunksPoisoned, stamp(s.CreatedAt), stamp(s.UpdatedAt))
	t.Flush()
	fmt.Fprintln(w)
	writeCounts(w, s.Counts)
	if by := s.SubmittedBy.String(); by != "" {
		fmt.Fprintf(w, "submitted by %s\n", by)
	}
}

// WriteError prints a 4xx/5xx answer or a function error.
func WriteError(w io.Writer, a Answer) {
	if a.ErrorType != "" {
		fmt.Fprintf(w, "error: the function answered %s: %s\n", a.ErrorType, a.ErrorMessage)
		return
	}
	var e apiError
	if json.Unmarshal(a.Body, &e) != nil || e.Message == "" {
		fmt.Fprintf(w, "error: HTTP %d: %s\n", a.Status, oneLine(string(a.Body)))
		return
	}
	fmt.Fprintf(w, "error: HTTP %d: %s\n", a.Status, e.Message)
	for _, fe := range e.Errors {
		if fe.Path == "" || fe.Message == e.Message {
			continue
		}
		fmt.Fprintf(w, "  %s: %s\n", fe.Path, fe.Message)
	}
	if e.RequestID != "" || e.APIRequestID != "" {
		fmt.Fprintf(w, "  requestId %s apiRequestId %s\n", orDash(e.RequestID), orDash(e.APIRequestID))
	}
}

// Node names the node(s) an entry targets: its InstanceId, its InstanceIds
// target's values, or its targets as Key=values.
func Node(e request.Entry) string {
	if e.InstanceId != nil && *e.InstanceId != "" {
		return *e.InstanceId
	}
	var parts []string
	for _, t := range e.Targets {
		if t.Key == "InstanceIds" {
			parts = append(parts, strings.Join(t.Values, ","))
			continue
		}
		parts = append(parts, t.Key+"="+strings.Join(t.Values, ","))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func document(e request.Entry) string {
	d := e.Name
	if e.AssociationName != nil && *e.AssociationName != "" {
		d += " (" + *e.AssociationName + ")"
	}
	return orDash(d)
}

func stamp(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
