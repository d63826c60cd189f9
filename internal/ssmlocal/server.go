package ssmlocal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Server is the emulator. It implements http.Handler and is safe for
// concurrent use.
type Server struct {
	opts   Options
	docs   catalogue
	nodes  inventory
	limit  *bucket
	faults *faults
	stats  counters
	now    func() time.Time

	// mu serialises access to the store so that "already exists" (InstanceId
	// form), the association limit and the count of doubles are checked and
	// applied atomically: concurrent InstanceId-form calls can never create
	// two associations for one (document, node).
	mu    sync.Mutex
	store *store
}

// New returns a Server configured by opts. Its start, from which
// opts.RateSchedule counts, is now. It panics if opts.RateSchedule holds a
// negative or non-finite value (ParseRateSchedule never returns one).
func New(opts Options) *Server {
	if err := checkSchedule(opts.RateSchedule); err != nil {
		panic("ssmlocal.New: " + err.Error())
	}
	s := &Server{
		opts:   opts,
		docs:   newCatalogue(opts.Documents),
		nodes:  newInventory(opts.Nodes),
		faults: newFaults(opts.Seed),
		now:    time.Now,
		store:  newStore(),
	}
	s.limit = newBucket(time.Now, opts.Rate, opts.Burst, opts.RateSchedule)
	return s
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	r, changes := s.limit.current()
	st.CallsPerSecond, st.Burst, st.RateChanges = r.CallsPerSecond, r.Burst, changes
	s.mu.Lock()
	st.ActiveAssociations = s.store.active
	st.DoubleAssociations = len(s.store.doubles)
	s.mu.Unlock()
	return st
}

// Reset forgets every association, counter and scripted fault. The rate
// limiter (its setting, tokens, schedule and RateChanges) and the random
// source keep their state.
func (s *Server) Reset() {
	s.mu.Lock()
	s.store = newStore()
	s.mu.Unlock()
	s.stats.reset()
	s.faults.reset()
}

// Ledger lists every association created since start or the last Reset, in
// creation order, deleted ones included (with Deleted set).
func (s *Server) Ledger() []Association {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Association, len(s.store.ledger))
	for i, r := range s.store.ledger {
		out[i] = r.association()
	}
	return out
}

// Doubles lists, in the order they happened, every association created or
// updated to cover what another active association already covered (see
// Double); Stats.DoubleAssociations is its length. Tests print it when they
// expect none.
func (s *Server) Doubles() []Double {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Double, len(s.store.doubles))
	for i, d := range s.store.doubles {
		d.Targets = slices.Clone(d.Targets)
		d.AssociationIDs = slices.Clone(d.AssociationIDs)
		out[i] = d
	}
	return out
}

// AssociationsByNode lists, for every (document, node) the ledger names,
// keyed "document/node", the IDs of the associations ever created for it
// or updated to cover it, in creation order, each once: a pair with two
// IDs was associated twice. Every version counts, so an association that
// an update moved off a node still lists there, as a deleted one does.
// Tests use it to check that nothing was associated twice.
func (s *Server) AssociationsByNode() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for _, r := range s.store.ledger {
		seen := map[string]bool{}
		note := func(e wireEntry, nodes []string) {
			for _, n := range nodes {
				k := orNull(e.Name) + "/" + n
				if !seen[k] {
					seen[k] = true
					out[k] = append(out[k], r.id)
				}
			}
		}
		for _, h := range r.history {
			note(h.entry, h.nodes)
		}
		note(r.entry, r.nodes)
	}
	return out
}

// result is what an operation produces: a response body or a whole-call
// error, and for a create or update call that executed, what then happens
// to the answer.
type result struct {
	body  any
	err   *apiError
	after afterFault
}

type operation func(s *Server, body []byte) result

var operations = map[string]operation{
	"CreateAssociationBatch": (*Server).createAssociationBatch,
	"CreateAssociation":      (*Server).createAssociation,
	"DescribeAssociation":    (*Server).describeAssociation,
	"ListAssociations":       (*Server).listAssociations,
	"DeleteAssociation":      (*Server).deleteAssociation,
	"UpdateAssociation":      (*Server).updateAssociation,
}

const controlPrefix = "/_ssm-local/"

