package ssmlocal

import (
	"fmt"
	"sort"
	"strconv"
)

// entry checks a CreateAssociationBatchRequestEntry (or the same members of
// CreateAssociationRequest) against the model; p is the path prefix, e.g.
// "entries.1.member.", and member names are lower camel case as the service
// prints them.
func (v *violations) entry(p string, e *wireEntry) {
	rn := ruleDocumentARN
	rn.required = true
	v.str(p+"name", e.Name, rn)
	v.entryMembers(p, e)
}

// entryMembers checks every member of an entry but Name, which is required
// in an entry and optional in UpdateAssociationRequest.
func (v *violations) entryMembers(p string, e *wireEntry) {
	v.str(p+"instanceId", e.InstanceId, ruleInstanceID)
	v.str(p+"automationTargetParameterName", e.AutomationTargetParameterName, ruleAutoTargetParam)
	v.str(p+"documentVersion", e.DocumentVersion, ruleDocumentVersion)
	v.targets(p+"targets", e.Targets)
	v.str(p+"scheduleExpression", e.ScheduleExpression, ruleSchedule)
	if e.OutputLocation != nil && e.OutputLocation.S3Location != nil {
		s3 := e.OutputLocation.S3Location
		q := p + "outputLocation.s3Location."
		v.str(q+"outputS3Region", s3.OutputS3Region, ruleS3Region)
		v.str(q+"outputS3BucketName", s3.OutputS3BucketName, ruleS3Bucket)
		v.str(q+"outputS3KeyPrefix", s3.OutputS3KeyPrefix, ruleS3KeyPrefix)
	}
	v.str(p+"associationName", e.AssociationName, ruleAssociationName)
	v.str(p+"maxErrors", e.MaxErrors, ruleMaxErrors)
	v.str(p+"maxConcurrency", e.MaxConcurrency, ruleMaxConcurrency)
	v.str(p+"complianceSeverity", e.ComplianceSeverity, ruleCompliance)
	v.str(p+"syncCompliance", e.SyncCompliance, ruleSyncCompliance)
	v.targetLocations(p+"targetLocations", e.TargetLocations)
	v.intRange(p+"scheduleOffset", e.ScheduleOffset, 1, 6)
	v.intRange(p+"duration", e.Duration, 1, 24)
	v.targetMaps(p+"targetMaps", e.TargetMaps)
	v.alarmConfiguration(p+"alarmConfiguration", e.AlarmConfiguration)
}

func (v *violations) targets(path string, ts []wireTarget) {
	v.listLen(path, ts != nil, len(ts), 0, 5, func() string { return renderTargets(ts) })
	for i, t := range ts {
		q := fmt.Sprintf("%s.%d.member.", path, i+1)
		v.str(q+"key", t.Key, ruleTargetKey)
		v.listLen(q+"values", t.Values != nil, len(t.Values), 0, 50, func() string { return renderList(t.Values) })
	}
}

func (v *violations) targetLocations(path string, tls []wireTargetLocation) {
	v.listLen(path, tls != nil, len(tls), 1, 100, func() string { return fmt.Sprintf("[%d target locations]", len(tls)) })
	for i, tl := range tls {
		q := fmt.Sprintf("%s.%d.member.", path, i+1)
		v.listLen(q+"accounts", tl.Accounts != nil, len(tl.Accounts), 1, 50, func() string { return renderList(tl.Accounts) })
		v.listLen(q+"regions", tl.Regions != nil, len(tl.Regions), 1, 50, func() string { return renderList(tl.Regions) })
		v.str(q+"targetLocationMaxConcurrency", tl.TargetLocationMaxConcurrency, ruleMaxConcurrency)
		v.str(q+"targetLocationMaxErrors", tl.TargetLocationMaxErrors, ruleMaxErrors)
		v.str(q+"executionRoleName", tl.ExecutionRoleName, ruleExecutionRole)
		v.alarmConfiguration(q+"targetLocationAlarmConfiguration", tl.TargetLocationAlarmConfiguration)
		v.listLen(q+"excludeAccounts", tl.ExcludeAccounts != nil, len(tl.ExcludeAccounts), 1, 5000, func() string { return renderList(tl.ExcludeAccounts) })
		v.memberStrings(q+"excludeAccounts", tl.ExcludeAccounts, ruleExcludeAccount)
		v.listLen(q+"targets", tl.Targets != nil, len(tl.Targets), 0, 1, func() string { return renderTargets(tl.Targets) })
		for j, t := range tl.Targets {
			r := fmt.Sprintf("%stargets.%d.member.", q, j+1)
			v.str(r+"key", t.Key, ruleTargetKey)
			v.listLen(r+"values", t.Values != nil, len(t.Values), 0, 50, func() string { return renderList(t.Values) })
		}
		v.str(q+"targetsMaxConcurrency", tl.TargetsMaxConcurrency, ruleMaxConcurrency)
		v.str(q+"targetsMaxErrors", tl.TargetsMaxErrors, ruleMaxErrors)
	}
}

