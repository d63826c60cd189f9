// Command demo runs the real function, built and started under the AWS
// Lambda Runtime Interface Emulator, against the project's SSM emulator and
// DynamoDB Local, and prints what happened to every entry of a request:
// twice, to show that the second run sends nothing.
//
// The request is cmd/demo/request.json unless -request names another file,
// which holds what a direct invoke's payload would (either request shape, an
// EventBridge event, an API Gateway event: `make demo ARGS="-request
// events/update.json"`).
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

//go:embed request.json
var sampleRequest []byte

func main() {
	faults := flag.Float64("entry-fault-rate", 0.2, "share of entries the SSM emulator fails with Fault Server")
	rate := flag.Float64("ssm-rate", 4, "calls per second the SSM emulator accepts before it throttles")
	reqFile := flag.String("request", "", "file with the payload of a direct invoke to send instead of cmd/demo/request.json (a request of either shape, or an event from events/)")
	flag.Parse()
	if err := run(*faults, *rate, *reqFile); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(faultRate, ssmRate float64, reqFile string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	body, source := sampleRequest, "cmd/demo/request.json (built in)"
	if reqFile != "" {
		b, err := os.ReadFile(reqFile)
		if err != nil {
			return err
		}
		body, source = b, reqFile
	}
	root, err := testinfra.ProjectRoot()
	if err != nil {
		return err
	}
	out := filepath.Join(root, "build", "demo")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	step("starting DynamoDB Local")
	ddb, err := testinfra.StartDynamoDBLocal(ctx)
	if err != nil {
		return fmt.Errorf("DynamoDB Local: %w", err)
	}
	defer ddb.Close()
	const table = "ssm-association-batcher-dedupe"
	client := dynamodb.New(dynamodb.Options{
		Region:                          "us-east-1",
		BaseEndpoint:                    aws.String(ddb.Endpoint()),
		Credentials:                     credentials.NewStaticCredentialsProvider("local", "local", ""),
		DisableValidateResponseChecksum: true,
	})
	if _, err := client.CreateTable(ctx, dedupe.TableDefinition(table)); err != nil {
		return fmt.Errorf("create table: %w", err)
	}

	step(fmt.Sprintf("request: %s", source))
	step(fmt.Sprintf("starting the SSM emulator (%.0f%% entry faults, throttling above %.0f calls/s, the answer of the first call lost after SSM executed it)", faultRate*100, ssmRate))
	opts := ssmlocal.DefaultOptions()
	opts.EntryFaultRate, opts.Rate, opts.Burst, opts.Seed = faultRate, ssmRate, 1, 42
	opts.Latency, opts.Jitter = 20*time.Millisecond, 30*time.Millisecond
	emu := ssmlocal.New(opts)
	emu.DropAfterCreate(1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	ssmURL := "http://" + ln.Addr().String()

	step("building the function (functions/associate) and starting it under aws-lambda-rie")
	bootstrap := filepath.Join(out, "bootstrap")
	build := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", bootstrap, "./functions/associate")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	logPath := filepath.Join(out, "function.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// The sample runs a command document and targets a tag: both are
	// opt-in (ALLOWED_DOCUMENTS, ALLOWED_TARGET_KEYS), as a deployer opts in.
	settings := []string{"BATCH_SIZE=4", "CALLS_PER_SECOND=5", "MAX_CONCURRENCY=3", "RECONCILE_DELAY=200ms",
		"ALLOWED_DOCUMENTS=AWS-UpdateSSMAgent,AWS-GatherSoftwareInventory,AWS-RunShellScript", "ALLOWED_TARGET_KEYS=InstanceIds,tag:*"}
	step(fmt.Sprintf("function settings: %v (the rest at their defaults, see the README)", settings))
	rie, err := testinfra.StartRIE(ctx, bootstrap, append([]string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_SSM=" + ssmURL, "AWS_ENDPOINT_URL_DYNAMODB=" + ddb.Endpoint(),
		"DEDUPE_TABLE=" + table, "AWS_LAMBDA_LOG_FORMAT=JSON", "AWS_LAMBDA_FUNCTION_TIMEOUT=120",
	}, settings...), testinfra.WithOutput(logFile))
	if err != nil {
		return fmt.Errorf("runtime interface emulator: %w", err)
	}
	defer rie.Close()

	for i, title := range []string{"first run", "second run of the same request"} {
		before := emu.Stats()
		start := time.Now()
		answer, err := rie.Invoke(ctx, body)
		if err != nil {
			return fmt.Errorf("invoke: %w", err)
		}
		took := time.Since(start)
		after := emu.Stats()
		if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("outcome-%d.json", i+1)), answer, 0o644); err != nil {
			return err
		}
		// Counted by the emulator, so in SSM's terms: every attempt, the
		// throttled ones included. The Summary below counts the function's
		// calls, and an attempt the SDK retried after a throttle belongs
		// to the same call.
		creates := after.Operations["CreateAssociationBatch"] - before.Operations["CreateAssociationBatch"]
		reads := after.Operations["ListAssociations"] + after.Operations["DescribeAssociation"] -
			before.Operations["ListAssociations"] - before.Operations["DescribeAssociation"]
		step(fmt.Sprintf("%s: %s. SSM saw %d CreateAssociationBatch attempts and %d reads, %d of them throttled; %d entries failed by injected faults. "+
			"(Summary.Calls counts the function's calls: a call retried by the SDK after a throttle is one call of several attempts.)",
			title, took.Round(time.Millisecond), creates, reads, after.ThrottledCalls-before.ThrottledCalls,
			after.EntriesFailedByInjection-before.EntriesFailedByInjection))
		if err := printOutcome(answer); err != nil {
			return err
		}
	}
	st := emu.Stats()
	step(fmt.Sprintf("SSM emulator in total: %d associations created, %d answers lost after executing, %d refused as already existing, %d created twice",
		st.AssociationsCreated, st.DroppedConnections, st.DuplicatesRefused, st.DoubleAssociations))
	fmt.Printf("\nfull answers: %s/outcome-*.json; function logs: %s\n", out, logPath)
	return nil
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }

