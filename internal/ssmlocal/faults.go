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
	drops   int
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
	f.entries, f.calls, f.drops = nil, nil, 0
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

// DropAfterCreate makes the next n CreateAssociationBatch calls that pass
// whole-call checks create their associations and then close the connection
// without any response, as a network failure after the service committed.
func (s *Server) DropAfterCreate(n int) {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.drops += n
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

func (f *faults) takeDrop() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.drops == 0 {
		return false
	}
	f.drops--
	return true
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