// targetMaps checks 0–300 maps of 1–20 keys (1–50 chars) to 0–25 values
// (1–50 chars). Map key and value failures are worded as the service words
// them for maps ("Map keys must satisfy constraint: [...]").
func (v *violations) targetMaps(path string, tms []map[string][]string) {
	v.listLen(path, tms != nil, len(tms), 0, 300, func() string { return fmt.Sprintf("[%d target maps]", len(tms)) })
	for i, m := range tms {
		q := fmt.Sprintf("%s.%d.member", path, i+1)
		v.listLen(q, true, len(m), 1, 20, func() string { return renderMap(m) })
		keyFail, valFail := map[string]bool{}, map[string]bool{}
		var keyCs, valCs []string
		for _, k := range sortedKeys(m) {
			vals := m[k]
			for _, c := range ruleTargetMapKey.check(k) {
				if !keyFail[c] {
					keyFail[c] = true
					keyCs = append(keyCs, c)
				}
			}
			if len(vals) > 25 && !valFail["len"] {
				valFail["len"] = true
				valCs = append(valCs, "Member must have length less than or equal to 25")
			}
			for _, s := range vals {
				for _, c := range ruleTargetMapValue.check(s) {
					c = "Member must satisfy constraint: [" + c + "]"
					if !valFail[c] {
						valFail[c] = true
						valCs = append(valCs, c)
					}
				}
			}
		}
		if len(keyCs) > 0 {
			v.add(quote(renderMap(m)), q, "Map keys must satisfy constraint: ["+joinComma(keyCs)+"]")
		}
		if len(valCs) > 0 {
			v.add(quote(renderMap(m)), q, "Map value must satisfy constraint: ["+joinComma(valCs)+"]")
		}
	}
}

func (v *violations) alarmConfiguration(path string, ac *wireAlarmConfiguration) {
	if ac == nil {
		return
	}
	if ac.Alarms == nil {
		v.add("null", path+".alarms", "Member must not be null")
		return
	}
	v.listLen(path+".alarms", true, len(ac.Alarms), 1, 1, func() string { return fmt.Sprintf("[%d alarms]", len(ac.Alarms)) })
	for i, a := range ac.Alarms {
		v.str(fmt.Sprintf("%s.alarms.%d.member.name", path, i+1), a.Name, ruleAlarmName)
	}
}

// validateCreateBatch checks a CreateAssociationBatch request. maxBatch is
// the emulator's own entries-per-call limit (AWS publishes none); it is
// reported as if the model had it, so callers see the usual wording.
func validateCreateBatch(in *createBatchInput, maxBatch int) *apiError {
	var v violations
	if in.Entries == nil {
		v.add("null", "entries", "Member must not be null")
	} else {
		max := -1
		if maxBatch > 0 {
			max = maxBatch
		}
		v.listLen("entries", true, len(in.Entries), 1, max, func() string { return fmt.Sprintf("[%d entries]", len(in.Entries)) })
	}
	for i := range in.Entries {
		v.entry("entries."+strconv.Itoa(i+1)+".member.", &in.Entries[i])
	}
	v.str("associationDispatchAssumeRole", in.AssociationDispatchAssumeRole, ruleAssumeRole)
	return v.err()
}

func validateCreate(in *createInput) *apiError {
	var v violations
	v.entry("", &in.wireEntry)
	v.listLen("tags", in.Tags != nil, len(in.Tags), 0, 1000, func() string { return fmt.Sprintf("[%d tags]", len(in.Tags)) })
	for i, t := range in.Tags {
		q := fmt.Sprintf("tags.%d.member.", i+1)
		v.str(q+"key", t.Key, ruleTagKey)
		v.str(q+"value", t.Value, ruleTagValue)
	}
	v.str("associationDispatchAssumeRole", in.AssociationDispatchAssumeRole, ruleAssumeRole)
	return v.err()
}

// validateUpdate checks an UpdateAssociation request: AssociationId is its
// only required member; the others have the same shapes as in
// CreateAssociationRequest.
func validateUpdate(in *updateInput) *apiError {
	var v violations
	rid := ruleAssociationID
	rid.required = true
	v.str("associationId", in.AssociationId, rid)
	v.str("name", in.Name, ruleDocumentARN)
	v.entryMembers("", &in.wireEntry)
	v.str("associationVersion", in.AssociationVersion, ruleAssocVersion)
	v.str("associationDispatchAssumeRole", in.AssociationDispatchAssumeRole, ruleAssumeRole)
	return v.err()
}

func validateDescribe(in *describeInput) *apiError {
	var v violations
	v.str("name", in.Name, ruleDocumentARN)
	v.str("instanceId", in.InstanceId, ruleInstanceID)
	v.str("associationId", in.AssociationId, ruleAssociationID)
	v.str("associationVersion", in.AssociationVersion, ruleAssocVersion)
	return v.err()
}

func validateDelete(in *deleteInput) *apiError {
	var v violations
	v.str("name", in.Name, ruleDocumentARN)
	v.str("instanceId", in.InstanceId, ruleInstanceID)
	v.str("associationId", in.AssociationId, ruleAssociationID)
	return v.err()
}

func validateList(in *listInput) *apiError {
	var v violations
	fl := in.AssociationFilterList
	v.listLen("associationFilterList", fl != nil, len(fl), 1, -1, func() string { return fmt.Sprintf("[%d filters]", len(fl)) })
	for i, f := range fl {
		q := fmt.Sprintf("associationFilterList.%d.member.", i+1)
		v.str(q+"key", f.Key, ruleFilterKey)
		v.str(q+"value", f.Value, ruleFilterValue)
	}
	v.intRange("maxResults", in.MaxResults, 1, 50)
	return v.err()
}

func joinComma(cs []string) string {
	out := ""
	for i, c := range cs {
		if i > 0 {
			out += ", "
		}
		out += c
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
