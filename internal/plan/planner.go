// Package plan turns a request's valid items into the work of one
// invocation: Items with their dedupe keys, each (document, node) once
// (inrequest.go), packed into CreateAssociationBatch calls (packer.go). The
// engine (internal/associate) then moves each Item through its life.
package plan

// Batch is the entries of one CreateAssociationBatch call.
type Batch []Item

// Batches packs items, in order, with a Packer: the batches that filled,
// in the order they filled, then those left open.
func Batches(items []Item, size int) []Batch {
	p := NewPacker(size)
	var out []Batch
	for _, it := range items {
		if b, full := p.Add(it); full {
			out = append(out, b)
		}
	}
	return append(out, p.Flush()...)
}

// occupies is what an item takes up in a batch, so that no other item of
// the batch may have it: its nodes (SSM refuses a call that names a node
// twice), or, for an entry that names no node, its identity (so that the
// answer cannot pair it with the wrong entry).
func occupies(it Item) []string {
	if len(it.Nodes) > 0 {
		return it.Nodes
	}
	return []string{"\x00" + EntryIdentity(it.Entry.SDK())}
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
