package request

import (
	"fmt"
	"strings"
	"testing"
)

// nodeTarget is a valid Targets member aimed at node1.
const nodeTarget = `"Targets":[{"Key":"InstanceIds","Values":["` + node1 + `"]}]`

func TestValidateEntry(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name     string
		entry    string
		path     string // "" means: the entry must be valid
		fragment string
	}{
		// valid entries
		{"instance id form", `{"Name":"AWS-UpdateSSMAgent","InstanceId":"` + node1 + `"}`, "", ""},
		{"eight-char instance id", `{"Name":"AWS-UpdateSSMAgent","InstanceId":"` + node2 + `"}`, "", ""},
		{"hybrid node", `{"Name":"AWS-UpdateSSMAgent","InstanceId":"` + hybrid + `"}`, "", ""},
		{"targets form, everything", `{"Name":"arn:aws:ssm:us-east-1:123456789012:document/My-Doc","Targets":[{"Key":"InstanceIds","Values":["` + node1 + `","` + node2 + `","` + hybrid + `"]}],
			"Parameters":{"commands":["echo hi"]},"DocumentVersion":"$LATEST","AssociationName":"my.assoc_1",
			"AutomationTargetParameterName":"InstanceId","ScheduleExpression":"cron(0 2 ? * SUN *)","ScheduleOffset":3,"Duration":2,
			"ApplyOnlyAtCronInterval":true,"OutputLocation":{"S3Location":{"OutputS3Region":"us-east-1","OutputS3BucketName":"bucket","OutputS3KeyPrefix":""}},
			"MaxErrors":"10%","MaxConcurrency":"100%","ComplianceSeverity":"HIGH","SyncCompliance":"AUTO","CalendarNames":["cal"],
			"AlarmConfiguration":{"Alarms":[{"Name":"my-alarm"}],"IgnorePollAlarmFailure":true}}`, "", ""},
		{"tag target", `{"Name":"AWS-RunShellScript","Targets":[{"Key":"tag:Env","Values":["prod"]}]}`, "", ""},
		{"resource group key", `{"Name":"AWS-RunShellScript","Targets":[{"Key":"resource-groups:Name","Values":["g"]}]}`, "", ""},
		{"target maps", `{"Name":"AWS-RunShellScript","TargetMaps":[{"k":["v"]}]}`, "", ""},
		{"target locations", `{"Name":"AWS-RunShellScript","TargetLocations":[{"Accounts":["123456789012"],"Regions":["us-east-1"],
			"ExecutionRoleName":"role","ExcludeAccounts":["ou-abcd-12345678","210987654321"],"TargetLocationMaxConcurrency":"1","TargetLocationMaxErrors":"0",
			"TargetLocationAlarmConfiguration":{"Alarms":[{"Name":"a"}]},"Targets":[{"Key":"tag:x","Values":["y"]}],"TargetsMaxConcurrency":"5%","TargetsMaxErrors":"100%"}]}`, "", ""},
		{"version number", `{"Name":"AWS-X","DocumentVersion":"12",` + nodeTarget + `}`, "", ""},
		{"max errors zero", `{"Name":"AWS-X","MaxErrors":"0",` + nodeTarget + `}`, "", ""},
		{"nulls are absent", `{"Name":"AWS-X","InstanceId":null,"TargetMaps":null,"Parameters":null,"ScheduleExpression":null,"OutputLocation":null,"AlarmConfiguration":null,"ApplyOnlyAtCronInterval":null,` + nodeTarget + `}`, "", ""},

		// Name
		{"name missing", `{` + nodeTarget + `}`, "Entries[0].Name", "required"},
		{"name null", `{"Name":null,` + nodeTarget + `}`, "Entries[0].Name", "required"},
		{"name too short", `{"Name":"ab",` + nodeTarget + `}`, "Entries[0].Name", "must match ^[a-zA-Z0-9_"},
		{"name bad char", `{"Name":"a b c",` + nodeTarget + `}`, "Entries[0].Name", "must match"},
		{"name too long", `{"Name":"` + long(129) + `",` + nodeTarget + `}`, "Entries[0].Name", "must match"},

		// InstanceId
		{"instance id bad", `{"Name":"AWS-X","InstanceId":"i-123"}`, "Entries[0].InstanceId", "must match (^i-(\\w{8}|\\w{17})$)"},
		{"instance id trailing", `{"Name":"AWS-X","InstanceId":"` + node1 + ` "}`, "Entries[0].InstanceId", "must match"},
		{"instance id with association name", `{"Name":"AWS-X","InstanceId":"` + node1 + `","AssociationName":"abc"}`, "Entries[0].AssociationName", "not allowed together with InstanceId"},
		{"instance id with document version", `{"Name":"AWS-X","InstanceId":"` + node1 + `","DocumentVersion":"1"}`, "Entries[0].DocumentVersion", "not allowed together with InstanceId"},
		{"instance id with max errors", `{"Name":"AWS-X","InstanceId":"` + node1 + `","MaxErrors":"1"}`, "Entries[0].MaxErrors", "not allowed together with InstanceId"},
		{"instance id with max concurrency", `{"Name":"AWS-X","InstanceId":"` + node1 + `","MaxConcurrency":"1"}`, "Entries[0].MaxConcurrency", "not allowed together with InstanceId"},
		{"instance id with output location", `{"Name":"AWS-X","InstanceId":"` + node1 + `","OutputLocation":{}}`, "Entries[0].OutputLocation", "not allowed together with InstanceId"},
		{"instance id with schedule", `{"Name":"AWS-X","InstanceId":"` + node1 + `","ScheduleExpression":"rate(30 minutes)"}`, "Entries[0].ScheduleExpression", "not allowed together with InstanceId"},
		{"instance id with targets", `{"Name":"AWS-X","InstanceId":"` + node1 + `",` + nodeTarget + `}`, "Entries[0].Targets", "not allowed together with InstanceId"},
		{"instance id with target maps", `{"Name":"AWS-X","InstanceId":"` + node1 + `","TargetMaps":[{"k":["v"]}]}`, "Entries[0].TargetMaps", "not allowed together with InstanceId"},

		// targets
		{"no target", `{"Name":"AWS-X"}`, "Entries[0].Targets", "required: an entry needs InstanceId, Targets, TargetMaps or TargetLocations"},
		{"empty targets", `{"Name":"AWS-X","Targets":[]}`, "Entries[0].Targets", "required"},
		{"targets and target maps", `{"Name":"AWS-X",` + nodeTarget + `,"TargetMaps":[{"k":["v"]}]}`, "Entries[0].TargetMaps", "not allowed together with Targets"},
		{"six targets", `{"Name":"AWS-X","Targets":[` + strings.Repeat(`{"Key":"tag:a","Values":["b"]},`, 5) + `{"Key":"tag:a","Values":["b"]}]}`, "Entries[0].Targets", "at most 5 targets"},
		{"51 values", `{"Name":"AWS-X","Targets":[{"Key":"tag:a","Values":[` + strings.Repeat(`"v",`, 50) + `"v"]}]}`, "Entries[0].Targets[0].Values", "at most 50 values"},
		{"no values", `{"Name":"AWS-X","Targets":[{"Key":"tag:a","Values":[]}]}`, "Entries[0].Targets[0].Values", "at least 1 value"},
		{"key missing", `{"Name":"AWS-X","Targets":[{"Values":["v"]}]}`, "Entries[0].Targets[0].Key", "between 1 and 163"},
		{"key too long", `{"Name":"AWS-X","Targets":[{"Key":"` + long(164) + `","Values":["v"]}]}`, "Entries[0].Targets[0].Key", "between 1 and 163"},
		{"key bad char", `{"Name":"AWS-X","Targets":[{"Key":"tag:a*","Values":["v"]}]}`, "Entries[0].Targets[0].Key", "must match ^[\\p{L}"},
		{"bad node in target", `{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node1 + `","i-nope"]}]}`, "Entries[0].Targets[0].Values[1]", "must match (^i-"},
		{"repeated node", `{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node1 + `","` + node2 + `","` + node1 + `"]}]}`, "Entries[0].Targets[0].Values[2]", "duplicate of Entries[0].Targets[0].Values[0]"},
		{"repeated node across targets", `{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node1 + `"]},{"Key":"InstanceIds","Values":["` + node1 + `"]}]}`, "Entries[0].Targets[1].Values[0]", "duplicate of Entries[0].Targets[0].Values[0]"},

		// target maps
		{"301 target maps", `{"Name":"AWS-X","TargetMaps":[` + strings.Repeat(`{"k":["v"]},`, 300) + `{"k":["v"]}]}`, "Entries[0].TargetMaps", "at most 300"},
		{"empty target map", `{"Name":"AWS-X","TargetMaps":[{}]}`, "Entries[0].TargetMaps[0]", "between 1 and 20 keys"},
		{"21 keys", `{"Name":"AWS-X","TargetMaps":[{` + keys(21) + `}]}`, "Entries[0].TargetMaps[0]", "between 1 and 20 keys"},
		{"long key", `{"Name":"AWS-X","TargetMaps":[{"` + long(51) + `":["v"]}]}`, "Entries[0].TargetMaps[0]." + long(51), "key must be between 1 and 50"},
		{"26 values", `{"Name":"AWS-X","TargetMaps":[{"k":[` + strings.Repeat(`"v",`, 25) + `"v"]}]}`, "Entries[0].TargetMaps[0].k", "at most 25 values"},
		{"empty map value", `{"Name":"AWS-X","TargetMaps":[{"k":[""]}]}`, "Entries[0].TargetMaps[0].k[0]", "between 1 and 50"},
		{"odd key path", `{"Name":"AWS-X","TargetMaps":[{"a b":[""]}]}`, `Entries[0].TargetMaps[0]["a b"][0]`, "between 1 and 50"},

		// target locations
		{"empty target locations", `{"Name":"AWS-X",` + nodeTarget + `,"TargetLocations":[]}`, "Entries[0].TargetLocations", "between 1 and 100"},
		{"101 target locations", `{"Name":"AWS-X","TargetLocations":[` + strings.Repeat(`{},`, 100) + `{}]}`, "Entries[0].TargetLocations", "between 1 and 100"},
		{"empty accounts", `{"Name":"AWS-X","TargetLocations":[{"Accounts":[]}]}`, "Entries[0].TargetLocations[0].Accounts", "at least 1"},
		{"51 regions", `{"Name":"AWS-X","TargetLocations":[{"Regions":[` + strings.Repeat(`"r",`, 50) + `"r"]}]}`, "Entries[0].TargetLocations[0].Regions", "at most 50"},
		{"bad role name", `{"Name":"AWS-X","TargetLocations":[{"ExecutionRoleName":"a b"}]}`, "Entries[0].TargetLocations[0].ExecutionRoleName", "must match [\\w+=,.@/-]+"},
		{"long role name", `{"Name":"AWS-X","TargetLocations":[{"ExecutionRoleName":"` + long(65) + `"}]}`, "Entries[0].TargetLocations[0].ExecutionRoleName", "between 1 and 64"},
		{"bad exclude account", `{"Name":"AWS-X","TargetLocations":[{"ExcludeAccounts":["1234567890123"]}]}`, "Entries[0].TargetLocations[0].ExcludeAccounts[0]", "must match"},
		{"short exclude account", `{"Name":"AWS-X","TargetLocations":[{"ExcludeAccounts":["123"]}]}`, "Entries[0].TargetLocations[0].ExcludeAccounts[0]", "between 6 and 68"},
		{"location max concurrency", `{"Name":"AWS-X","TargetLocations":[{"TargetLocationMaxConcurrency":"0"}]}`, "Entries[0].TargetLocations[0].TargetLocationMaxConcurrency", "must match"},
		{"location max errors", `{"Name":"AWS-X","TargetLocations":[{"TargetLocationMaxErrors":"101%"}]}`, "Entries[0].TargetLocations[0].TargetLocationMaxErrors", "must match"},
		{"targets max concurrency", `{"Name":"AWS-X","TargetLocations":[{"TargetsMaxConcurrency":"x"}]}`, "Entries[0].TargetLocations[0].TargetsMaxConcurrency", "must match"},
		{"targets max errors", `{"Name":"AWS-X","TargetLocations":[{"TargetsMaxErrors":"12345678"}]}`, "Entries[0].TargetLocations[0].TargetsMaxErrors", "between 1 and 7"},
		{"two location targets", `{"Name":"AWS-X","TargetLocations":[{"Targets":[{"Key":"a","Values":["b"]},{"Key":"a","Values":["b"]}]}]}`, "Entries[0].TargetLocations[0].Targets", "at most 1 target"},
		{"location target key", `{"Name":"AWS-X","TargetLocations":[{"Targets":[{"Key":"","Values":["b"]}]}]}`, "Entries[0].TargetLocations[0].Targets[0].Key", "between 1 and 163"},
		{"location alarms", `{"Name":"AWS-X","TargetLocations":[{"TargetLocationAlarmConfiguration":{"Alarms":[]}}]}`, "Entries[0].TargetLocations[0].TargetLocationAlarmConfiguration.Alarms", "exactly 1 alarm"},

		// simple members
		{"automation target parameter empty", `{"Name":"AWS-X","AutomationTargetParameterName":"",` + nodeTarget + `}`, "Entries[0].AutomationTargetParameterName", "between 1 and 50"},
		{"automation target parameter long", `{"Name":"AWS-X","AutomationTargetParameterName":"` + long(51) + `",` + nodeTarget + `}`, "Entries[0].AutomationTargetParameterName", "between 1 and 50"},
		{"document version", `{"Name":"AWS-X","DocumentVersion":"01",` + nodeTarget + `}`, "Entries[0].DocumentVersion", "must match ([$]LATEST"},
		{"document version lower", `{"Name":"AWS-X","DocumentVersion":"$latest",` + nodeTarget + `}`, "Entries[0].DocumentVersion", "must match"},
		{"association name", `{"Name":"AWS-X","AssociationName":"a/b",` + nodeTarget + `}`, "Entries[0].AssociationName", "must match ^[a-zA-Z0-9_\\-.]{3,128}$"},
		{"max errors pattern", `{"Name":"AWS-X","MaxErrors":"101%",` + nodeTarget + `}`, "Entries[0].MaxErrors", "must match ^([1-9][0-9]*|[0]|"},
		{"max errors empty", `{"Name":"AWS-X","MaxErrors":"",` + nodeTarget + `}`, "Entries[0].MaxErrors", "between 1 and 7"},
		{"max errors long", `{"Name":"AWS-X","MaxErrors":"12345678",` + nodeTarget + `}`, "Entries[0].MaxErrors", "between 1 and 7"},
		{"max concurrency zero", `{"Name":"AWS-X","MaxConcurrency":"0",` + nodeTarget + `}`, "Entries[0].MaxConcurrency", "must match ^([1-9][0-9]*|[1-9][0-9]%"},
		{"compliance severity", `{"Name":"AWS-X","ComplianceSeverity":"high",` + nodeTarget + `}`, "Entries[0].ComplianceSeverity", "must be one of CRITICAL, HIGH, MEDIUM, LOW, UNSPECIFIED"},
		{"sync compliance", `{"Name":"AWS-X","SyncCompliance":"SOMETIMES",` + nodeTarget + `}`, "Entries[0].SyncCompliance", "must be one of AUTO, MANUAL"},
		{"s3 region short", `{"Name":"AWS-X","OutputLocation":{"S3Location":{"OutputS3Region":"us"}},` + nodeTarget + `}`, "Entries[0].OutputLocation.S3Location.OutputS3Region", "between 3 and 20"},
		{"s3 bucket long", `{"Name":"AWS-X","OutputLocation":{"S3Location":{"OutputS3BucketName":"` + long(64) + `"}},` + nodeTarget + `}`, "Entries[0].OutputLocation.S3Location.OutputS3BucketName", "between 3 and 63"},
		{"s3 prefix long", `{"Name":"AWS-X","OutputLocation":{"S3Location":{"OutputS3KeyPrefix":"` + long(501) + `"}},` + nodeTarget + `}`, "Entries[0].OutputLocation.S3Location.OutputS3KeyPrefix", "at most 500"},
		{"alarms none", `{"Name":"AWS-X","AlarmConfiguration":{"Alarms":[]},` + nodeTarget + `}`, "Entries[0].AlarmConfiguration.Alarms", "exactly 1 alarm"},
		{"alarms missing", `{"Name":"AWS-X","AlarmConfiguration":{},` + nodeTarget + `}`, "Entries[0].AlarmConfiguration.Alarms", "exactly 1 alarm"},
		{"alarms two", `{"Name":"AWS-X","AlarmConfiguration":{"Alarms":[{"Name":"a"},{"Name":"b"}]},` + nodeTarget + `}`, "Entries[0].AlarmConfiguration.Alarms", "exactly 1 alarm"},
		{"alarm name blank", `{"Name":"AWS-X","AlarmConfiguration":{"Alarms":[{"Name":"   "}]},` + nodeTarget + `}`, "Entries[0].AlarmConfiguration.Alarms[0].Name", "not blank"},
		{"alarm name missing", `{"Name":"AWS-X","AlarmConfiguration":{"Alarms":[{}]},` + nodeTarget + `}`, "Entries[0].AlarmConfiguration.Alarms[0].Name", "required"},
		{"alarm name long", `{"Name":"AWS-X","AlarmConfiguration":{"Alarms":[{"Name":"` + long(256) + `"}]},` + nodeTarget + `}`, "Entries[0].AlarmConfiguration.Alarms[0].Name", "between 1 and 255"},
		{"alarm name two lines", `{"Name":"AWS-X","AlarmConfiguration":{"Alarms":[{"Name":"a\nb"}]},` + nodeTarget + `}`, "Entries[0].AlarmConfiguration.Alarms[0].Name", "one line"},
		{"schedule offset range", `{"Name":"AWS-X","ScheduleOffset":7,"ApplyOnlyAtCronInterval":true,"ScheduleExpression":"cron(0 2 ? * SUN *)",` + nodeTarget + `}`, "Entries[0].ScheduleOffset", "between 1 and 6"},
		{"duration range", `{"Name":"AWS-X","Duration":0,"ApplyOnlyAtCronInterval":true,"ScheduleExpression":"cron(0 2 ? * SUN *)",` + nodeTarget + `}`, "Entries[0].Duration", "between 1 and 24"},

		// schedule cross-field rules
		{"schedule empty", `{"Name":"AWS-X","ScheduleExpression":"",` + nodeTarget + `}`, "Entries[0].ScheduleExpression", "between 1 and 256"},
		{"schedule long", `{"Name":"AWS-X","ScheduleExpression":"cron(` + long(257) + `)",` + nodeTarget + `}`, "Entries[0].ScheduleExpression", "between 1 and 256"},
		{"schedule short rate", `{"Name":"AWS-X","ScheduleExpression":"rate(15 minutes)",` + nodeTarget + `}`, "Entries[0].ScheduleExpression", "rate must be at least 30 minutes"},
		{"apply only at cron with rate", `{"Name":"AWS-X","ScheduleExpression":"rate(1 day)","ApplyOnlyAtCronInterval":true,` + nodeTarget + `}`, "Entries[0].ApplyOnlyAtCronInterval", "not supported with a rate expression"},
		{"apply only at cron without schedule", `{"Name":"AWS-X","ApplyOnlyAtCronInterval":true,` + nodeTarget + `}`, "Entries[0].ApplyOnlyAtCronInterval", "requires a cron ScheduleExpression"},
		{"offset with rate", `{"Name":"AWS-X","ScheduleExpression":"rate(1 day)","ScheduleOffset":2,` + nodeTarget + `}`, "Entries[0].ScheduleOffset", "only allowed with a cron ScheduleExpression"},
		{"offset without apply only", `{"Name":"AWS-X","ScheduleExpression":"cron(0 2 ? * SUN *)","ScheduleOffset":2,` + nodeTarget + `}`, "Entries[0].ScheduleOffset", "requires ApplyOnlyAtCronInterval"},
		{"offset without schedule", `{"Name":"AWS-X","ScheduleOffset":2,` + nodeTarget + `}`, "Entries[0].ScheduleOffset", "only allowed with a cron"},
		{"duration without apply only", `{"Name":"AWS-X","ScheduleExpression":"cron(0 2 ? * SUN *)","Duration":2,` + nodeTarget + `}`, "Entries[0].Duration", "requires ApplyOnlyAtCronInterval"},
		{"apply only at cron with at", `{"Name":"AWS-X","ScheduleExpression":"at(2030-01-02T03:04:05)","ApplyOnlyAtCronInterval":true,` + nodeTarget + `}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := parseOne(t, tt.entry)
			if tt.path == "" {
				if !it.Valid() {
					t.Fatalf("want valid, got problems %v", it.Problems)
				}
				return
			}
			if it.Valid() {
				t.Fatalf("want a problem at %s, got none", tt.path)
			}
			if !hasProblem(it.Problems, tt.path, tt.fragment) {
				t.Fatalf("want problem %s: …%s…, got %v", tt.path, tt.fragment, it.Problems)
			}
		})
	}
}

func keys(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"k%d":["v"]`, i))
	}
	return strings.Join(parts, ",")
}

// TestValidateEntryDirect calls ValidateEntry without Parse, as the lead's
// code may after building an entry itself.
func TestValidateEntryDirect(t *testing.T) {
	id := "i-bad"
	errs := ValidateEntry("Entries[3]", Entry{Name: "AWS-X", InstanceId: &id})
	if len(errs) != 1 || errs[0].Error() != "Entries[3].InstanceId: must match "+patInstanceID {
		t.Fatalf("got %v", errs)
	}
	if errs := ValidateEntry("x", Entry{Name: "AWS-X", Targets: []Target{{Key: InstanceIDsKey, Values: []string{node1}}}}); len(errs) != 0 {
		t.Fatalf("got %v", errs)
	}
}

// TestProblemsNeverQuoteParameterValues: parameter values may be secrets.
func TestProblemsNeverQuoteParameterValues(t *testing.T) {
	const secret = "hunter2-SECRET"
	bodies := []string{
		`{"Entries":[{"Name":"AWS-X","Parameters":{"password":["` + secret + `"]},"InstanceId":"bad","ScheduleExpression":"x"}]}`,
		`{"Entries":[{"Name":"AWS-X","Parameters":{"password":["` + secret + `", 5]}}]}`,
		`{"Entries":[{"Name":"AWS-X","Parameters":{"password":"` + secret + `"}}]}`,
		`{"Entries":[{"Name":"AWS-X","Parameters":{"password":["` + secret + `\u0001` + "\x01" + `"]}}]}`,
		`{"Association":{"Name":"AWS-X","Parameters":{"password":["` + secret + `"]},"MaxErrors":"x"},"InstanceIds":["i-1"]}`,
	}
	for _, b := range bodies {
		req, err := Parse([]byte(b), Limits{})
		var text []string
		if err != nil {
			text = append(text, err.Error())
			for _, fe := range rejection(t, err, 400).Errors {
				text = append(text, fe.Error())
			}
		} else {
			for _, it := range req.Items {
				for _, p := range it.Problems {
					text = append(text, p.Error())
				}
			}
		}
		if len(text) == 0 {
			t.Fatalf("%s: expected a problem", b)
		}
		for _, s := range text {
			if strings.Contains(s, "hunter2") {
				t.Fatalf("message quotes a parameter value: %s", s)
			}
		}
	}
}

func TestModelLenCountsUTF16(t *testing.T) {
	if got := modelLen("a😀é"); got != 4 {
		t.Fatalf("modelLen = %d, want 4", got)
	}
}
