package request

import (
	"net/http"
	"strings"
	"testing"
)

func TestFanOut(t *testing.T) {
	body := `{"Association":{"Name":"AWS-RunShellScript","Parameters":{"commands":["uptime"]},"ScheduleExpression":"rate(1 day)"},
		"InstanceIds":["` + node1 + `","i-bad","` + hybrid + `"],
		"AssociationDispatchAssumeRole":"arn:aws:iam::123456789012:role/r"}`
	req, err := Parse([]byte(body), Limits{MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	if req.AssociationDispatchAssumeRole == nil {
		t.Fatal("role dropped")
	}
	if len(req.Items) != 3 {
		t.Fatalf("%d items", len(req.Items))
	}
	for i, node := range []string{node1, "i-bad", hybrid} {
		it := req.Items[i]
		if want := indexPath("InstanceIds", i); it.Path != want {
			t.Errorf("path %q, want %q", it.Path, want)
		}
		ts := it.Entry.Targets
		if len(ts) != 1 || ts[0].Key != "InstanceIds" || len(ts[0].Values) != 1 || ts[0].Values[0] != node {
			t.Errorf("item %d targets %+v", i, ts)
		}
		if it.Entry.Name != "AWS-RunShellScript" || *it.Entry.ScheduleExpression != "rate(1 day)" {
			t.Errorf("item %d lost the template: %+v", i, it.Entry)
		}
	}
	if !req.Items[0].Valid() || !req.Items[2].Valid() {
		t.Fatalf("valid nodes have problems: %v %v", req.Items[0].Problems, req.Items[2].Problems)
	}
	want := `InstanceIds[1]: must match (^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)`
	if p := req.Items[1].Problems; len(p) != 1 || p[0].Error() != want {
		t.Fatalf("problems %v, want %q", p, want)
	}
	// Items own their Targets: narrowing one must not touch another.
	req.Items[0].Entry.Targets[0].Values[0] = "changed"
	if req.Items[2].Entry.Targets[0].Values[0] != hybrid {
		t.Fatal("items share Targets")
	}
}

func TestFanOutRejections(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		lim      Limits
		path     string
		fragment string
	}{
		{"instance id in template", `{"Association":{"Name":"AWS-X","InstanceId":"` + node1 + `"},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.InstanceId", "not allowed in a fan-out request"},
		{"targets in template", `{"Association":{"Name":"AWS-X","Targets":[]},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.Targets", "not allowed in a fan-out request"},
		{"invalid template", `{"Association":{"Name":"AWS-X","MaxErrors":"lots"},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.MaxErrors", "must match"},
		{"template schedule", `{"Association":{"Name":"AWS-X","ScheduleExpression":"rate(10 minutes)"},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.ScheduleExpression", "rate must be at least 30 minutes"},
		{"template target maps", `{"Association":{"Name":"AWS-X","TargetMaps":[{"k":["v"]}]},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.TargetMaps", "not allowed together with Targets"},
		{"template without name", `{"Association":{},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.Name", "required"},
		{"template not object", `{"Association":[],"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association", "expected an entry object, got array"},
		{"template type error", `{"Association":{"Name":"AWS-X","Parameters":{"p":"v"}},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.Parameters.p", "expected an array of strings"},
		{"template unknown member", `{"Association":{"Name":"AWS-X","instanceIds":[]},"InstanceIds":["` + node1 + `"]}`, Limits{}, "Association.instanceIds", "unknown member"},
		{"instance ids missing", `{"Association":{"Name":"AWS-X"}}`, Limits{}, "InstanceIds", "required in a fan-out request"},
		{"instance ids null", `{"Association":{"Name":"AWS-X"},"InstanceIds":null}`, Limits{}, "InstanceIds", "required in a fan-out request"},
		{"instance ids empty", `{"Association":{"Name":"AWS-X"},"InstanceIds":[]}`, Limits{}, "InstanceIds", "at least 1 node ID"},
		{"instance ids string", `{"Association":{"Name":"AWS-X"},"InstanceIds":"` + node1 + `"}`, Limits{}, "InstanceIds", "expected an array of strings, got string"},
		{"instance id number", `{"Association":{"Name":"AWS-X"},"InstanceIds":["` + node1 + `",5]}`, Limits{}, "InstanceIds[1]", "expected a string, got number"},
		{"too many instance ids", `{"Association":{"Name":"AWS-X"},"InstanceIds":["` + node1 + `","` + node2 + `"]}`, Limits{MaxEntries: 1}, "InstanceIds", "at most 1 instance IDs per request"},
		{"bad role", `{"Association":{"Name":"AWS-X"},"InstanceIds":["` + node1 + `"],"AssociationDispatchAssumeRole":"nope"}`, Limits{}, "AssociationDispatchAssumeRole", "must match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body), tt.lim)
			re := rejection(t, err, http.StatusBadRequest)
			if !hasProblem(re.Errors, tt.path, tt.fragment) {
				t.Fatalf("want %s: …%s…, got %v", tt.path, tt.fragment, re.Errors)
			}
		})
	}
}

func TestFanOutLarge(t *testing.T) {
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = `"i-12345678"`
	}
	body := `{"Association":{"Name":"AWS-X"},"InstanceIds":[` + strings.Join(ids, ",") + `]}`
	req, err := Parse([]byte(body), Limits{MaxEntries: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Items) != 5000 {
		t.Fatalf("%d items", len(req.Items))
	}
}
