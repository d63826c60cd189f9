package ssmlocal

// description renders a record as the AssociationDescription the service
// returns: version 1, status Associated / overview Pending-Creating, and for
// an InstanceId association the equivalent InstanceIds target.
func (r *record) description() wireDescription {
	e := r.entry
	d := wireDescription{
		Name:                          deref(e.Name),
		InstanceId:                    e.InstanceId,
		AssociationVersion:            "1",
		Date:                          epochTime(r.created),
		LastUpdateAssociationDate:     epochTime(r.created),
		Status:                        wireStatus{Date: epochTime(r.created), Name: "Associated", Message: "Associated with " + deref(e.Name)},
		Overview:                      overview(),
		DocumentVersion:               documentVersionOf(e),
		AutomationTargetParameterName: e.AutomationTargetParameterName,
		Parameters:                    e.Parameters,
		AssociationId:                 r.id,
		Targets:                       r.targets(),
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
		AssociationDispatchAssumeRole: r.assumeRole,
	}
	return d
}

// summary renders a record as the Association shape of ListAssociations.
func (r *record) summary() wireAssociation {
	e := r.entry
	return wireAssociation{
		Name:               deref(e.Name),
		InstanceId:         e.InstanceId,
		AssociationId:      r.id,
		AssociationVersion: "1",
		DocumentVersion:    documentVersionOf(e),
		Targets:            r.targets(),
		Overview:           overview(),
		ScheduleExpression: e.ScheduleExpression,
		AssociationName:    e.AssociationName,
		ScheduleOffset:     e.ScheduleOffset,
		Duration:           e.Duration,
		TargetMaps:         e.TargetMaps,
	}
}

func (r *record) targets() []wireTarget {
	if r.entry.InstanceId != nil {
		key := "InstanceIds"
		return []wireTarget{{Key: &key, Values: []string{*r.entry.InstanceId}}}
	}
	return r.entry.Targets
}

// overview is constant: the emulator never runs an association, so every
// one stays where a new association starts.
func overview() wireOverview { return wireOverview{Status: "Pending", DetailedStatus: "Creating"} }
