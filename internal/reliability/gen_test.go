package reliability_test

import (
	"fmt"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

const (
	docAgent = "AWS-UpdateSSMAgent"
	docShell = "AWS-RunShellScript"
)

func nodeID(n int) string { return fmt.Sprintf("i-%017x", n) }

// genRequest is a CreateAssociationBatch request of the shapes operators
// send, and what it names.
type genRequest struct {
	body []byte
	// entries is the number of entries (Summary.Requested).
	entries int
	// occurrences counts how often each document/node is named.
	occurrences map[string]int
}

func (g *genRequest) add(e request.Entry, list *[]request.Entry) {
	*list = append(*list, e)
	g.entries++
	for _, k := range nodesOf(e.Name, e.InstanceId, e.Targets) {
		g.occurrences[k]++
	}
}

// distinct is the number of (document, node) pairs the request names.
func (g *genRequest) distinct() int { return len(g.occurrences) }

// mixedRequest builds a request over nodes first..first+n-1:
//   - AWS-UpdateSSMAgent for every node, mostly by InstanceId, every tenth
//     group of three nodes as one entry with an InstanceIds target;
//   - AWS-RunShellScript (with a Parameters value) for every fifth node, so
//     a node appears in two documents and batches must keep it apart;
//   - repeats: every 25th node again by InstanceId, and every 50th node in a
//     two-node target with a node named nowhere else, which the function
//     must narrow to the new node.
func mixedRequest(first, n int) *genRequest {
	g := &genRequest{occurrences: map[string]int{}}
	var entries []request.Entry
	for i := 0; i < n; {
		if i%10 == 7 && i+2 < n {
			g.add(request.Entry{Name: docAgent, Targets: []request.Target{{Key: "InstanceIds", Values: []string{nodeID(first + i), nodeID(first + i + 1), nodeID(first + i + 2)}}}}, &entries)
			i += 3
			continue
		}
		id := nodeID(first + i)
		g.add(request.Entry{Name: docAgent, InstanceId: &id}, &entries)
		i++
	}
	for i := 0; i < n; i += 5 {
		g.add(request.Entry{Name: docShell,
			Targets:    []request.Target{{Key: "InstanceIds", Values: []string{nodeID(first + i)}}},
			Parameters: map[string][]string{"commands": {"echo reliability"}},
		}, &entries)
	}
	for i := 0; i < n; i += 25 {
		id := nodeID(first + i)
		g.add(request.Entry{Name: docAgent, InstanceId: &id}, &entries)
	}
	for i := 0; i < n; i += 50 {
		g.add(request.Entry{Name: docAgent, Targets: []request.Target{{Key: "InstanceIds", Values: []string{nodeID(first + i), nodeID(first + n + 1000 + i)}}}}, &entries)
	}
	g.body = mustJSON(map[string]any{"Entries": entries})
	return g
}

// plainRequest is one AWS-UpdateSSMAgent entry by InstanceId per node of
// nodes: the shape of large fleets.
func plainRequest(nodes []int) *genRequest {
	g := &genRequest{occurrences: map[string]int{}}
	var entries []request.Entry
	for _, n := range nodes {
		id := nodeID(n)
		g.add(request.Entry{Name: docAgent, InstanceId: &id}, &entries)
	}
	g.body = mustJSON(map[string]any{"Entries": entries})
	return g
}

// fanoutEvent is an EventBridge event whose detail is a fan-out request
// over nodes: one Targets-form entry per node, which SSM would create a
// second time if it were sent again.
func fanoutEvent(nodes []int) *genRequest {
	g := &genRequest{occurrences: map[string]int{}}
	var entries []request.Entry
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = nodeID(n)
		g.add(request.Entry{Name: docAgent, Targets: []request.Target{{Key: "InstanceIds", Values: []string{ids[i]}}}}, &entries)
	}
	g.body = mustJSON(map[string]any{
		"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "Associate Nodes",
		"source": "ssm-association-batcher", "account": "123456789012", "time": "2026-12-02T04:00:00Z",
		"region": "us-east-1", "resources": []string{},
		"detail": map[string]any{"Association": map[string]string{"Name": docAgent}, "InstanceIds": ids},
	})
	return g
}

func span(from, to int) []int {
	out := make([]int, 0, to-from)
	for n := from; n < to; n++ {
		out = append(out, n)
	}
	return out
}
