package plan

import "github.com/ssm-association-batcher/ssm-association-batcher/internal/work"

// Packer packs items into batches as they arrive, under the rules of
// Batches: at most size entries, no node twice in a batch.
type Packer struct {
	size    int
	batches []Batch
	nodes   []map[string]struct{}
}

// NewPacker returns a packer of batches of at most size entries.
func NewPacker(size int) *Packer { return &Packer{size: max(size, 1)} }

// Add places an item and returns the batch it completed, if any.
func (p *Packer) Add(it work.Item) (Batch, bool) {
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
