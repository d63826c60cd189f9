package request

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Limits bounds what one request may ask for.
type Limits struct {
	// MaxEntries bounds the entries of a CreateAssociationBatch request and
	// the InstanceIds of a fan-out request. AWS documents no maximum; the
	// bound exists so one request cannot keep the function busy past its
	// timeout. Zero or less means no bound.
	MaxEntries int
}

// Item is one entry of the request, in request order.
type Item struct {
	Entry Entry
	// Path locates the entry in the request: "Entries[3]" or, for a
	// fan-out request, "InstanceIds[3]".
	Path string
	// Problems lists why the entry cannot be sent; empty when it can. An
	// entry with problems is reported Failed with Fault Client.
	Problems []FieldError
}

// Valid reports whether the entry may be sent to SSM.
func (it Item) Valid() bool { return len(it.Problems) == 0 }

// Request is a decoded request: its entries (fan-out already expanded) and
// the role SSM dispatches them with.
type Request struct {
	AssociationDispatchAssumeRole *string
	Items                         []Item
	// Async asks for the request to run as an asynchronous job even when it
	// would fit the synchronous budget (member "Async": true).
	Async bool
	// OnExisting says what to do with a node whose association of the same
	// document and name exists with other settings: OnExistingSkip (the
	// default) reports it, OnExistingUpdate updates it.
	OnExisting string
	// DryRun asks for the plan only: validated and deduplicated against the
	// claim table, with nothing written (member "DryRun": true).
	DryRun bool
}

// Values of OnExisting.
const (
	OnExistingSkip   = "skip"
	OnExistingUpdate = "update"
)

var topLevelMembers = []string{"Entries", "AssociationDispatchAssumeRole", "Association", "InstanceIds", "Async", "OnExisting", "DryRun"}

