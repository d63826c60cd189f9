package request

import "encoding/json"

// The exact member names of each shape, for the unknown-member check and its
// "did you mean" hint.
var (
	entryMembers = []string{
		"Name", "InstanceId", "Targets", "TargetMaps", "TargetLocations", "Parameters",
		"DocumentVersion", "AssociationName", "AutomationTargetParameterName",
		"ScheduleExpression", "ScheduleOffset", "Duration", "ApplyOnlyAtCronInterval",
		"OutputLocation", "MaxErrors", "MaxConcurrency", "ComplianceSeverity",
		"SyncCompliance", "CalendarNames", "AlarmConfiguration",
	}
	targetMembers         = []string{"Key", "Values"}
	outputLocationMembers = []string{"S3Location"}
	s3LocationMembers     = []string{"OutputS3Region", "OutputS3BucketName", "OutputS3KeyPrefix"}
	targetLocationMembers = []string{
		"Accounts", "Regions", "ExecutionRoleName", "ExcludeAccounts",
		"IncludeChildOrganizationUnits", "TargetLocationMaxConcurrency",
		"TargetLocationMaxErrors", "TargetLocationAlarmConfiguration", "Targets",
		"TargetsMaxConcurrency", "TargetsMaxErrors",
	}
	alarmConfigurationMembers = []string{"Alarms", "IgnorePollAlarmFailure"}
	alarmMembers              = []string{"Name"}
)

// Paths below are jpaths, spelled out only when a problem is reported: the
// members of a valid entry cost no path strings at all. Values that repeat
// from entry to entry (document name and version, schedule, target key,
// rates) are interned; values that identify a node or may be secret
// (Parameters) are not.

// entryAt decodes one CreateAssociationBatchRequestEntry. Only JSON types are
// checked here; the model's constraints are ValidateEntry's job, so that a
// well-typed but invalid entry becomes a per-entry failure rather than a
// rejection of the whole request.
func (d *decoder) entryAt(raw json.RawMessage, path *jpath) Entry {
	var e Entry
	members, ok := d.objectAt(raw, path, "an entry object")
	if !ok {
		return e
	}
	for _, m := range members {
		p := path.member(m.name)
		v := m.value
		switch m.name {
		case "Name":
			// Required: null is as good as absent, and ValidateEntry reports
			// an absent Name for this entry alone.
			if s, ok := d.stringAt(v, &p, true); ok {
				e.Name = s
			}
		case "InstanceId":
			e.InstanceId = d.strAt(v, &p)
		case "Targets":
			e.Targets = d.targets(v, &p)
		case "TargetMaps":
			e.TargetMaps = d.targetMaps(v, &p)
		case "TargetLocations":
			e.TargetLocations = d.targetLocations(v, &p)
		case "Parameters":
			e.Parameters = d.parameters(v, &p)
		case "DocumentVersion":
			e.DocumentVersion = d.internedAt(v, &p)
		case "AssociationName":
			e.AssociationName = d.strAt(v, &p)
		case "AutomationTargetParameterName":
			e.AutomationTargetParameterName = d.internedAt(v, &p)
		case "ScheduleExpression":
			e.ScheduleExpression = d.internedAt(v, &p)
		case "ScheduleOffset":
			e.ScheduleOffset = d.int32At(v, &p)
		case "Duration":
			e.Duration = d.int32At(v, &p)
		case "ApplyOnlyAtCronInterval":
			e.ApplyOnlyAtCronInterval = d.booleanAt(v, &p)
		case "OutputLocation":
			e.OutputLocation = d.outputLocation(v, &p)
		case "MaxErrors":
			e.MaxErrors = d.internedAt(v, &p)
		case "MaxConcurrency":
			e.MaxConcurrency = d.internedAt(v, &p)
		case "ComplianceSeverity":
			e.ComplianceSeverity = d.internedAt(v, &p)
		case "SyncCompliance":
			e.SyncCompliance = d.internedAt(v, &p)
		case "CalendarNames":
			e.CalendarNames = d.stringsAt(v, &p)
		case "AlarmConfiguration":
			e.AlarmConfiguration = d.alarmConfiguration(v, &p)
		default:
			d.unknownHinted(path, m.name, entryMembers, entryElsewhere)
		}
	}
	d.release(members)
	return e
}

// internedAt is strAt for a value that usually repeats from entry to entry.
func (d *decoder) internedAt(raw json.RawMessage, path *jpath) *string {
	s, ok := d.stringAt(raw, path, true)
	if !ok {
		return nil
	}
	return &s
}

func (d *decoder) targets(raw json.RawMessage, path *jpath) []Target {
	if isNull(raw) {
		return nil
	}
	out := []Target{}
	d.elementsAt(raw, path, "an array of targets", func(i int, v json.RawMessage) bool {
		p := path.elem(i)
		out = append(out, d.target(v, &p))
		return true
	})
	return out
}

func (d *decoder) target(raw json.RawMessage, path *jpath) Target {
	var t Target
	members, ok := d.objectAt(raw, path, "a target object")
	if !ok {
		return t
	}
	for _, m := range members {
		p := path.member(m.name)
		switch m.name {
		case "Key":
			if s, ok := d.stringAt(m.value, &p, true); ok {
				t.Key = s
			}
		case "Values":
			t.Values = d.stringsAt(m.value, &p)
		default:
			d.unknownAt(path, m.name, targetMembers)
		}
	}
	d.release(members)
	return t
}

