package ssmlocal

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// post sends a raw awsJson1.1 request.
func post(t *testing.T, url, target, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("response %q is not JSON: %v", b, err)
		}
	}
	return resp, m
}

// TestWireErrors covers the protocol-level errors, which the SDK cannot
// produce: unknown targets, malformed JSON, missing required members, and
// oversized bodies.
func TestWireErrors(t *testing.T) {
	tests := []struct {
		name, target, body string
		status             int
		code, msgPart      string
	}{
		{"unknown operation", "AmazonSSM.GetParameter", "{}", 400, "UnknownOperationException", ""},
		{"no target", "", "{}", 400, "UnknownOperationException", ""},
		{"wrong prefix", "AmazonEC2.CreateAssociationBatch", "{}", 400, "UnknownOperationException", ""},
		{"malformed json", "AmazonSSM.CreateAssociationBatch", `{"Entries": [`, 400, "SerializationException", ""},
		{"wrong type", "AmazonSSM.CreateAssociationBatch", `{"Entries": "x"}`, 400, "SerializationException", ""},
		{"wrong member type", "AmazonSSM.CreateAssociationBatch", `{"Entries": [{"Name": "AWS-RunShellScript", "ScheduleOffset": "2"}]}`, 400, "SerializationException", ""},
		{"trailing data", "AmazonSSM.ListAssociations", `{} {}`, 400, "SerializationException", ""},
		{"entries missing", "AmazonSSM.CreateAssociationBatch", `{}`, 400, "ValidationException", "Value null at 'entries' failed to satisfy constraint: Member must not be null"},
		{"name missing", "AmazonSSM.CreateAssociationBatch", `{"Entries": [{"InstanceId": "i-12345678"}]}`, 400, "ValidationException", "Value null at 'entries.1.member.name' failed to satisfy constraint: Member must not be null"},
		{"alarms missing", "AmazonSSM.CreateAssociationBatch", `{"Entries": [{"Name": "AWS-RunShellScript", "AlarmConfiguration": {}}]}`, 400, "ValidationException", "at 'entries.1.member.alarmConfiguration.alarms'"},
		{"alarm name missing", "AmazonSSM.CreateAssociationBatch", `{"Entries": [{"Name": "AWS-RunShellScript", "AlarmConfiguration": {"Alarms": [{}]}}]}`, 400, "ValidationException", "at 'entries.1.member.alarmConfiguration.alarms.1.member.name'"},
		{"filter value missing", "AmazonSSM.ListAssociations", `{"AssociationFilterList": [{"key": "Name"}]}`, 400, "ValidationException", "Value null at 'associationFilterList.1.member.value'"},
		{"tag value missing", "AmazonSSM.CreateAssociation", `{"Name": "AWS-RunShellScript", "Tags": [{"Key": "k"}]}`, 400, "ValidationException", "Value null at 'tags.1.member.value'"},
		{"bad next token", "AmazonSSM.ListAssociations", `{"NextToken": "garbage"}`, 400, "InvalidNextToken", ""},
	}
	_, _, url := newEnv(t, DefaultOptions())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, m := post(t, url, tt.target, tt.body)
			if resp.StatusCode != tt.status || resp.Header.Get("X-Amzn-ErrorType") != tt.code || m["__type"] != tt.code {
				t.Fatalf("got %d %q %v, want %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), m, tt.status, tt.code)
			}
			msg, _ := m["message"].(string)
			if msg == "" || !strings.Contains(msg, tt.msgPart) {
				t.Fatalf("message %q, want it to contain %q", msg, tt.msgPart)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	_, _, url := newEnv(t, Options{MaxBodyBytes: 1024})
	resp, m := post(t, url, "AmazonSSM.CreateAssociationBatch", `{"Entries": [{"Name": "`+rep("a", 2000)+`"}]}`)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || m["__type"] != "SerializationException" {
		t.Fatalf("got %d %v", resp.StatusCode, m)
	}
}

// TestModeledErrorCarriesMessage: modeled exceptions with a Message member
// get "Message" too, so the SDK's typed error has the text.
func TestModeledErrorCarriesMessage(t *testing.T) {
	_, _, url := newEnv(t, DefaultOptions())
	resp, m := post(t, url, "AmazonSSM.DescribeAssociation", `{"AssociationId": "`+newUUID()+`"}`)
	if resp.StatusCode != 400 || m["__type"] != "AssociationDoesNotExist" || m["Message"] == nil || m["message"] == nil {
		t.Fatalf("got %d %v", resp.StatusCode, m)
	}
}

// TestSeedSampleShape sends the API reference's sample request as raw JSON
// and checks the response has the sample's shape: timestamps are epoch
// numbers, Failed is an empty list, InstanceId comes back as a target too.
func TestSeedSampleShape(t *testing.T) {
	_, _, url := newEnv(t, DefaultOptions())
	before := float64(time.Now().Add(-time.Minute).Unix())
	resp, m := post(t, url, "AmazonSSM.CreateAssociationBatch",
		`{ "Entries": [ { "InstanceId": "i-0471e04240EXAMPLE", "Name": "AWS-UpdateSSMAgent" }, { "InstanceId": "i-07782c72faEXAMPLE", "Name": "AWS-UpdateSSMAgent" } ] }`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if failed, ok := m["Failed"].([]any); !ok || len(failed) != 0 {
		t.Fatalf("Failed = %#v, want []", m["Failed"])
	}
	succ, _ := m["Successful"].([]any)
	if len(succ) != 2 {
		t.Fatalf("Successful = %v", m["Successful"])
	}
	for i, id := range []string{"i-0471e04240EXAMPLE", "i-07782c72faEXAMPLE"} {
		d := succ[i].(map[string]any)
		for _, k := range []string{"Date", "LastUpdateAssociationDate"} {
			if v, ok := d[k].(float64); !ok || v < before {
				t.Fatalf("%s = %#v, want an epoch number", k, d[k])
			}
		}
		status := d["Status"].(map[string]any)
		if _, ok := status["Date"].(float64); !ok || status["Name"] != "Associated" || status["Message"] != "Associated with AWS-UpdateSSMAgent" {
			t.Fatalf("Status = %v", status)
		}
		ov := d["Overview"].(map[string]any)
		if ov["Status"] != "Pending" || ov["DetailedStatus"] != "Creating" {
			t.Fatalf("Overview = %v", ov)
		}
		if d["InstanceId"] != id || d["Name"] != "AWS-UpdateSSMAgent" || d["AssociationVersion"] != "1" || d["DocumentVersion"] != "$DEFAULT" || d["ApplyOnlyAtCronInterval"] != false {
			t.Fatalf("description = %v", d)
		}
		if !patAssociationID.matches(d["AssociationId"].(string)) {
			t.Fatalf("AssociationId %v is not a UUID", d["AssociationId"])
		}
		tg := d["Targets"].([]any)[0].(map[string]any)
		if tg["Key"] != "InstanceIds" || tg["Values"].([]any)[0] != id {
			t.Fatalf("Targets = %v", d["Targets"])
		}
	}
}

func TestSDKDecodesResponse(t *testing.T) {
	_, c, _ := newEnv(t, DefaultOptions())
	out, err := batch(t, c, legacy("AWS-UpdateSSMAgent", "i-0471e04240EXAMPLE"))
	if err != nil {
		t.Fatal(err)
	}
	d := out.Successful[0]
	if d.Date == nil || time.Since(*d.Date) > time.Minute || d.Status == nil || d.Status.Name != "Associated" || aws.ToString(d.InstanceId) != "i-0471e04240EXAMPLE" {
		t.Fatalf("decoded %+v", d)
	}
}

func TestNonAPIPaths(t *testing.T) {
	_, _, url := newEnv(t, DefaultOptions())
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	resp, err = http.Get(url + "/_ssm-local/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /_ssm-local/nothing = %d", resp.StatusCode)
	}
}
