package ssmlocal

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// plan is an entry that passed the semantic checks that do not depend on the
// store: what to create, and the keys refusals and doubles are judged by.
type plan struct {
	entry   wireEntry
	docName string
	nodes   []string
	tgtKey  string
}

// Target keys State Manager accepts besides tag:<name>.
var targetKeys = []string{"InstanceIds", "tag-key", "resource-groups:Name", "resource-groups:ResourceTypeFilters", "ResourceGroup", "ParameterValues"}

// Members an association made with InstanceId cannot use (legacy
// associations; the API reference for InstanceId lists them).
func legacyForbidden(e *wireEntry) []string {
	var out []string
	add := func(present bool, name string) {
		if present {
			out = append(out, name)
		}
	}
	add(e.AssociationName != nil, "AssociationName")
	add(e.DocumentVersion != nil, "DocumentVersion")
	add(e.MaxErrors != nil, "MaxErrors")
	add(e.MaxConcurrency != nil, "MaxConcurrency")
	add(e.OutputLocation != nil, "OutputLocation")
	add(e.ScheduleExpression != nil, "ScheduleExpression")
	return out
}

// entryNodes lists the node IDs an entry addresses by ID: its InstanceId and
// the values of its InstanceIds targets ("*", all nodes, is not an ID).
func entryNodes(e *wireEntry) []string {
	var nodes []string
	if e.InstanceId != nil {
		nodes = append(nodes, *e.InstanceId)
	}
	for _, t := range e.Targets {
		if orNull(t.Key) == "InstanceIds" {
			for _, v := range t.Values {
				if v != "*" {
					nodes = append(nodes, v)
				}
			}
		}
	}
	return nodes
}

// distinct drops repeated node IDs, keeping the first of each: a node
// named twice in one CreateAssociation is covered once.
func distinct(nodes []string) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// docName strips an ARN down to the document name.
func docName(nameOrARN string) string {
	if _, after, ok := strings.Cut(nameOrARN, ":document/"); ok && strings.HasPrefix(nameOrARN, "arn:") {
		return after
	}
	return nameOrARN
}

// checkEntry runs the checks the service reports per entry (as a Failed
// entry with Fault Client) or, for CreateAssociation, as the call's error.
// Messages say what to change.
func (s *Server) checkEntry(e wireEntry) (plan, *apiError) {
	name := orNull(e.Name)
	doc, ok := s.docs.lookup(name)
	if !ok {
		return plan{}, clientError(codeInvalidDocument, "Document %s does not exist or is not shared with this account; check the document name or ARN", name)
	}
	if err := checkDocumentVersion(doc, e.DocumentVersion); err != nil {
		return plan{}, err
	}
	if err := s.checkTargets(doc, &e); err != nil {
		return plan{}, err
	}
	nodes := entryNodes(&e)
	for _, id := range nodes {
		if err := s.checkNode(doc, id); err != nil {
			return plan{}, err
		}
	}
	if err := checkParameters(doc, e.Parameters); err != nil {
		return plan{}, err
	}
	if err := checkScheduling(&e); err != nil {
		return plan{}, err
	}
	p := plan{entry: e, docName: doc.Name, nodes: distinct(nodes)}
	if len(nodes) == 0 {
		// Not addressed by node: identical (document, targets) is what a
		// double is judged by.
		p.tgtKey = canonicalTargets(doc.Name, e.Targets, e.TargetMaps, e.TargetLocations)
	}
	return p, nil
}

func checkDocumentVersion(doc Document, v *string) *apiError {
	if v == nil || *v == "$LATEST" || *v == "$DEFAULT" {
		return nil
	}
	n, err := strconv.Atoi(*v)
	if err != nil || n < 1 || n > doc.latest() {
		return clientError(codeInvalidDocVersion, "Document %s has no version %s; use $DEFAULT, $LATEST or a version from 1 to %d", doc.Name, *v, doc.latest())
	}
	return nil
}

func (s *Server) checkTargets(doc Document, e *wireEntry) *apiError {
	if len(e.Targets) > 0 && len(e.TargetMaps) > 0 {
		return clientError(codeInvalidTargetMaps, "Targets and TargetMaps can't be specified together; use one of them")
	}
	if e.InstanceId != nil {
		if len(e.Targets) > 0 || len(e.TargetMaps) > 0 {
			return clientError(codeInvalidTarget, "InstanceId can't be combined with Targets or TargetMaps; use a Targets entry with Key InstanceIds instead")
		}
		if bad := legacyForbidden(e); len(bad) > 0 {
			return clientError(codeInvalidParameters, "An association created with InstanceId can't use %s; use Targets with Key InstanceIds instead", strings.Join(bad, ", "))
		}
		if !doc.legacySchema() {
			return clientError(codeInvalidDocument, "Document schema version, %s, is not supported by association that is created with instance id", doc.SchemaVersion)
		}
		return nil
	}
	if len(e.Targets) == 0 && len(e.TargetMaps) == 0 && doc.DocumentType != "Automation" {
		return clientError(codeInvalidTarget, "Specify InstanceId or Targets for document %s", doc.Name)
	}
	for _, t := range e.Targets {
		key := orNull(t.Key)
		if !slices.Contains(targetKeys, key) && !strings.HasPrefix(key, "tag:") {
			return clientError(codeInvalidTarget, "Unsupported Target Type: %s; use InstanceIds, tag:<name>, tag-key or resource-groups:Name", key)
		}
		if len(t.Values) == 0 {
			return clientError(codeInvalidTarget, "Target %s has no values", key)
		}
		if key == "InstanceIds" {
			for _, v := range t.Values {
				if v != "*" && !patInstanceID.matches(v) {
					return clientError(codeInvalidTarget, "Target InstanceIds value %q is not a node ID (i-… or mi-…)", v)
				}
			}
		}
	}
	return nil
}

