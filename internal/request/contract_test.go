package request_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// The error contract: which mistakes reject the whole request (HTTP 400 /
// InvalidRequestError, nothing done) and which fail only their entry
// (Failed, Fault Client, never sent; the other entries go ahead). The
// README's table is printed from contractRows, so that it says what the code
// does:
//
//	go test ./internal/request -run TestContract -contract.markdown -v
var printContract = flag.Bool("contract.markdown", false, "print the error contract table as Markdown")

// contractLimits are the limits the rows run under (MAX_ENTRIES 3).
var contractLimits = request.Limits{MaxEntries: 3}

const (
	okEntry = `{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}`
	node    = "i-0123456789abcdef0"
)

// batch is a request of a valid entry followed by bad: a whole-request
// mistake rejects the valid one too, an entry mistake fails bad alone.
func batch(bad string) string { return `{"Entries":[` + okEntry + `,` + bad + `]}` }

type contractRow struct {
	mistake string // what the caller got wrong, for the table
	example string // the mistake as written, for the table
	body    string
	whole   bool   // true: the request is rejected; false: only the entry at path's item fails
	path    string // where the answer puts it ("" is the body as a whole)
	says    string // a fragment of the problem's message
}

var contractRows = []contractRow{
	// Rejected as a whole: HTTP 400, nothing claimed, sent or queued.
	{"body is not JSON (syntax error)", `{"Entries": [`, `{"Entries": [`, true, "", "unexpected end of JSON input at line 1, column 14 (byte offset 13)"},
	{"body is not JSON (syntax error)", `'x'`, `{"Entries":[` + okEntry + `],"Role":'x'}`, true, "", "unexpected character, expected a value at line 1, column 86 (byte offset 85)"},
	{"body is not JSON (syntax error)", `{…} {…}`, batch(okEntry) + ` {}`, true, "", "unexpected data after the JSON value"},
	{"body is not UTF-8, empty, or not an object", `"AWS-\xff"`, "{\"Entries\":[{\"Name\":\"AWS-\xff\",\"InstanceId\":\"" + node + "\"}]}", true, "", "invalid UTF-8 at line 1, column 26 (byte offset 25)"},
	{"body is not UTF-8, empty, or not an object", `[{…}]`, `[` + okEntry + `]`, true, "", "expected a JSON object, got array"},
	{"neither or both of `Entries` and `Association`", `{}`, `{}`, true, "", "needs Entries"},
	{"neither or both of `Entries` and `Association`", `{"Entries": […], "Association": {…}}`, `{"Entries":[` + okEntry + `],"Association":{"Name":"AWS-X"},"InstanceIds":["` + node + `"]}`, true, "", "not both"},
	{"wrong JSON type, anywhere (in an entry too)", `"InstanceId": 7`, batch(`{"Name":"AWS-UpdateSSMAgent","InstanceId":7}`), true, "Entries[1].InstanceId", "expected a string, got number"},
	{"wrong JSON type, anywhere (in an entry too)", `"DryRun": "yes"`, `{"Entries":[` + okEntry + `],"DryRun":"yes"}`, true, "DryRun", "expected a boolean, got string"},
	{"a number that is not a 32-bit integer", `"Duration": 2.5`, batch(`{"Name":"AWS-X","InstanceId":"` + node + `","Duration":2.5}`), true, "Entries[1].Duration", "expected a 32-bit integer"},
	{"unknown member name, anywhere (with a suggestion)", `"Nmae": …`, batch(`{"Nmae":"AWS-UpdateSSMAgent","InstanceId":"` + node + `"}`), true, "Entries[1].Nmae", `unknown member; did you mean "Name"?`},
	{"unknown member name, anywhere (with a suggestion)", `"Entires": […]`, `{"Entires":[` + okEntry + `]}`, true, "Entires", `did you mean "Entries"?`},
	{"unknown member name, anywhere (with a suggestion)", `"instanceId": …`, batch(`{"Name":"AWS-X","instanceId":"` + node + `"}`), true, "Entries[1].instanceId", `case-sensitive, did you mean "InstanceId"?`},
	{"a member one level off", "`{\"Name\": …, \"InstanceId\": …}` without `Entries`", okEntry, true, "Name", "Name is a member of an entry"},
	{"a member one level off", "`\"DryRun\": true` inside an entry", batch(`{"Name":"AWS-X","InstanceId":"` + node + `","DryRun":true}`), true, "Entries[1].DryRun", "DryRun is a member of the request"},
	{"duplicate member", `"Name": "A", "Name": "B"`, batch(`{"Name":"AWS-A","Name":"AWS-B","InstanceId":"` + node + `"}`), true, "Entries[1].Name", "duplicate member"},
	{"a string with an unpaired surrogate", `"\ud800"`, batch(`{"Name":"AWS-\ud800","InstanceId":"` + node + `"}`), true, "Entries[1].Name", "malformed JSON string"},
	{"more entries, or fan-out nodes, than `MAX_ENTRIES`", "4 entries with `MAX_ENTRIES` 3", `{"Entries":[` + okEntry + `,` + okEntry + `,` + okEntry + `,` + okEntry + `]}`, true, "Entries", "at most 3 entries per request"},
	{"more entries, or fan-out nodes, than `MAX_ENTRIES`", "4 `InstanceIds`", `{"Association":{"Name":"AWS-X"},"InstanceIds":["i-11111111","i-22222222","i-33333333","i-44444444"]}`, true, "InstanceIds", "at most 3 instance IDs per request"},
	{"no entries, or no nodes", `"Entries": []`, `{"Entries":[]}`, true, "Entries", "at least 1 entry required"},
	{"`InstanceIds` next to `Entries`", `{"Entries": […], "InstanceIds": […]}`, `{"Entries":[` + okEntry + `],"InstanceIds":["` + node + `"]}`, true, "InstanceIds", "only allowed together with Association"},
	{"bad `AssociationDispatchAssumeRole`", `"AssociationDispatchAssumeRole": "role/x"`, `{"Entries":[` + okEntry + `],"AssociationDispatchAssumeRole":"role/x"}`, true, "AssociationDispatchAssumeRole", "must match arn:aws"},
	{"bad `OnExisting`", `"OnExisting": "replace"`, `{"Entries":[` + okEntry + `],"OnExisting":"replace"}`, true, "OnExisting", `must be "skip"`},
	{"bad fan-out template (any rule an entry breaks)", `"Association": {"Name": "AWS-X", "ScheduleExpression": "rate(5 minutes)"}`, `{"Association":{"Name":"AWS-X","ScheduleExpression":"rate(5 minutes)"},"InstanceIds":["` + node + `"]}`, true, "Association.ScheduleExpression", "at least 30 minutes"},
	{"bad fan-out template (any rule an entry breaks)", `"Association": {"Name": "AWS-X", "InstanceId": …}`, `{"Association":{"Name":"AWS-X","InstanceId":"` + node + `"},"InstanceIds":["` + node + `"]}`, true, "Association.InstanceId", "not allowed in a fan-out request"},

	// Only the entry fails: Failed, Fault Client, never sent.
	{"bad node ID", `"InstanceId": "i-typo"`, batch(`{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-typo"}`), false, "Entries[1].InstanceId", "must match"},
	{"bad node ID", `"Targets": [{"Key": "InstanceIds", "Values": ["i-typo"]}]`, batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["i-typo"]}]}`), false, "Entries[1].Targets[0].Values[0]", "must match"},
	{"bad node ID in a fan-out request: that node only", `"InstanceIds": ["i-12345678", "i-typo"]`, `{"Association":{"Name":"AWS-X"},"InstanceIds":["i-12345678","i-typo"]}`, false, "InstanceIds[1]", "must match"},
	{"a node twice in one entry", `"Values": ["i-12345678", "i-12345678"]`, batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["i-12345678","i-12345678"]}]}`), false, "Entries[1].Targets[0].Values[1]", "duplicate of Entries[1].Targets[0].Values[0]"},
	{"no `Name`, or a bad document name", `"Name": "x y"`, batch(`{"Name":"x y","InstanceId":"` + node + `"}`), false, "Entries[1].Name", "must match"},
	{"no target", `{"Name": "AWS-X"}`, batch(`{"Name":"AWS-X"}`), false, "Entries[1].Targets", "required: an entry needs InstanceId, Targets, TargetMaps or TargetLocations"},
	{"bad schedule", `"ScheduleExpression": "rate(5 minutes)"`, batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node + `"]}],"ScheduleExpression":"rate(5 minutes)"}`), false, "Entries[1].ScheduleExpression", "at least 30 minutes"},
	{"bad schedule", `"ScheduleExpression": "cron(0 99 * * ? *)"`, batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node + `"]}],"ScheduleExpression":"cron(0 99 * * ? *)"}`), false, "Entries[1].ScheduleExpression", "out of range 0-23"},
	{"bad schedule", "a month other than `*` (State Manager does not support months in association crons)", batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node + `"]}],"ScheduleExpression":"cron(0 2 ? 3 SUN *)"}`), false, "Entries[1].ScheduleExpression", "month field must be *"},
	{"bad schedule", "a range that wraps around (`FRI-MON`)", batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node + `"]}],"ScheduleExpression":"cron(0 2 ? * FRI-MON *)"}`), false, "Entries[1].ScheduleExpression", "range FRI-MON runs backwards"},
	{"a value out of the model's range", `"ScheduleOffset": 7`, batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node + `"]}],"ScheduleExpression":"cron(0 2 ? * SUN *)","ApplyOnlyAtCronInterval":true,"ScheduleOffset":7}`), false, "Entries[1].ScheduleOffset", "between 1 and 6"},
	{"a value out of the model's range", `"MaxConcurrency": "0"`, batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node + `"]}],"MaxConcurrency":"0"}`), false, "Entries[1].MaxConcurrency", "must match"},
	{"a value out of the model's range", `"ComplianceSeverity": "SEVERE"`, batch(`{"Name":"AWS-X","InstanceId":"` + node + `","ComplianceSeverity":"SEVERE"}`), false, "Entries[1].ComplianceSeverity", "must be one of"},
	{"a value out of the model's range", "six `Targets`", batch(`{"Name":"AWS-X","Targets":[{"Key":"tag:a","Values":["1"]},{"Key":"tag:b","Values":["1"]},{"Key":"tag:c","Values":["1"]},{"Key":"tag:d","Values":["1"]},{"Key":"tag:e","Values":["1"]},{"Key":"tag:f","Values":["1"]}]}`), false, "Entries[1].Targets", "at most 5 targets"},
	{"members SSM refuses together", `"InstanceId": …, "AssociationName": "n"`, batch(`{"Name":"AWS-X","InstanceId":"` + node + `","AssociationName":"n"}`), false, "Entries[1].AssociationName", "not allowed together with InstanceId"},
	{"members SSM refuses together", "`\"ScheduleOffset\": 2` without `ApplyOnlyAtCronInterval`", batch(`{"Name":"AWS-X","Targets":[{"Key":"InstanceIds","Values":["` + node + `"]}],"ScheduleExpression":"cron(0 2 ? * SUN *)","ScheduleOffset":2}`), false, "Entries[1].ScheduleOffset", "requires ApplyOnlyAtCronInterval"},
	{"an alarm configuration without exactly one alarm", `"AlarmConfiguration": {"Alarms": []}`, batch(`{"Name":"AWS-X","InstanceId":"` + node + `","AlarmConfiguration":{"Alarms":[]}}`), false, "Entries[1].AlarmConfiguration.Alarms", "exactly 1 alarm"},
}

