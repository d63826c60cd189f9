package ssmlocal

import "net/http"

// createAssociationBatch: whole-call checks (parse, constraints, duplicate
// node IDs) fail the call and execute nothing; everything else is judged per
// entry and reported in Failed, in request order, while the rest are
// created. Only a call that got that far may lose its answer afterwards.
func (s *Server) createAssociationBatch(body []byte) result {
	var in createBatchInput
	if e := decode(body, &in); e != nil {
		return result{err: e}
	}
	s.stats.update(func(st *Stats) { st.EntriesReceived += len(in.Entries) })
	if e := validateCreateBatch(&in, s.opts.MaxBatch); e != nil {
		return result{err: e}
	}
	if id, dup := duplicateNode(in.Entries); dup {
		return result{err: duplicateNodeError(id)}
	}
	out := createBatchOutput{Successful: []wireDescription{}, Failed: []wireFailed{}}
	var injected, failed, created, refused int

	s.mu.Lock()
	for _, entry := range in.Entries {
		if fault, msg, ok := s.injectedEntryFault(&entry); ok {
			injected++
			out.Failed = append(out.Failed, wireFailed{Entry: entry, Message: msg, Fault: fault})
			continue
		}
		rec, e := s.createOne(entry, in.AssociationDispatchAssumeRole)
		if e != nil {
			if e.Code == codeAlreadyExists {
				refused++
			}
			out.Failed = append(out.Failed, wireFailed{Entry: entry, Message: e.Message, Fault: "Client"})
			continue
		}
		created++
		out.Successful = append(out.Successful, rec.description())
	}
	s.mu.Unlock()
	failed = len(out.Failed)

	s.stats.update(func(st *Stats) {
		st.EntriesFailedByInjection += injected
		st.EntriesFailed += failed
		st.AssociationsCreated += created
		st.DuplicatesRefused += refused
	})
	return result{body: out, after: s.afterCreate()}
}

// createOne checks and creates one association; the caller holds s.mu.
func (s *Server) createOne(entry wireEntry, assumeRole *string) (*record, *apiError) {
	p, e := s.checkEntry(entry)
	if e != nil {
		return nil, e
	}
	rec, e := s.admit(p)
	if e != nil {
		return nil, e
	}
	rec.assumeRole = assumeRole
	return rec, nil
}

// injectedEntryFault applies scripted entry faults first, then the random
// EntryFaultRate.
func (s *Server) injectedEntryFault(e *wireEntry) (fault, message string, ok bool) {
	if fault, message, ok = s.faults.scriptedEntry(docName(orNull(e.Name)), entryNodes(e)); ok {
		return fault, message, true
	}
	if s.faults.chance(s.opts.EntryFaultRate) {
		return "Server", DefaultEntryFaultMessage, true
	}
	return "", "", false
}

// createAssociation is the single-entry form: the same checks, reported as
// the call's error code instead of a Failed entry. A call that passed the
// whole-call checks (parse, constraints) is executed, whatever its outcome,
// and so may lose its answer afterwards like a batch call.
func (s *Server) createAssociation(body []byte) result {
	var in createInput
	if e := decode(body, &in); e != nil {
		return result{err: e}
	}
	s.stats.update(func(st *Stats) { st.EntriesReceived++ })
	if e := validateCreate(&in); e != nil {
		return result{err: e}
	}
	res := s.createSingle(&in)
	res.after = s.afterCreate()
	return res
}

func (s *Server) createSingle(in *createInput) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, msg, ok := s.injectedEntryFault(&in.wireEntry); ok {
		s.stats.update(func(st *Stats) { st.EntriesFailedByInjection++ })
		return result{err: &apiError{Status: http.StatusInternalServerError, Code: codeInternal, Message: msg}}
	}
	rec, e := s.createOne(in.wireEntry, in.AssociationDispatchAssumeRole)
	if e != nil {
		if e.Code == codeAlreadyExists {
			s.stats.update(func(st *Stats) { st.DuplicatesRefused++ })
		}
		return result{err: e}
	}
	s.stats.update(func(st *Stats) { st.AssociationsCreated++ })
	return result{body: createOutput{AssociationDescription: rec.description()}}
}
