// Package reconcile reads SSM back to settle entries whose outcome is
// unknown. CreateAssociationBatch is not idempotent and SSM creates a second
// identical Targets-form association without complaint, so an entry whose
// answer was lost must never be resent blindly: Find tells which of them SSM
// already holds, and Match also which have an association of the same
// identity (document, targets, TargetMaps, AssociationName) with other
// settings, which must not get a second one.
//
// Reads rely only on the ListAssociations Name and AssociationName filters
// and on DescribeAssociation by AssociationId; never on the InstanceId
// filter, which AWS does not document to match Targets-form associations.
package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// reader is the two SSM reads; *ssm.Client has them.
type reader interface {
	ListAssociations(context.Context, *ssm.ListAssociationsInput, ...func(*ssm.Options)) (*ssm.ListAssociationsOutput, error)
	DescribeAssociation(context.Context, *ssm.DescribeAssociationInput, ...func(*ssm.Options)) (*ssm.DescribeAssociationOutput, error)
}

// pageSize is ListAssociations' largest MaxResults.
const pageSize = 50

// Reader settles entries in doubt. It is safe for concurrent use when its
// client is.
type Reader struct {
	ssm   reader
	wait  func(context.Context) error
	reads atomic.Int64
}

// New returns a Reader over client. wait, when not nil, is called before
// every SSM call (to pace reads with the caller's rate limiter); its error
// aborts the read.
func New(client reader, wait func(context.Context) error) *Reader {
	return &Reader{ssm: client, wait: wait}
}

// Reads reports how many SSM calls the Reader made: ListAssociations pages
// plus DescribeAssociation calls, failed ones included.
func (r *Reader) Reads() int { return int(r.reads.Load()) }

// Match is what SSM holds for one entry.
type Match struct {
	// Exact is the association that is this entry (same identity, no
	// Differences), or nil.
	Exact *ssmtypes.AssociationDescription
	// Same is, when there is no exact one, an association of the same
	// identity with other settings, and Differences names them (never
	// values). nil when SSM holds none.
	Same        *ssmtypes.AssociationDescription
	Differences []string
}

// Find returns, for each entry (same index), the association SSM holds that
// is this entry, or nil when SSM holds none: same identity (document,
// targets and TargetMaps compared as sets, an InstanceId entry equal to an
// InstanceIds target of that one node, same AssociationName) and no
// Differences. Of several such associations (doubles) the earliest by Date
// is returned, and no association is given to two entries.
//
// Each document's associations are listed once; every candidate that the
// summaries do not rule out is then described by AssociationId. An error
// leaves every entry in doubt. Find is Match without the near matches, and
// without the describes they cost.
func (r *Reader) Find(ctx context.Context, entries []request.Entry) ([]*ssmtypes.AssociationDescription, error) {
	ms, err := r.match(ctx, entries, false)
	if err != nil {
		return nil, err
	}
	out := make([]*ssmtypes.AssociationDescription, len(entries))
	for i, m := range ms {
		out[i] = m.Exact
	}
	return out, nil
}

// Match returns, for each entry (same index), what SSM holds for it: the
// association that is this entry, as Find finds it (Exact); or else one of
// the same identity with other settings (Same, with the names of the
// differing settings), which an entry in doubt must not get a second of.
// Both are chosen earliest by Date first, an exact match is preferred to a
// near one, and no association is given to two entries.
//
// Reads: the listing of Find and its describes; then, only for entries
// left without an exact match, a describe of each further association
// whose summary has the entry's identity (the earliest needs every Date).
// An entry that has an exact match costs no describe more than Find.
func (r *Reader) Match(ctx context.Context, entries []request.Entry) ([]Match, error) {
	return r.match(ctx, entries, true)
}