// checkNode applies the inventory: unknown and terminated nodes are invalid
// instance IDs, and the node's platform must be one the document supports.
func (s *Server) checkNode(doc Document, id string) *apiError {
	n, ok := s.nodes.node(id)
	if !ok {
		return clientError(codeInvalidInstanceID, "Instance %s is not a managed node: check that SSM Agent is installed, running and registered, and that the node's role allows Systems Manager", id)
	}
	if n.refusesAssociations() {
		return clientError(codeInvalidInstanceID, "Instance %s is in state %s; associations need a node that is not shutting down or terminated", id, n.State)
	}
	if !slices.Contains(doc.PlatformTypes, n.PlatformType) {
		return clientError(codeUnsupportedPlatform, "Document %s does not support platform type %s of node %s (supported: %s)", doc.Name, n.PlatformType, id, strings.Join(doc.PlatformTypes, ", "))
	}
	return nil
}

// checkParameters requires every required document parameter and refuses
// parameters the document does not declare. Values are never echoed: the
// model marks Parameters sensitive.
func checkParameters(doc Document, params map[string][]string) *apiError {
	declared := map[string]DocumentParameter{}
	for _, p := range doc.Parameters {
		declared[p.Name] = p
	}
	var unknown []string
	for name := range params {
		if _, ok := declared[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return clientError(codeInvalidParameters, "Parameters %s are not defined by document %s; it accepts: %s", strings.Join(unknown, ", "), doc.Name, paramNames(doc))
	}
	for _, p := range doc.Parameters {
		vals, given := params[p.Name]
		if p.Required && (!given || len(vals) == 0) {
			return clientError(codeInvalidParameters, "Document %s requires parameter %s", doc.Name, p.Name)
		}
		if p.AllowedValues != nil {
			for _, v := range vals {
				if !slices.Contains(p.AllowedValues, v) {
					return clientError(codeInvalidParameters, "Parameter %s of document %s must be one of: %s", p.Name, doc.Name, strings.Join(p.AllowedValues, ", "))
				}
			}
		}
	}
	return nil
}

func paramNames(doc Document) string {
	if len(doc.Parameters) == 0 {
		return "no parameters"
	}
	ns := make([]string, len(doc.Parameters))
	for i, p := range doc.Parameters {
		ns[i] = p.Name
	}
	return strings.Join(ns, ", ")
}

// checkScheduling checks the schedule grammar and the members that depend on
// the kind of schedule (ApplyOnlyAtCronInterval, ScheduleOffset, Duration).
func checkScheduling(e *wireEntry) *apiError {
	var kind scheduleKind
	if e.ScheduleExpression != nil {
		k, err := parseSchedule(*e.ScheduleExpression)
		if err != nil {
			return clientError(codeInvalidSchedule, "Schedule expression %s is invalid: %v", *e.ScheduleExpression, err)
		}
		kind = k
	}
	applyAtCron := e.ApplyOnlyAtCronInterval != nil && *e.ApplyOnlyAtCronInterval
	if applyAtCron && kind != scheduleCron {
		return clientError(codeInvalidSchedule, "ApplyOnlyAtCronInterval needs a cron schedule expression; it is not supported with rate or at expressions")
	}
	if e.ScheduleOffset != nil && (kind != scheduleCron || !applyAtCron) {
		return clientError(codeInvalidSchedule, "ScheduleOffset needs a cron schedule expression and ApplyOnlyAtCronInterval")
	}
	if e.Duration != nil && !applyAtCron {
		return clientError(codeInvalidParameters, "Duration needs ApplyOnlyAtCronInterval")
	}
	return nil
}

// admit applies the store-dependent checks and creates the association. The
// caller holds s.mu.
//
// Only the legacy InstanceId form is refused as "Association Already Exists"
// (AWS documents AssociationAlreadyExists for "a managed node that already
// has an associated document"), when an active association of the document
// covers the node in either form. A Targets-form entry always gets a new
// association, even one identical to an existing association: SSM keeps
// several associations of one document on one node, and nothing documents a
// refusal. The store counts it as a double.
func (s *Server) admit(p plan) (*record, *apiError) {
	if p.entry.InstanceId != nil && s.store.covered(p.docName, *p.entry.InstanceId) {
		return nil, clientError(codeAlreadyExists, "Association Already Exists")
	}
	if s.opts.MaxAssociations > 0 && s.store.active >= s.opts.MaxAssociations {
		return nil, clientError(codeLimitExceeded, "Association limit exceeded: at most %d active associations; delete some first", s.opts.MaxAssociations)
	}
	return s.store.add(p.entry, p.docName, p.nodes, p.tgtKey, s.now()), nil
}

// duplicateNode finds a node ID that appears twice in one
// CreateAssociationBatch call (via InstanceId or InstanceIds targets).
func duplicateNode(entries []wireEntry) (string, bool) {
	seen := map[string]bool{}
	for i := range entries {
		for _, n := range entryNodes(&entries[i]) {
			if seen[n] {
				return n, true
			}
			seen[n] = true
		}
	}
	return "", false
}

func duplicateNodeError(id string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeDuplicateInstanceID,
		Message: fmt.Sprintf("Instance %s appears in more than one entry of this call; send each node once per call", id)}
}
