package testinfra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// InvokePath is the emulator's invoke route (the Lambda Invoke API's).
const InvokePath = "/2015-03-31/functions/function/invocations"

// RIE is a built bootstrap running under the AWS Lambda Runtime Interface
// Emulator, on free 127.0.0.1 ports.
type RIE struct {
	proc       *process
	addr       string // emulator (invoke) address
	runtimeAPI string // Lambda Runtime API address the function talks to
	client     *http.Client
}

// StartRIE runs bootstrap under aws-lambda-rie with
// --runtime-interface-emulator-address and --runtime-api-address on free
// 127.0.0.1 ports, and returns once the emulator accepts connections. The
// function process starts at the first invocation, as in Lambda.
//
// The emulator and the function see a small environment, not the test's:
// PATH, HOME and TMPDIR, LocalAWSEnv (static credentials, Region, no instance
// metadata), then env, whose entries win. Set AWS_LAMBDA_FUNCTION_TIMEOUT in
// env, or use WithFunctionTimeout, to bound each invocation (the emulator's
// default is 300 s). The function's working directory is bootstrap's folder.
func StartRIE(ctx context.Context, bootstrap string, env []string, opts ...Option) (*RIE, error) {
	o := buildOptions(opts)
	if o.startTimeout == 0 {
		o.startTimeout = 10 * time.Second
	}
	rie, err := RIEPath()
	if err != nil {
		return nil, err
	}
	bootstrap, err = filepath.Abs(bootstrap)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bootstrap); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("testinfra: bootstrap %s: not a file", bootstrap)
	}
	fullEnv := baseEnv()
	if o.functionTimeout > 0 {
		secs := int(math.Ceil(o.functionTimeout.Seconds()))
		fullEnv = append(fullEnv, "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(secs))
	}
	fullEnv = mergeEnv(fullEnv, env)

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before the emulator binds it
		p1, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("testinfra: free port: %w", err)
		}
		p2, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("testinfra: free port: %w", err)
		}
		if p1 == p2 {
			continue
		}
		r := &RIE{
			addr:       "127.0.0.1:" + strconv.Itoa(p1),
			runtimeAPI: "127.0.0.1:" + strconv.Itoa(p2),
			client:     &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
		}
		cmd := exec.Command(rie,
			"--runtime-interface-emulator-address", r.addr,
			"--runtime-api-address", r.runtimeAPI,
			bootstrap)
		cmd.Dir = filepath.Dir(bootstrap)
		cmd.Env = fullEnv
		r.proc, err = startProcess(cmd, &logBuffer{copy: o.output})
		if err != nil {
			return nil, fmt.Errorf("testinfra: start aws-lambda-rie: %w", err)
		}
		err = waitFor(ctx, r.proc, o.startTimeout, "aws-lambda-rie", func(ctx context.Context) error {
			if err := dialable(r.addr)(ctx); err != nil {
				return err
			}
			return dialable(r.runtimeAPI)(ctx)
		})
		if err == nil {
			return r, nil
		}
		_ = r.Close()
		lastErr = err
		if !errors.Is(err, errExited) || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, LocalAWSEnv()...)
}

// mergeEnv appends over to base; a later KEY= replaces an earlier one.
func mergeEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	index := map[string]int{}
	for _, kv := range append(append([]string(nil), base...), over...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// URL is the emulator's invoke URL.
func (r *RIE) URL() string { return "http://" + r.addr + InvokePath }

// Addr is the emulator's host:port.
func (r *RIE) Addr() string { return r.addr }

// RuntimeAPIAddr is the Lambda Runtime API's host:port (AWS_LAMBDA_RUNTIME_API
// as the function sees it).
func (r *RIE) RuntimeAPIAddr() string { return r.runtimeAPI }

// Invoke POSTs payload to the emulator's invoke route and returns the
// response body. A handler error also comes back as HTTP 200, with a body of
// {"errorMessage": …, "errorType": …}: check the body. A status other than 200
// returns the body with an error.
func (r *RIE) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL(), bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("testinfra: invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return body, fmt.Errorf("testinfra: invoke: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("testinfra: invoke: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// Logs returns what the emulator and the function printed (the last 4 MiB).
func (r *RIE) Logs() string { return r.proc.logs.String() }

// Close stops the emulator and the function: SIGTERM to both process groups,
// SIGKILL after 2 s. It is safe to call more than once, and after Kill.
func (r *RIE) Close() error { return r.proc.stop(2 * time.Second) }

// Kill SIGKILLs the emulator and the function process at once, with no chance
// to clean up, as when a Lambda execution environment dies mid-invocation.
func (r *RIE) Kill() error { return r.proc.stop(0) }
