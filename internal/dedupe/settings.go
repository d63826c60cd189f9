package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Settings is the fingerprint of an association's settings, as a claim
// record keeps it: for each setting an entry gives, a short hash of its
// value, never the value (Parameters may hold secrets). Comparing two
// fingerprints names the settings that differ, and only their names.
type Settings map[string]string

// SettingNames are the settings a fingerprint covers, in the order
// Differences reports them (the SSM API's member names). What tells one
// association from another (document, targets, AssociationName) is the
// key, not a setting.
var SettingNames = []string{
	"DocumentVersion", "Parameters", "ScheduleExpression", "ScheduleOffset", "Duration",
	"ApplyOnlyAtCronInterval", "MaxErrors", "MaxConcurrency", "ComplianceSeverity", "SyncCompliance",
	"OutputLocation", "CalendarNames", "AlarmConfiguration", "TargetLocations", "AutomationTargetParameterName",
}

// SettingsOf fingerprints an entry. A setting left out and a setting given
// its default (DocumentVersion $DEFAULT, ComplianceSeverity UNSPECIFIED,
// SyncCompliance AUTO, ApplyOnlyAtCronInterval false, an empty list) are
// the same setting: SSM stores them alike.
func SettingsOf(e request.Entry) Settings {
	s := Settings{}
	put := func(name string, v any) {
		b, _ := json.Marshal(v) // strings, numbers, string lists and maps: cannot fail
		sum := sha256.Sum256(append([]byte(name+"\x00"), b...))
		s[name] = hex.EncodeToString(sum[:8])
	}
	str := func(name string, v *string, dflt string) {
		if x := aws.ToString(v); x != "" && x != dflt {
			put(name, x)
		}
	}
	str("DocumentVersion", e.DocumentVersion, "$DEFAULT")
	if len(e.Parameters) > 0 {
		put("Parameters", e.Parameters) // keys are written sorted; value order counts
	}
	str("ScheduleExpression", e.ScheduleExpression, "")
	if e.ScheduleOffset != nil {
		put("ScheduleOffset", *e.ScheduleOffset)
	}
	if e.Duration != nil {
		put("Duration", *e.Duration)
	}
	if e.ApplyOnlyAtCronInterval {
		put("ApplyOnlyAtCronInterval", true)
	}
	str("MaxErrors", e.MaxErrors, "")
	str("MaxConcurrency", e.MaxConcurrency, "")
	str("ComplianceSeverity", e.ComplianceSeverity, "UNSPECIFIED")
	str("SyncCompliance", e.SyncCompliance, "AUTO")
	if e.OutputLocation != nil && e.OutputLocation.S3Location != nil {
		put("OutputLocation", e.OutputLocation)
	}
	if len(e.CalendarNames) > 0 {
		put("CalendarNames", sortedCopy(e.CalendarNames))
	}
	if e.AlarmConfiguration != nil {
		put("AlarmConfiguration", e.AlarmConfiguration)
	}
	if len(e.TargetLocations) > 0 {
		locs := make([]string, len(e.TargetLocations))
		for i, l := range e.TargetLocations {
			b, _ := json.Marshal(l)
			locs[i] = string(b)
		}
		slices.Sort(locs)
		put("TargetLocations", locs)
	}
	str("AutomationTargetParameterName", e.AutomationTargetParameterName, "")
	return s
}

// SameSettings says cheaply whether a and b give the same settings, as
// written: consecutive entries of one request usually do (a fan-out request
// always), and fingerprinting each would cost a JSON encoding and a hash
// per setting per entry. False only means "not known equal".
func SameSettings(a, b request.Entry) bool {
	str := func(x, y *string) bool { return x == y || x != nil && y != nil && *x == *y }
	i32 := func(x, y *int32) bool { return x == y || x != nil && y != nil && *x == *y }
	return str(a.DocumentVersion, b.DocumentVersion) && str(a.ScheduleExpression, b.ScheduleExpression) &&
		i32(a.ScheduleOffset, b.ScheduleOffset) && i32(a.Duration, b.Duration) &&
		a.ApplyOnlyAtCronInterval == b.ApplyOnlyAtCronInterval &&
		str(a.MaxErrors, b.MaxErrors) && str(a.MaxConcurrency, b.MaxConcurrency) &&
		str(a.ComplianceSeverity, b.ComplianceSeverity) && str(a.SyncCompliance, b.SyncCompliance) &&
		str(a.AutomationTargetParameterName, b.AutomationTargetParameterName) &&
		maps.EqualFunc(a.Parameters, b.Parameters, slices.Equal) && slices.Equal(a.CalendarNames, b.CalendarNames) &&
		// Rarely given, and then compared by pointer only.
		a.OutputLocation == b.OutputLocation && a.AlarmConfiguration == b.AlarmConfiguration &&
		len(a.TargetLocations) == 0 && len(b.TargetLocations) == 0
}

// Differences names the settings in which s and other differ, in the order
// of SettingNames. A record written before fingerprints were kept (nil)
// differs in nothing: there is nothing to compare with.
func (s Settings) Differences(other Settings) []string {
	if s == nil || other == nil {
		return nil
	}
	var out []string
	for _, name := range SettingNames {
		if s[name] != other[name] {
			out = append(out, name)
		}
	}
	return out
}
