package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

// A job whose chunks are all done stays RUNNING until it is finished; the bar
// must still draw the final state after it reached 3/3 (seen in CI).
func TestBarDrawsTheFinalStateAfterTheLastChunk(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	p := &barProgress{w: &out, now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	st := func(state string, done, ok int) JobStatus {
		var s JobStatus
		s.State, s.Chunks, s.ChunksDone, s.Counts.Successful = state, 3, done, ok
		return s
	}
	p.Update(st(jobs.StateQueued, 0, 0))
	p.Update(st(jobs.StateRunning, 3, 6))
	p.Update(st(jobs.StateRunning, 3, 6))
	p.Update(st(jobs.StateSucceeded, 3, 6))
	p.Close()
	s := out.String()
	if !strings.Contains(s, "QUEUED ok 0") || !strings.Contains(s, "RUNNING ok 6") ||
		!strings.Contains(s, "SUCCEEDED ok 6") || !strings.Contains(s, "finished") {
		t.Errorf("want QUEUED, RUNNING, then SUCCEEDED … finished drawn; got %q", s)
	}
	if i := strings.LastIndex(s, "SUCCEEDED"); strings.Contains(s[i:], "  0%") {
		t.Errorf("the final redraw starts from 0%%: %q", s[i:])
	}
}
