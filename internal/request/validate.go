package request

import (
	"regexp"
	"slices"
	"sort"
	"strings"
)

// ValidateEntry checks one entry against the SSM model's constraints and the
// cross-field rules SSM enforces (see shared/reference/ssm-model-notes.md).
// path prefixes every problem ("Entries[3]" gives "Entries[3].InstanceId").
// Messages name the rule, never the value: Parameters can hold secrets, and
// the other members are in the caller's own request anyway.
func ValidateEntry(path string, e Entry) []FieldError {
	var c problemList
	at := func(member string) string { return memberPath(path, member) }

	// The checks every entry of a large request goes through build a path
	// only when they report a problem: spelling out "Entries[7].Name" for
	// each of 100,000 valid entries cost more than checking them.
	if e.Name == "" {
		c.add(at("Name"), "required")
	} else if !documentNames.get(e.Name) {
		c.add(at("Name"), "must match %s", patDocumentName)
	}
	if e.InstanceId != nil && !ValidInstanceID(*e.InstanceId) {
		c.add(at("InstanceId"), "must match %s", patInstanceID)
	}
	if e.AutomationTargetParameterName != nil {
		length(&c, at("AutomationTargetParameterName"), *e.AutomationTargetParameterName, 1, 50)
	}
	if e.DocumentVersion != nil {
		matches(&c, at("DocumentVersion"), *e.DocumentVersion, reDocumentVersion, patDocumentVersion)
	}
	validateTargets(&c, path, "Targets", e.Targets, true)
	if e.OutputLocation != nil && e.OutputLocation.S3Location != nil {
		s3 := e.OutputLocation.S3Location
		s3Path := memberPath(at("OutputLocation"), "S3Location")
		if s3.OutputS3Region != nil {
			length(&c, memberPath(s3Path, "OutputS3Region"), *s3.OutputS3Region, 3, 20)
		}
		if s3.OutputS3BucketName != nil {
			length(&c, memberPath(s3Path, "OutputS3BucketName"), *s3.OutputS3BucketName, 3, 63)
		}
		if s3.OutputS3KeyPrefix != nil {
			length(&c, memberPath(s3Path, "OutputS3KeyPrefix"), *s3.OutputS3KeyPrefix, 0, 500)
		}
	}
	if e.AssociationName != nil {
		matches(&c, at("AssociationName"), *e.AssociationName, reAssociationName, patAssociationName)
	}
	if e.MaxErrors != nil {
		rate(&c, at("MaxErrors"), *e.MaxErrors, reMaxErrors, patMaxErrors)
	}
	if e.MaxConcurrency != nil {
		rate(&c, at("MaxConcurrency"), *e.MaxConcurrency, reMaxConcurrency, patMaxConcurrency)
	}
	if e.ComplianceSeverity != nil {
		oneOf(&c, at("ComplianceSeverity"), *e.ComplianceSeverity, complianceSeverities)
	}
	if e.SyncCompliance != nil {
		oneOf(&c, at("SyncCompliance"), *e.SyncCompliance, syncCompliances)
	}
	if e.TargetLocations != nil {
		validateTargetLocations(&c, at("TargetLocations"), e.TargetLocations)
	}
	if e.ScheduleOffset != nil && (*e.ScheduleOffset < 1 || *e.ScheduleOffset > 6) {
		c.add(at("ScheduleOffset"), "must be between 1 and 6")
	}
	if e.Duration != nil && (*e.Duration < 1 || *e.Duration > 24) {
		c.add(at("Duration"), "must be between 1 and 24 (hours)")
	}
	if len(e.TargetMaps) > 0 {
		validateTargetMaps(&c, at("TargetMaps"), e.TargetMaps)
	}
	if e.AlarmConfiguration != nil {
		validateAlarms(&c, at("AlarmConfiguration"), e.AlarmConfiguration)
	}

	kind := scheduleNone
	if e.ScheduleExpression != nil {
		if n := modelLen(*e.ScheduleExpression); n < 1 || n > 256 {
			c.add(at("ScheduleExpression"), "must be between 1 and 256 characters")
			kind = scheduleInvalid
		} else if sr := schedules.get(*e.ScheduleExpression); sr.err != nil {
			c.add(at("ScheduleExpression"), "%s", sr.err.Error())
			kind = scheduleInvalid
		} else {
			kind = sr.kind
		}
	}
	crossField(&c, at, e, kind)
	return c.result()
}

