package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// BENCHMARKS.md is generated: it must be what bench/results.json renders
// to, so that a change of report.md.tmpl or report.go comes with the
// report it makes (go -C bench run ./cmd/bench -render), and a change made
// to BENCHMARKS.md by hand, which the next make bench would lose, is seen.
func TestBenchmarksMDIsTheRenderedResults(t *testing.T) {
	raw, err := os.ReadFile("../../results.json")
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../../BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := markdown(res, "bench")
	if err != nil {
		t.Fatal(err)
	}
	checkRendered(t, got)
	if got == string(want) {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		g, w := line(gl, i), line(wl, i)
		if g != w {
			t.Fatalf("BENCHMARKS.md is not what bench/results.json renders to (go -C bench run ./cmd/bench -render writes it); line %d:\nrendered:  %q\ncommitted: %q", i+1, g, w)
		}
	}
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(none)"
}

// A run that measured only some things (-quick, -strategies, -job-n 0, …)
// renders without the sections it has no numbers for.
func TestReportOfPartialResults(t *testing.T) {
	engine := Record{Strategy: "engine-tuned", Description: "the engine", N: 1000, RateCallsPerSecond: 50, Burst: 10,
		WallSeconds: 1.3, IdealSeconds: 1.06, WallRatio: 1.23, SSMCalls: 52, IdealCalls: 53, CallsRatio: 0.981,
		FirstCallAfterSeconds: 0.03, LastCallAfterSeconds: 1.2, CreateCalls: 52,
		DynamoDBRequests: map[string]int{"PutItem": 1001, "BatchWriteItem": 52}, DynamoDBWriteRequests: 1053, OwnerStarts: 1}
	autoRecord := Record{Strategy: "engine-auto", N: 3000, RateCallsPerSecond: 7, Burst: 1, WallSeconds: 22, SSMCalls: 160, ThrottledCalls: 5,
		DynamoDBRequests: map[string]int{"PutItem": 3001, "UpdateItem": 6}, DynamoDBWriteRequests: 3170, OwnerStarts: 1, RateMemoryWrites: 5}
	perNode := Record{Strategy: "per-node", Description: "one call per node", N: 1000, RateCallsPerSecond: 50, Burst: 10,
		Extrapolated: true, MeasuredEntries: 100, WallSeconds: 27.9, IdealSeconds: 1.06, WallRatio: 26.3}
	for name, res := range map[string]Results{
		"nothing":  {},
		"records":  {Params: params{Rate: 50, Burst: 10, MaxBatch: 20, FaultRate: 0.03, PerNodeLimit: 100, TargetN: 1000}, Records: []Record{engine, perNode}},
		"readBack": {Params: params{Rate: 50, Reconcile: reconcileParams{N: 500, LostRate: 0.1, DelayMs: 200, Batches: []int{20}}}, Reconcile: []ReconcileRun{{Record: engine, BatchSize: 20}}},
		"auto": {Params: params{Rate: 50, MaxBatch: 20, Auto: autoParams{Rates: []float64{7}, Ns: []int{3000}, Bursts: []int{1}, LatencyMs: 100, Start: 5, Max: 50, CutSeconds: 10, HalveFrom: 40, HalveTo: 20, HalveAtSec: 10, HalveN: 10000}},
			Auto: []AutoRun{
				{Record: autoRecord, Kind: "steady", RateFrom: 7, RateTo: 7, CutSeconds: 10, TailSeconds: 12, AnsweredAfterCut: 80, BoundSeconds: 11.4, TailRatio: 1.05, Seconds: []secondCounts{{5, 5, 0}, {9, 8, 1}}},
				{Record: autoRecord, Kind: "halving", RateFrom: 40, RateTo: 20, ChangeAtSeconds: 10, FollowSeconds: 1.3, FollowLimit: 22, Seconds: []secondCounts{{5, 5, 0}}},
			}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := markdown(res, "bench/out/quick")
			if err != nil {
				t.Fatal(err)
			}
			checkRendered(t, got)
			for _, absent := range []string{"## Asynchronous job", "## Decoding and planning", "## Cold start", "## Go benchmarks", "Would batching the claims"} {
				if strings.Contains(got, absent) {
					t.Errorf("%q in a report of a run that did not measure it", absent)
				}
			}
			if name == "auto" && (!strings.Contains(got, "## Rate found at run time") || !strings.Contains(got, "| `engine-auto` (R=40→20, burst 1), n = 3,000 | 5 |")) {
				t.Errorf("the auto runs are not in the report:\n%s", got)
			}
			if name == "records" && !strings.Contains(got, "| 1,000 | `per-node`\\* |") {
				t.Errorf("the scaled per-node row is not marked:\n%s", got)
			}
		})
	}
}

// checkRendered fails on what a template or format mistake leaves in the
// text.
func checkRendered(t *testing.T, md string) {
	t.Helper()
	for _, bad := range []string{"<no value>", "%!", "\n\n\n"} {
		if i := strings.Index(md, bad); i >= 0 {
			t.Errorf("the report has %q: …%s…", bad, md[max(0, i-80):min(len(md), i+80)])
		}
	}
}

// A run of the job rows only (-merge) replaces the whole run's jobs, and
// brings its job warm-up with them: the report says how its jobs ran.
func TestMergedJobsBringTheirWarmUp(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(root+"/out", 0o755); err != nil {
		t.Fatal(err)
	}
	var whole Results
	whole.Params.WarmUp = 10000
	whole.Jobs = []JobRecord{{Record: Record{WallSeconds: 120}}, {Record: Record{WallSeconds: 121}, AutoRate: true}}
	raw, err := json.Marshal(whole)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/out/results.json", raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var part Results
	part.Params.JobWarmUp = 16000
	part.Jobs = []JobRecord{{Record: Record{WallSeconds: 110}, AutoRate: true}}
	got, err := mergeInto(root, "out", part)
	if err != nil {
		t.Fatal(err)
	}
	if got.Params.JobWarmUp != 16000 || got.Params.WarmUp != 10000 {
		t.Errorf("params after the merge: warm-up %d, job warm-up %d; want 10000 and 16000", got.Params.WarmUp, got.Params.JobWarmUp)
	}
	if len(got.Jobs) != 2 || got.Jobs[0].WallSeconds != 120 || got.Jobs[1].WallSeconds != 110 {
		t.Errorf("jobs after the merge: %+v", got.Jobs)
	}
}