func (d *decoder) targetMaps(raw json.RawMessage, path *jpath) []map[string][]string {
	if isNull(raw) {
		return nil
	}
	out := []map[string][]string{}
	d.elementsAt(raw, path, "an array of objects", func(i int, v json.RawMessage) bool {
		p := path.elem(i)
		if isNull(v) {
			d.typeErrorAt(&p, "an object of string arrays", v)
			return true
		}
		out = append(out, d.stringListMapAt(v, &p))
		return true
	})
	return out
}

func (d *decoder) targetLocations(raw json.RawMessage, path *jpath) []TargetLocation {
	if isNull(raw) {
		return nil
	}
	out := []TargetLocation{}
	d.elementsAt(raw, path, "an array of target locations", func(i int, v json.RawMessage) bool {
		p := path.elem(i)
		out = append(out, d.targetLocation(v, &p))
		return true
	})
	return out
}

func (d *decoder) targetLocation(raw json.RawMessage, path *jpath) TargetLocation {
	var tl TargetLocation
	members, ok := d.objectAt(raw, path, "a target location object")
	if !ok {
		return tl
	}
	for _, m := range members {
		p := path.member(m.name)
		v := m.value
		switch m.name {
		case "Accounts":
			tl.Accounts = d.stringsAt(v, &p)
		case "Regions":
			tl.Regions = d.stringsAt(v, &p)
		case "ExecutionRoleName":
			tl.ExecutionRoleName = d.internedAt(v, &p)
		case "ExcludeAccounts":
			tl.ExcludeAccounts = d.stringsAt(v, &p)
		case "IncludeChildOrganizationUnits":
			tl.IncludeChildOrganizationUnits = d.booleanAt(v, &p)
		case "TargetLocationMaxConcurrency":
			tl.TargetLocationMaxConcurrency = d.internedAt(v, &p)
		case "TargetLocationMaxErrors":
			tl.TargetLocationMaxErrors = d.internedAt(v, &p)
		case "TargetLocationAlarmConfiguration":
			tl.TargetLocationAlarmConfiguration = d.alarmConfiguration(v, &p)
		case "Targets":
			tl.Targets = d.targets(v, &p)
		case "TargetsMaxConcurrency":
			tl.TargetsMaxConcurrency = d.internedAt(v, &p)
		case "TargetsMaxErrors":
			tl.TargetsMaxErrors = d.internedAt(v, &p)
		default:
			d.unknownAt(path, m.name, targetLocationMembers)
		}
	}
	d.release(members)
	return tl
}

func (d *decoder) outputLocation(raw json.RawMessage, path *jpath) *OutputLocation {
	if isNull(raw) {
		return nil
	}
	members, ok := d.objectAt(raw, path, "an object")
	if !ok {
		return nil
	}
	out := &OutputLocation{}
	for _, m := range members {
		p := path.member(m.name)
		switch m.name {
		case "S3Location":
			out.S3Location = d.s3Location(m.value, &p)
		default:
			d.unknownAt(path, m.name, outputLocationMembers)
		}
	}
	d.release(members)
	return out
}

func (d *decoder) s3Location(raw json.RawMessage, path *jpath) *S3Location {
	if isNull(raw) {
		return nil
	}
	members, ok := d.objectAt(raw, path, "an object")
	if !ok {
		return nil
	}
	out := &S3Location{}
	for _, m := range members {
		p := path.member(m.name)
		switch m.name {
		case "OutputS3Region":
			out.OutputS3Region = d.internedAt(m.value, &p)
		case "OutputS3BucketName":
			out.OutputS3BucketName = d.internedAt(m.value, &p)
		case "OutputS3KeyPrefix":
			out.OutputS3KeyPrefix = d.internedAt(m.value, &p)
		default:
			d.unknownAt(path, m.name, s3LocationMembers)
		}
	}
	d.release(members)
	return out
}

func (d *decoder) alarmConfiguration(raw json.RawMessage, path *jpath) *AlarmConfiguration {
	if isNull(raw) {
		return nil
	}
	members, ok := d.objectAt(raw, path, "an object")
	if !ok {
		return nil
	}
	out := &AlarmConfiguration{}
	for _, m := range members {
		p := path.member(m.name)
		switch m.name {
		case "Alarms":
			// Required; an absent or null list is left nil and reported by
			// ValidateEntry ("exactly 1 alarm") for this entry alone.
			if !isNull(m.value) {
				out.Alarms = []Alarm{}
				d.elementsAt(m.value, &p, "an array of alarms", func(i int, v json.RawMessage) bool {
					ap := p.elem(i)
					out.Alarms = append(out.Alarms, d.alarm(v, &ap))
					return true
				})
			}
		case "IgnorePollAlarmFailure":
			out.IgnorePollAlarmFailure = d.booleanAt(m.value, &p)
		default:
			d.unknownAt(path, m.name, alarmConfigurationMembers)
		}
	}
	d.release(members)
	return out
}

func (d *decoder) alarm(raw json.RawMessage, path *jpath) Alarm {
	var a Alarm
	members, ok := d.objectAt(raw, path, "an alarm object")
	if !ok {
		return a
	}
	for _, m := range members {
		p := path.member(m.name)
		switch m.name {
		case "Name":
			if s, ok := d.stringAt(m.value, &p, true); ok {
				a.Name = s
			}
		default:
			d.unknownAt(path, m.name, alarmMembers)
		}
	}
	d.release(members)
	return a
}
