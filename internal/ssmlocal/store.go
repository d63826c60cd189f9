package ssmlocal

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
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
	// AssociationVersion is the current version: "1" at creation, one more
	// per UpdateAssociation. The other members describe that version.
	AssociationVersion string
	// Updated is the LastUpdateAssociationDate: Created until an update.
	Updated time.Time
	// Deleted is set once DeleteAssociation removed it; the ledger keeps it.
	Deleted bool
}

// Target is a Key/Values target of an association.
type Target struct {
	Key    string
	Values []string
}

// record is a stored association: the request entry its current version
// came from plus the keys the indexes file it under, and its earlier
// versions.
type record struct {
	seq     uint64
	id      string
	entry   wireEntry // current version as requested (InstanceId kept as given)
	docKey  string    // canonical document name
	nodes   []string
	tgtKey  string // canonical (document, non-node targets), "" when by node
	created time.Time
	updated time.Time // when the current version was made
	deleted bool
	// assumeRole is the AssociationDispatchAssumeRole of the current
	// version, echoed back.
	assumeRole *string
	// history holds the earlier versions, version 1 first; the current
	// version is len(history)+1.
	history []revision
}

// revision is an earlier version of an association.
type revision struct {
	entry      wireEntry
	assumeRole *string
	nodes      []string
	date       time.Time // when this version was made
}

// version is the current AssociationVersion as a number.
func (r *record) version() int { return len(r.history) + 1 }

// legacy reports whether the association was created with the legacy
// InstanceId member.
func (r *record) legacy() bool { return r.entry.InstanceId != nil }

// Double is an association created, or updated, to cover what another
// active association already covered: the same document, the same
// AssociationName ("" stands for an absent one, which the model's pattern
// cannot produce) and the same node, or, for an association that does not
// target nodes by ID, the same targets compared as sets.
type Double struct {
	// Document is the document name (an ARN reduced to the name).
	Document        string
	AssociationName string
	// Node is the node covered twice; "" for a double by targets.
	Node string
	// Targets are the new (or updated) association's targets when Node is
	// "".
	Targets []Target
	// AssociationIDs are the active associations that already covered it,
	// oldest first, then the new (or updated) one.
	AssociationIDs []string
}

// store holds every association. It is not safe for concurrent use: Server
// serialises access with its mutex so that check-then-create is atomic.
type store struct {
	seq    uint64
	ledger []*record
	byID   map[string]*record
	// byDocNode lists, per (document, node), the active associations that
	// address the node by ID (InstanceId or an InstanceIds target), oldest
	// first. Targets-form associations can stack up there; at most one
	// InstanceId-form association can, since it is refused on any.
	byDocNode map[string][]*record
	// byTargets lists, per canonical (document, targets), the active
	// associations that do not address nodes by ID, oldest first.
	byTargets map[string][]*record
	doubles   []Double
	active    int
}

func newStore() *store {
	return &store{byID: map[string]*record{}, byDocNode: map[string][]*record{}, byTargets: map[string][]*record{}}
}

func docNodeKey(doc, node string) string { return doc + "\x00" + node }

// canonicalTargets renders the targets of an association that does not
// address nodes by ID independently of order (of targets, of values, of
// maps and of target locations), so that two associations with the same
// targets as sets have the same key.
func canonicalTargets(doc string, ts []wireTarget, maps []map[string][]string, locs []wireTargetLocation) string {
	parts := make([]string, 0, len(ts)+len(maps)+len(locs))
	for _, t := range ts {
		parts = append(parts, canonicalTarget(t))
	}
	for _, m := range maps {
		parts = append(parts, "map:"+canonicalMap(m))
	}
	for _, l := range locs {
		parts = append(parts, "location:"+canonicalLocation(l))
	}
	sort.Strings(parts)
	return doc + "\x00" + strings.Join(parts, "\x02")
}

func canonicalTarget(t wireTarget) string {
	return orNull(t.Key) + "=" + sortedJoin(t.Values)
}

func canonicalMap(m map[string][]string) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + sortedJoin(m[k])
	}
	return strings.Join(parts, "\x03")
}

// canonicalLocation is the JSON of the location with its account, region
// and target lists sorted.
func canonicalLocation(l wireTargetLocation) string {
	l.Accounts = sortedClone(l.Accounts)
	l.Regions = sortedClone(l.Regions)
	l.ExcludeAccounts = sortedClone(l.ExcludeAccounts)
	ts := make([]string, len(l.Targets))
	for i, t := range l.Targets {
		ts[i] = canonicalTarget(t)
	}
	sort.Strings(ts)
	l.Targets = nil
	b, _ := json.Marshal(l) // plain strings, bools and pointers: cannot fail
	return string(b) + "\x04" + strings.Join(ts, "\x03")
}

func sortedClone(vs []string) []string {
	vs = slices.Clone(vs)
	sort.Strings(vs)
	return vs
}

func sortedJoin(vs []string) string { return strings.Join(sortedClone(vs), "\x01") }

// legacyCovering returns the active InstanceId-form association of (doc,
// node), the one DescribeAssociation and DeleteAssociation name by Name +
// InstanceId.
func (s *store) legacyCovering(docKey, node string) *record {
	for _, r := range s.byDocNode[docNodeKey(docKey, node)] {
		if r.legacy() {
			return r
		}
	}
	return nil
}

