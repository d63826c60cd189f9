package ssmlocal

import "time"

// DefaultMaxBodyBytes bounds a request body when Options.MaxBodyBytes is 0.
// A larger body gets HTTP 413 with error code SerializationException.
const DefaultMaxBodyBytes = 2 << 20

// DefaultSlowAnswerDelay is how long a slow answer is held when
// Options.SlowAnswerDelay or the DelayAfterCreate delay is not positive.
const DefaultSlowAnswerDelay = 30 * time.Second

// Options configures a Server. The zero value is a server without limits or
// faults (MaxAssociations 0 means unlimited); DefaultOptions is the
// service-like configuration cmd/ssm-local starts from.
type Options struct {
	// MaxBatch bounds the entries of one CreateAssociationBatch call; more
	// fails the call with ValidationException. 0 means unlimited (AWS
	// publishes no maximum).
	MaxBatch int
	// MaxAssociations bounds the active associations; an entry beyond it
	// fails with AssociationLimitExceeded. 0 means unlimited.
	MaxAssociations int

	// Rate is the sustained calls per second of a token bucket shared by
	// all operations, Burst its size (0: max(1, ceil(Rate))). A call with no
	// token gets 400 ThrottlingException "Rate exceeded". Rate 0 disables it.
	// The bucket starts full. Server.SetRate changes both while running.
	Rate  float64
	Burst int
	// RateSchedule changes Rate and Burst during the run, each change After
	// the server's start (New), as SetRate would at that instant. Order does
	// not matter; Server.RateChanges records the changes that came due.
	RateSchedule []ScheduledRate

	// Latency is added to every call, plus a uniform random extra in
	// [0, Jitter); the call takes its token at its arrival plus that delay.
	Latency, Jitter time.Duration

	// EntryFaultRate is the probability that one entry independently fails
	// with Fault "Server"; ThrottleRate and ErrorRate the probabilities that
	// a whole call gets ThrottlingException (400) or InternalServerError
	// (500). Each is in [0, 1].
	EntryFaultRate, ThrottleRate, ErrorRate float64
	// LostAnswerRate, ErrorAfterCreateRate and SlowAnswerRate are the
	// probabilities that a CreateAssociationBatch, CreateAssociation or
	// UpdateAssociation call that passed the whole-call checks executes
	// fully and then loses its answer: the connection is closed without a
	// response, the answer is a 500 InternalServerError, or the answer is
	// held for SlowAnswerDelay (0: DefaultSlowAnswerDelay; the hold ends
	// early when the client goes away). At most one of them applies to a
	// call, drawn in that order after the scripted DropAfterCreate,
	// ErrorAfterCreate and DelayAfterCreate. Each is in [0, 1].
	LostAnswerRate, ErrorAfterCreateRate, SlowAnswerRate float64
	SlowAnswerDelay                                      time.Duration

	// Seed seeds the random faults and jitter.
	Seed int64

	// Documents are added to (or replace by name) the built-in catalogue.
	Documents []Document
	// Nodes, when non-nil, is the complete inventory of managed nodes; when
	// nil every well-formed node ID is a managed, online Linux node.
	Nodes []Node

	// MaxBodyBytes bounds a request body: 0 means DefaultMaxBodyBytes, a
	// negative value means no bound.
	MaxBodyBytes int64
}

// DefaultOptions returns the documented service limit of 2,000 active
// associations with every fault off and no rate limit.
func DefaultOptions() Options {
	return Options{MaxAssociations: 2000, MaxBodyBytes: DefaultMaxBodyBytes}
}
