package reliability_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// ddb is the DynamoDB Local shared by every test of this binary; each test
// gets its own table.
var ddb *testinfra.DynamoDB

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(func() int {
		if !testing.Short() && testinfra.CheckTools(testinfra.ToolDynamoDBLocal, testinfra.ToolJava) == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var err error
			if ddb, err = testinfra.StartDynamoDBLocal(ctx); err != nil {
				fmt.Fprintln(os.Stderr, "DynamoDB Local:", err)
				return 1
			}
			defer ddb.Close()
		}
		defer func() {
			if bootstrapDir != "" {
				os.RemoveAll(bootstrapDir)
			}
		}()
		return m.Run()
	}())
}

// soak reports whether the larger sizes were asked for (make soak).
func soak() bool { return os.Getenv("SOAK") == "1" }

// size picks the quick size for make test, or the soak size.
func size(quick, large int) int {
	if soak() {
		return large
	}
	return quick
}

// needServices fails (not skips) the test when the local services are
// missing, and skips it under -short.
func needServices(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("reliability test: needs DynamoDB Local (and the RIE for some)")
	}
	testinfra.RequireTools(t, append([]string{testinfra.ToolDynamoDBLocal, testinfra.ToolJava}, tools...)...)
	if ddb == nil {
		t.Fatal("DynamoDB Local did not start in TestMain")
	}
}

var (
	bootstrapOnce sync.Once
	bootstrapPath string
	bootstrapErr  error
	bootstrapDir  string
)

// bootstrap builds ./functions/associate once per test binary, as sam build
// does (CGO off, -tags lambda.norpc), for this machine.
func bootstrap(t *testing.T) string {
	t.Helper()
	testinfra.RequireTools(t, testinfra.ToolRIE, testinfra.ToolGo)
	bootstrapOnce.Do(func() {
		dir, err := os.MkdirTemp("", "reliability-bootstrap-")
		if err != nil {
			bootstrapErr = err
			return
		}
		bootstrapDir = dir
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		bootstrapPath, bootstrapErr = testinfra.BuildBootstrap(ctx, "./functions/associate", dir)
	})
	if bootstrapErr != nil {
		t.Fatalf("build the bootstrap: %v", bootstrapErr)
	}
	return bootstrapPath
}
