package request

import "encoding/json"

// placeholderNode stands in for the fan-out nodes while the template is
// validated: it makes the template look like the entries it will become
// (targeted through an InstanceIds target), so the cross-field rules — a
// target is required, TargetMaps cannot join Targets — judge it correctly.
const placeholderNode = "i-00000000"

// fanOut expands {"Association": {...}, "InstanceIds": [...]} into one item
// per node. The template is validated once; a bad template is wrong for every
// node, so it rejects the request instead of failing N identical entries.
// Only the node ID varies between items, so only the node ID is checked per
// item.
func (d *decoder) fanOut(req *Request, association, instanceIDs json.RawMessage, lim Limits) *Error {
	before := d.problems.count()
	tmplPath := rootPath("Association")
	tmpl := d.entryAt(association, &tmplPath)
	if tmpl.InstanceId != nil {
		d.fail("Association.InstanceId", "not allowed in a fan-out request; list the nodes in InstanceIds")
	}
	if tmpl.Targets != nil {
		d.fail("Association.Targets", "not allowed in a fan-out request; list the nodes in InstanceIds")
	}
	if d.problems.count() == before {
		probe := tmpl
		probe.Targets = []Target{{Key: InstanceIDsKey, Values: []string{placeholderNode}}}
		for _, p := range ValidateEntry("Association", probe) {
			d.problems.add(p.Path, "%s", p.Message)
		}
	}

	if instanceIDs == nil || isNull(instanceIDs) {
		d.fail("InstanceIds", "required in a fan-out request")
		return nil
	}
	if _, err := checkCount(instanceIDs, "InstanceIds", "instance IDs", lim); err != nil {
		return err
	}
	idsPath := rootPath("InstanceIds")
	nodes := d.stringsAt(instanceIDs, &idsPath)
	if isEmptyArray(instanceIDs) {
		d.fail("InstanceIds", "at least 1 node ID required")
	}
	if !d.problems.empty() {
		return nil
	}
	req.Items = make([]Item, len(nodes))
	for i, node := range nodes {
		e := tmpl
		// Targets is the only member an item owns; the template's maps and
		// slices are shared between items and must be treated as read-only.
		e.Targets = []Target{{Key: InstanceIDsKey, Values: []string{node}}}
		path := indexPath("InstanceIds", i)
		it := Item{Entry: e, Path: path}
		if !ValidInstanceID(node) {
			it.Problems = []FieldError{{Path: path, Message: "must match " + patInstanceID}}
		}
		req.Items[i] = it
	}
	return nil
}