func printOutcome(answer []byte) error {
	var res report.Result
	if err := json.Unmarshal(answer, &res); err != nil || res.Summary.Requested == 0 {
		var lerr struct{ ErrorMessage, ErrorType string }
		if json.Unmarshal(answer, &lerr) == nil && lerr.ErrorMessage != "" {
			return errors.New("the function returned an error: " + lerr.ErrorType + ": " + lerr.ErrorMessage)
		}
		return fmt.Errorf("unexpected answer %s", answer)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "OUTCOME\tDOCUMENT\tTARGET\tDETAIL")
	for _, a := range res.Successful {
		fmt.Fprintf(w, "Successful\t%s\t%s\tAssociationId %s\n", a.Name, targetOf(a.InstanceId, a.Targets), a.AssociationId)
	}
	for _, d := range res.Deduplicated {
		detail := d.Reason
		if d.AssociationId != "" {
			detail += " (" + d.AssociationId + ")"
		}
		fmt.Fprintf(w, "Deduplicated\t%s\t%s\t%s\n", d.Entry.Name, targetOf(aws.ToString(d.Entry.InstanceId), d.Entry.Targets), detail)
	}
	for _, f := range res.Failed {
		fmt.Fprintf(w, "Failed (%s)\t%s\t%s\t%s [attempts %d]\n", f.Fault, f.Entry.Name, targetOf(aws.ToString(f.Entry.InstanceId), f.Entry.Targets), f.Message, f.Attempts)
	}
	for _, u := range res.Unprocessed {
		fmt.Fprintf(w, "Unprocessed\t%s\t%s\t%s\n", u.Entry.Name, targetOf(aws.ToString(u.Entry.InstanceId), u.Entry.Targets), u.Reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	s, _ := json.Marshal(res.Summary)
	fmt.Printf("Summary: %s\n", s)
	fmt.Println("(One row per outcome: an entry created for several nodes at once is one Successful row, and one row per node otherwise; Requested counts the request's entries.)")
	return nil
}

func targetOf(instanceID string, targets []request.Target) string {
	if instanceID != "" {
		return instanceID
	}
	if len(targets) == 0 {
		return "-"
	}
	b, _ := json.Marshal(targets)
	return string(b)
}
