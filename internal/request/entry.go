// Package request holds the association request as the operator sends it: its
// types (the CreateAssociationBatch shape, member for member), the fan-out
// shape, decoding, and validation against the SSM service model.
package request

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Entry is one CreateAssociationBatchRequestEntry. It mirrors the SSM model
// with its exact member names instead of reusing the SDK struct, because the
// SDK struct has no JSON tags: marshalled, it would print every absent member
// as null, and optional members need pointers here to tell "absent" from
// "empty" (an empty AssociationName breaks a length rule; an absent one does
// not).
type Entry struct {
	Name                          string                `json:"Name"`
	InstanceId                    *string               `json:"InstanceId,omitempty"`
	Targets                       []Target              `json:"Targets,omitempty"`
	TargetMaps                    []map[string][]string `json:"TargetMaps,omitempty"`
	TargetLocations               []TargetLocation      `json:"TargetLocations,omitempty"`
	Parameters                    map[string][]string   `json:"Parameters,omitempty"`
	DocumentVersion               *string               `json:"DocumentVersion,omitempty"`
	AssociationName               *string               `json:"AssociationName,omitempty"`
	AutomationTargetParameterName *string               `json:"AutomationTargetParameterName,omitempty"`
	ScheduleExpression            *string               `json:"ScheduleExpression,omitempty"`
	ScheduleOffset                *int32                `json:"ScheduleOffset,omitempty"`
	Duration                      *int32                `json:"Duration,omitempty"`
	ApplyOnlyAtCronInterval       bool                  `json:"ApplyOnlyAtCronInterval,omitempty"`
	OutputLocation                *OutputLocation       `json:"OutputLocation,omitempty"`
	MaxErrors                     *string               `json:"MaxErrors,omitempty"`
	MaxConcurrency                *string               `json:"MaxConcurrency,omitempty"`
	ComplianceSeverity            *string               `json:"ComplianceSeverity,omitempty"`
	SyncCompliance                *string               `json:"SyncCompliance,omitempty"`
	CalendarNames                 []string              `json:"CalendarNames,omitempty"`
	AlarmConfiguration            *AlarmConfiguration   `json:"AlarmConfiguration,omitempty"`
}

// Target is a key and its values; Key "InstanceIds" targets nodes by ID.
type Target struct {
	Key    string   `json:"Key"`
	Values []string `json:"Values"`
}

// OutputLocation is InstanceAssociationOutputLocation.
type OutputLocation struct {
	S3Location *S3Location `json:"S3Location,omitempty"`
}

// S3Location is S3OutputLocation.
type S3Location struct {
	OutputS3Region     *string `json:"OutputS3Region,omitempty"`
	OutputS3BucketName *string `json:"OutputS3BucketName,omitempty"`
	OutputS3KeyPrefix  *string `json:"OutputS3KeyPrefix,omitempty"`
}

// TargetLocation is one account/Region set of a multi-account association.
type TargetLocation struct {
	Accounts                         []string            `json:"Accounts,omitempty"`
	Regions                          []string            `json:"Regions,omitempty"`
	ExecutionRoleName                *string             `json:"ExecutionRoleName,omitempty"`
	ExcludeAccounts                  []string            `json:"ExcludeAccounts,omitempty"`
	IncludeChildOrganizationUnits    bool                `json:"IncludeChildOrganizationUnits,omitempty"`
	TargetLocationMaxConcurrency     *string             `json:"TargetLocationMaxConcurrency,omitempty"`
	TargetLocationMaxErrors          *string             `json:"TargetLocationMaxErrors,omitempty"`
	TargetLocationAlarmConfiguration *AlarmConfiguration `json:"TargetLocationAlarmConfiguration,omitempty"`
	Targets                          []Target            `json:"Targets,omitempty"`
	TargetsMaxConcurrency            *string             `json:"TargetsMaxConcurrency,omitempty"`
	TargetsMaxErrors                 *string             `json:"TargetsMaxErrors,omitempty"`
}

// AlarmConfiguration names the CloudWatch alarm that stops the association.
type AlarmConfiguration struct {
	Alarms                 []Alarm `json:"Alarms"`
	IgnorePollAlarmFailure bool    `json:"IgnorePollAlarmFailure,omitempty"`
}

// Alarm is a CloudWatch alarm by name.
type Alarm struct {
	Name string `json:"Name"`
}

// InstanceIDsKey is the target key that addresses managed nodes by ID.
const InstanceIDsKey = "InstanceIds"

// Nodes returns the managed node IDs an entry targets directly: its
// InstanceId, or the values of its InstanceIds targets. An entry that targets
// tags, resource groups, TargetMaps or TargetLocations has none.
func (e Entry) Nodes() []string {
	if e.InstanceId != nil {
		return []string{*e.InstanceId}
	}
	if len(e.TargetMaps) > 0 || len(e.TargetLocations) > 0 {
		return nil
	}
	var nodes []string
	for _, t := range e.Targets {
		if t.Key != InstanceIDsKey {
			return nil
		}
		nodes = append(nodes, t.Values...)
	}
	return nodes
}

