package associate_test

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// pipelineBody is a CreateAssociationBatch request of n entries for n
// different nodes, each shaped like a real one (as bench/cmd/bench measures it).
func pipelineBody(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"Entries":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"Name":"AWS-RunShellScript","Targets":[{"Key":"InstanceIds","Values":["i-%017x"]}],"Parameters":{"commands":["uptime"]},"ScheduleExpression":"cron(0 2 ? * SUN *)"}`, i)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkPipeline100k is the in-memory part of a 100,000-entry request:
// decode and validate (request.Parse), dedupe in the request, plan batches
// of 10. Besides ns/op and -benchmem's counts it reports the process CPU
// per run (cpu-s/op: user + system, so the garbage collector's work on
// other cores counts) and the largest Go heap in use seen during the runs
// (peak-heap-MiB, sampled every 5 ms). Target: < 1 s CPU, < 256 MB.
func BenchmarkPipeline100k(b *testing.B) {
	const n = 100_000
	body := pipelineBody(n)
	b.SetBytes(int64(len(body)))
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	runtime.GC()
	c0 := cpuNow()
	b.ResetTimer()
	for b.Loop() {
		req, err := request.Parse(body, request.Limits{MaxEntries: n})
		if err != nil {
			b.Fatal(err)
		}
		items, dups := plan.InRequest(req.Items)
		if len(items) != n || len(dups) != 0 {
			b.Fatalf("%d items, %d duplicates", len(items), len(dups))
		}
		if got := len(plan.Batches(items, 10)); got != n/10 {
			b.Fatalf("%d batches", got)
		}
	}
	b.StopTimer()
	cpu := cpuNow() - c0
	close(stop)
	<-done
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