// allowRows fail only their entry too, but not in Parse: which documents
// and target keys an entry may use is the deployment's setting
// (ALLOWED_DOCUMENTS, ALLOWED_TARGET_KEYS), checked after Parse by
// internal/associate (allow.go) before anything is claimed or sent. Their
// messages are the engine's, with the default lists. That the neighbours go
// on, unclaimed and unsent the entry, is held by internal/associate's
// TestAllowListsFailTheirEntryOnly.
var allowRows = []struct {
	mistake, example, body, path, says string
}{
	{"a document not in `ALLOWED_DOCUMENTS` (checked after parsing; the message names the list)", `"Name": "AWS-RunShellScript"`, batch(`{"Name":"AWS-RunShellScript","InstanceId":"` + node + `","Parameters":{"commands":["id"]}}`), "Entries[1].Name", `document "AWS-RunShellScript" is not allowed by ALLOWED_DOCUMENTS`},
	{"a target key not in `ALLOWED_TARGET_KEYS`, `TargetMaps` and `TargetLocations` included (checked after parsing)", `"Targets": [{"Key": "tag:Environment", …}]`, batch(`{"Name":"AWS-UpdateSSMAgent","Targets":[{"Key":"tag:Environment","Values":["prod"]}]}`), "Entries[1].Targets[0].Key", `target key "tag:Environment" is not allowed by ALLOWED_TARGET_KEYS`},
}

