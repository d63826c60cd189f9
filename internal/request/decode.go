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

// entry decodes one CreateAssociationBatchRequestEntry. Only JSON types are
// checked here; the model's constraints are ValidateEntry's job, so that a
// well-typed but invalid entry becomes a per-entry failure rather than a
// rejection of the whole request.
func (d *decoder) entry(raw json.RawMessage, path string) Entry {
	var e Entry
	members, ok := d.object(raw, path, "an entry object")
	if !ok {
		return e
	}
	for _, m := range members {
		p := memberPath(path, m.name)
		v := m.value
		switch m.name {
		case "Name":
			// Required: null is as good as absent, and ValidateEntry reports
			// an absent Name for this entry alone.
			if s := d.str(v, p); s != nil {
				e.Name = *s
			}
		case "InstanceId":
			e.InstanceId = d.str(v, p)
		case "Targets":
			e.Targets = d.targets(v, p)
		case "TargetMaps":
			e.TargetMaps = d.targetMaps(v, p)
		case "TargetLocations":
			e.TargetLocations = d.targetLocations(v, p)
		case "Parameters":
			e.Parameters = d.stringListMap(v, p)
		case "DocumentVersion":
			e.DocumentVersion = d.str(v, p)
		case "AssociationName":
			e.AssociationName = d.str(v, p)
		case "AutomationTargetParameterName":
			e.AutomationTargetParameterName = d.str(v, p)
		case "ScheduleExpression":
			e.ScheduleExpression = d.str(v, p)
		case "ScheduleOffset":
			e.ScheduleOffset = d.int32(v, p)
		case "Duration":
			e.Duration = d.int32(v, p)
		case "ApplyOnlyAtCronInterval":
			e.ApplyOnlyAtCronInterval = d.boolean(v, p)
		case "OutputLocation":
			e.OutputLocation = d.outputLocation(v, p)
		case "MaxErrors":
			e.MaxErrors = d.str(v, p)
		case "MaxConcurrency":
			e.MaxConcurrency = d.str(v, p)
		case "ComplianceSeverity":
			e.ComplianceSeverity = d.str(v, p)
		case "SyncCompliance":
			e.SyncCompliance = d.str(v, p)
		case "CalendarNames":
			e.CalendarNames = d.strings(v, p)
		case "AlarmConfiguration":
			e.AlarmConfiguration = d.alarmConfiguration(v, p)
		default:
			d.unknown(path, m.name, entryMembers)
		}
	}
	return e
}

func (d *decoder) targets(raw json.RawMessage, path string) []Target {
	if isNull(raw) {
		return nil
	}
	out := []Target{}
	d.elements(raw, path, "an array of targets", func(i int, v json.RawMessage) bool {
		out = append(out, d.target(v, indexPath(path, i)))
		return true
	})
	return out
}

func (d *decoder) target(raw json.RawMessage, path string) Target {
	var t Target
	members, ok := d.object(raw, path, "a target object")
	if !ok {
		return t
	}
	for _, m := range members {
		p := memberPath(path, m.name)
		switch m.name {
		case "Key":
			if s := d.str(m.value, p); s != nil {
				t.Key = *s
			}
		case "Values":
			t.Values = d.strings(m.value, p)
		default:
			d.unknown(path, m.name, targetMembers)
		}
	}
	return t
}

func (d *decoder) targetMaps(raw json.RawMessage, path string) []map[string][]string {
	if isNull(raw) {
		return nil
	}
	out := []map[string][]string{}
	d.elements(raw, path, "an array of objects", func(i int, v json.RawMessage) bool {
		p := indexPath(path, i)
		if isNull(v) {
			d.typeError(p, "an object of string arrays", v)
			return true
		}
		out = append(out, d.stringListMap(v, p))
		return true
	})
	return out
}

func (d *decoder) targetLocations(raw json.RawMessage, path string) []TargetLocation {
	if isNull(raw) {
		return nil
	}
	out := []TargetLocation{}
	d.elements(raw, path, "an array of target locations", func(i int, v json.RawMessage) bool {
		out = append(out, d.targetLocation(v, indexPath(path, i)))
		return true
	})
	return out
}