// WithNodes returns a copy of a node-targeted entry narrowed to the given
// nodes, keeping the form (InstanceId or InstanceIds target) the caller used.
func (e Entry) WithNodes(nodes []string) Entry {
	out := e
	if e.InstanceId != nil {
		if len(nodes) == 1 {
			out.InstanceId = aws.String(nodes[0])
		}
		return out
	}
	out.Targets = []Target{{Key: InstanceIDsKey, Values: append([]string(nil), nodes...)}}
	return out
}

// Redacted returns a copy whose Parameters keep their names but not their
// values: parameters can carry secrets, and results travel to logs, queues
// and API clients.
func (e Entry) Redacted() Entry {
	if e.Parameters == nil {
		return e
	}
	out := e
	out.Parameters = make(map[string][]string, len(e.Parameters))
	for name, values := range e.Parameters {
		redacted := make([]string, len(values))
		for i := range values {
			redacted[i] = "****"
		}
		out.Parameters[name] = redacted
	}
	return out
}

// SDK converts the entry to the SDK's request type.
func (e Entry) SDK() ssmtypes.CreateAssociationBatchRequestEntry {
	out := ssmtypes.CreateAssociationBatchRequestEntry{
		Name:                          aws.String(e.Name),
		InstanceId:                    e.InstanceId,
		Targets:                       sdkTargets(e.Targets),
		TargetMaps:                    e.TargetMaps,
		Parameters:                    e.Parameters,
		DocumentVersion:               e.DocumentVersion,
		AssociationName:               e.AssociationName,
		AutomationTargetParameterName: e.AutomationTargetParameterName,
		ScheduleExpression:            e.ScheduleExpression,
		ScheduleOffset:                e.ScheduleOffset,
		Duration:                      e.Duration,
		ApplyOnlyAtCronInterval:       e.ApplyOnlyAtCronInterval,
		MaxErrors:                     e.MaxErrors,
		MaxConcurrency:                e.MaxConcurrency,
		CalendarNames:                 e.CalendarNames,
		AlarmConfiguration:            sdkAlarms(e.AlarmConfiguration),
	}
	if e.ComplianceSeverity != nil {
		out.ComplianceSeverity = ssmtypes.AssociationComplianceSeverity(*e.ComplianceSeverity)
	}
	if e.SyncCompliance != nil {
		out.SyncCompliance = ssmtypes.AssociationSyncCompliance(*e.SyncCompliance)
	}
	if e.OutputLocation != nil {
		out.OutputLocation = &ssmtypes.InstanceAssociationOutputLocation{}
		if s3 := e.OutputLocation.S3Location; s3 != nil {
			out.OutputLocation.S3Location = &ssmtypes.S3OutputLocation{
				OutputS3Region:     s3.OutputS3Region,
				OutputS3BucketName: s3.OutputS3BucketName,
				OutputS3KeyPrefix:  s3.OutputS3KeyPrefix,
			}
		}
	}
	for _, tl := range e.TargetLocations {
		out.TargetLocations = append(out.TargetLocations, ssmtypes.TargetLocation{
			Accounts:                         tl.Accounts,
			Regions:                          tl.Regions,
			ExecutionRoleName:                tl.ExecutionRoleName,
			ExcludeAccounts:                  tl.ExcludeAccounts,
			IncludeChildOrganizationUnits:    tl.IncludeChildOrganizationUnits,
			TargetLocationMaxConcurrency:     tl.TargetLocationMaxConcurrency,
			TargetLocationMaxErrors:          tl.TargetLocationMaxErrors,
			TargetLocationAlarmConfiguration: sdkAlarms(tl.TargetLocationAlarmConfiguration),
			Targets:                          sdkTargets(tl.Targets),
			TargetsMaxConcurrency:            tl.TargetsMaxConcurrency,
			TargetsMaxErrors:                 tl.TargetsMaxErrors,
		})
	}
	return out
}

func sdkTargets(ts []Target) []ssmtypes.Target {
	if ts == nil {
		return nil
	}
	out := make([]ssmtypes.Target, len(ts))
	for i, t := range ts {
		out[i] = ssmtypes.Target{Key: aws.String(t.Key), Values: t.Values}
	}
	return out
}

func sdkAlarms(a *AlarmConfiguration) *ssmtypes.AlarmConfiguration {
	if a == nil {
		return nil
	}
	out := &ssmtypes.AlarmConfiguration{IgnorePollAlarmFailure: a.IgnorePollAlarmFailure}
	for _, al := range a.Alarms {
		out.Alarms = append(out.Alarms, ssmtypes.Alarm{Name: aws.String(al.Name)})
	}
	return out
}
