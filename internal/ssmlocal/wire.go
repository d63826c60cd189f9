package ssmlocal

import (
	"strconv"
	"time"
)

// The wire types mirror the SSM service model member for member. Optional
// scalars are pointers so that "absent" and "present but empty" stay
// distinguishable: the model's length constraints apply to a present value
// only, and a Failed entry must echo exactly what the caller sent.

type wireTarget struct {
	Key    *string  `json:"Key,omitempty"`
	Values []string `json:"Values,omitempty"`
}

type wireS3Location struct {
	OutputS3Region     *string `json:"OutputS3Region,omitempty"`
	OutputS3BucketName *string `json:"OutputS3BucketName,omitempty"`
	OutputS3KeyPrefix  *string `json:"OutputS3KeyPrefix,omitempty"`
}

type wireOutputLocation struct {
	S3Location *wireS3Location `json:"S3Location,omitempty"`
}

type wireAlarm struct {
	Name *string `json:"Name,omitempty"`
}

type wireAlarmConfiguration struct {
	IgnorePollAlarmFailure *bool       `json:"IgnorePollAlarmFailure,omitempty"`
	Alarms                 []wireAlarm `json:"Alarms"`
}

type wireTargetLocation struct {
	Accounts                         []string                `json:"Accounts,omitempty"`
	Regions                          []string                `json:"Regions,omitempty"`
	TargetLocationMaxConcurrency     *string                 `json:"TargetLocationMaxConcurrency,omitempty"`
	TargetLocationMaxErrors          *string                 `json:"TargetLocationMaxErrors,omitempty"`
	ExecutionRoleName                *string                 `json:"ExecutionRoleName,omitempty"`
	TargetLocationAlarmConfiguration *wireAlarmConfiguration `json:"TargetLocationAlarmConfiguration,omitempty"`
	IncludeChildOrganizationUnits    *bool                   `json:"IncludeChildOrganizationUnits,omitempty"`
	ExcludeAccounts                  []string                `json:"ExcludeAccounts,omitempty"`
	Targets                          []wireTarget            `json:"Targets,omitempty"`
	TargetsMaxConcurrency            *string                 `json:"TargetsMaxConcurrency,omitempty"`
	TargetsMaxErrors                 *string                 `json:"TargetsMaxErrors,omitempty"`
}

// wireEntry is CreateAssociationBatchRequestEntry; CreateAssociationRequest
// embeds it and adds Tags and AssociationDispatchAssumeRole.
type wireEntry struct {
	Name                          *string                 `json:"Name,omitempty"`
	InstanceId                    *string                 `json:"InstanceId,omitempty"`
	Parameters                    map[string][]string     `json:"Parameters,omitempty"`
	AutomationTargetParameterName *string                 `json:"AutomationTargetParameterName,omitempty"`
	DocumentVersion               *string                 `json:"DocumentVersion,omitempty"`
	Targets                       []wireTarget            `json:"Targets,omitempty"`
	ScheduleExpression            *string                 `json:"ScheduleExpression,omitempty"`
	OutputLocation                *wireOutputLocation     `json:"OutputLocation,omitempty"`
	AssociationName               *string                 `json:"AssociationName,omitempty"`
	MaxErrors                     *string                 `json:"MaxErrors,omitempty"`
	MaxConcurrency                *string                 `json:"MaxConcurrency,omitempty"`
	ComplianceSeverity            *string                 `json:"ComplianceSeverity,omitempty"`
	SyncCompliance                *string                 `json:"SyncCompliance,omitempty"`
	ApplyOnlyAtCronInterval       *bool                   `json:"ApplyOnlyAtCronInterval,omitempty"`
	CalendarNames                 []string                `json:"CalendarNames,omitempty"`
	TargetLocations               []wireTargetLocation    `json:"TargetLocations,omitempty"`
	ScheduleOffset                *int32                  `json:"ScheduleOffset,omitempty"`
	Duration                      *int32                  `json:"Duration,omitempty"`
	TargetMaps                    []map[string][]string   `json:"TargetMaps,omitempty"`
	AlarmConfiguration            *wireAlarmConfiguration `json:"AlarmConfiguration,omitempty"`
}

type wireTag struct {
	Key   *string `json:"Key,omitempty"`
	Value *string `json:"Value,omitempty"`
}

type createBatchInput struct {
	Entries                       []wireEntry `json:"Entries"`
	AssociationDispatchAssumeRole *string     `json:"AssociationDispatchAssumeRole,omitempty"`
}

type createInput struct {
	wireEntry
	Tags                          []wireTag `json:"Tags,omitempty"`
	AssociationDispatchAssumeRole *string   `json:"AssociationDispatchAssumeRole,omitempty"`
}

// updateInput is UpdateAssociationRequest: the members of an entry except
// InstanceId (not a member; cleared after decoding, as the service ignores
// unknown members), plus the ID, the expected version and the role.
type updateInput struct {
	wireEntry
	AssociationId                 *string `json:"AssociationId,omitempty"`
	AssociationVersion            *string `json:"AssociationVersion,omitempty"`
	AssociationDispatchAssumeRole *string `json:"AssociationDispatchAssumeRole,omitempty"`
}