// ServeHTTP serves the SSM API on POST (any path; the SDK uses "/") and the
// control endpoints under /_ssm-local/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == controlPrefix+"stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.Stats())
	case r.URL.Path == controlPrefix+"reset" && r.Method == http.MethodPost:
		s.Reset()
		writeJSON(w, http.StatusOK, struct{}{})
	case r.URL.Path == controlPrefix+"rate":
		s.serveRate(w, r)
	case strings.HasPrefix(r.URL.Path, controlPrefix):
		http.NotFound(w, r)
	case r.Method == http.MethodPost:
		s.serveAPI(w, r)
	default:
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "ssm-local serves the SSM API on POST /", http.StatusMethodNotAllowed)
	}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", newUUID())
	// Signatures and credentials are accepted as they are: the emulator
	// stands in for the service, not for IAM.
	name, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")
	op, known := operations[name]
	if !known {
		name = "unknown"
	}
	arrived := s.limit.now()
	s.stats.update(func(st *Stats) {
		st.Calls++
		if st.Operations == nil {
			st.Operations = map[string]int{}
		}
		st.Operations[name]++
	})
	held, err := s.delay(r.Context())
	if err != nil {
		return // the client went away; nobody reads a response
	}
	if !known {
		s.fail(w, clientError(codeUnknownOperation, "Operation %q is not supported by ssm-local", r.Header.Get("X-Amz-Target")))
		return
	}
	if e := s.callFault(arrived.Add(held)); e != nil {
		s.fail(w, e)
		return
	}
	body, e := s.readBody(w, r)
	if e != nil {
		s.fail(w, e)
		return
	}
	res := op(s, body)
	switch res.after.kind {
	case afterDrop:
		s.stats.update(func(st *Stats) { st.DroppedConnections++ })
		dropConnection(w)
		return
	case afterError:
		s.stats.update(func(st *Stats) { st.ErrorsAfterCreate++ })
		s.fail(w, &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "Internal Server Error"})
		return
	case afterDelay:
		s.stats.update(func(st *Stats) { st.SlowAnswers++ })
		if err := hold(r.Context(), res.after.delay); err != nil {
			return // the client gave up; the associations exist anyway
		}
	}
	switch {
	case res.err != nil:
		s.fail(w, res.err)
	default:
		writeJSON(w, http.StatusOK, res.body)
	}
}

// delay sleeps Latency plus jitter, or until the request is cancelled, and
// returns the time it meant to sleep.
func (s *Server) delay(ctx context.Context) (time.Duration, error) {
	d := s.opts.Latency + s.faults.jitter(s.opts.Jitter)
	return d, hold(ctx, d)
}

// hold sleeps d, or until the request is cancelled (the client went away).
func hold(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("request cancelled while held: %w", ctx.Err())
	}
}

// callFault decides whether the whole call fails before it is read:
// scripted failures first (tests rely on their order), then the rate limit,
// then the random throttle and error rates. The rate limit takes its token
// at due, the instant the call's delay was to end, not when its timer
// fired: on busy cores a timer fires up to several milliseconds late, and
// a bucket of one token would read that as the caller's jitter (SSM's
// bucket is not on the caller's cores).
func (s *Server) callFault(due time.Time) *apiError {
	if e := s.faults.nextCall(); e != nil {
		s.stats.update(func(st *Stats) { st.CallsFailedByInjection++ })
		return e
	}
	if !s.limit.allowAt(due) {
		return &apiError{Status: http.StatusBadRequest, Code: codeThrottling, Message: "Rate exceeded"}
	}
	if s.faults.chance(s.opts.ThrottleRate) {
		s.stats.update(func(st *Stats) { st.CallsFailedByInjection++ })
		return &apiError{Status: http.StatusBadRequest, Code: codeThrottling, Message: "Rate exceeded"}
	}
	if s.faults.chance(s.opts.ErrorRate) {
		s.stats.update(func(st *Stats) { st.CallsFailedByInjection++ })
		return &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: "Internal Server Error"}
	}
	return nil
}

// fail writes a whole-call error and counts it.
func (s *Server) fail(w http.ResponseWriter, e *apiError) {
	s.stats.update(func(st *Stats) {
		switch {
		case e.Code == codeThrottling:
			st.ThrottledCalls++
		case e.Code == codeValidation:
			st.ValidationErrors++
		}
		if e.Status >= 500 {
			st.ServerErrors++
		}
	})
	writeError(w, e)
}

// readBody reads at most the configured number of bytes; a larger body is
// refused with 413 and code SerializationException before it is buffered.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	limit := s.opts.MaxBodyBytes
	if limit == 0 {
		limit = DefaultMaxBodyBytes
	}
	rd := r.Body
	if limit > 0 {
		rd = http.MaxBytesReader(w, r.Body, limit)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeSerialization,
				Message: fmt.Sprintf("Request body exceeds the limit of %d bytes", limit)}
		}
		return nil, clientError(codeSerialization, "Could not read the request body: %v", err)
	}
	return b, nil
}

// decode parses an awsJson1.1 body into v. An empty body is the empty
// object; anything that is not exactly one JSON object of the right member
// types is a SerializationException, as the service reports it.
func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return clientError(codeSerialization, "Could not parse the request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return clientError(codeSerialization, "Unexpected data after the request object")
	}
	return nil
}

// dropConnection closes the connection without writing anything, so the
// client sees the request fail after the server acted on it.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 or a wrapping ResponseWriter: aborting the handler resets the
	// stream without a response.
	panic(http.ErrAbortHandler)
}
