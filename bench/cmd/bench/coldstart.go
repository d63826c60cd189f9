package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/testinfra"
)

// ColdStart is the real bootstrap's start under the Runtime Interface
// Emulator, and the binary's size.
type ColdStart struct {
	Runs int `json:"runs"`
	// FirstResponseMs: from the first Invoke (which starts the function
	// process, as Lambda does) to its response, for a one-node request that
	// claims in DynamoDB Local and calls the SSM emulator.
	FirstResponseMs []float64 `json:"firstResponseMs"`
	MedianMs        float64   `json:"medianMs"`
	// WarmMs: the second invocation of the same process, same work.
	WarmMs       []float64 `json:"warmMs"`
	WarmMedianMs float64   `json:"warmMedianMs"`
	// InitDurationMs: what the emulator's REPORT line says of init, when
	// it says it.
	InitDurationMs []float64 `json:"initDurationMs,omitempty"`

	HostBinary    string  `json:"hostBinary"`
	HostSizeMiB   float64 `json:"hostSizeMiB"`
	Arm64Binary   string  `json:"arm64Binary"`
	Arm64SizeMiB  float64 `json:"arm64SizeMiB"`
	Arm64Bytes    int64   `json:"arm64Bytes"`
	BuildCommand  string  `json:"buildCommand"`
	RIEIncluded   string  `json:"note"`
	HostArch      string  `json:"hostArch"`
	InvokePayload string  `json:"invokePayload"`
}

// lambdaBuild builds ./functions/associate as the Makefile's LAMBDA_BUILD
// does (CGO off, -tags lambda.norpc, -trimpath, -ldflags="-s -w").
func lambdaBuild(ctx context.Context, root, goarch, out string) (int64, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, "./functions/associate")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build (%s): %w\n%s", goarch, err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

var initDuration = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)

func measureColdStart(ctx context.Context, root string, b *bench, runs int) (ColdStart, error) {
	cs := ColdStart{Runs: runs, HostArch: runtime.GOARCH,
		BuildCommand: `GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags="-s -w" ./functions/associate (make build)`,
		RIEIncluded:  "the time includes the emulator's own invoke handling; the function runs on this machine's architecture (the arm64 build cannot run here)",
	}
	arm := filepath.Join(root, "build", "associate", "bootstrap")
	size, err := lambdaBuild(ctx, root, "arm64", arm)
	if err != nil {
		return cs, err
	}
	cs.Arm64Binary, cs.Arm64Bytes, cs.Arm64SizeMiB = "build/associate/bootstrap", size, mb(size)
	host := filepath.Join(root, "build", "bench", "bootstrap")
	if size, err = lambdaBuild(ctx, root, runtime.GOARCH, host); err != nil {
		return cs, err
	}
	cs.HostBinary, cs.HostSizeMiB = "build/bench/bootstrap", mb(size)

	// A quiet emulator of its own: no rate limit, latency or faults.
	emu := httptest.NewServer(ssmlocal.New(ssmlocal.Options{}))
	defer emu.Close()
	dcfg := b.cfg.Copy()
	dcfg.BaseEndpoint = aws.String(b.ddb.Endpoint())
	const table = "bench-coldstart"
	if _, err := awsclient.DynamoDB(dcfg).CreateTable(ctx, dedupe.TableDefinition(table)); err != nil {
		return cs, fmt.Errorf("create table: %w", err)
	}
	env := []string{
		"AWS_ENDPOINT_URL_SSM=" + emu.URL, "AWS_ENDPOINT_URL_DYNAMODB=" + b.ddb.Endpoint(),
		"DEDUPE_TABLE=" + table, "AWS_LAMBDA_FUNCTION_TIMEOUT=60", "AWS_LAMBDA_LOG_LEVEL=WARN",
	}
	node := 0
	payload := func() []byte {
		node++
		return fmt.Appendf(nil, `{"Association":{"Name":%q},"InstanceIds":[%q]}`, document, nodeID(1_000_000+node))
	}
	cs.InvokePayload = `{"Association":{"Name":"AWS-UpdateSSMAgent"},"InstanceIds":["i-…"]} (direct invocation)`
	invoke := func(rie *testinfra.RIE) (float64, error) {
		t0 := time.Now()
		ans, err := rie.Invoke(ctx, payload())
		ms := float64(time.Since(t0).Microseconds()) / 1000
		if err != nil {
			return 0, err
		}
		if bytes.Contains(ans, []byte(`"errorMessage"`)) || !bytes.Contains(ans, []byte(`"Successful":[{`)) {
			return 0, fmt.Errorf("unexpected answer: %.300s", ans)
		}
		return round(ms, 1), nil
	}
	for range runs {
		rie, err := testinfra.StartRIE(ctx, host, env)
		if err != nil {
			return cs, err
		}
		cold, err := invoke(rie)
		if err == nil {
			var warm float64
			if warm, err = invoke(rie); err == nil {
				cs.FirstResponseMs = append(cs.FirstResponseMs, cold)
				cs.WarmMs = append(cs.WarmMs, warm)
			}
		}
		if m := initDuration.FindStringSubmatch(rie.Logs()); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			cs.InitDurationMs = append(cs.InitDurationMs, v)
		}
		rie.Close()
		if err != nil {
			return cs, fmt.Errorf("invoke: %w\n%s", err, rie.Logs())
		}
	}
	cs.MedianMs = round(median(cs.FirstResponseMs), 1)
	cs.WarmMedianMs = round(median(cs.WarmMs), 1)
	return cs, nil
}
