package request

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Entries with the same Parameters share one decoded map; the sharing must
// not be visible: each entry reads its own values, redacting one leaves
// the others alone, and a bad Parameters is reported at every entry.
func TestRepeatedParametersAreSharedSafely(t *testing.T) {
	body := []byte(`{"Entries":[
		{"Name":"AWS-RunShellScript","InstanceId":"i-00000001","Parameters":{"commands":["uptime"]}},
		{"Name":"AWS-RunShellScript","InstanceId":"i-00000002","Parameters":{"commands":["uptime"]}},
		{"Name":"AWS-RunShellScript","InstanceId":"i-00000003","Parameters":{"commands":["whoami"]}},
		{"Name":"AWS-RunShellScript","InstanceId":"i-00000004","Parameters":{"commands":["uptime"]}}
	]}`)
	req, err := Parse(body, Limits{MaxEntries: 10})
	if err != nil {
		t.Fatal(err)
	}
	params := func(i int) map[string][]string { return req.Items[i].Entry.Parameters }
	same := func(a, b int) bool {
		return reflect.ValueOf(params(a)).UnsafePointer() == reflect.ValueOf(params(b)).UnsafePointer()
	}
	if !same(0, 1) {
		t.Error("entries 0 and 1 have the same Parameters but two maps")
	}
	if same(1, 2) || !slices.Equal(params(2)["commands"], []string{"whoami"}) {
		t.Errorf("entry 2 reads %v, want its own [whoami]", params(2))
	}
	if same(1, 3) || !slices.Equal(params(3)["commands"], []string{"uptime"}) {
		t.Errorf("entry 3 after a different one reads %v", params(3))
	}
	_ = req.Items[0].Entry.Redacted()
	if !slices.Equal(params(1)["commands"], []string{"uptime"}) {
		t.Errorf("redacting entry 0 changed entry 1: %v", params(1))
	}

	// The same bad Parameters twice: each entry's problem is reported.
	_, err = Parse([]byte(`{"Entries":[
		{"Name":"AWS-RunShellScript","InstanceId":"i-00000001","Parameters":{"commands":"uptime"}},
		{"Name":"AWS-RunShellScript","InstanceId":"i-00000002","Parameters":{"commands":"uptime"}}
	]}`), Limits{MaxEntries: 10})
	for _, path := range []string{"Entries[0].Parameters.commands", "Entries[1].Parameters.commands"} {
		if err == nil || !strings.Contains(err.Error(), path+": expected an array of strings") {
			t.Errorf("error %v does not name %s", err, path)
		}
	}
}