// allowFailure is what the engine, configured with the default allow lists
// (config's, as ALLOWED_DOCUMENTS and ALLOWED_TARGET_KEYS unset give them), answers for the entry at path of body: the
// Reason of its "fail" action in a dry run of that entry alone. A dry run of
// entries that all fail the lists reads no claim, so the store is never
// reached.
func allowFailure(t *testing.T, body, path string) string {
	t.Helper()
	req, err := request.Parse([]byte(body), contractLimits)
	if err != nil {
		t.Fatal(err)
	}
	alone := &request.Request{}
	for _, it := range req.Items {
		if it.Path == path || strings.HasPrefix(path, it.Path+".") {
			alone.Items = append(alone.Items, it)
		}
	}
	if len(alone.Items) != 1 {
		t.Fatalf("no single entry at %s in %s", path, body)
	}
	cfg, err := config.FromLookup(func(name string) (string, bool) {
		return map[string]string{"DEDUPE_TABLE": "contract"}[name], name == "DEDUPE_TABLE"
	})
	if err != nil {
		t.Fatal(err)
	}
	set := associate.Settings{Allow: associate.Allow{Documents: cfg.AllowedDocuments, TargetKeys: cfg.AllowedTargetKeys}}
	eng := associate.New(nil, dedupe.NewStore(nil, "contract", time.Hour), set, nil)
	p, err := eng.DryRun(context.Background(), alone)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Actions) != 1 || p.Actions[0].Action != report.ActionFail {
		t.Fatalf("dry run of %s: %+v, want one failed action", path, p.Actions)
	}
	return p.Actions[0].Reason
}

