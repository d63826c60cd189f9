package request

import (
	"strconv"
	"strings"
	"unicode"
)

// This file holds the paths problems are reported at, such as
// Entries[3].Targets[0].Key: jpath, built as the decoder descends and spelled
// out only for a problem, and memberPath and indexPath, which spell one step.

// jpath is a path into the request that is spelled out (String) only when a
// problem is reported there. Decoding 100,000 entries visits about a million
// members and elements; building each one's path string up front, error or
// not, cost more allocations than the entries themselves. A jpath lives on
// the stack of the reader of its value and points at its parent's, so making
// one allocates nothing. String gives exactly what memberPath and indexPath
// give when applied step by step.
type jpath struct {
	parent *jpath
	// s is the whole path when parent is nil, else the member name.
	s string
	// index is the element index, or -1 for a member (or a root).
	index int
}

// rootPath is a path already spelled out ("Entries[3]", "" for the body).
func rootPath(path string) jpath { return jpath{s: path, index: -1} }

// member is the path of member name of the object at p.
func (p *jpath) member(name string) jpath { return jpath{parent: p, s: name, index: -1} }

// elem is the path of element i of the array at p.
func (p *jpath) elem(i int) jpath { return jpath{parent: p, index: i} }

func (p *jpath) String() string {
	// The copy keeps the result from sharing memory with *p, so that to the
	// compiler's escape analysis, which does not tell fields apart, the
	// parent pointers do not flow into the problem list: a jpath and its
	// parents stay on the stack. It costs one allocation per problem.
	return strings.Clone(p.spell())
}

func (p *jpath) spell() string {
	switch {
	case p.parent == nil:
		return p.s
	case p.index >= 0:
		return indexPath(p.parent.spell(), p.index)
	default:
		return memberPath(p.parent.spell(), p.s)
	}
}

// memberPath appends a member name to a path: Entries[0].Name, or
// Parameters["my param"] when the name is not a plain identifier (parameter
// names and TargetMap keys can contain anything). Very long names are cut:
// the path is for finding the member, not for echoing the request.
func memberPath(path, name string) string {
	const maxName = 64
	if len(name) > maxName && len([]rune(name)) > maxName {
		name = string([]rune(name)[:maxName]) + "…"
	}
	if !plainName(name) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func plainName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r != '_' && r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
