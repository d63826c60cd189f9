package ssmlocal

import (
	"strconv"
)

// MaxAssociationVersions is the number of versions an association can
// have (the model's AssociationVersionLimitExceeded: "Each association has
// a limit of 1,000 versions"); an update beyond it is refused.
const MaxAssociationVersions = 1000

// updateAssociation replaces the association's current version with the
// request, as the API reference of UpdateAssociation describes it: "the
// system removes all optional parameters from the request and overwrites
// the association with null values for those parameters". Every member
// left out is cleared, except Name and Targets, which the AWS CLI examples
// of update-association show kept when omitted. AssociationVersion, when
// given and not $LATEST, must be the current version. A success makes the
// next version.
//
// Like CreateAssociation, a call that passed the whole-call checks (parse,
// model constraints) has executed, whatever its outcome, and may lose its
// answer afterwards.
func (s *Server) updateAssociation(body []byte) result {
	var in updateInput
	if e := decode(body, &in); e != nil {
		return result{err: e}
	}
	in.InstanceId = nil // not a member of UpdateAssociationRequest
	if e := validateUpdate(&in); e != nil {
		return result{err: e}
	}
	res := s.updateOne(&in)
	res.after = s.afterCreate()
	return res
}

func (s *Server) updateOne(in *updateInput) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.store.byID[*in.AssociationId]
	if r == nil {
		return result{err: notFound()}
	}
	cur := r.version()
	if v := in.AssociationVersion; v != nil && *v != "$LATEST" && *v != strconv.Itoa(cur) {
		return result{err: clientError(codeInvalidAssocVersion,
			"Association %s is at version %d, not %s; describe it again and send its latest version, or $LATEST", r.id, cur, *v)}
	}
	if cur >= MaxAssociationVersions {
		return result{err: clientError(codeVersionLimit,
			"Association %s has reached the limit of %d versions; create a new association and delete this one", r.id, MaxAssociationVersions)}
	}
	if r.legacy() {
		if err := legacyEchoes(r, &in.wireEntry); err != nil {
			return result{err: err}
		}
	}
	e := in.wireEntry
	e.InstanceId = r.entry.InstanceId
	if e.Name == nil {
		e.Name = r.entry.Name
	}
	if e.Targets == nil {
		e.Targets = r.entry.Targets
	}
	p, err := s.checkEntry(e)
	if err != nil {
		return result{err: updateError(err)}
	}
	if p.docName != r.docKey {
		return result{err: clientError(codeInvalidUpdate,
			"Association %s is for document %s and can't be changed to %s; create a new association for that document", r.id, r.docKey, p.docName)}
	}
	s.store.update(r, p.entry, p.docName, p.nodes, p.tgtKey, in.AssociationDispatchAssumeRole, s.now())
	s.stats.update(func(st *Stats) { st.AssociationsUpdated++ })
	return result{body: createOutput{AssociationDescription: r.description()}}
}

// legacyEchoes lets the members DescribeAssociation returns for an
// association created with InstanceId be sent back unchanged, as the API
// reference recommends building an update from DescribeAssociation: the
// InstanceIds target naming its node and DocumentVersion $DEFAULT count as
// omitted. Any other Targets or TargetMaps are refused: such an association
// has its node and nothing else. The other members it cannot have
// (AssociationName, ScheduleExpression …) are then refused by the
// create-time check.
func legacyEchoes(r *record, e *wireEntry) *apiError {
	if ts := e.Targets; len(ts) == 1 && orNull(ts[0].Key) == "InstanceIds" &&
		len(ts[0].Values) == 1 && ts[0].Values[0] == *r.entry.InstanceId {
		e.Targets = nil
	}
	if e.DocumentVersion != nil && *e.DocumentVersion == "$DEFAULT" {
		e.DocumentVersion = nil
	}
	if e.Targets != nil || e.TargetMaps != nil {
		return clientError(codeInvalidTarget,
			"Association %s was created with InstanceId for node %s and can't take other Targets or TargetMaps; create a Targets-form association instead", r.id, *r.entry.InstanceId)
	}
	return nil
}

// updateError maps a create-time refusal to the errors the model lists for
// UpdateAssociation, which has neither InvalidInstanceId nor
// UnsupportedPlatformType: a node that is not managed, is terminated or
// has the wrong platform is an invalid target ("The target isn't valid or
// doesn't exist").
func updateError(e *apiError) *apiError {
	switch e.Code {
	case codeInvalidInstanceID, codeUnsupportedPlatform:
		return clientError(codeInvalidTarget, "%s", e.Message)
	}
	return e
}