func (d *decoder) targetLocation(raw json.RawMessage, path string) TargetLocation {
	var tl TargetLocation
	members, ok := d.object(raw, path, "a target location object")
	if !ok {
		return tl
	}
	for _, m := range members {
		p := memberPath(path, m.name)
		v := m.value
		switch m.name {
		case "Accounts":
			tl.Accounts = d.strings(v, p)
		case "Regions":
			tl.Regions = d.strings(v, p)
		case "ExecutionRoleName":
			tl.ExecutionRoleName = d.str(v, p)
		case "ExcludeAccounts":
			tl.ExcludeAccounts = d.strings(v, p)
		case "IncludeChildOrganizationUnits":
			tl.IncludeChildOrganizationUnits = d.boolean(v, p)
		case "TargetLocationMaxConcurrency":
			tl.TargetLocationMaxConcurrency = d.str(v, p)
		case "TargetLocationMaxErrors":
			tl.TargetLocationMaxErrors = d.str(v, p)
		case "TargetLocationAlarmConfiguration":
			tl.TargetLocationAlarmConfiguration = d.alarmConfiguration(v, p)
		case "Targets":
			tl.Targets = d.targets(v, p)
		case "TargetsMaxConcurrency":
			tl.TargetsMaxConcurrency = d.str(v, p)
		case "TargetsMaxErrors":
			tl.TargetsMaxErrors = d.str(v, p)
		default:
			d.unknown(path, m.name, targetLocationMembers)
		}
	}
	return tl
}

func (d *decoder) outputLocation(raw json.RawMessage, path string) *OutputLocation {
	if isNull(raw) {
		return nil
	}
	members, ok := d.object(raw, path, "an object")
	if !ok {
		return nil
	}
	out := &OutputLocation{}
	for _, m := range members {
		p := memberPath(path, m.name)
		switch m.name {
		case "S3Location":
			out.S3Location = d.s3Location(m.value, p)
		default:
			d.unknown(path, m.name, outputLocationMembers)
		}
	}
	return out
}

func (d *decoder) s3Location(raw json.RawMessage, path string) *S3Location {
	if isNull(raw) {
		return nil
	}
	members, ok := d.object(raw, path, "an object")
	if !ok {
		return nil
	}
	out := &S3Location{}
	for _, m := range members {
		p := memberPath(path, m.name)
		switch m.name {
		case "OutputS3Region":
			out.OutputS3Region = d.str(m.value, p)
		case "OutputS3BucketName":
			out.OutputS3BucketName = d.str(m.value, p)
		case "OutputS3KeyPrefix":
			out.OutputS3KeyPrefix = d.str(m.value, p)
		default:
			d.unknown(path, m.name, s3LocationMembers)
		}
	}
	return out
}

func (d *decoder) alarmConfiguration(raw json.RawMessage, path string) *AlarmConfiguration {
	if isNull(raw) {
		return nil
	}
	members, ok := d.object(raw, path, "an object")
	if !ok {
		return nil
	}
	out := &AlarmConfiguration{}
	for _, m := range members {
		p := memberPath(path, m.name)
		switch m.name {
		case "Alarms":
			// Required; an absent or null list is left nil and reported by
			// ValidateEntry ("exactly 1 alarm") for this entry alone.
			if !isNull(m.value) {
				out.Alarms = []Alarm{}
				d.elements(m.value, p, "an array of alarms", func(i int, v json.RawMessage) bool {
					out.Alarms = append(out.Alarms, d.alarm(v, indexPath(p, i)))
					return true
				})
			}
		case "IgnorePollAlarmFailure":
			out.IgnorePollAlarmFailure = d.boolean(m.value, p)
		default:
			d.unknown(path, m.name, alarmConfigurationMembers)
		}
	}
	return out
}

func (d *decoder) alarm(raw json.RawMessage, path string) Alarm {
	var a Alarm
	members, ok := d.object(raw, path, "an alarm object")
	if !ok {
		return a
	}
	for _, m := range members {
		p := memberPath(path, m.name)
		switch m.name {
		case "Name":
			if s := d.str(m.value, p); s != nil {
				a.Name = *s
			}
		default:
			d.unknown(path, m.name, alarmMembers)
		}
	}
	return a
}
