package ssmlocal

import (
	"crypto/rand"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Association is one association as the ledger records it.
type Association struct {
	AssociationID string
	// Name is the document name as the request gave it.
	Name            string
	DocumentVersion string
	// InstanceID is set when the association was made with the legacy
	// InstanceId member.
	InstanceID string
	// NodeIDs are the nodes addressed by ID: InstanceId, or the values of
	// an InstanceIds target.
	NodeIDs []string
	Targets []Target
	Created time.Time
	// Deleted is set once DeleteAssociation removed it; the ledger keeps it.
	Deleted bool
}

// Target is a Key/Values target of an association.
type Target struct {
	Key    string
	Values []string
}

// record is a stored association: the request entry it came from plus the
// indexes that make "already exists" checks cheap.
type record struct {
	seq     uint64
	id      string
	entry   wireEntry // as requested, with InstanceId also expressed as Targets
	docKey  string    // canonical document name
	nodes   []string
	tgtKey  string // canonical (document, non-node targets), "" when by node
	created time.Time
	deleted bool
	// assumeRole is the call's AssociationDispatchAssumeRole, echoed back.
	assumeRole *string
}

// store holds every association. It is not safe for concurrent use: Server
// serialises access with its mutex so that check-then-create is atomic.
type store struct {
	seq       uint64
	ledger    []*record
	byID      map[string]*record
	byDocNode map[string]*record
	byTargets map[string]*record
	active    int
}

func newStore() *store {
	return &store{byID: map[string]*record{}, byDocNode: map[string]*record{}, byTargets: map[string]*record{}}
}

func docNodeKey(doc, node string) string { return doc + "\x00" + node }

// canonicalTargets renders targets independent of order, so that the same
// tag targets given in another order still count as "already exists".
func canonicalTargets(doc string, ts []wireTarget, maps []map[string][]string) string {
	parts := make([]string, 0, len(ts)+len(maps))
	for _, t := range ts {
		vs := slices.Clone(t.Values)
		sort.Strings(vs)
		parts = append(parts, deref(t.Key)+"="+strings.Join(vs, "\x01"))
	}
	for _, m := range maps {
		parts = append(parts, "map:"+renderMap(m))
	}
	sort.Strings(parts)
	return doc + "\x00" + strings.Join(parts, "\x02")
}

// existing returns an active association that already covers (doc, nodes)
// or (doc, targets).
func (s *store) existing(docKey string, nodes []string, tgtKey string) *record {
	for _, n := range nodes {
		if r := s.byDocNode[docNodeKey(docKey, n)]; r != nil {
			return r
		}
	}
	if tgtKey != "" {
		return s.byTargets[tgtKey]
	}
	return nil
}

func (s *store) add(e wireEntry, docKey string, nodes []string, tgtKey string, now time.Time) *record {
	s.seq++
	r := &record{seq: s.seq, id: newUUID(), entry: e, docKey: docKey, nodes: nodes, tgtKey: tgtKey, created: now}
	s.ledger = append(s.ledger, r)
	s.byID[r.id] = r
	for _, n := range nodes {
		s.byDocNode[docNodeKey(docKey, n)] = r
	}
	if tgtKey != "" {
		s.byTargets[tgtKey] = r
	}
	s.active++
	return r
}

func (s *store) remove(r *record) {
	if r.deleted {
		return
	}
	r.deleted = true
	delete(s.byID, r.id)
	for _, n := range r.nodes {
		if s.byDocNode[docNodeKey(r.docKey, n)] == r {
			delete(s.byDocNode, docNodeKey(r.docKey, n))
		}
	}
	if r.tgtKey != "" && s.byTargets[r.tgtKey] == r {
		delete(s.byTargets, r.tgtKey)
	}
	s.active--
}

// activeRecords lists active associations in creation order.
func (s *store) activeRecords() []*record {
	out := make([]*record, 0, s.active)
	for _, r := range s.ledger {
		if !r.deleted {
			out = append(out, r)
		}
	}
	return out
}

func (r *record) association() Association {
	a := Association{
		AssociationID:   r.id,
		Name:            deref(r.entry.Name),
		DocumentVersion: documentVersionOf(r.entry),
		NodeIDs:         slices.Clone(r.nodes),
		Created:         r.created,
		Deleted:         r.deleted,
	}
	if r.entry.InstanceId != nil {
		a.InstanceID = *r.entry.InstanceId
	}
	for _, t := range r.entry.Targets {
		a.Targets = append(a.Targets, Target{Key: deref(t.Key), Values: slices.Clone(t.Values)})
	}
	return a
}

func documentVersionOf(e wireEntry) string {
	if e.DocumentVersion != nil {
		return *e.DocumentVersion
	}
	return "$DEFAULT"
}

// newUUID returns a random version-4 UUID, the form of real association IDs.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
