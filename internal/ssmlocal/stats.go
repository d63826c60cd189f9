package ssmlocal

import (
	"maps"
	"sync"
)

// Stats counts what the server saw since start or the last Reset. The JSON
// form (camelCase) is served at GET /_ssm-local/stats.
type Stats struct {
	// Calls counts every SSM API call, including refused ones.
	Calls int `json:"calls"`
	// ThrottledCalls counts ThrottlingException responses (rate limit,
	// -throttle-rate and scripted).
	ThrottledCalls int `json:"throttledCalls"`
	// ServerErrors counts HTTP 5xx responses.
	ServerErrors int `json:"serverErrors"`
	// ValidationErrors counts ValidationException responses.
	ValidationErrors int `json:"validationErrors"`
	// CallsFailedByInjection counts calls failed by FailCalls, ThrottleRate
	// or ErrorRate.
	CallsFailedByInjection int `json:"callsFailedByInjection"`
	// DroppedConnections counts create and update calls that executed and
	// then had their connection closed without a response (DropAfterCreate,
	// LostAnswerRate).
	DroppedConnections int `json:"droppedConnections"`
	// ErrorsAfterCreate counts create and update calls that executed and
	// then answered 500 InternalServerError (ErrorAfterCreate,
	// ErrorAfterCreateRate). They are in ServerErrors too.
	ErrorsAfterCreate int `json:"errorsAfterCreate"`
	// SlowAnswers counts create and update calls that executed and then
	// held their answer (DelayAfterCreate, SlowAnswerRate).
	SlowAnswers int `json:"slowAnswers"`
	// EntriesReceived counts the entries of every CreateAssociationBatch
	// call that got past throttling and parsed, plus one per such
	// CreateAssociation call.
	EntriesReceived int `json:"entriesReceived"`
	// EntriesFailedByInjection counts entries failed by FailEntry or
	// EntryFaultRate.
	EntriesFailedByInjection int `json:"entriesFailedByInjection"`
	// EntriesFailed counts every Failed entry (client and server faults).
	EntriesFailed int `json:"entriesFailed"`
	// AssociationsCreated counts associations created (batch or single).
	AssociationsCreated int `json:"associationsCreated"`
	// DuplicatesRefused counts "Association Already Exists" refusals (only
	// entries in the InstanceId form are refused).
	DuplicatesRefused int `json:"duplicatesRefused"`
	// DoubleAssociations counts associations created, or updated, to cover
	// what another active association already covered: one per node
	// already covered with the same document and AssociationName, or one
	// for the same document, AssociationName and targets (as sets) when not
	// by node ID. An update counts only what the association did not cover
	// before it. See Server.Doubles.
	DoubleAssociations int `json:"doubleAssociations"`
	// AssociationsUpdated counts UpdateAssociation successes (each made a
	// new version).
	AssociationsUpdated int `json:"associationsUpdated"`
	// AssociationsDeleted counts DeleteAssociation successes.
	AssociationsDeleted int `json:"associationsDeleted"`
	// ActiveAssociations is the number of associations that exist now.
	ActiveAssociations int `json:"activeAssociations"`
	// Operations counts calls per operation name (unknown ones included).
	Operations map[string]int `json:"operations"`
	// CallsPerSecond and Burst are the rate limit in force (0 calls per
	// second: unlimited); RateChanges every setting of it since start (see
	// Server.RateChanges), which Reset keeps.
	CallsPerSecond float64      `json:"callsPerSecond"`
	Burst          int          `json:"burst"`
	RateChanges    []RateChange `json:"rateChanges"`
}

// counters guards a Stats value.
type counters struct {
	mu sync.Mutex
	s  Stats
}

func (c *counters) update(f func(*Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.s)
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.Operations = maps.Clone(c.s.Operations)
	if s.Operations == nil {
		s.Operations = map[string]int{}
	}
	return s
}

func (c *counters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = Stats{}
}
