package faultproxy

import (
	"bytes"
	"fmt"
	"math/rand/v2"
)

// Fault is a failure the proxy injects instead of, or after, forwarding.
type Fault int

const (
	// Throttle answers HTTP 400 ProvisionedThroughputExceededException, as
	// DynamoDB does; the SDK's standard retryer treats it as a throttle.
	Throttle Fault = iota
	// ServerError answers HTTP 500 InternalServerError.
	ServerError
	// Unavailable answers HTTP 503 ServiceUnavailable.
	Unavailable
	// DropBeforeForward closes the client's connection without forwarding:
	// the request never reaches the target.
	DropBeforeForward
	// DropAfterForward forwards the request, waits for the target's whole
	// response (so a write has been applied), then closes the client's
	// connection without answering.
	DropAfterForward
	// Unprocessed answers a BatchWriteItem with success and every item in
	// UnprocessedItems, writing none, as DynamoDB does when it throttles a
	// whole batch: the request succeeds, so the SDK does not retry it, and
	// the caller must send the items again. Only for BatchWriteItem rules.
	Unprocessed
	// TransactionConflict is DynamoDB's answer when another transaction is
	// changing the item: nothing is written, and the SDK does not retry it.
	// To a TransactWriteItems it is HTTP 400 TransactionCanceledException
	// whose CancellationReasons name TransactionConflict for the last item
	// and None for the others; to a single-item write (PutItem, UpdateItem,
	// DeleteItem) HTTP 400 TransactionConflictException. Only for rules
	// naming one of these operations.
	TransactionConflict
	// Denied answers HTTP 400 AccessDeniedException, as when IAM or a key
	// policy refuses the call: a failure nobody retries, so the caller's
	// error path runs at once rather than after its retries are spent.
	Denied

	numFaults = iota
)

var faultNames = [numFaults]string{"Throttle", "ServerError", "Unavailable", "DropBeforeForward", "DropAfterForward", "Unprocessed", "TransactionConflict", "Denied"}

func (f Fault) String() string {
	if f < 0 || f >= numFaults {
		return fmt.Sprintf("Fault(%d)", int(f))
	}
	return faultNames[f]
}

// Rule says which requests fail and how.
//
// A request is checked against the rules in order and gets the fault of the
// first rule that fires; when none does, it is forwarded untouched.
type Rule struct {
	Operation string // the X-Amz-Target operation, e.g. "PutItem"; "" matches any
	// Match, when set, narrows the rule to the requests whose body it
	// reports true for (BodyContains builds the common one): one caller's
	// UpdateItem among several, say, told apart by an attribute only its
	// request names.
	Match func(body []byte) bool
	Rate  float64 // probability per matching request, used when Count == 0
	Count int     // when > 0: fail exactly the next Count matching requests, then the rule is spent
	Fault Fault
}

// BodyContains matches a request whose body contains s (an attribute name,
// say, as the expression's ExpressionAttributeNames spell it out).
func BodyContains(s string) func([]byte) bool {
	return func(body []byte) bool { return bytes.Contains(body, []byte(s)) }
}

// conflictOps are the operations DynamoDB can refuse with a transaction
// conflict.
var conflictOps = map[string]bool{"TransactWriteItems": true, "PutItem": true, "UpdateItem": true, "DeleteItem": true}

// rule is a Rule with the failures it still owes (Count rules only).
type rule struct {
	Rule
	left  int
	fired int
}

// ruleSet holds the rules and the seeded source of their Rate draws. It is
// not safe for concurrent use: the Proxy guards it with its mutex.
type ruleSet struct {
	rules []rule
	rng   *rand.Rand
}

func newRuleSet(seed int64) ruleSet {
	return ruleSet{rng: rand.New(rand.NewPCG(uint64(seed), 0))}
}

// set replaces the rules. The random sequence carries on, so a test that
// sends the same requests in the same order sees the same faults.
func (s *ruleSet) set(rules []Rule) {
	s.rules = make([]rule, len(rules))
	for i, r := range rules {
		if r.Fault < 0 || r.Fault >= numFaults {
			panic(fmt.Sprintf("faultproxy: rule %d has unknown fault %v", i, r.Fault))
		}
		if r.Fault == Unprocessed && r.Operation != "BatchWriteItem" {
			panic(fmt.Sprintf("faultproxy: rule %d: Unprocessed is a BatchWriteItem answer, not one for %q", i, r.Operation))
		}
		if r.Fault == TransactionConflict && !conflictOps[r.Operation] {
			panic(fmt.Sprintf("faultproxy: rule %d: TransactionConflict is an answer to TransactWriteItems, PutItem, UpdateItem or DeleteItem, not to %q", i, r.Operation))
		}
		s.rules[i] = rule{Rule: r, left: r.Count}
	}
}

// pick returns the fault to inject into a request for op with body, if
// any. Each matching Rate rule it reaches draws one number, whether or not
// it fires.
func (s *ruleSet) pick(op string, body []byte) (Fault, bool) {
	for i := range s.rules {
		r := &s.rules[i]
		if r.Operation != "" && r.Operation != op || r.Match != nil && !r.Match(body) {
			continue
		}
		if r.Count > 0 {
			if r.left == 0 {
				continue // spent
			}
			r.left--
			r.fired++
			return r.Fault, true
		}
		if s.rng.Float64() < r.Rate {
			r.fired++
			return r.Fault, true
		}
	}
	return 0, false
}

// fired returns how many requests each rule has failed, in rule order.
func (s *ruleSet) firedCounts() []int {
	out := make([]int, len(s.rules))
	for i, r := range s.rules {
		out[i] = r.fired
	}
	return out
}
