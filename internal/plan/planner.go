// Package plan packs work into CreateAssociationBatch calls.
package plan

import "github.com/ssm-association-batcher/ssm-association-batcher/internal/work"

// Batch is the entries of one CreateAssociationBatch call.
type Batch []work.Item

// Batches packs items, in order, into batches of at most size entries in
// which no managed node appears twice: SSM refuses a call that names a node
// in two entries (DuplicateInstanceId), even for different documents.
//
// Packing is first-fit from the oldest batch with room, so a request without
// repeated nodes fills every batch but the last, which keeps the number of
// calls at its minimum, ceil(n/size); a node that repeats k times lands in k
// different batches. Entries that name no node are kept apart likewise when
// they are the same association (see occupies).
func Batches(items []work.Item, size int) []Batch {
	if size < 1 {
		size = 1
	}
	var (
		batches []Batch
		nodes   []map[string]struct{} // nodes of each batch
		open    int                   // batches before this index are full
	)
	for _, it := range items {
		occ := occupies(it)
		placed := false
		for b := open; b < len(batches); b++ {
			if len(batches[b]) >= size || overlaps(nodes[b], occ) {
				continue
			}
			batches[b] = append(batches[b], it)
			addNodes(nodes[b], occ)
			placed = true
			break
		}
		if !placed {
			batch := make(Batch, 0, size)
			batches = append(batches, append(batch, it))
			nodes = append(nodes, make(map[string]struct{}, size))
			addNodes(nodes[len(nodes)-1], occ)
		}
		for open < len(batches) && len(batches[open]) >= size {
			open++
		}
	}
	return batches
}

// occupies is what an item takes up in a batch, so that no other item of
// the batch may have it: its nodes (SSM refuses a call that names a node
// twice), or, for an entry that names no node, its identity (so that the
// answer cannot pair it with the wrong entry).
func occupies(it work.Item) []string {
	if len(it.Nodes) > 0 {
		return it.Nodes
	}
	return []string{"\x00" + work.EntryIdentity(it.Entry.SDK())}
}

func overlaps(set map[string]struct{}, nodes []string) bool {
	for _, n := range nodes {
		if _, ok := set[n]; ok {
			return true
		}
	}
	return false
}

func addNodes(set map[string]struct{}, nodes []string) {
	for _, n := range nodes {
		set[n] = struct{}{}
	}
}

// Split halves a batch that SSM refused as a whole, so that the entry that
// caused the refusal can be told from its neighbours.
func Split(b Batch) (Batch, Batch) {
	mid := len(b) / 2
	return b[:mid:mid], b[mid:]
}
