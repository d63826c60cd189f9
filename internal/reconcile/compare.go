package reconcile

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// view is what an entry, an AssociationDescription and (partly) an
// Association summary have in common, in the SDK's types.
type view struct {
	Name                          string
	InstanceId                    *string
	Targets                       []ssmtypes.Target
	TargetMaps                    []map[string][]string
	TargetLocations               []ssmtypes.TargetLocation
	Parameters                    map[string][]string
	DocumentVersion               *string
	AssociationName               *string
	AutomationTargetParameterName *string
	ScheduleExpression            *string
	ScheduleOffset                *int32
	Duration                      *int32
	ApplyOnlyAtCronInterval       bool
	OutputLocation                *ssmtypes.InstanceAssociationOutputLocation
	MaxErrors                     *string
	MaxConcurrency                *string
	ComplianceSeverity            string
	SyncCompliance                string
	CalendarNames                 []string
	AlarmConfiguration            *ssmtypes.AlarmConfiguration
}

func entryView(e request.Entry) view {
	s := e.SDK()
	return view{
		Name: e.Name, InstanceId: s.InstanceId, Targets: s.Targets, TargetMaps: s.TargetMaps,
		TargetLocations: s.TargetLocations, Parameters: s.Parameters, DocumentVersion: s.DocumentVersion,
		AssociationName: s.AssociationName, AutomationTargetParameterName: s.AutomationTargetParameterName,
		ScheduleExpression: s.ScheduleExpression, ScheduleOffset: s.ScheduleOffset, Duration: s.Duration,
		ApplyOnlyAtCronInterval: s.ApplyOnlyAtCronInterval, OutputLocation: s.OutputLocation,
		MaxErrors: s.MaxErrors, MaxConcurrency: s.MaxConcurrency,
		ComplianceSeverity: string(s.ComplianceSeverity), SyncCompliance: string(s.SyncCompliance),
		CalendarNames: s.CalendarNames, AlarmConfiguration: s.AlarmConfiguration,
	}
}

func descriptionView(d ssmtypes.AssociationDescription) view {
	return view{
		Name: aws.ToString(d.Name), InstanceId: d.InstanceId, Targets: d.Targets, TargetMaps: d.TargetMaps,
		TargetLocations: d.TargetLocations, Parameters: d.Parameters, DocumentVersion: d.DocumentVersion,
		AssociationName: d.AssociationName, AutomationTargetParameterName: d.AutomationTargetParameterName,
		ScheduleExpression: d.ScheduleExpression, ScheduleOffset: d.ScheduleOffset, Duration: d.Duration,
		ApplyOnlyAtCronInterval: d.ApplyOnlyAtCronInterval, OutputLocation: d.OutputLocation,
		MaxErrors: d.MaxErrors, MaxConcurrency: d.MaxConcurrency,
		ComplianceSeverity: string(d.ComplianceSeverity), SyncCompliance: string(d.SyncCompliance),
		CalendarNames: d.CalendarNames, AlarmConfiguration: d.AlarmConfiguration,
	}
}

// setting is one compared setting: its SSM member name and its canonical
// form, in which values SSM treats as equal (defaults, set order) are equal.
type setting struct {
	name  string
	canon func(view) string
}

// settings are compared in this order, the SSM API's member names.
var settings = []setting{
	{"DocumentVersion", func(v view) string { return orDefault(aws.ToString(v.DocumentVersion), "$DEFAULT") }},
	{"Parameters", func(v view) string { return canonParameters(v.Parameters) }},
	{"ScheduleExpression", func(v view) string { return aws.ToString(v.ScheduleExpression) }},
	{"ScheduleOffset", func(v view) string { return canonInt(v.ScheduleOffset) }},
	{"Duration", func(v view) string { return canonInt(v.Duration) }},
	{"ApplyOnlyAtCronInterval", func(v view) string { return strconv.FormatBool(v.ApplyOnlyAtCronInterval) }},
	{"MaxErrors", func(v view) string { return aws.ToString(v.MaxErrors) }},
	{"MaxConcurrency", func(v view) string { return aws.ToString(v.MaxConcurrency) }},
	{"ComplianceSeverity", func(v view) string {
		return orDefault(v.ComplianceSeverity, string(ssmtypes.AssociationComplianceSeverityUnspecified))
	}},
	{"SyncCompliance", func(v view) string {
		return orDefault(v.SyncCompliance, string(ssmtypes.AssociationSyncComplianceAuto))
	}},
	{"OutputLocation", func(v view) string { return canonOutput(v.OutputLocation) }},
	{"CalendarNames", func(v view) string { return canonSet(v.CalendarNames) }},
	{"AlarmConfiguration", func(v view) string { return canonAlarms(v.AlarmConfiguration) }},
	{"TargetLocations", func(v view) string { return canonLocations(v.TargetLocations) }},
	{"AutomationTargetParameterName", func(v view) string { return aws.ToString(v.AutomationTargetParameterName) }},
	{"AssociationName", func(v view) string { return aws.ToString(v.AssociationName) }},
}

// Differences names the settings in which the existing association d
// differs from entry e, in a fixed order; empty when none does. Only names:
// never values, since Parameters may hold secrets. A member the entry omits
// equals the default SSM may fill in (DocumentVersion "$DEFAULT",
// ComplianceSeverity "UNSPECIFIED", SyncCompliance "AUTO"); an empty list or
// map equals an absent one; lists other than Parameters values compare as
// sets. Document and targets are not settings. AssociationName is both: it
// is part of an association's identity (document, targets and TargetMaps as
// sets, AssociationName), which Find and Match compare first, so it never
// differs in a near match.
func Differences(e request.Entry, d ssmtypes.AssociationDescription) []string {
	return differences(entryView(e), descriptionView(d))
}

