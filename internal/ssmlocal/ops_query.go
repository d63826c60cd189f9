package ssmlocal

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// find locates an active association by ID, or by document name and node
// (the legacy way of naming an association). By Name + InstanceId it finds
// only an association created with InstanceId: AWS does not document
// whether a Targets-form association is found that way, and not finding it
// is the harder case for a caller.
func (s *Server) find(id, name, instanceID *string) *record {
	if id != nil {
		return s.store.byID[*id]
	}
	if name != nil && instanceID != nil {
		return s.store.legacyCovering(docName(*name), *instanceID)
	}
	return nil
}

func notFound() *apiError {
	return clientError(codeDoesNotExist, "Association does not exist; give an existing AssociationId, or the Name and InstanceId it was created with")
}

func (s *Server) describeAssociation(body []byte) result {
	var in describeInput
	if e := decode(body, &in); e != nil {
		return result{err: e}
	}
	if e := validateDescribe(&in); e != nil {
		return result{err: e}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.find(in.AssociationId, in.Name, in.InstanceId)
	if r == nil {
		return result{err: notFound()}
	}
	v := r.version()
	if in.AssociationVersion != nil && *in.AssociationVersion != "$LATEST" {
		n, err := strconv.Atoi(*in.AssociationVersion)
		if err != nil || n < 1 || n > v {
			return result{err: clientError(codeInvalidAssocVersion, "Association %s has no version %s; its versions are 1 to %d, or use $LATEST", r.id, *in.AssociationVersion, v)}
		}
		v = n
	}
	return result{body: createOutput{AssociationDescription: r.descriptionAt(v)}}
}

func (s *Server) deleteAssociation(body []byte) result {
	var in deleteInput
	if e := decode(body, &in); e != nil {
		return result{err: e}
	}
	if e := validateDelete(&in); e != nil {
		return result{err: e}
	}
	s.mu.Lock()
	r := s.find(in.AssociationId, in.Name, in.InstanceId)
	if r != nil {
		s.store.remove(r)
	}
	s.mu.Unlock()
	if r == nil {
		return result{err: notFound()}
	}
	s.stats.update(func(st *Stats) { st.AssociationsDeleted++ })
	return result{body: struct{}{}}
}

const defaultListPage = 50

// listAssociations pages through active associations in creation order. The
// NextToken is the creation sequence number of the last association
// returned, so deletions between pages neither skip nor repeat any.
func (s *Server) listAssociations(body []byte) result {
	var in listInput
	if e := decode(body, &in); e != nil {
		return result{err: e}
	}
	if e := validateList(&in); e != nil {
		return result{err: e}
	}
	var after uint64
	if in.NextToken != nil {
		seq, ok := parseToken(*in.NextToken)
		if !ok {
			return result{err: clientError(codeInvalidNextToken, "The NextToken is not valid; pass the value a previous ListAssociations response returned")}
		}
		after = seq
	}
	page := defaultListPage
	if in.MaxResults != nil {
		page = int(*in.MaxResults)
	}
	out := listOutput{Associations: []wireAssociation{}}
	var last uint64
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.store.activeRecords() {
		if r.seq <= after || !r.matches(in.AssociationFilterList) {
			continue
		}
		if len(out.Associations) == page {
			// More remain: the token names the last one returned.
			tok := makeToken(last)
			out.NextToken = &tok
			break
		}
		out.Associations = append(out.Associations, r.summary())
		last = r.seq
	}
	return result{body: out}
}

// matches ANDs the filters. InstanceId matches only associations created
// with the InstanceId member (whether the service also matches InstanceIds
// targets is not documented; not matching them is the harder case for a
// caller reading associations back); Name matches the document name exactly
// (name or ARN); filters on execution times match nothing, since the
// emulator never runs an association.
func (r *record) matches(filters []wireFilter) bool {
	for _, f := range filters {
		v := orNull(f.Value)
		var ok bool
		switch orNull(f.Key) {
		case "InstanceId":
			ok = r.legacy() && *r.entry.InstanceId == v
		case "Name":
			ok = r.docKey == docName(v) || orNull(r.entry.Name) == v
		case "AssociationId":
			ok = r.id == v
		case "AssociationName":
			ok = orNull(r.entry.AssociationName) == v
		case "AssociationStatusName":
			ok = v == "Pending"
		case "ResourceGroupName":
			for _, t := range r.entry.Targets {
				ok = ok || (orNull(t.Key) == "resource-groups:Name" && slices.Contains(t.Values, v))
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

const tokenPrefix = "ssm-local:"

func makeToken(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + strconv.FormatUint(seq, 10)))
}

func parseToken(tok string) (uint64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), tokenPrefix)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	return seq, err == nil
}
