// Package reconcile reads SSM back to settle entries whose outcome is
// unknown. CreateAssociationBatch is not idempotent and SSM creates a second
// identical Targets-form association without complaint, so an entry whose
// answer was lost must never be resent blindly: Find tells which of them SSM
// already holds.
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

// Find returns, for each entry (same index), the association SSM holds that
// is this entry, or nil when SSM holds none: same document, targets and
// TargetMaps compared as sets (an InstanceId entry equals an InstanceIds
// target of that one node), same AssociationName and no Differences. Of
// several such associations (doubles) the earliest by Date is returned, and
// no association is given to two entries.
//
// Each document's associations are listed once; every candidate that the
// summaries do not rule out is then described by AssociationId. An error
// leaves every entry in doubt.
func (r *Reader) Find(ctx context.Context, entries []request.Entry) ([]*ssmtypes.AssociationDescription, error) {
	out := make([]*ssmtypes.AssociationDescription, len(entries))
	var docs []string
	groups := map[string][]int{}
	for i, e := range entries {
		if _, ok := groups[e.Name]; !ok {
			docs = append(docs, e.Name)
		}
		groups[e.Name] = append(groups[e.Name], i)
	}
	for _, doc := range docs {
		if err := r.findDocument(ctx, doc, entries, groups[doc], out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// candidate is a described association and its place in the listing, the
// tie-break between equal creation dates.
type candidate struct {
	desc *ssmtypes.AssociationDescription
	pos  int
}

func (r *Reader) findDocument(ctx context.Context, doc string, entries []request.Entry, idx []int, out []*ssmtypes.AssociationDescription) error {
	filters := []ssmtypes.AssociationFilter{{Key: ssmtypes.AssociationFilterKeyName, Value: aws.String(doc)}}
	if name, ok := commonAssociationName(entries, idx); ok {
		filters = append(filters, ssmtypes.AssociationFilter{Key: ssmtypes.AssociationFilterKeyAssociationName, Value: aws.String(name)})
	}
	summaries, err := r.list(ctx, doc, filters)
	if err != nil {
		return err
	}

	// Rule out what the summaries can; describe each remaining candidate once.
	views := make(map[int]view, len(idx))
	wanted := make([]bool, len(summaries))
	for _, i := range idx {
		v := entryView(entries[i])
		views[i] = v
		for j, s := range summaries {
			wanted[j] = wanted[j] || summaryMayMatch(v, s)
		}
	}
	described := make([]candidate, 0, len(summaries))
	for j, s := range summaries {
		if !wanted[j] {
			continue
		}
		d, err := r.describe(ctx, aws.ToString(s.AssociationId))
		if err != nil {
			return err
		}
		if d != nil {
			described = append(described, candidate{desc: d, pos: j})
		}
	}
	slices.SortStableFunc(described, func(a, b candidate) int {
		if c := compareDates(a.desc, b.desc); c != 0 {
			return c
		}
		return cmp.Compare(a.pos, b.pos)
	})

	taken := make([]bool, len(described))
	for _, i := range idx {
		for k, c := range described {
			if !taken[k] && matches(views[i], *c.desc) {
				taken[k] = true
				out[i] = c.desc
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
