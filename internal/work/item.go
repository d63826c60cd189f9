// Package work holds the unit that travels the pipeline between dedupe,
// planning and the SSM calls: one entry, the nodes it targets and the dedupe
// keys this invocation has to claim, record or release for it.
package work

import "github.com/ssm-association-batcher/ssm-association-batcher/internal/request"

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
	// Attempts counts the times the entry was sent to SSM.
	Attempts int
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
