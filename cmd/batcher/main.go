// Command batcher is the operator's command line of ssm-association-batcher:
// submit request files, follow jobs, read their outcomes, plan, or run the
// engine locally. See `batcher --help`; the logic is in internal/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin})
	stop()
	os.Exit(code)
}