// covered reports whether an active association of the document, in either
// form, addresses the node by ID: what refuses an InstanceId-form entry.
func (s *store) covered(docKey, node string) bool {
	return len(s.byDocNode[docNodeKey(docKey, node)]) > 0
}

// sameName compares AssociationNames; an absent one is its own value.
func sameName(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// nameOf is a Double's AssociationName: "" when absent.
func nameOf(name *string) string {
	if name == nil {
		return ""
	}
	return *name
}

func idsWith(rs []*record, name *string, last string) []string {
	var ids []string
	for _, r := range rs {
		if sameName(r.entry.AssociationName, name) {
			ids = append(ids, r.id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return append(ids, last)
}

// add stores a new association and records the doubles it makes.
func (s *store) add(e wireEntry, docKey string, nodes []string, tgtKey string, now time.Time) *record {
	s.seq++
	r := &record{seq: s.seq, id: newUUID(), entry: e, docKey: docKey, nodes: nodes, tgtKey: tgtKey, created: now, updated: now}
	s.index(r, coverage{})
	s.ledger = append(s.ledger, r)
	s.byID[r.id] = r
	s.active++
	return r
}

// update makes the planned entry the association's new version: the
// current one goes to the history, and the indexes follow the new nodes
// and targets, so that InstanceId-form refusals, doubles and
// AssociationsByNode judge by what the association covers now. A double
// is recorded only for what the association did not already cover under
// the same document and AssociationName.
func (s *store) update(r *record, e wireEntry, docKey string, nodes []string, tgtKey string, assumeRole *string, now time.Time) {
	before := coverage{docKey: r.docKey, name: r.entry.AssociationName, nodes: r.nodes, tgtKey: r.tgtKey}
	s.unindex(r)
	r.history = append(r.history, revision{entry: r.entry, assumeRole: r.assumeRole, nodes: r.nodes, date: r.updated})
	r.entry, r.assumeRole, r.updated = e, assumeRole, now
	r.docKey, r.nodes, r.tgtKey = docKey, nodes, tgtKey
	s.index(r, before)
}

// coverage is what an association covered before an update: the keys
// doubles are judged by. The zero value covers nothing.
type coverage struct {
	docKey string
	name   *string
	nodes  []string
	tgtKey string
}

func (c coverage) node(docKey string, name *string, n string) bool {
	return c.docKey == docKey && sameName(c.name, name) && slices.Contains(c.nodes, n)
}

func (c coverage) targets(tgtKey string, name *string) bool {
	return c.tgtKey != "" && c.tgtKey == tgtKey && sameName(c.name, name)
}

// index files r under its (document, node) and targets keys, in creation
// order, and records a double for each key that another active
// association with the same AssociationName already holds, unless r
// already covered it before (was).
func (s *store) index(r *record, was coverage) {
	name := r.entry.AssociationName
	for _, n := range r.nodes {
		k := docNodeKey(r.docKey, n)
		if !was.node(r.docKey, name, n) {
			if ids := idsWith(s.byDocNode[k], name, r.id); ids != nil {
				s.doubles = append(s.doubles, Double{Document: r.docKey, AssociationName: nameOf(name), Node: n, AssociationIDs: ids})
			}
		}
		insertBySeq(s.byDocNode, k, r)
	}
	if r.tgtKey != "" {
		if !was.targets(r.tgtKey, name) {
			if ids := idsWith(s.byTargets[r.tgtKey], name, r.id); ids != nil {
				s.doubles = append(s.doubles, Double{Document: r.docKey, AssociationName: nameOf(name), Targets: r.association().Targets, AssociationIDs: ids})
			}
		}
		insertBySeq(s.byTargets, r.tgtKey, r)
	}
}

// unindex takes r out of the (document, node) and targets indexes.
func (s *store) unindex(r *record) {
	for _, n := range r.nodes {
		dropFrom(s.byDocNode, docNodeKey(r.docKey, n), r)
	}
	if r.tgtKey != "" {
		dropFrom(s.byTargets, r.tgtKey, r)
	}
}

// insertBySeq adds r to the list at m[k], keeping the list in creation
// order (an updated association keeps its place among older ones).
func insertBySeq(m map[string][]*record, k string, r *record) {
	rs := m[k]
	i, _ := slices.BinarySearchFunc(rs, r.seq, func(x *record, seq uint64) int { return cmp.Compare(x.seq, seq) })
	m[k] = slices.Insert(rs, i, r)
}

func (s *store) remove(r *record) {
	if r.deleted {
		return
	}
	r.deleted = true
	delete(s.byID, r.id)
	s.unindex(r)
	s.active--
}

// dropFrom removes r from the list at m[k], and the key once it is empty.
func dropFrom(m map[string][]*record, k string, r *record) {
	rs := slices.DeleteFunc(m[k], func(x *record) bool { return x == r })
	if len(rs) == 0 {
		delete(m, k)
		return
	}
	m[k] = rs
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
		AssociationID:      r.id,
		Name:               orNull(r.entry.Name),
		DocumentVersion:    documentVersionOf(r.entry),
		NodeIDs:            slices.Clone(r.nodes),
		Created:            r.created,
		AssociationVersion: strconv.Itoa(r.version()),
		Updated:            r.updated,
		Deleted:            r.deleted,
	}
	if r.entry.InstanceId != nil {
		a.InstanceID = *r.entry.InstanceId
	}
	for _, t := range r.entry.Targets {
		a.Targets = append(a.Targets, Target{Key: orNull(t.Key), Values: slices.Clone(t.Values)})
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