// TestContract walks every row through Parse and checks it lands where the
// table says: a whole-request row is a *request.Error of status 400 naming
// the problem in its Errors (never a request); an entry row is an accepted
// request whose item at the path's entry alone has the problem, every other
// item valid.
func TestContract(t *testing.T) {
	for _, row := range contractRows {
		t.Run(row.mistake+": "+row.example, func(t *testing.T) {
			req, err := request.Parse([]byte(row.body), contractLimits)
			if row.whole {
				var re *request.Error
				if !errors.As(err, &re) || re.Status != http.StatusBadRequest || req != nil {
					t.Fatalf("want the whole request rejected with 400, got request %v, error %v", req != nil, err)
				}
				if !hasProblemAt(re.Errors, row.path, row.says) {
					t.Fatalf("rejection %q: no problem at %q saying %q in %q", re.Message, row.path, row.says, re.Errors)
				}
				return
			}
			if err != nil {
				t.Fatalf("want only the entry to fail, the request was rejected: %v", err)
			}
			failed := 0
			for _, it := range req.Items {
				if it.Valid() {
					continue
				}
				failed++
				if !strings.HasPrefix(row.path, it.Path) {
					t.Errorf("%s failed too: %v", it.Path, it.Problems)
				}
				if !hasProblemAt(it.Problems, row.path, row.says) {
					t.Errorf("%s: no problem at %q saying %q in %v", it.Path, row.path, row.says, it.Problems)
				}
			}
			if failed != 1 || len(req.Items) < 2 {
				t.Errorf("%d of %d items failed, want exactly 1 and others valid", failed, len(req.Items))
			}
		})
	}
	for _, row := range allowRows {
		t.Run(row.mistake+": "+row.example, func(t *testing.T) {
			// Parse lets it through, with its neighbour: the allow lists
			// are not the request's shape.
			req, err := request.Parse([]byte(row.body), contractLimits)
			if err != nil || len(req.Items) < 2 {
				t.Fatalf("Parse: %v, want the request accepted", err)
			}
			for _, it := range req.Items {
				if !it.Valid() {
					t.Errorf("%s failed in Parse: %v", it.Path, it.Problems)
				}
			}
			if got := allowFailure(t, row.body, row.path); !strings.HasPrefix(got, row.path+": ") || !strings.Contains(got, row.says) {
				t.Errorf("engine says %q, want %q at %s", got, row.says, row.path)
			}
		})
	}
	if *printContract {
		fmt.Print(contractMarkdown(t))
	}
}