func differences(a, b view) []string {
	var out []string
	for _, s := range settings {
		if s.canon(a) != s.canon(b) {
			out = append(out, s.name)
		}
	}
	return out
}

// isExact reports whether the association seen as d is the one the entry
// seen as e would have created.
func isExact(e, d view) bool {
	return sameIdentity(e, d) && len(differences(e, d)) == 0
}

// sameIdentity reports whether a and b are the same association but for
// their settings: same document, targets and TargetMaps as sets, same
// AssociationName.
func sameIdentity(a, b view) bool {
	return sameDocument(a.Name, b.Name) && sameTargets(a, b) && aws.ToString(a.AssociationName) == aws.ToString(b.AssociationName)
}

// summaryView is what a ListAssociations summary tells of identity.
func summaryView(s ssmtypes.Association) view {
	return view{
		Name: aws.ToString(s.Name), InstanceId: s.InstanceId, Targets: s.Targets, TargetMaps: s.TargetMaps,
		AssociationName: s.AssociationName,
	}
}

// summaryMayMatch rules out, from a ListAssociations summary, associations
// that cannot be the entry. A member the summary lacks rules nothing out:
// the description decides.
func summaryMayMatch(v view, s ssmtypes.Association) bool {
	if !sameIdentity(v, summaryView(s)) {
		return false
	}
	if s.DocumentVersion != nil && orDefault(aws.ToString(v.DocumentVersion), "$DEFAULT") != orDefault(*s.DocumentVersion, "$DEFAULT") {
		return false
	}
	if s.ScheduleExpression != nil && aws.ToString(v.ScheduleExpression) != *s.ScheduleExpression {
		return false
	}
	if s.ScheduleOffset != nil && canonInt(v.ScheduleOffset) != canonInt(s.ScheduleOffset) {
		return false
	}
	if s.Duration != nil && canonInt(v.Duration) != canonInt(s.Duration) {
		return false
	}
	return true
}

// sameDocument compares document names, an ARN standing for its name.
func sameDocument(a, b string) bool { return docName(a) == docName(b) }

func docName(nameOrARN string) string {
	if _, after, ok := strings.Cut(nameOrARN, ":document/"); ok && strings.HasPrefix(nameOrARN, "arn:") {
		return after
	}
	return nameOrARN
}

// sameTargets compares Targets and TargetMaps as sets. An InstanceId equals
// an InstanceIds target of that one node, which is how SSM describes an
// InstanceId association.
func sameTargets(a, b view) bool {
	return canonTargets(targetsOf(a)) == canonTargets(targetsOf(b)) &&
		canonTargetMaps(a.TargetMaps) == canonTargetMaps(b.TargetMaps)
}

func targetsOf(v view) []ssmtypes.Target {
	if len(v.Targets) == 0 && aws.ToString(v.InstanceId) != "" {
		return []ssmtypes.Target{{Key: aws.String(request.InstanceIDsKey), Values: []string{*v.InstanceId}}}
	}
	return v.Targets
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func canonInt(p *int32) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(int(*p))
}

// encode renders strings, string slices and string-keyed maps; map keys come
// out sorted, which is what makes it canonical. It cannot fail for them.
func encode(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// sorted returns the distinct strings of ss in order; nil when none.
func sorted(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

func canonSet(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return encode(sorted(ss))
}

// canonParameters keeps the order of each value list; a name with no
// values equals an absent one.
func canonParameters(p map[string][]string) string {
	m := make(map[string][]string, len(p))
	for k, vs := range p {
		if len(vs) > 0 {
			m[k] = vs
		}
	}
	if len(m) == 0 {
		return ""
	}
	return encode(m)
}

func canonTargets(ts []ssmtypes.Target) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		parts = append(parts, encode([]any{aws.ToString(t.Key), sorted(t.Values)}))
	}
	return canonSet(parts)
}

func canonTargetMaps(ms []map[string][]string) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		c := make(map[string][]string, len(m))
		for k, vs := range m {
			c[k] = sorted(vs)
		}
		parts = append(parts, encode(c))
	}
	return canonSet(parts)
}

func canonOutput(o *ssmtypes.InstanceAssociationOutputLocation) string {
	if o == nil || o.S3Location == nil {
		return ""
	}
	s3 := o.S3Location
	return encode([]string{aws.ToString(s3.OutputS3Region), aws.ToString(s3.OutputS3BucketName), aws.ToString(s3.OutputS3KeyPrefix)})
}

func canonAlarms(a *ssmtypes.AlarmConfiguration) string {
	if a == nil || (len(a.Alarms) == 0 && !a.IgnorePollAlarmFailure) {
		return ""
	}
	names := make([]string, 0, len(a.Alarms))
	for _, al := range a.Alarms {
		names = append(names, aws.ToString(al.Name))
	}
	return encode([]any{sorted(names), a.IgnorePollAlarmFailure})
}

func canonLocations(ls []ssmtypes.TargetLocation) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, encode([]any{
			sorted(l.Accounts), sorted(l.Regions), aws.ToString(l.ExecutionRoleName), sorted(l.ExcludeAccounts),
			l.IncludeChildOrganizationUnits, aws.ToString(l.TargetLocationMaxConcurrency),
			aws.ToString(l.TargetLocationMaxErrors), canonAlarms(l.TargetLocationAlarmConfiguration),
			canonTargets(l.Targets), aws.ToString(l.TargetsMaxConcurrency), aws.ToString(l.TargetsMaxErrors),
		}))
	}
	return canonSet(parts)
}