// Parse decodes and validates a request body. It accepts the
// CreateAssociationBatch shape ({"Entries": [...]}) and the fan-out shape
// ({"Association": {...}, "InstanceIds": [...]}), which becomes one entry per
// node targeted with Key "InstanceIds".
//
// A request that cannot be read as a whole — bad JSON, wrong JSON types,
// unknown members, too many entries, a bad AssociationDispatchAssumeRole or
// fan-out template — is rejected with a *Error naming every problem found.
// Otherwise each entry's model violations land in its Item.Problems, so the
// valid entries can still be sent. Entries are neither reordered nor
// deduplicated.
func Parse(body []byte, lim Limits) (*Request, error) {
	// Every rejection of the body as a whole still lists one problem at
	// path "" (the body), so that a caller can always read errors[0].
	if len(body) == 0 {
		return nil, badRequest("request body is empty", FieldError{Message: "required: a JSON object"})
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, and SSM
	// would then create an association for a name nobody sent.
	if !utf8.Valid(body) {
		return nil, badRequest("request body is not valid UTF-8", invalidUTF8(body))
	}
	if err := CheckJSON(body, "request body"); err != nil {
		return nil, err
	}

	d := &decoder{}
	top := rootPath("") // the body
	members, ok := d.objectAt(body, &top, "a JSON object")
	if !ok {
		kind := kindOf(body)
		return nil, badRequest("request body must be a JSON object, got "+kind,
			FieldError{Message: "expected a JSON object, got " + kind})
	}
	var entries, association, instanceIDs, role, async, onExisting, dryRun json.RawMessage
	for _, m := range members {
		switch m.name {
		case "Entries":
			entries = m.value
		case "Association":
			association = m.value
		case "InstanceIds":
			instanceIDs = m.value
		case "AssociationDispatchAssumeRole":
			role = m.value
		case "Async":
			async = m.value
		case "OnExisting":
			onExisting = m.value
		case "DryRun":
			dryRun = m.value
		default:
			d.unknownHinted(&top, m.name, topLevelMembers, topLevelElsewhere)
		}
	}
	// null is absent for the choice between the two shapes, too.
	hasEntries := entries != nil && !isNull(entries)
	hasAssociation := association != nil && !isNull(association)

	req := &Request{OnExisting: OnExistingSkip}
	if async != nil {
		p := top.member("Async")
		req.Async = d.booleanAt(async, &p)
	}
	if dryRun != nil {
		p := top.member("DryRun")
		req.DryRun = d.booleanAt(dryRun, &p)
	}
	if onExisting != nil {
		p := top.member("OnExisting")
		if v := d.strAt(onExisting, &p); v != nil {
			switch *v {
			case OnExistingSkip, OnExistingUpdate:
				req.OnExisting = *v
			default:
				d.fail("OnExisting", "must be %q (report an association that exists with other settings) or %q (update it), got %q", OnExistingSkip, OnExistingUpdate, *v)
			}
		}
	}
	if role != nil {
		p := top.member("AssociationDispatchAssumeRole")
		req.AssociationDispatchAssumeRole = d.strAt(role, &p)
		if r := req.AssociationDispatchAssumeRole; r != nil {
			validateAssumeRole(&d.problems, "AssociationDispatchAssumeRole", *r)
		}
	}

	switch {
	case hasEntries && hasAssociation:
		d.fail("", "a request has either Entries (a CreateAssociationBatch request) or Association and InstanceIds (a fan-out request), not both")
	case !hasEntries && !hasAssociation:
		d.fail("", "a request needs Entries (a CreateAssociationBatch request) or Association and InstanceIds (a fan-out request)")
	case hasEntries:
		if instanceIDs != nil && !isNull(instanceIDs) {
			d.fail("InstanceIds", "only allowed together with Association (a fan-out request); list nodes per entry in Entries")
		}
		if tooMany := d.batchEntries(req, entries, lim); tooMany != nil {
			return nil, tooMany
		}
	default:
		if tooMany := d.fanOut(req, association, instanceIDs, lim); tooMany != nil {
			return nil, tooMany
		}
	}
	if !d.problems.empty() {
		return nil, badRequest("invalid request", d.problems.result()...)
	}
	return req, nil
}

// batchEntries decodes Entries into req.Items. It returns a rejection of its
// own only for too many entries, which ends decoding early; type errors are
// collected in d.
func (d *decoder) batchEntries(req *Request, raw json.RawMessage, lim Limits) *Error {
	n, err := checkCount(raw, "Entries", "entries", lim)
	if err != nil {
		return err
	}
	req.Items = make([]Item, 0, n)
	entries := rootPath("Entries")
	d.elementsAt(raw, &entries, "an array of entries", func(i int, v json.RawMessage) bool {
		path := indexPath("Entries", i) // spelled out anyway, for the Item
		p := rootPath(path)
		if isNull(v) {
			d.typeErrorAt(&p, "an entry object", v)
			return true
		}
		e := d.entryAt(v, &p)
		req.Items = append(req.Items, Item{Entry: e, Path: path, Problems: ValidateEntry(path, e)})
		return true
	})
	if isEmptyArray(raw) {
		d.fail("Entries", "at least 1 entry required")
	}
	return nil
}

// checkCount counts the elements of an array, rejecting more than
// lim.MaxEntries before any of them is decoded, so an oversized request costs
// one scan.
func checkCount(raw json.RawMessage, path, what string, lim Limits) (int, *Error) {
	n := 0
	over := false
	var d decoder
	p := rootPath(path)
	d.elementsAt(raw, &p, "an array", func(int, json.RawMessage) bool {
		n++
		over = lim.MaxEntries > 0 && n > lim.MaxEntries
		return !over
	})
	if !over {
		return n, nil
	}
	fe := FieldError{Path: path, Message: fmt.Sprintf("at most %d %s per request", lim.MaxEntries, what)}
	return 0, badRequest(fmt.Sprintf("too many %s: the limit is %d", what, lim.MaxEntries), fe)
}

// invalidUTF8 locates the first byte of body that is not UTF-8.
func invalidUTF8(body []byte) FieldError {
	off := 0
	for off < len(body) {
		r, n := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	line, col := position(body, off)
	return FieldError{Message: fmt.Sprintf("invalid UTF-8 at line %d, column %d (byte offset %d)", line, col, off)}
}

// isEmptyArray reports whether raw is [] (with any whitespace inside).
func isEmptyArray(raw json.RawMessage) bool {
	if kindOf(raw) != "array" {
		return false
	}
	inner := bytes.TrimSpace(raw)
	return len(bytes.TrimSpace(inner[1:len(inner)-1])) == 0
}
