package plan

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// InRequest turns the valid items of a request into work, keeping the first
// occurrence of every key. A later entry for a (document, node) already seen
// is narrowed to its other nodes, and the dropped node is reported on its own
// as a duplicate; an entry left with nothing to do is dropped whole.
func InRequest(items []request.Item) ([]Item, []report.Deduplicated) {
	var (
		out  = make([]Item, 0, len(items))
		dups []report.Deduplicated
		seen = make(map[string]struct{}, len(items))
		// The last valid item and its fingerprint: the next often repeats
		// its settings.
		prev     *request.Item
		prevSets dedupe.Settings
	)
	for i := range items {
		// By index: an Item is a few hundred bytes, and a request holds up
		// to 100,000 of them.
		it := &items[i]
		if !it.Valid() {
			continue
		}
		if prev == nil || !dedupe.SameSettings(prev.Entry, it.Entry) {
			prevSets = dedupe.SettingsOf(it.Entry)
		}
		prev = it
		w := newItem(it, prevSets)
		keep := make([]int, 0, len(w.Keys))
		for i, k := range w.Keys {
			if _, dup := seen[k]; dup {
				dropped := w
				if len(w.Nodes) > 0 {
					dropped = w.Single(i)
				}
				dups = append(dups, report.Deduplicated{Entry: dropped.Entry, Reason: report.ReasonDuplicateInRequest})
				continue
			}
			seen[k] = struct{}{}
			keep = append(keep, i)
		}
		switch {
		case len(keep) == 0:
		case len(keep) == len(w.Keys):
			out = append(out, w)
		default:
			out = append(out, w.Narrow(keep))
		}
	}
	return out, dups
}

// NewItem makes the work item of a valid request item, computing its keys
// and the fingerprint of its settings.
func NewItem(it *request.Item) Item { return newItem(it, dedupe.SettingsOf(it.Entry)) }

// newItem is NewItem with the fingerprint known (shared, never written).
func newItem(it *request.Item, settings dedupe.Settings) Item {
	w := Item{Entry: it.Entry, Path: it.Path, Nodes: it.Entry.Nodes(), Settings: settings}
	if len(w.Nodes) == 0 {
		w.Keys = []string{dedupe.TargetsKey(it.Entry)}
		return w
	}
	w.Keys = make([]string, len(w.Nodes))
	for i, n := range w.Nodes {
		w.Keys[i] = dedupe.NodeKey(it.Entry.Name, aws.ToString(it.Entry.AssociationName), n)
	}
	return w
}
