package event_test

import (
	"fmt"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/event"
)

func ExampleDecode() {
	payload := []byte(`{
		"version": "2.0", "routeKey": "POST /associations", "rawPath": "/associations",
		"requestContext": {"requestId": "abc-123", "http": {"method": "POST", "path": "/associations"}},
		"body": "eyJFbnRyaWVzIjpbXX0=", "isBase64Encoded": true
	}`)
	inv, err := event.Decode(payload)
	fmt.Println(inv.Source, inv.IsAPI(), inv.RequestID, string(inv.Body), err)
	// Output:
	// api-http true abc-123 {"Entries":[]} <nil>
}
