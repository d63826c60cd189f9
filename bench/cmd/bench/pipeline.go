package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// PipelineCost is the in-memory part of a request: request.Parse (decode and
// validate), plan.InRequest and plan.Batches, without any service.
type PipelineCost struct {
	Entries    int     `json:"entries"`
	BodyMiB    float64 `json:"bodyMiB"`
	Runs       int     `json:"runs"`
	Batches    int     `json:"batches"`
	CPUSeconds float64 `json:"cpuSeconds"` // median of the runs, user + system
	WallSecond float64 `json:"wallSeconds"`
	// PeakHeapMiB is the largest Go heap in use seen during a run (the body
	// included); PeakRSSMiB the process's resident high-water mark.
	PeakHeapMiB float64 `json:"peakHeapMiB"`
	PeakRSSMiB  float64 `json:"peakRssMiB"`
}

// pipelineBody is a CreateAssociationBatch request of n entries for n
// different nodes, each entry as a real one looks (the shape of
// internal/request's BenchmarkParse10k).
func pipelineBody(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"Entries":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"Name":"AWS-RunShellScript","Targets":[{"Key":"InstanceIds","Values":[%q]}],"Parameters":{"commands":["uptime"]},"ScheduleExpression":"cron(0 2 ? * SUN *)"}`, nodeID(i))
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

func measurePipeline(n, runs int) (PipelineCost, error) {
	body := pipelineBody(n)
	pc := PipelineCost{Entries: n, BodyMiB: mb(int64(len(body))), Runs: runs}
	var cpus, walls []float64
	for range runs {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		hs := startHeapSampler()
		c0 := processCPU()
		t0 := time.Now()
		req, err := request.Parse(body, request.Limits{MaxEntries: n})
		if err != nil {
			hs.Stop()
			return pc, err
		}
		items, _ := plan.InRequest(req.Items)
		batches := plan.Batches(items, 10)
		walls = append(walls, time.Since(t0).Seconds())
		cpus = append(cpus, processCPU().sub(c0).total().Seconds())
		pc.PeakHeapMiB = max(pc.PeakHeapMiB, mb(int64(hs.Stop())))
		pc.PeakRSSMiB = max(pc.PeakRSSMiB, mb(peakRSS()))
		pc.Batches = len(batches)
		runtime.KeepAlive(req)
	}
	pc.CPUSeconds = round(median(cpus), 3)
	pc.WallSecond = round(median(walls), 3)
	return pc, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
