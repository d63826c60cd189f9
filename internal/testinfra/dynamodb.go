package testinfra

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Local credentials and Region. DynamoDB Local checks neither (and -sharedDb
// keeps one set of tables for every key and Region); they only have to be
// well-formed.
const (
	LocalRegion          = "us-east-1"
	LocalAccessKeyID     = "AKIDLOCALTESTINFRA"
	LocalSecretAccessKey = "local-secret-access-key"
)

// DynamoDB is a running DynamoDB Local, in memory, on 127.0.0.1.
type DynamoDB struct {
	proc     *process
	endpoint string
	port     int
}

// StartDynamoDBLocal runs DynamoDB Local from .tools/dynamodb-local on a free
// 127.0.0.1 port (in memory, -sharedDb, telemetry off) and returns once it
// answers ListTables, typically after about 3 s. Close it when done.
func StartDynamoDBLocal(ctx context.Context, opts ...Option) (*DynamoDB, error) {
	o := buildOptions(opts)
	if o.startTimeout == 0 {
		o.startTimeout = 60 * time.Second
	}
	dir, err := DynamoDBLocalDir()
	if err != nil {
		return nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("testinfra: java is not on PATH (DynamoDB Local needs Java 17): %s", installHint)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before the JVM binds it
		port, err := o.port, error(nil)
		if port == 0 {
			port, err = freePort()
		} else if attempt > 0 {
			break // the port asked for is taken
		}
		if err != nil {
			return nil, fmt.Errorf("testinfra: free port: %w", err)
		}
		cmd := exec.Command(java,
			"-Djava.library.path=./DynamoDBLocal_lib",
			"-Xmx1g",
			"-jar", "DynamoDBLocal.jar",
			"-inMemory", "-sharedDb", "-port", strconv.Itoa(port), "-disableTelemetry")
		cmd.Dir = dir
		proc, err := startProcess(cmd, &logBuffer{copy: o.output})
		if err != nil {
			return nil, fmt.Errorf("testinfra: start DynamoDB Local: %w", err)
		}
		d := &DynamoDB{proc: proc, port: port, endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
		// One attempt per poll: the SDK's own retries back off for seconds.
		client := d.Client(func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
		err = waitFor(ctx, proc, o.startTimeout, "DynamoDB Local", func(ctx context.Context) error {
			_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
			return err
		})
		if err == nil {
			return d, nil
		}
		_ = d.Close()
		lastErr = err
		if !errors.Is(err, errExited) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// Endpoint is the URL to send DynamoDB requests to: "http://127.0.0.1:PORT".
func (d *DynamoDB) Endpoint() string { return d.endpoint }

// Port is the TCP port DynamoDB Local listens on.
func (d *DynamoDB) Port() int { return d.port }

// Client returns a DynamoDB client for this instance: static local
// credentials, LocalRegion, no response checksum validation (DynamoDB Local's
// error responses would make the SDK warn on every one), and the SDK's
// standard retries.
func (d *DynamoDB) Client(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	fns := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(d.endpoint)
		o.DisableValidateResponseChecksum = true
	}}, optFns...)
	return dynamodb.New(dynamodb.Options{
		Region:      LocalRegion,
		Credentials: credentials.NewStaticCredentialsProvider(LocalAccessKeyID, LocalSecretAccessKey, ""),
	}, fns...)
}

// Env returns the environment variables that point an AWS SDK in another
// process (the function under the emulator, a demo) at this instance:
// AWS_ENDPOINT_URL_DYNAMODB, static credentials, the Region, and no instance
// metadata lookups.
func (d *DynamoDB) Env() []string {
	return append(LocalAWSEnv(), "AWS_ENDPOINT_URL_DYNAMODB="+d.endpoint)
}

// LocalAWSEnv is the environment that keeps an AWS SDK local: static
// credentials, LocalRegion, and no EC2 instance metadata lookups (which would
// otherwise leave the machine).
func LocalAWSEnv() []string {
	return []string{
		"AWS_REGION=" + LocalRegion,
		"AWS_DEFAULT_REGION=" + LocalRegion,
		"AWS_ACCESS_KEY_ID=" + LocalAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + LocalSecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Logs returns what DynamoDB Local printed (the last 4 MiB).
func (d *DynamoDB) Logs() string { return d.proc.logs.String() }

// Close kills the JVM's process group and waits for it; no orphans are left.
// It is safe to call more than once.
func (d *DynamoDB) Close() error {
	// DynamoDB Local runs in memory: nothing to flush, so no grace period.
	return d.proc.stop(0)
}
