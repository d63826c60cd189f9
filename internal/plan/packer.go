package plan

// Packer packs items into batches as they arrive: at most size entries, in
// which no managed node appears twice, since SSM refuses a call that names a
// node in two entries (DuplicateInstanceId), even for different documents.
//
// Packing is first-fit from the oldest batch with room, so a request without
// repeated nodes fills every batch but the last, which keeps the number of
// calls at its minimum, ceil(n/size); a node that repeats k times lands in k
// different batches. Entries that name no node are kept apart likewise when
// they are the same association (see occupies). The engine's first round
// packs as claims come in; its retry rounds pack a list (Batches).
type Packer struct {
	size    int
	batches []Batch
	nodes   []map[string]struct{}
}

// NewPacker returns a packer of batches of at most size entries.
func NewPacker(size int) *Packer { return &Packer{size: max(size, 1)} }

// Add places an item and returns the batch it completed, if any.
func (p *Packer) Add(it Item) (Batch, bool) {
	occ := occupies(it)
	for b := range p.batches {
		if overlaps(p.nodes[b], occ) {
			continue
		}
		p.batches[b] = append(p.batches[b], it)
		addNodes(p.nodes[b], occ)
		if len(p.batches[b]) < p.size {
			return nil, false
		}
		full := p.batches[b]
		p.batches = append(p.batches[:b], p.batches[b+1:]...)
		p.nodes = append(p.nodes[:b], p.nodes[b+1:]...)
		return full, true
	}
	batch := make(Batch, 0, p.size)
	batch = append(batch, it)
	if p.size == 1 {
		return batch, true
	}
	p.batches = append(p.batches, batch)
	p.nodes = append(p.nodes, map[string]struct{}{})
	addNodes(p.nodes[len(p.nodes)-1], occ)
	return nil, false
}

// Flush returns the batches not yet full, and empties the packer.
func (p *Packer) Flush() []Batch {
	out := p.batches
	p.batches, p.nodes = nil, nil
	return out
}
