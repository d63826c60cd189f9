package request

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

const validEntry = `{"Name":"AWS-UpdateSSMAgent","InstanceId":"` + node1 + `"}`

func TestParseRejectsWholeRequest(t *testing.T) {
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	tests := []struct {
		name     string
		body     string
		lim      Limits
		path     string // path of the expected FieldError; "-" means check Message only
		fragment string
	}{
		{"empty body", ``, Limits{}, "", "required: a JSON object"},
		{"not json", `hello`, Limits{}, "", "unexpected character, expected a value at line 1, column 1 (byte offset 0)"},
		{"not json, second line", "{\"Entries\":\n  [1,]}", Limits{}, "", "expected a value at line 2, column 6 (byte offset 17)"},
		{"missing colon", `{"Entries" []}`, Limits{}, "", "expected ':' after a member name at line 1, column 12 (byte offset 11)"},
		{"control character", "{\"Entries\":\"\x01\"}", Limits{}, "", "control character in a string"},
		{"truncated", `{"Entries":[`, Limits{}, "", "unexpected end of JSON input at line 1, column 13 (byte offset 12)"},
		{"trailing garbage", `{"Entries":[` + validEntry + `]}}`, Limits{}, "", "unexpected data after the JSON value"},
		{"two values", `{"Entries":[` + validEntry + `]} {}`, Limits{}, "", "unexpected data after the JSON value"},
		{"invalid utf-8", "{\"Entries\":[{\"Name\":\"AWS-\xff\",\"InstanceId\":\"" + node1 + "\"}]}", Limits{}, "", "invalid UTF-8 at line 1, column 26 (byte offset 25)"},
		{"deeply nested", `{"Entries":` + deep + `}`, Limits{}, "", "nested too deeply"},
		{"array", `[` + validEntry + `]`, Limits{}, "", "expected a JSON object, got array"},
		{"null", `null`, Limits{}, "", "expected a JSON object, got null"},
		{"string", `"x"`, Limits{}, "", "expected a JSON object, got string"},
		{"neither", `{}`, Limits{}, "", "needs Entries (a CreateAssociationBatch request) or Association"},
		{"entries null", `{"Entries":null}`, Limits{}, "", "needs Entries"},
		{"both", `{"Entries":[` + validEntry + `],"Association":{"Name":"AWS-X"},"InstanceIds":["` + node1 + `"]}`, Limits{}, "", "not both"},
		{"entries empty", `{"Entries":[]}`, Limits{}, "Entries", "at least 1 entry"},
		{"entries empty spaced", `{"Entries":[ ]}`, Limits{}, "Entries", "at least 1 entry"},
		{"entries object", `{"Entries":{}}`, Limits{}, "Entries", "expected an array of entries, got object"},
		{"entry string", `{"Entries":["x"]}`, Limits{}, "Entries[0]", "expected an entry object, got string"},
		{"entry null", `{"Entries":[` + validEntry + `,null]}`, Limits{}, "Entries[1]", "expected an entry object, got null"},
		{"too many entries", `{"Entries":[` + validEntry + `,` + validEntry + `,` + validEntry + `]}`, Limits{MaxEntries: 2}, "Entries", "at most 2 entries per request"},
		{"unknown top-level", `{"Entries":[` + validEntry + `],"Foo":1}`, Limits{}, "Foo", "unknown member"},
		{"miscased top-level", `{"entries":[` + validEntry + `]}`, Limits{}, "entries", `did you mean "Entries"?`},
		{"duplicate member", `{"Entries":[` + validEntry + `],"Entries":[` + validEntry + `]}`, Limits{}, "Entries", "duplicate member"},
		{"instance ids with entries", `{"Entries":[` + validEntry + `],"InstanceIds":["` + node1 + `"]}`, Limits{}, "InstanceIds", "only allowed together with Association"},

		// unknown or miscased entry members
		{"miscased entry member", `{"Entries":[{"Name":"AWS-X","InstanceID":"` + node1 + `"}]}`, Limits{}, "Entries[0].InstanceID", `case-sensitive, did you mean "InstanceId"?`},
		{"unknown entry member", `{"Entries":[{"Name":"AWS-X","Colour":"red"}]}`, Limits{}, "Entries[0].Colour", "unknown member"},
		{"misspelt entry member", `{"Entries":[{"Nmae":"AWS-X","InstanceId":"` + node1 + `"}]}`, Limits{}, "Entries[0].Nmae", `unknown member; did you mean "Name"?`},
		{"misspelt schedule", `{"Entries":[{"Name":"AWS-X","ScheduleExpresion":"rate(1 day)"}]}`, Limits{}, "Entries[0].ScheduleExpresion", `did you mean "ScheduleExpression"?`},
		{"misspelt template member", `{"Association":{"Nmae":"AWS-X"},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.Nmae", `did you mean "Name"?`},
		{"misspelt top-level", `{"Entires":[` + validEntry + `]}`, Limits{}, "Entires", `unknown member; did you mean "Entries"?`},
		{"misspelt dry run", `{"Entries":[` + validEntry + `],"DryRn":true}`, Limits{}, "DryRn", `did you mean "DryRun"?`},
		{"misspelt role", `{"Entries":[` + validEntry + `],"AssociationDispatchAssumeRol":"x"}`, Limits{}, "AssociationDispatchAssumeRol", `did you mean "AssociationDispatchAssumeRole"?`},
		{"miscased fan-out member", `{"Association":{"Name":"AWS-X"},"InstanceIDs":["` + node1 + `"]}`, Limits{}, "InstanceIDs", `case-sensitive, did you mean "InstanceIds"?`},
		{"bare entry", validEntry, Limits{}, "Name", `Name is a member of an entry: send {"Entries": [{…}]}`},
		{"request member in an entry", `{"Entries":[{"Name":"AWS-X","InstanceId":"` + node1 + `","DryRun":true}]}`, Limits{}, "Entries[0].DryRun", "DryRun is a member of the request"},
		{"fan-out member in an entry", `{"Entries":[{"Name":"AWS-X","InstanceIds":["` + node1 + `"]}]}`, Limits{}, "Entries[0].InstanceIds", "an entry names its nodes with InstanceId, or with Targets"},
		{"odd unknown member name", `{"Entries":[{"Name":"AWS-X","a.b":1}]}`, Limits{}, `Entries[0]["a.b"]`, "unknown member"},
		{"miscased target member", `{"Entries":[{"Name":"AWS-X","Targets":[{"key":"InstanceIds","Values":["` + node1 + `"]}]}]}`, Limits{}, "Entries[0].Targets[0].key", `did you mean "Key"?`},
		{"miscased s3 member", `{"Entries":[{"Name":"AWS-X","OutputLocation":{"S3Location":{"OutputS3Bucketname":"b"}}}]}`, Limits{}, "Entries[0].OutputLocation.S3Location.OutputS3Bucketname", `did you mean "OutputS3BucketName"?`},
		{"unknown output location member", `{"Entries":[{"Name":"AWS-X","OutputLocation":{"S3":{}}}]}`, Limits{}, "Entries[0].OutputLocation.S3", "unknown member"},
		{"miscased target location member", `{"Entries":[{"Name":"AWS-X","TargetLocations":[{"accounts":["1"]}]}]}`, Limits{}, "Entries[0].TargetLocations[0].accounts", `did you mean "Accounts"?`},
		{"miscased alarm member", `{"Entries":[{"Name":"AWS-X","AlarmConfiguration":{"Alarms":[{"name":"a"}]}}]}`, Limits{}, "Entries[0].AlarmConfiguration.Alarms[0].name", `did you mean "Name"?`},
		{"unknown alarm configuration member", `{"Entries":[{"Name":"AWS-X","AlarmConfiguration":{"Alarm":[]}}]}`, Limits{}, "Entries[0].AlarmConfiguration.Alarm", "unknown member"},
		{"duplicate entry member", `{"Entries":[{"Name":"AWS-X","Name":"AWS-Y","InstanceId":"` + node1 + `"}]}`, Limits{}, "Entries[0].Name", "duplicate member"},

		// wrong JSON types
		{"name number", `{"Entries":[{"Name":5}]}`, Limits{}, "Entries[0].Name", "expected a string, got number"},
		{"instance id array", `{"Entries":[{"Name":"AWS-X","InstanceId":["` + node1 + `"]}]}`, Limits{}, "Entries[0].InstanceId", "expected a string, got array"},
		{"values string", `{"Entries":[` + validEntry + `,` + validEntry + `,{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":"` + node1 + `"}]}]}`, Limits{}, "Entries[2].Targets[0].Values", "expected an array of strings, got string"},
		{"values element number", `{"Entries":[{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node1 + `",7]}]}]}`, Limits{}, "Entries[0].Targets[0].Values[1]", "expected a string, got number"},
		{"values element null", `{"Entries":[{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":[null]}]}]}`, Limits{}, "Entries[0].Targets[0].Values[0]", "expected a string, got null"},
		{"targets object", `{"Entries":[{"Name":"AWS-X","Targets":{"Key":"InstanceIds"}}]}`, Limits{}, "Entries[0].Targets", "expected an array of targets, got object"},
		{"target null", `{"Entries":[{"Name":"AWS-X","Targets":[null]}]}`, Limits{}, "Entries[0].Targets[0]", "expected a target object, got null"},
		{"key number", `{"Entries":[{"Name":"AWS-X","Targets":[{"Key":1,"Values":[]}]}]}`, Limits{}, "Entries[0].Targets[0].Key", "expected a string, got number"},
		{"parameters array", `{"Entries":[{"Name":"AWS-X","Parameters":[]}]}`, Limits{}, "Entries[0].Parameters", "expected an object of string arrays, got array"},
		{"parameter value string", `{"Entries":[{"Name":"AWS-X","Parameters":{"commands":"ls"}}]}`, Limits{}, "Entries[0].Parameters.commands", "expected an array of strings, got string"},
		{"parameter value null", `{"Entries":[{"Name":"AWS-X","Parameters":{"commands":null}}]}`, Limits{}, "Entries[0].Parameters.commands", "expected an array of strings, got null"},
		{"parameter element object", `{"Entries":[{"Name":"AWS-X","Parameters":{"my param":[{}]}}]}`, Limits{}, `Entries[0].Parameters["my param"][0]`, "expected a string, got object"},
		{"apply only string", `{"Entries":[{"Name":"AWS-X","ApplyOnlyAtCronInterval":"true"}]}`, Limits{}, "Entries[0].ApplyOnlyAtCronInterval", "expected a boolean, got string"},
		{"offset string", `{"Entries":[{"Name":"AWS-X","ScheduleOffset":"2"}]}`, Limits{}, "Entries[0].ScheduleOffset", "expected an integer, got string"},
		{"offset fraction", `{"Entries":[{"Name":"AWS-X","ScheduleOffset":2.5}]}`, Limits{}, "Entries[0].ScheduleOffset", "expected a 32-bit integer"},
		{"duration huge", `{"Entries":[{"Name":"AWS-X","Duration":99999999999}]}`, Limits{}, "Entries[0].Duration", "expected a 32-bit integer"},
		{"target maps object", `{"Entries":[{"Name":"AWS-X","TargetMaps":{}}]}`, Limits{}, "Entries[0].TargetMaps", "expected an array of objects, got object"},
		{"target map null", `{"Entries":[{"Name":"AWS-X","TargetMaps":[null]}]}`, Limits{}, "Entries[0].TargetMaps[0]", "expected an object of string arrays, got null"},
		{"target locations string", `{"Entries":[{"Name":"AWS-X","TargetLocations":"x"}]}`, Limits{}, "Entries[0].TargetLocations", "expected an array of target locations, got string"},
		{"accounts number", `{"Entries":[{"Name":"AWS-X","TargetLocations":[{"Accounts":1}]}]}`, Limits{}, "Entries[0].TargetLocations[0].Accounts", "expected an array of strings, got number"},
		{"include child boolean", `{"Entries":[{"Name":"AWS-X","TargetLocations":[{"IncludeChildOrganizationUnits":1}]}]}`, Limits{}, "Entries[0].TargetLocations[0].IncludeChildOrganizationUnits", "expected a boolean"},
		{"output location string", `{"Entries":[{"Name":"AWS-X","OutputLocation":"s3://x"}]}`, Limits{}, "Entries[0].OutputLocation", "expected an object, got string"},
		{"s3 location array", `{"Entries":[{"Name":"AWS-X","OutputLocation":{"S3Location":[]}}]}`, Limits{}, "Entries[0].OutputLocation.S3Location", "expected an object, got array"},
		{"alarms object", `{"Entries":[{"Name":"AWS-X","AlarmConfiguration":{"Alarms":{}}}]}`, Limits{}, "Entries[0].AlarmConfiguration.Alarms", "expected an array of alarms, got object"},
		{"alarm string", `{"Entries":[{"Name":"AWS-X","AlarmConfiguration":{"Alarms":["a"]}}]}`, Limits{}, "Entries[0].AlarmConfiguration.Alarms[0]", "expected an alarm object, got string"},
		{"ignore poll string", `{"Entries":[{"Name":"AWS-X","AlarmConfiguration":{"Alarms":[],"IgnorePollAlarmFailure":"no"}}]}`, Limits{}, "Entries[0].AlarmConfiguration.IgnorePollAlarmFailure", "expected a boolean"},
		{"calendar names string", `{"Entries":[{"Name":"AWS-X","CalendarNames":"c"}]}`, Limits{}, "Entries[0].CalendarNames", "expected an array of strings"},

		// AssociationDispatchAssumeRole
		{"role bad", `{"Entries":[` + validEntry + `],"AssociationDispatchAssumeRole":"role/x"}`, Limits{}, "AssociationDispatchAssumeRole", "must match arn:aws(-[^:]+)?:iam::[0-9]{12}:role/.+"},
		{"role prefix only", `{"Entries":[` + validEntry + `],"AssociationDispatchAssumeRole":"x arn:aws:iam::123456789012:role/r"}`, Limits{}, "AssociationDispatchAssumeRole", "must match"},
		{"role empty", `{"Entries":[` + validEntry + `],"AssociationDispatchAssumeRole":""}`, Limits{}, "AssociationDispatchAssumeRole", "between 1 and 512"},
		{"role long", `{"Entries":[` + validEntry + `],"AssociationDispatchAssumeRole":"arn:aws:iam::123456789012:role/` + strings.Repeat("r", 500) + `"}`, Limits{}, "AssociationDispatchAssumeRole", "between 1 and 512"},
		{"role number", `{"Entries":[` + validEntry + `],"AssociationDispatchAssumeRole":1}`, Limits{}, "AssociationDispatchAssumeRole", "expected a string, got number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Parse([]byte(tt.body), tt.lim)
			if req != nil {
				t.Errorf("got a request along with the error")
			}
			re := rejection(t, err, http.StatusBadRequest)
			if len(re.Errors) == 0 {
				t.Errorf("rejection %q lists no problem", re.Message)
			}
			if tt.path == "-" {
				if !strings.Contains(re.Message, tt.fragment) {
					t.Fatalf("message %q does not contain %q", re.Message, tt.fragment)
				}
				return
			}
			if !hasProblem(re.Errors, tt.path, tt.fragment) {
				t.Fatalf("want %s: …%s…, got %v", tt.path, tt.fragment, re.Errors)
			}
			if !strings.Contains(re.Error(), tt.fragment) && len(re.Errors) <= shownErrors {
				t.Fatalf("Error() %q does not mention the problem", re.Error())
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	body := `{
		"Entries": [
			{"Name":"AWS-UpdateSSMAgent","InstanceId":"` + node1 + `"},
			{"Name":"AWS-RunShellScript","Targets":[{"Key":"InstanceIds","Values":["` + node2 + `"]}],"ScheduleExpression":"rate(30 minutes)"},
			{"Name":"AWS-RunShellScript","InstanceId":"i-bad"}
		],
		"AssociationDispatchAssumeRole":"arn:aws-us-gov:iam::123456789012:role/dispatch"
	}`
	req, err := Parse([]byte(body), Limits{MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := *req.AssociationDispatchAssumeRole; got != "arn:aws-us-gov:iam::123456789012:role/dispatch" {
		t.Fatalf("role %q", got)
	}
	if len(req.Items) != 3 {
		t.Fatalf("%d items", len(req.Items))
	}
	for i, want := range []string{"Entries[0]", "Entries[1]", "Entries[2]"} {
		if req.Items[i].Path != want {
			t.Errorf("item %d path %q, want %q", i, req.Items[i].Path, want)
		}
	}
	if !req.Items[0].Valid() || !req.Items[1].Valid() || req.Items[2].Valid() {
		t.Fatalf("validity %v %v %v", req.Items[0].Problems, req.Items[1].Problems, req.Items[2].Problems)
	}
	if got := *req.Items[1].Entry.ScheduleExpression; got != "rate(30 minutes)" {
		t.Fatalf("schedule %q", got)
	}
	if got := req.Items[1].Entry.Nodes(); len(got) != 1 || got[0] != node2 {
		t.Fatalf("nodes %v", got)
	}
}

// Entries the request repeats are kept: deduplication is another package's
// job, and it needs to see them.
func TestParseKeepsDuplicatesAndOrder(t *testing.T) {
	body := `{"Entries":[` + validEntry + `,{"Name":"AWS-Other","InstanceId":"` + node2 + `"},` + validEntry + `]}`
	req, err := Parse([]byte(body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Items) != 3 || req.Items[1].Entry.Name != "AWS-Other" || req.Items[2].Entry.Name != "AWS-UpdateSSMAgent" {
		t.Fatalf("items %+v", req.Items)
	}
}

// A decoded entry marshals back to the AWS shape member for member.
func TestParseRoundTrip(t *testing.T) {
	entry := `{"Name":"AWS-RunShellScript","Targets":[{"Key":"InstanceIds","Values":["` + node1 + `"]}],"Parameters":{"commands":["ls"]},"ScheduleExpression":"cron(0 2 ? * SUN *)","ScheduleOffset":2,"Duration":3,"ApplyOnlyAtCronInterval":true,"AlarmConfiguration":{"Alarms":[{"Name":"a"}]}}`
	it := parseOne(t, entry)
	if !it.Valid() {
		t.Fatal(it.Problems)
	}
	out, err := json.Marshal(it.Entry)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(entry), &a)
	_ = json.Unmarshal(out, &b)
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	if string(aj) != string(bj) {
		t.Fatalf("round trip\n got %s\nwant %s", bj, aj)
	}
}

func TestErrorText(t *testing.T) {
	e := NewError(http.StatusBadRequest, "invalid request", errTrailingData,
		FieldError{"a", "one"}, FieldError{"b", "two"}, FieldError{"c", "three"}, FieldError{"d", "four"}, FieldError{"e", "five"})
	if got, want := e.Error(), "invalid request: a: one; b: two; c: three (and 2 more)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !errors.Is(e, errTrailingData) {
		t.Fatal("cause not unwrapped")
	}
	if got := (FieldError{Path: "Entries[3].Targets[0].Values", Message: "at most 50 values"}).Error(); got != "Entries[3].Targets[0].Values: at most 50 values" {
		t.Fatal(got)
	}
}

// A request wrong everywhere gets a bounded list of problems.
func TestParseCapsErrors(t *testing.T) {
	body := `{"Entries":[` + strings.TrimSuffix(strings.Repeat(`{"Name":1},`, 500), ",") + `]}`
	re := rejection(t, func() error { _, err := Parse([]byte(body), Limits{}); return err }(), 400)
	if len(re.Errors) != maxFieldErrors+1 || !strings.Contains(re.Errors[maxFieldErrors].Message, "400 more problems not shown") {
		t.Fatalf("%d errors, last %v", len(re.Errors), re.Errors[len(re.Errors)-1])
	}
}

func TestParseMaxEntriesBoundary(t *testing.T) {
	body := `{"Entries":[` + validEntry + `,` + validEntry + `]}`
	if _, err := Parse([]byte(body), Limits{MaxEntries: 2}); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := Parse([]byte(body), Limits{MaxEntries: 0}); err != nil {
		t.Fatalf("no limit: %v", err)
	}
	_, err := Parse([]byte(body), Limits{MaxEntries: 1})
	if re := rejection(t, err, 400); !strings.Contains(re.Message, "the limit is 1") {
		t.Fatalf("message %q", re.Message)
	}
}

func TestAsyncMember(t *testing.T) {
	tests := []struct {
		body    string
		want    bool
		wantErr string
	}{
		{`{"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}]}`, false, ""},
		{`{"Async":true,"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}]}`, true, ""},
		{`{"Async":true,"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-0123456789abcdef0"]}`, true, ""},
		{`{"Async":"yes","Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}]}`, false, "Async"},
	}
	for _, tt := range tests {
		req, err := Parse([]byte(tt.body), Limits{})
		if tt.wantErr != "" {
			var e *Error
			if !errors.As(err, &e) || len(e.Errors) == 0 || e.Errors[0].Path != tt.wantErr {
				t.Errorf("%s: error %v, want one at %s", tt.body, err, tt.wantErr)
			}
			continue
		}
		if err != nil || req.Async != tt.want {
			t.Errorf("%s: Async %v err %v", tt.body, req != nil && req.Async, err)
		}
	}
}

func TestUnpairedSurrogates(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{`echo \ud83d\ude00`, true}, // a pair: U+1F600
		{`echo \u00e9 \\ud800`, true},
		{`echo \ud800 done`, false},
		{`echo \udc00`, false},
		{`\ud83d`, false},
		{`\ud83d\u0041`, false},
	}
	for _, tt := range tests {
		body := `{"Entries":[{"Name":"AWS-RunShellScript","InstanceId":"i-0123456789abcdef0","Parameters":{"commands":["` + tt.value + `"]}}]}`
		req, err := Parse([]byte(body), Limits{})
		if tt.ok {
			if err != nil || strings.ContainsRune(req.Items[0].Entry.Parameters["commands"][0], '\uFFFD') {
				t.Errorf("%s: %v", tt.value, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || len(e.Errors) == 0 || !strings.Contains(e.Errors[0].Message, "surrogate") || strings.Contains(e.Error(), "echo") {
			t.Errorf("%s: error %v, want one naming the unpaired surrogate and not the value", tt.value, err)
		}
	}
	_, err := Parse([]byte(`{"Entries":[{"Name":"AWS-\ud800Update","InstanceId":"i-0123456789abcdef0"}]}`), Limits{})
	var e *Error
	if !errors.As(err, &e) || e.Errors[0].Path != "Entries[0].Name" {
		t.Errorf("lone surrogate in a name: %v", err)
	}
}

func TestOnExistingAndDryRun(t *testing.T) {
	const entries = `"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}]`
	tests := []struct {
		body       string
		onExisting string
		dryRun     bool
		wantErr    string
	}{
		{`{` + entries + `}`, OnExistingSkip, false, ""},
		{`{"OnExisting":"update",` + entries + `}`, OnExistingUpdate, false, ""},
		{`{"OnExisting":"skip","DryRun":true,` + entries + `}`, OnExistingSkip, true, ""},
		{`{"OnExisting":"update","DryRun":true,"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-0123456789abcdef0"]}`, OnExistingUpdate, true, ""},
		{`{"OnExisting":"replace",` + entries + `}`, "", false, `OnExisting: must be "skip"`},
		{`{"OnExisting":true,` + entries + `}`, "", false, "OnExisting"},
		{`{"DryRun":"yes",` + entries + `}`, "", false, "DryRun"},
	}
	for _, tt := range tests {
		req, err := Parse([]byte(tt.body), Limits{})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(errorText(err), tt.wantErr) {
				t.Errorf("%s: error %v, want one naming %q", tt.body, err, tt.wantErr)
			}
			continue
		}
		if err != nil || req.OnExisting != tt.onExisting || req.DryRun != tt.dryRun {
			t.Errorf("%s: OnExisting %q DryRun %v err %v", tt.body, req.OnExisting, req.DryRun, err)
		}
	}
}

// errorText is a rejection's message and its field errors, as a client sees them.
func errorText(err error) string {
	out := err.Error()
	var e *Error
	if errors.As(err, &e) {
		for _, fe := range e.Errors {
			out += "; " + fe.Error()
		}
	}
	return out
}