func (r *Reader) match(ctx context.Context, entries []request.Entry, near bool) ([]Match, error) {
	out := make([]Match, len(entries))
	var docs []string
	groups := map[string][]int{}
	for i, e := range entries {
		if _, ok := groups[e.Name]; !ok {
			docs = append(docs, e.Name)
		}
		groups[e.Name] = append(groups[e.Name], i)
	}
	for _, doc := range docs {
		if err := r.matchDocument(ctx, doc, entries, groups[doc], near, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// candidate is a described association and its place in the listing, the
// tie-break between equal creation dates.
type candidate struct {
	desc  *ssmtypes.AssociationDescription
	view  view
	pos   int
	taken bool
}

func (r *Reader) matchDocument(ctx context.Context, doc string, entries []request.Entry, idx []int, near bool, out []Match) error {
	filters := []ssmtypes.AssociationFilter{{Key: ssmtypes.AssociationFilterKeyName, Value: aws.String(doc)}}
	if name, ok := commonAssociationName(entries, idx); ok {
		filters = append(filters, ssmtypes.AssociationFilter{Key: ssmtypes.AssociationFilterKeyAssociationName, Value: aws.String(name)})
	}
	summaries, err := r.list(ctx, doc, filters)
	if err != nil {
		return err
	}
	views := make(map[int]view, len(idx))
	for _, i := range idx {
		views[i] = entryView(entries[i])
	}

	// 1. Describe each association whose summary may be one of the
	// entries, and give each entry the earliest that is.
	tried := make([]bool, len(summaries))
	var cands []*candidate
	describe := func(want func(j int, sv view) bool) error {
		for j, s := range summaries {
			if tried[j] || !want(j, summaryView(s)) {
				continue
			}
			tried[j] = true
			d, err := r.describe(ctx, aws.ToString(s.AssociationId))
			if err != nil {
				return err
			}
			if d != nil {
				cands = append(cands, &candidate{desc: d, view: descriptionView(*d), pos: j})
			}
		}
		slices.SortStableFunc(cands, func(a, b *candidate) int {
			if c := compareDates(a.desc, b.desc); c != 0 {
				return c
			}
			return cmp.Compare(a.pos, b.pos)
		})
		return nil
	}
	assignExact := func(pending []int) {
		for _, i := range pending {
			for _, c := range cands {
				if !c.taken && isExact(views[i], c.view) {
					c.taken = true
					out[i].Exact = c.desc
					break
				}
			}
		}
	}
	err = describe(func(j int, _ view) bool {
		for _, i := range idx {
			if summaryMayMatch(views[i], summaries[j]) {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	assignExact(idx)
	if !near {
		return nil
	}

	// 2. For the entries left without one, describe the rest of the
	// associations of their identity; give each the earliest exact one
	// (a summary that disagreed with its description), or else the
	// earliest of its identity.
	var pending []int
	for _, i := range idx {
		if out[i].Exact == nil {
			pending = append(pending, i)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	err = describe(func(_ int, sv view) bool {
		for _, i := range pending {
			if sameIdentity(views[i], sv) {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	assignExact(pending)
	for _, i := range pending {
		if out[i].Exact != nil {
			continue
		}
		for _, c := range cands {
			if !c.taken && sameIdentity(views[i], c.view) {
				c.taken = true
				out[i].Same = c.desc
				out[i].Differences = differences(views[i], c.view)
				break
			}
		}
	}
	return nil
}

// commonAssociationName returns the AssociationName every entry of the
// group has, if they all have the same one.
func commonAssociationName(entries []request.Entry, idx []int) (string, bool) {
	first := entries[idx[0]].AssociationName
	if first == nil || *first == "" {
		return "", false
	}
	for _, i := range idx[1:] {
		if aws.ToString(entries[i].AssociationName) != *first {
			return "", false
		}
	}
	return *first, true
}

// compareDates orders by creation Date, an absent Date last.
func compareDates(a, b *ssmtypes.AssociationDescription) int {
	switch {
	case a.Date == nil && b.Date == nil:
		return 0
	case a.Date == nil:
		return 1
	case b.Date == nil:
		return -1
	}
	return a.Date.Compare(*b.Date)
}

// Covering returns, for each of nodes that has one, the ID of an active
// association of document that targets the node by ID: its InstanceId, or
// an InstanceIds target of an association whose targets are all
// InstanceIds. It is for an entry naming several nodes that SSM answered
// "Association Already Exists": it tells which nodes are covered. Of several
// covering associations the first listed is returned. One listing, no
// describes.
func (r *Reader) Covering(ctx context.Context, document string, nodes []string) (map[string]string, error) {
	out := map[string]string{}
	if len(nodes) == 0 {
		return out, nil
	}
	want := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		want[n] = true
	}
	summaries, err := r.list(ctx, document, []ssmtypes.AssociationFilter{{Key: ssmtypes.AssociationFilterKeyName, Value: aws.String(document)}})
	if err != nil {
		return nil, err
	}
	for _, s := range summaries {
		if !sameDocument(document, aws.ToString(s.Name)) {
			continue
		}
		for _, n := range summaryNodes(s) {
			if _, done := out[n]; want[n] && !done {
				out[n] = aws.ToString(s.AssociationId)
			}
		}
	}
	return out, nil
}

// summaryNodes lists the nodes an association targets by ID only.
func summaryNodes(s ssmtypes.Association) []string {
	if id := aws.ToString(s.InstanceId); id != "" {
		return []string{id}
	}
	if len(s.TargetMaps) > 0 {
		return nil
	}
	var nodes []string
	for _, t := range s.Targets {
		if aws.ToString(t.Key) != request.InstanceIDsKey {
			return nil
		}
		nodes = append(nodes, t.Values...)
	}
	return nodes
}

// list reads every page of ListAssociations for filters.
func (r *Reader) list(ctx context.Context, doc string, filters []ssmtypes.AssociationFilter) ([]ssmtypes.Association, error) {
	var all []ssmtypes.Association
	var token *string
	for {
		if err := r.pace(ctx); err != nil {
			return nil, fmt.Errorf("reconcile: list associations of %s: %w", doc, err)
		}
		r.reads.Add(1)
		page, err := r.ssm.ListAssociations(ctx, &ssm.ListAssociationsInput{
			AssociationFilterList: filters,
			MaxResults:            aws.Int32(pageSize),
			NextToken:             token,
		})
		if err != nil {
			return nil, fmt.Errorf("reconcile: list associations of %s: %w", doc, err)
		}
		all = append(all, page.Associations...)
		if page.NextToken == nil || *page.NextToken == "" {
			return all, nil
		}
		if token != nil && *page.NextToken == *token {
			return nil, fmt.Errorf("reconcile: list associations of %s: SSM returned the same NextToken twice", doc)
		}
		token = page.NextToken
	}
}

// describe reads one association by ID; nil, nil when it no longer exists.
func (r *Reader) describe(ctx context.Context, id string) (*ssmtypes.AssociationDescription, error) {
	if err := r.pace(ctx); err != nil {
		return nil, fmt.Errorf("reconcile: describe association %s: %w", id, err)
	}
	r.reads.Add(1)
	out, err := r.ssm.DescribeAssociation(ctx, &ssm.DescribeAssociationInput{AssociationId: aws.String(id)})
	var gone *ssmtypes.AssociationDoesNotExist
	switch {
	case errors.As(err, &gone):
		return nil, nil // deleted since it was listed: not a match
	case err != nil:
		return nil, fmt.Errorf("reconcile: describe association %s: %w", id, err)
	case out.AssociationDescription == nil:
		return nil, fmt.Errorf("reconcile: describe association %s: SSM returned no AssociationDescription", id)
	}
	return out.AssociationDescription, nil
}

func (r *Reader) pace(ctx context.Context) error {
	if r.wait == nil {
		return nil
	}
	return r.wait(ctx)
}