// crossField applies the rules that tie members together. SSM rejects these
// combinations as a whole; we catch them per entry.
func crossField(c *problemList, at func(string) string, e Entry, kind scheduleKind) {
	if e.InstanceId != nil {
		// The legacy InstanceId form predates these members; SSM refuses
		// them together.
		forbidden := []struct {
			name    string
			present bool
		}{
			{"AssociationName", e.AssociationName != nil},
			{"DocumentVersion", e.DocumentVersion != nil},
			{"MaxErrors", e.MaxErrors != nil},
			{"MaxConcurrency", e.MaxConcurrency != nil},
			{"OutputLocation", e.OutputLocation != nil},
			{"ScheduleExpression", e.ScheduleExpression != nil},
			{"Targets", len(e.Targets) > 0},
			{"TargetMaps", len(e.TargetMaps) > 0},
		}
		for _, f := range forbidden {
			if f.present {
				c.add(at(f.name), "not allowed together with InstanceId")
			}
		}
	}
	if len(e.Targets) > 0 && len(e.TargetMaps) > 0 {
		c.add(at("TargetMaps"), "not allowed together with Targets")
	}
	// SSM needs something to associate the document with. TargetLocations
	// counts: a multi-account association names its targets per location.
	if e.InstanceId == nil && len(e.Targets) == 0 && len(e.TargetMaps) == 0 && len(e.TargetLocations) == 0 {
		c.add(at("Targets"), "required: an entry needs InstanceId, Targets, TargetMaps or TargetLocations")
	}

	switch {
	case !e.ApplyOnlyAtCronInterval:
	case kind == scheduleRate:
		c.add(at("ApplyOnlyAtCronInterval"), "not supported with a rate expression")
	case kind == scheduleNone:
		c.add(at("ApplyOnlyAtCronInterval"), "requires a cron ScheduleExpression")
	}
	if e.ScheduleOffset != nil {
		if kind != scheduleCron && kind != scheduleInvalid {
			c.add(at("ScheduleOffset"), "only allowed with a cron ScheduleExpression")
		}
		if !e.ApplyOnlyAtCronInterval {
			c.add(at("ScheduleOffset"), "requires ApplyOnlyAtCronInterval")
		}
	}
	if e.Duration != nil && !e.ApplyOnlyAtCronInterval {
		c.add(at("Duration"), "requires ApplyOnlyAtCronInterval")
	}
}

// validateTargets checks the Targets list at member of path. nodeRules adds
// the node-ID checks of InstanceIds targets: every value a node ID, none
// repeated (SSM answers a repeat with DuplicateInstanceId for the whole
// call). Paths are spelled out only for problems (see ValidateEntry).
func validateTargets(c *problemList, path, member string, targets []Target, nodeRules bool) {
	if len(targets) == 0 {
		return
	}
	listPath := func() string { return memberPath(path, member) }
	itemPath := func(i int, m string) string { return memberPath(indexPath(listPath(), i), m) }
	valuePath := func(i, j int) string { return indexPath(itemPath(i, "Values"), j) }
	if len(targets) > 5 {
		c.add(listPath(), "at most 5 targets")
	}
	var seen map[string][2]int // node → where it first appeared; only needed for a second value
	values := 0
	for _, t := range targets {
		values += len(t.Values)
	}
	for i, t := range targets {
		// InstanceIds, the one key of nearly every target, matches the
		// pattern; a test keeps it so.
		if n := modelLen(t.Key); n < 1 || n > 163 {
			c.add(itemPath(i, "Key"), "must be between 1 and 163 characters")
		} else if t.Key != InstanceIDsKey && !reTargetKey.MatchString(t.Key) {
			c.add(itemPath(i, "Key"), "must match %s", patTargetKey)
		}
		switch {
		case len(t.Values) > 50:
			c.add(itemPath(i, "Values"), "at most 50 values")
		case len(t.Values) == 0:
			// The model allows an empty list, but a target without values
			// selects nothing; SSM rejects it as an invalid target.
			c.add(itemPath(i, "Values"), "at least 1 value required")
		}
		if !nodeRules || t.Key != InstanceIDsKey {
			continue
		}
		for j, v := range t.Values {
			if !ValidInstanceID(v) {
				c.add(valuePath(i, j), "must match %s", patInstanceID)
				continue
			}
			if values < 2 {
				continue
			}
			if seen == nil {
				seen = make(map[string][2]int, values)
			}
			if first, dup := seen[v]; dup {
				c.add(valuePath(i, j), "duplicate of %s", valuePath(first[0], first[1]))
				continue
			}
			seen[v] = [2]int{i, j}
		}
	}
}

func validateTargetMaps(c *problemList, path string, maps []map[string][]string) {
	if len(maps) > 300 {
		c.add(path, "at most 300 target maps")
	}
	for i, m := range maps {
		mp := indexPath(path, i)
		if n := len(m); n < 1 || n > 20 {
			c.add(mp, "must have between 1 and 20 keys")
		}
		// Sorted so the same request always gets the same messages.
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kp := memberPath(mp, k)
			if n := modelLen(k); n < 1 || n > 50 {
				c.add(kp, "key must be between 1 and 50 characters")
			}
			values := m[k]
			if len(values) > 25 {
				c.add(kp, "at most 25 values")
			}
			for j, v := range values {
				if n := modelLen(v); n < 1 || n > 50 {
					c.add(indexPath(kp, j), "must be between 1 and 50 characters")
				}
			}
		}
	}
}

