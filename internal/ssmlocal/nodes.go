package ssmlocal

import (
	"fmt"
	"strings"
)

// Node is a managed node of an explicit inventory (-nodes FILE holds a JSON
// array of them).
type Node struct {
	ID string `json:"id"`
	// PlatformType is Linux (the default), Windows or MacOS.
	PlatformType string `json:"platformType,omitempty"`
	// State is Online (the default), ConnectionLost, Inactive, Stopped,
	// Shutting-down or Terminated. Following the API reference, only
	// Shutting-down and Terminated nodes refuse associations; a node that
	// lost its connection still gets one and applies it when it returns.
	State string `json:"state,omitempty"`
}

// inventory answers "is this node managed, and what is it". A nil map means
// no explicit inventory: every well-formed ID is a managed, online Linux
// node. Immutable after New.
type inventory map[string]Node

func newInventory(nodes []Node) inventory {
	if nodes == nil {
		return nil
	}
	inv := inventory{}
	for _, n := range nodes {
		inv[n.ID] = n
	}
	return inv
}

func (inv inventory) node(id string) (Node, bool) {
	if inv == nil {
		return Node{ID: id, PlatformType: "Linux", State: "Online"}, true
	}
	n, ok := inv[id]
	if n.PlatformType == "" {
		n.PlatformType = "Linux"
	}
	return n, ok
}

// refusesAssociations is the API reference's "invalid states are
// Shutting-down and Terminated".
func (n Node) refusesAssociations() bool {
	switch strings.ToLower(n.State) {
	case "terminated", "shutting-down", "shuttingdown":
		return true
	}
	return false
}

// LoadNodes reads a JSON array of Nodes from path (-nodes).
func LoadNodes(path string) ([]Node, error) {
	nodes := []Node{}
	if err := readJSONFile(path, &nodes); err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	for i, n := range nodes {
		if n.ID == "" {
			return nil, fmt.Errorf("nodes: %s: entry %d has no id", path, i+1)
		}
	}
	return nodes, nil
}
