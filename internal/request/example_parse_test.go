package request_test

import (
	"fmt"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func ExampleParse() {
	body := []byte(`{
		"Entries": [
			{"Name": "AWS-UpdateSSMAgent", "InstanceId": "i-0471e04240abcdef0"},
			{"Name": "AWS-UpdateSSMAgent", "InstanceId": "i-0471e04240abcdef0", "ScheduleExpression": "rate(1 day)"},
			{"Name": "AWS-RunShellScript", "Targets": [{"Key": "InstanceIds", "Values": ["i-12345678"]}],
			 "ScheduleExpression": "rate(15 minutes)", "Parameters": {"commands": ["uptime"]}}
		]
	}`)
	req, err := request.Parse(body, request.Limits{MaxEntries: 1000})
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	for _, it := range req.Items {
		if it.Valid() {
			fmt.Println(it.Path, "ok:", it.Entry.Nodes())
			continue
		}
		for _, p := range it.Problems {
			fmt.Println(it.Path, "failed:", p)
		}
	}
	// Output:
	// Entries[0] ok: [i-0471e04240abcdef0]
	// Entries[1] failed: Entries[1].ScheduleExpression: not allowed together with InstanceId
	// Entries[2] failed: Entries[2].ScheduleExpression: rate must be at least 30 minutes
}

func ExampleParse_fanOut() {
	body := []byte(`{
		"Association": {"Name": "AWS-RunPatchBaseline", "Parameters": {"Operation": ["Scan"]}},
		"InstanceIds": ["i-12345678", "mi-0123456789abcdef0", "i-typo"]
	}`)
	req, err := request.Parse(body, request.Limits{MaxEntries: 1000})
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	for _, it := range req.Items {
		fmt.Println(it.Path, it.Entry.Targets[0].Values, it.Problems)
	}
	// Output:
	// InstanceIds[0] [i-12345678] []
	// InstanceIds[1] [mi-0123456789abcdef0] []
	// InstanceIds[2] [i-typo] [InstanceIds[2]: must match (^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)]
}

func ExampleParse_rejected() {
	_, err := request.Parse([]byte(`{"Entries":[{"Name":"AWS-X","InstanceID":"i-12345678"}]}`), request.Limits{})
	fmt.Println(err)
	// Output:
	// invalid request: Entries[0].InstanceID: unknown member; member names are case-sensitive, did you mean "InstanceId"?
}