// TestContractTableInREADME holds the README's tables to contractRows: a
// table edited by hand, or rows changed without regenerating it, fail here.
func TestContractTableInREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := contractMarkdown(t)
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md's error contract tables are not what contractRows print; replace them with the output of\n"+
			"  go test ./internal/request -run TestContract -contract.markdown -v\n%s", want)
	}
}

func hasProblemAt(errs []request.FieldError, path, fragment string) bool {
	for _, e := range errs {
		if e.Path == path && strings.Contains(e.Message, fragment) {
			return true
		}
	}
	return false
}

// contractMarkdown is the table of contractRows in two parts, one line per
// mistake with its examples joined, and what Parse answers to the first.
func contractMarkdown(t *testing.T) string {
	var b strings.Builder
	for _, whole := range []bool{true, false} {
		if whole {
			b.WriteString("| rejects the whole request: 400, nothing done | example | in `errors`, for the first example (`path: message`; no path: the body as a whole) |\n|---|---|---|\n")
		} else {
			b.WriteString("\n| fails only its entry: `Failed`, `Fault: Client`, never sent | example | the entry's `Message`, for the first example |\n|---|---|---|\n")
		}
		for i := 0; i < len(contractRows); {
			row := contractRows[i]
			j := i
			var examples []string
			for ; j < len(contractRows) && contractRows[j].mistake == row.mistake; j++ {
				examples = append(examples, code(contractRows[j].example))
			}
			if row.whole == whole {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", row.mistake, strings.Join(examples, ", "), firstProblem(row))
			}
			i = j
		}
		if !whole {
			for _, row := range allowRows {
				fmt.Fprintf(&b, "| %s | %s | %s |\n",
					row.mistake, code(row.example), "`"+strings.ReplaceAll(allowFailure(t, row.body, row.path), "|", `\|`)+"`")
			}
		}
	}
	return b.String()
}

// firstProblem is the problem Parse reports for row at row.path, as
// "path: message" in a code span.
func firstProblem(row contractRow) string {
	req, err := request.Parse([]byte(row.body), contractLimits)
	var problems []request.FieldError
	var re *request.Error
	if errors.As(err, &re) {
		problems = re.Errors
	} else if req != nil {
		for _, it := range req.Items {
			problems = append(problems, it.Problems...)
		}
	}
	for _, p := range problems {
		if p.Path == row.path && strings.Contains(p.Message, row.says) {
			// As FieldError.Error and an entry's Message spell it.
			return "`" + strings.ReplaceAll(p.Error(), "|", `\|`) + "`"
		}
	}
	return "?"
}

// code formats an example as Markdown code, unless it already mixes code
// and prose ("`{…}` without `Entries`"), and escapes table pipes.
func code(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	if strings.Contains(s, "`") { // already mixes code and prose
		return s
	}
	return "`" + s + "`"
}