func validateTargetLocations(c *problemList, path string, locs []TargetLocation) {
	if n := len(locs); n < 1 || n > 100 {
		c.add(path, "must have between 1 and 100 target locations")
	}
	for i, tl := range locs {
		lp := indexPath(path, i)
		at := func(member string) string { return memberPath(lp, member) }
		if tl.Accounts != nil {
			listSize(c, at("Accounts"), len(tl.Accounts), 1, 50, "accounts")
		}
		if tl.Regions != nil {
			listSize(c, at("Regions"), len(tl.Regions), 1, 50, "Regions")
		}
		if tl.ExecutionRoleName != nil {
			if n := modelLen(*tl.ExecutionRoleName); n < 1 || n > 64 {
				c.add(at("ExecutionRoleName"), "must be between 1 and 64 characters")
			} else {
				matches(c, at("ExecutionRoleName"), *tl.ExecutionRoleName, reExecutionRole, patExecutionRole)
			}
		}
		if tl.ExcludeAccounts != nil {
			ep := at("ExcludeAccounts")
			listSize(c, ep, len(tl.ExcludeAccounts), 1, 5000, "accounts")
			for j, a := range tl.ExcludeAccounts {
				if n := modelLen(a); n < 6 || n > 68 {
					c.add(indexPath(ep, j), "must be between 6 and 68 characters")
				} else {
					matches(c, indexPath(ep, j), a, reExcludeAccount, patExcludeAccount)
				}
			}
		}
		if tl.TargetLocationMaxConcurrency != nil {
			rate(c, at("TargetLocationMaxConcurrency"), *tl.TargetLocationMaxConcurrency, reMaxConcurrency, patMaxConcurrency)
		}
		if tl.TargetLocationMaxErrors != nil {
			rate(c, at("TargetLocationMaxErrors"), *tl.TargetLocationMaxErrors, reMaxErrors, patMaxErrors)
		}
		if tl.TargetLocationAlarmConfiguration != nil {
			validateAlarms(c, at("TargetLocationAlarmConfiguration"), tl.TargetLocationAlarmConfiguration)
		}
		// The notes (from the API reference) allow at most one target per
		// location, though the model reuses the 5-target Targets shape.
		if len(tl.Targets) > 1 {
			c.add(at("Targets"), "at most 1 target per target location")
		}
		validateTargets(c, lp, "Targets", tl.Targets, false)
		if tl.TargetsMaxConcurrency != nil {
			rate(c, at("TargetsMaxConcurrency"), *tl.TargetsMaxConcurrency, reMaxConcurrency, patMaxConcurrency)
		}
		if tl.TargetsMaxErrors != nil {
			rate(c, at("TargetsMaxErrors"), *tl.TargetsMaxErrors, reMaxErrors, patMaxErrors)
		}
	}
}

func validateAlarms(c *problemList, path string, a *AlarmConfiguration) {
	ap := memberPath(path, "Alarms")
	if len(a.Alarms) != 1 {
		c.add(ap, "must contain exactly 1 alarm")
	}
	for i, al := range a.Alarms {
		np := memberPath(indexPath(ap, i), "Name")
		switch n := modelLen(al.Name); {
		case n == 0:
			c.add(np, "required")
		case n > 255:
			c.add(np, "must be between 1 and 255 characters")
		case !validAlarmName(al.Name):
			c.add(np, "must match %s (not blank, one line)", patAlarmName)
		}
	}
}

// validateAssumeRole checks AssociationDispatchAssumeRole.
func validateAssumeRole(c *problemList, path, arn string) {
	if n := modelLen(arn); n < 1 || n > 512 {
		c.add(path, "must be between 1 and 512 characters")
		return
	}
	matches(c, path, arn, reAssumeRoleARN, patAssumeRoleARN)
}

func matches(c *problemList, path, s string, re *regexp.Regexp, pattern string) {
	if !re.MatchString(s) {
		c.add(path, "must match %s", pattern)
	}
}

func length(c *problemList, path, s string, min, max int) {
	if n := modelLen(s); n < min || n > max {
		if min == 0 {
			c.add(path, "must be at most %d characters", max)
			return
		}
		c.add(path, "must be between %d and %d characters", min, max)
	}
}

// rate checks a MaxErrors/MaxConcurrency-style value: 1–7 characters, then
// the pattern.
func rate(c *problemList, path, s string, re *regexp.Regexp, pattern string) {
	if n := modelLen(s); n < 1 || n > 7 {
		c.add(path, "must be between 1 and 7 characters")
		return
	}
	matches(c, path, s, re, pattern)
}

func oneOf(c *problemList, path, s string, allowed []string) {
	if !slices.Contains(allowed, s) {
		c.add(path, "must be one of %s", strings.Join(allowed, ", "))
	}
}

func listSize(c *problemList, path string, n, min, max int, what string) {
	switch {
	case n < min:
		c.add(path, "at least %d %s required", min, what)
	case n > max:
		c.add(path, "at most %d %s", max, what)
	}
}