type describeInput struct {
	Name               *string `json:"Name,omitempty"`
	InstanceId         *string `json:"InstanceId,omitempty"`
	AssociationId      *string `json:"AssociationId,omitempty"`
	AssociationVersion *string `json:"AssociationVersion,omitempty"`
}

type deleteInput struct {
	Name          *string `json:"Name,omitempty"`
	InstanceId    *string `json:"InstanceId,omitempty"`
	AssociationId *string `json:"AssociationId,omitempty"`
}

// wireFilter's members really are lower-case in the model ("key", "value").
type wireFilter struct {
	Key   *string `json:"key,omitempty"`
	Value *string `json:"value,omitempty"`
}

type listInput struct {
	AssociationFilterList []wireFilter `json:"AssociationFilterList"`
	MaxResults            *int32       `json:"MaxResults,omitempty"`
	NextToken             *string      `json:"NextToken,omitempty"`
}

// epochTime marshals as epoch seconds with a millisecond fraction, the only
// timestamp form awsJson1.1 clients accept ("expected DateTime to be a JSON
// Number" otherwise).
type epochTime time.Time

func (t epochTime) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

type wireStatus struct {
	Date    epochTime `json:"Date"`
	Name    string    `json:"Name"`
	Message string    `json:"Message"`
}

type wireOverview struct {
	Status         string `json:"Status"`
	DetailedStatus string `json:"DetailedStatus"`
}

// wireDescription is AssociationDescription.
type wireDescription struct {
	Name                          string                  `json:"Name"`
	InstanceId                    *string                 `json:"InstanceId,omitempty"`
	AssociationVersion            string                  `json:"AssociationVersion"`
	Date                          epochTime               `json:"Date"`
	LastUpdateAssociationDate     epochTime               `json:"LastUpdateAssociationDate"`
	Status                        wireStatus              `json:"Status"`
	Overview                      wireOverview            `json:"Overview"`
	DocumentVersion               string                  `json:"DocumentVersion"`
	AutomationTargetParameterName *string                 `json:"AutomationTargetParameterName,omitempty"`
	Parameters                    map[string][]string     `json:"Parameters,omitempty"`
	AssociationId                 string                  `json:"AssociationId"`
	Targets                       []wireTarget            `json:"Targets,omitempty"`
	ScheduleExpression            *string                 `json:"ScheduleExpression,omitempty"`
	OutputLocation                *wireOutputLocation     `json:"OutputLocation,omitempty"`
	AssociationName               *string                 `json:"AssociationName,omitempty"`
	MaxErrors                     *string                 `json:"MaxErrors,omitempty"`
	MaxConcurrency                *string                 `json:"MaxConcurrency,omitempty"`
	ComplianceSeverity            *string                 `json:"ComplianceSeverity,omitempty"`
	SyncCompliance                *string                 `json:"SyncCompliance,omitempty"`
	ApplyOnlyAtCronInterval       bool                    `json:"ApplyOnlyAtCronInterval"`
	CalendarNames                 []string                `json:"CalendarNames,omitempty"`
	TargetLocations               []wireTargetLocation    `json:"TargetLocations,omitempty"`
	ScheduleOffset                *int32                  `json:"ScheduleOffset,omitempty"`
	Duration                      *int32                  `json:"Duration,omitempty"`
	TargetMaps                    []map[string][]string   `json:"TargetMaps,omitempty"`
	AlarmConfiguration            *wireAlarmConfiguration `json:"AlarmConfiguration,omitempty"`
	AssociationDispatchAssumeRole *string                 `json:"AssociationDispatchAssumeRole,omitempty"`
}

type wireFailed struct {
	Entry   wireEntry `json:"Entry"`
	Message string    `json:"Message"`
	Fault   string    `json:"Fault"`
}

type createBatchOutput struct {
	Successful []wireDescription `json:"Successful"`
	Failed     []wireFailed      `json:"Failed"`
}

type createOutput struct {
	AssociationDescription wireDescription `json:"AssociationDescription"`
}

// wireAssociation is the Association shape ListAssociations returns.
type wireAssociation struct {
	Name               string                `json:"Name"`
	InstanceId         *string               `json:"InstanceId,omitempty"`
	AssociationId      string                `json:"AssociationId"`
	AssociationVersion string                `json:"AssociationVersion"`
	DocumentVersion    string                `json:"DocumentVersion"`
	Targets            []wireTarget          `json:"Targets,omitempty"`
	Overview           wireOverview          `json:"Overview"`
	ScheduleExpression *string               `json:"ScheduleExpression,omitempty"`
	AssociationName    *string               `json:"AssociationName,omitempty"`
	ScheduleOffset     *int32                `json:"ScheduleOffset,omitempty"`
	Duration           *int32                `json:"Duration,omitempty"`
	TargetMaps         []map[string][]string `json:"TargetMaps,omitempty"`
}

type listOutput struct {
	Associations []wireAssociation `json:"Associations"`
	NextToken    *string           `json:"NextToken,omitempty"`
}
