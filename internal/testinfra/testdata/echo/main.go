// Command echo is a Lambda function that returns its input unchanged, for the
// testinfra emulator tests. An input of {"sleep":"2s"} makes it wait first
// (honouring the invocation deadline); {"block":"20s"} makes it wait
// whatever the deadline, so that only the emulator's timeout ends it;
// {"error":"msg"} makes it fail;
// {"env":"NAME"} answers {"NAME": value, "pid": "its process id"}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type control struct {
	Sleep string `json:"sleep"`
	Block string `json:"block"`
	Error string `json:"error"`
	Env   string `json:"env"`
}

func handle(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
	var c control
	_ = json.Unmarshal(in, &c) // any JSON is echoed; only objects steer
	if c.Error != "" {
		return nil, errors.New(c.Error)
	}
	if c.Env != "" {
		out, err := json.Marshal(map[string]string{c.Env: os.Getenv(c.Env), "pid": strconv.Itoa(os.Getpid())})
		return out, err
	}
	if d, err := time.ParseDuration(c.Block); err == nil {
		time.Sleep(d)
	}
	if d, err := time.ParseDuration(c.Sleep); err == nil {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return in, nil
}

func main() { lambda.Start(handle) }
