// Package work holds the unit that travels the pipeline between dedupe,
// planning and the SSM calls: one entry, the nodes it targets and the dedupe
// keys this invocation has to claim, record or release for it.
package plan

import (
	"strconv"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Item is one entry on its way to SSM.
type Item struct {
	// Entry is the entry as it will be sent: for node-targeted entries,
	// narrowed to the nodes that are still to do.
	Entry request.Entry
	// Path says where the entry came from in the request ("Entries[3]").
	Path string
	// Nodes are the managed nodes the entry targets by ID; empty for entries
	// that target tags, resource groups, TargetMaps or TargetLocations.
	Nodes []string
	// Keys are the dedupe keys: one per node, in the order of Nodes, or a
	// single targets key.
	Keys []string
	// Settings fingerprints the entry's settings (dedupe.SettingsOf): what
	// its claim records, to tell a rerun with changed settings.
	Settings map[string]string
	// Attempts counts the times the entry was sent to SSM.
	Attempts int
	// Stage is where the entry is in its life (internal/associate moves it).
	Stage Stage
	// PossiblySent is set once the entry may have reached SSM without an
	// answer saying what SSM did (or its claim was taken over from an
	// invocation that may have sent it). Its claim is never released after
	// that: only recorded as associated, or kept.
	PossiblySent bool
	// FirstSent is when this invocation first sent the entry; zero if it
	// never did.
	FirstSent time.Time
	// RetryAfter is when a Retryable entry's backoff ends: it is not sent
	// again before then.
	RetryAfter time.Time
	// Reads counts the times SSM was read to settle the entry.
	Reads int
}

// Stage is where an entry is between the claim of its keys and its outcome;
// the outcomes themselves (Successful, Failed, Deduplicated, Unprocessed)
// are final and live in the report.
type Stage uint8

const (
	// Ready: claimed, and free to be sent.
	Ready Stage = iota
	// Sent: in a call whose answer is awaited.
	Sent
	// Retryable: SSM said it did not create the entry; send it again.
	Retryable
	// Unknown: the call's answer never came, so SSM may have created the
	// entry. Read SSM before sending it again.
	Unknown
	// Exists: SSM refused the entry as already existing; read SSM for the
	// association of each of its nodes.
	Exists
)

var stageNames = [...]string{"ready", "sent", "retryable", "unknown", "exists"}

func (s Stage) String() string {
	if int(s) < len(stageNames) {
		return stageNames[s]
	}
	return "stage(" + strconv.Itoa(int(s)) + ")"
}

// Narrow returns the item restricted to the nodes at the given indexes of
// Nodes, with its entry and keys narrowed alike.
func (it Item) Narrow(keep []int) Item {
	if len(it.Nodes) == 0 {
		return it
	}
	out := it
	out.Nodes = make([]string, len(keep))
	out.Keys = make([]string, len(keep))
	for i, k := range keep {
		out.Nodes[i] = it.Nodes[k]
		out.Keys[i] = it.Keys[k]
	}
	out.Entry = it.Entry.WithNodes(out.Nodes)
	return out
}

// Single returns the item restricted to its i-th node: how one node of a
// multi-node entry is reported on its own.
func (it Item) Single(i int) Item { return it.Narrow([]int{i}) }
