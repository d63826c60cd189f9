package ssmlocal

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// DefaultEntryFaultMessage is the message of an injected per-entry fault when
// none is given.
const DefaultEntryFaultMessage = "Internal error, retry"

// faults holds the random and scripted fault state. Random draws come from a
// seeded source so a single-threaded test sees the same faults every run.
type faults struct {
	mu      sync.Mutex
	rng     *rand.Rand
	entries []*entryRule
	calls   []*apiError
	// after is the queue of scripted after-create faults.
	after []afterFault
}

// afterKind is what happens to the answer of a create or update call that
// executed.
type afterKind int

const (
	afterNone  afterKind = iota
	afterDrop            // connection closed without a response
	afterError           // 500 InternalServerError
	afterDelay           // answer held for delay
)

type afterFault struct {
	kind  afterKind
	delay time.Duration
}

// entryRule fails matching entries for their first `remaining` arrivals.
type entryRule struct {
	document, node string
	remaining      int
	fault, message string
}

func newFaults(seed int64) *faults {
	return &faults{rng: rand.New(rand.NewPCG(uint64(seed), 0x55d1))}
}

func (f *faults) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries, f.calls, f.after = nil, nil, nil
}

// chance draws true with probability p.
func (f *faults) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64() < p
}

func (f *faults) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Duration(f.rng.Int64N(int64(d)))
}

// FailEntry makes the next `attempts` arrivals of an entry for document (by
// name; "" matches any) and node (InstanceId or an InstanceIds target value;
// "" matches any entry) fail with the given fault ("" means "Server") and
// message ("" means DefaultEntryFaultMessage). Rules are consumed in the
// order they were added; one arrival consumes one attempt of one rule.
func (s *Server) FailEntry(document, node string, attempts int, fault, message string) {
	if attempts <= 0 {
		return
	}
	if fault == "" {
		fault = "Server"
	}
	if message == "" {
		message = DefaultEntryFaultMessage
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.entries = append(s.faults.entries, &entryRule{document: document, node: node, remaining: attempts, fault: fault, message: message})
}

// FailCalls makes the next n API calls (any operation) fail whole with the
// error code ("" means InternalServerError) and HTTP status (0 means 500 for
// InternalServerError and ServiceUnavailable, else 400). A
// ThrottlingException gets the service's "Rate exceeded" message.
func (s *Server) FailCalls(n int, code string, status int) {
	if code == "" {
		code = codeInternal
	}
	if status == 0 {
		status = http.StatusBadRequest
		if code == codeInternal || code == "ServiceUnavailable" {
			status = http.StatusInternalServerError
		}
	}
	msg := "Injected failure"
	switch code {
	case codeThrottling:
		msg = "Rate exceeded"
	case codeInternal:
		msg = "Internal Server Error"
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	for range n {
		s.faults.calls = append(s.faults.calls, &apiError{Status: status, Code: code, Message: msg})
	}
}

// DropAfterCreate makes the next n create or update calls
// (CreateAssociationBatch, CreateAssociation or UpdateAssociation) that
// pass the whole-call checks execute in full and then close the connection
// without any response, as a network failure after the service committed.
// It, ErrorAfterCreate and DelayAfterCreate share one queue, consumed in
// the order they were added, one fault per such call, whichever of the
// three operations it is.
func (s *Server) DropAfterCreate(n int) { s.faults.script(n, afterFault{kind: afterDrop}) }

// ErrorAfterCreate makes the next n create or update calls that pass the
// whole-call checks execute in full and then answer HTTP 500
// InternalServerError, as a service that committed and failed afterwards.
func (s *Server) ErrorAfterCreate(n int) { s.faults.script(n, afterFault{kind: afterError}) }

// DelayAfterCreate makes the next n create or update calls that pass the
// whole-call checks execute in full and then hold their answer for d (not
// positive: DefaultSlowAnswerDelay), so that a client with a shorter
// timeout gives up although the associations exist (or the update is
// applied). The hold ends early when the client goes away.
func (s *Server) DelayAfterCreate(n int, d time.Duration) {
	if d <= 0 {
		d = DefaultSlowAnswerDelay
	}
	s.faults.script(n, afterFault{kind: afterDelay, delay: d})
}

func (f *faults) script(n int, a afterFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.after = append(f.after, a)
	}
}

// nextAfter takes the next scripted after-create fault.
func (f *faults) nextAfter() (afterFault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.after) == 0 {
		return afterFault{}, false
	}
	a := f.after[0]
	f.after = f.after[1:]
	return a, true
}

// afterCreate decides what happens to the answer of a create or update
// call that passed the whole-call checks and executed: the scripted queue first, then
// LostAnswerRate, ErrorAfterCreateRate and SlowAnswerRate, at most one.
func (s *Server) afterCreate() afterFault {
	if a, ok := s.faults.nextAfter(); ok {
		return a
	}
	switch {
	case s.faults.chance(s.opts.LostAnswerRate):
		return afterFault{kind: afterDrop}
	case s.faults.chance(s.opts.ErrorAfterCreateRate):
		return afterFault{kind: afterError}
	case s.faults.chance(s.opts.SlowAnswerRate):
		d := s.opts.SlowAnswerDelay
		if d <= 0 {
			d = DefaultSlowAnswerDelay
		}
		return afterFault{kind: afterDelay, delay: d}
	}
	return afterFault{}
}

func (f *faults) nextCall() *apiError {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return nil
	}
	e := f.calls[0]
	f.calls = f.calls[1:]
	return e
}

// scriptedEntry consumes one attempt of the first rule matching the entry.
func (f *faults) scriptedEntry(doc string, nodes []string) (fault, message string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.entries {
		if r.document != "" && r.document != doc {
			continue
		}
		if r.node != "" && !slices.Contains(nodes, r.node) {
			continue
		}
		r.remaining--
		if r.remaining == 0 {
			f.entries = slices.Delete(f.entries, i, i+1)
		}
		return r.fault, r.message, true
	}
	return "", "", false
}
