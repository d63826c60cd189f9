package plan

import (
	"fmt"
	"testing"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func items(nodes ...string) []Item {
	out := make([]Item, len(nodes))
	for i, n := range nodes {
		if n == "" {
			out[i] = Item{Path: fmt.Sprintf("Entries[%d]", i)} // tag-targeted: no nodes
			continue
		}
		out[i] = Item{Path: fmt.Sprintf("Entries[%d]", i), Nodes: []string{n}}
	}
	return out
}

func TestBatches(t *testing.T) {
	tests := []struct {
		name  string
		items []Item
		size  int
		want  [][]string // paths per batch
	}{
		{"empty", nil, 10, nil},
		{"exact fill", items("a", "b", "c", "d"), 2, [][]string{{"Entries[0]", "Entries[1]"}, {"Entries[2]", "Entries[3]"}}},
		{"remainder", items("a", "b", "c"), 2, [][]string{{"Entries[0]", "Entries[1]"}, {"Entries[2]"}}},
		{"repeated node goes to next batch", items("a", "a", "b"), 3, [][]string{{"Entries[0]", "Entries[2]"}, {"Entries[1]"}}},
		{"node repeated three times", items("a", "a", "a"), 10, [][]string{{"Entries[0]"}, {"Entries[1]"}, {"Entries[2]"}}},
		{"untargeted entries fill gaps", items("a", "a", "", ""), 2, [][]string{{"Entries[0]", "Entries[2]"}, {"Entries[1]", "Entries[3]"}}},
		{"size below one is one", items("a", "b"), 0, [][]string{{"Entries[0]"}, {"Entries[1]"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Batches(tt.items, tt.size)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d batches, want %d: %v", len(got), len(tt.want), got)
			}
			for i, b := range got {
				if len(b) != len(tt.want[i]) {
					t.Fatalf("batch %d has %d items, want %v", i, len(b), tt.want[i])
				}
				for j, it := range b {
					if it.Path != tt.want[i][j] {
						t.Errorf("batch %d item %d = %s, want %s", i, j, it.Path, tt.want[i][j])
					}
				}
			}
		})
	}
}

func TestBatchesInvariants(t *testing.T) {
	// 1,000 entries over 300 nodes, several documents per node.
	var its []Item
	for i := range 1000 {
		its = append(its, Item{Path: fmt.Sprint(i), Nodes: []string{fmt.Sprintf("i-%017d", i%300)}})
	}
	const size = 10
	batches := Batches(its, size)
	seen := 0
	for i, b := range batches {
		if len(b) == 0 || len(b) > size {
			t.Fatalf("batch %d has %d entries", i, len(b))
		}
		nodes := map[string]bool{}
		for _, it := range b {
			if nodes[it.Nodes[0]] {
				t.Fatalf("batch %d names node %s twice", i, it.Nodes[0])
			}
			nodes[it.Nodes[0]] = true
		}
		seen += len(b)
	}
	if seen != len(its) {
		t.Fatalf("planned %d entries, want %d", seen, len(its))
	}
	if min := (len(its) + size - 1) / size; len(batches) != min {
		t.Errorf("%d batches, want the minimum %d", len(batches), min)
	}
}

func TestSplit(t *testing.T) {
	b := Batch(items("a", "b", "c"))
	l, r := Split(b)
	if len(l) != 1 || len(r) != 2 || l[0].Path != "Entries[0]" || r[1].Path != "Entries[2]" {
		t.Fatalf("Split = %v, %v", l, r)
	}
	l = append(l, Item{Path: "x"}) // must not overwrite r[0]
	if r[0].Path != "Entries[1]" {
		t.Fatal("left half aliases the right one")
	}
}

func TestPacker(t *testing.T) {
	p := NewPacker(3)
	var full []Batch
	for _, it := range items("a", "a", "b", "c", "a", "d") {
		if b, ok := p.Add(it); ok {
			full = append(full, b)
		}
	}
	rest := p.Flush()
	// a,b,c fill the first batch; the second a and d wait in the second,
	// the third a in a third.
	if len(full) != 1 || len(full[0]) != 3 || full[0][0].Path != "Entries[0]" || full[0][2].Path != "Entries[3]" {
		t.Fatalf("full %v", full)
	}
	if len(rest) != 2 || len(rest[0]) != 2 || len(rest[1]) != 1 {
		t.Fatalf("rest %v", rest)
	}
	for _, b := range append(full, rest...) {
		seen := map[string]bool{}
		for _, it := range b {
			if seen[it.Nodes[0]] {
				t.Fatalf("batch %v repeats a node", b)
			}
			seen[it.Nodes[0]] = true
		}
	}
	if len(p.Flush()) != 0 {
		t.Error("Flush does not empty the packer")
	}
}

// Entries that name no node but are the same association (same document
// and targets, other settings) would be indistinguishable in the answer:
// they never share a call. Others do.
func TestSameAssociationNeverSharesACall(t *testing.T) {
	tags := []request.Target{{Key: "tag:Env", Values: []string{"prod"}}}
	mk := func(path, doc, schedule string) Item {
		return Item{Path: path, Entry: request.Entry{Name: doc, Targets: tags, ScheduleExpression: &schedule}}
	}
	in := []Item{mk("a", "D1", "rate(1 day)"), mk("b", "D1", "rate(7 days)"), mk("c", "D2", "rate(1 day)")}
	batches := Batches(in, 10)
	if len(batches) != 2 || len(batches[0]) != 2 || batches[0][1].Path != "c" || batches[1][0].Path != "b" {
		t.Fatalf("batches %v", batches)
	}
	p := NewPacker(10)
	for _, it := range in {
		p.Add(it)
	}
	if rest := p.Flush(); len(rest) != 2 || len(rest[1]) != 1 || rest[1][0].Path != "b" {
		t.Fatalf("packer %v", rest)
	}
}
