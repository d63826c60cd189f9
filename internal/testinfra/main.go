package testinfra

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// MainWithDynamoDB is the body of a TestMain whose integration tests share
// one DynamoDB Local: it starts it into *db, runs the tests, and stops it.
// Under -short, or when DynamoDB Local is not installed, *db stays nil and
// the tests are expected to skip (-short) or fail through RequireTools.
func MainWithDynamoDB(m *testing.M, db **DynamoDB) int {
	flag.Parse()
	if !testing.Short() && CheckTools(ToolDynamoDBLocal) == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		d, err := StartDynamoDBLocal(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "DynamoDB Local:", err)
			return 1
		}
		defer d.Close()
		*db = d
	}
	return m.Run()
}
