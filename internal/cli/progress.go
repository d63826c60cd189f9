package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

// Progress shows a job being followed.
type Progress interface {
	// Update is told the job's status after each poll.
	Update(s JobStatus)
	// Close ends the display.
	Close()
}

// NewProgress is a bar on a terminal, plain lines otherwise; nothing when
// quiet.
func NewProgress(w io.Writer, quiet bool, now func() time.Time) Progress {
	switch {
	case quiet:
		return noProgress{}
	case IsTerminal(w):
		return &barProgress{w: w, now: now}
	default:
		return &lineProgress{w: w, now: now}
	}
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type noProgress struct{}

func (noProgress) Update(JobStatus) {}
func (noProgress) Close()           {}

// rate follows chunks and nodes done over time, from the first poll.
type rate struct {
	start             time.Time
	chunks0, nodes0   int
	started           bool
	chunksPS, nodesPS float64
	left              time.Duration // -1: unknown
}

func processed(c jobs.Counts) int {
	return c.Successful + c.Updated + c.Deduplicated + c.Failed + c.Unprocessed
}

func (r *rate) observe(s JobStatus, now time.Time) {
	if !r.started {
		r.start, r.chunks0, r.nodes0, r.started = now, s.ChunksDone, processed(s.Counts), true
	}
	r.left = -1
	el := now.Sub(r.start).Seconds()
	if el <= 0 {
		return
	}
	r.chunksPS = float64(s.ChunksDone-r.chunks0) / el
	r.nodesPS = float64(processed(s.Counts)-r.nodes0) / el
	if r.chunksPS > 0 {
		r.left = time.Duration(float64(s.Chunks-s.ChunksDone) / r.chunksPS * float64(time.Second)).Round(time.Second)
	}
}

func countsLine(c jobs.Counts) string {
	return fmt.Sprintf("Successful %d, Updated %d, Deduplicated %d, Failed %d, Unprocessed %d",
		c.Successful, c.Updated, c.Deduplicated, c.Failed, c.Unprocessed)
}

// lineProgress prints one line per change: for logs and pipes.
type lineProgress struct {
	w    io.Writer
	now  func() time.Time
	r    rate
	last string
}

func (p *lineProgress) Update(s JobStatus) {
	p.r.observe(s, p.now())
	key := fmt.Sprint(s.State, s.ChunksDone, s.Counts)
	if key == p.last {
		return
	}
	p.last = key
	left := "time left unknown"
	if p.r.left >= 0 {
		left = "about " + p.r.left.String() + " left"
	}
	if s.Finished() {
		left = "finished"
	}
	fmt.Fprintf(p.w, "%s %s: chunks %d/%d; %s; %.1f nodes/s, %.2f chunks/s; %s\n",
		s.JobID, s.State, s.ChunksDone, s.Chunks, countsLine(s.Counts), p.r.nodesPS, p.r.chunksPS, left)
}

func (p *lineProgress) Close() {}

// barProgress redraws a bar of chunks done (progressbar), with the counts,
// the rate and the time left as this command measured them from its first
// poll: the bar's own rate would count a job found half done as done in an
// instant.
type barProgress struct {
	w   io.Writer
	now func() time.Time
	r   rate
	bar *progressbar.ProgressBar
	max int
}

func (p *barProgress) Update(s JobStatus) {
	p.r.observe(s, p.now())
	c := s.Counts
	left := "time left unknown"
	switch {
	case s.Finished():
		left = "finished"
	case p.r.left >= 0:
		left = "about " + p.r.left.String() + " left"
	}
	desc := fmt.Sprintf("%s ok %d upd %d dup %d failed %d unproc %d | %.1f nodes/s, %.2f chunks/s, %s",
		s.State, c.Successful, c.Updated, c.Deduplicated, c.Failed, c.Unprocessed, p.r.nodesPS, p.r.chunksPS, left)
	switch {
	case p.bar == nil, p.bar.IsFinished():
		// A bar that reached its end draws nothing more (with ANSI codes),
		// yet a job whose chunks are all done is still RUNNING until it is
		// finished: a new bar redraws the same line with the final state.
		p.bar = progressbar.NewOptions(max(s.Chunks, 1),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(24),
			progressbar.OptionShowCount(),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionUseANSICodes(true),
			progressbar.OptionSetRenderBlankState(p.bar == nil),
			progressbar.OptionThrottle(0),
		)
		p.max = s.Chunks
	case p.max != s.Chunks:
		p.bar.ChangeMax(s.Chunks)
		p.max = s.Chunks
		p.bar.Describe(desc)
	default:
		p.bar.Describe(desc)
	}
	_ = p.bar.Set(s.ChunksDone)
}

func (p *barProgress) Close() {
	if p.bar != nil {
		fmt.Fprintln(p.w)
	}
}
