package ssmlocal

import "strconv"

// description renders the current version of a record as the
// AssociationDescription the service returns.
func (r *record) description() wireDescription { return r.descriptionAt(r.version()) }

// descriptionAt renders version v (1 to r.version()) as the service does:
// Date of creation, LastUpdateAssociationDate and Status date of that
// version, status Associated / overview Pending-Creating (as the AWS CLI
// example of UpdateAssociation shows after an update), and for an
// InstanceId association the equivalent InstanceIds target.
func (r *record) descriptionAt(v int) wireDescription {
	e, role, date := r.entry, r.assumeRole, r.updated
	if v < r.version() {
		h := r.history[v-1]
		e, role, date = h.entry, h.assumeRole, h.date
	}
	d := wireDescription{
		Name:                          orNull(e.Name),
		InstanceId:                    e.InstanceId,
		AssociationVersion:            strconv.Itoa(v),
		Date:                          epochTime(r.created),
		LastUpdateAssociationDate:     epochTime(date),
		Status:                        wireStatus{Date: epochTime(date), Name: "Associated", Message: "Associated with " + orNull(e.Name)},
		Overview:                      overview(),
		DocumentVersion:               documentVersionOf(e),
		AutomationTargetParameterName: e.AutomationTargetParameterName,
		Parameters:                    e.Parameters,
		AssociationId:                 r.id,
		Targets:                       targetsOf(e),
		ScheduleExpression:            e.ScheduleExpression,
		OutputLocation:                e.OutputLocation,
		AssociationName:               e.AssociationName,
		MaxErrors:                     e.MaxErrors,
		MaxConcurrency:                e.MaxConcurrency,
		ComplianceSeverity:            e.ComplianceSeverity,
		SyncCompliance:                e.SyncCompliance,
		ApplyOnlyAtCronInterval:       e.ApplyOnlyAtCronInterval != nil && *e.ApplyOnlyAtCronInterval,
		CalendarNames:                 e.CalendarNames,
		TargetLocations:               e.TargetLocations,
		ScheduleOffset:                e.ScheduleOffset,
		Duration:                      e.Duration,
		TargetMaps:                    e.TargetMaps,
		AlarmConfiguration:            e.AlarmConfiguration,
		AssociationDispatchAssumeRole: role,
	}
	return d
}

// summary renders a record as the Association shape of ListAssociations.
func (r *record) summary() wireAssociation {
	e := r.entry
	return wireAssociation{
		Name:               orNull(e.Name),
		InstanceId:         e.InstanceId,
		AssociationId:      r.id,
		AssociationVersion: strconv.Itoa(r.version()),
		DocumentVersion:    documentVersionOf(e),
		Targets:            targetsOf(e),
		Overview:           overview(),
		ScheduleExpression: e.ScheduleExpression,
		AssociationName:    e.AssociationName,
		ScheduleOffset:     e.ScheduleOffset,
		Duration:           e.Duration,
		TargetMaps:         e.TargetMaps,
	}
}

// targetsOf is an entry's Targets, or for an InstanceId entry the
// equivalent InstanceIds target.
func targetsOf(e wireEntry) []wireTarget {
	if e.InstanceId != nil {
		key := "InstanceIds"
		return []wireTarget{{Key: &key, Values: []string{*e.InstanceId}}}
	}
	return e.Targets
}

// overview is constant: the emulator never runs an association, so every
// one stays where a new association starts.
func overview() wireOverview { return wireOverview{Status: "Pending", DetailedStatus: "Creating"} }
