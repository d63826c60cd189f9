package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// GoBench is one line of `go test -bench` output.
type GoBench struct {
	Name    string             `json:"name"`
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"` // unit → value: ns/op, B/op, allocs/op, cpu-s/op, peak-heap-MiB, MB/s
	Line    string             `json:"line"`
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+(.*)$`)

// runGoBenchmarks runs the in-memory Go benchmarks (the same ones `make
// bench` runs after this program), -short so that the package's TestMain
// does not start DynamoDB Local, and parses their results.
func runGoBenchmarks(ctx context.Context, root string) ([]GoBench, string, error) {
	args := []string{"test", "-short", "-run=^$", "-bench=.", "-benchmem", "-benchtime=3x", "./internal/request", "./internal/associate"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	var res []GoBench
	for line := range strings.SplitSeq(string(out), "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		g := GoBench{Name: m[1], Metrics: map[string]float64{}, Line: strings.TrimSpace(line)}
		g.Runs, _ = strconv.Atoi(m[2])
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				g.Metrics[f[i+1]] = v
			}
		}
		res = append(res, g)
	}
	return res, "go " + strings.Join(args, " "), nil
}
