package main

import (
	"fmt"
	"image/color"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotWallTime draws wall time against n, log-log, one line per strategy
// and the ideal ceil(n/E)/R (with the expected fault retries).
func plotWallTime(path string, res Results) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Wall time vs. entries (SSM emulator: R=%g calls/s, E=%d, L=%g ms, %g%% entry faults)",
		res.Params.Rate, res.Params.MaxBatch, res.Params.LatencyMs, res.Params.FaultRate*100)
	p.X.Label.Text = "entries n (log)"
	p.Y.Label.Text = "wall time, s (log)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = false, false // bottom right: the lines rise to the right
	p.Add(plotter.NewGrid())

	series := map[string]plotter.XYs{}
	ideal := map[int]float64{}
	for _, r := range res.Records {
		if r.Strategy == diagnosticStrategy {
			continue // one point, and not something a user runs
		}
		series[r.Strategy] = append(series[r.Strategy], plotter.XY{X: float64(r.N), Y: r.WallSeconds})
		ideal[r.N] = r.IdealSeconds
	}
	var ixy plotter.XYs
	for _, n := range res.Params.Sizes {
		ixy = append(ixy, plotter.XY{X: float64(n), Y: ideal[n]})
	}
	colors := map[string]color.Color{
		"engine-defaults": color.RGBA{R: 148, G: 103, B: 189, A: 255},
		"engine-tuned":    color.RGBA{R: 31, G: 119, B: 180, A: 255},
		"cli-script":      color.RGBA{R: 255, G: 127, B: 14, A: 255},
		"per-node":        color.RGBA{R: 214, G: 39, B: 40, A: 255},
	}
	labels := map[string]string{
		"engine-defaults": "engine, shipped defaults",
		"engine-tuned":    "engine, tuned (BATCH_SIZE=E, CALLS_PER_SECOND=R)",
		"cli-script":      "CLI script: sequential chunks of E",
		"per-node":        "per node: CreateAssociation ×n (10 at a time)",
	}
	il, err := plotter.NewLine(ixy)
	if err != nil {
		return err
	}
	il.LineStyle.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	il.LineStyle.Width = vg.Points(1.5)
	p.Add(il)
	p.Legend.Add("ideal ceil(n/E)/R + fault retries", il)
	names := make([]string, 0, len(series))
	for k := range series {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return order(a) - order(b) })
	for i, name := range names {
		xy := series[name]
		l, s, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		c := colors[name]
		if c == nil {
			c = color.Black
		}
		l.LineStyle.Color, l.LineStyle.Width = c, vg.Points(1.5)
		s.GlyphStyle.Color, s.GlyphStyle.Radius = c, vg.Points(3)
		s.GlyphStyle.Shape = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{}}[i%4]
		p.Add(l, s)
		label := labels[name]
		if label == "" {
			label = name
		}
		p.Legend.Add(label, l, s)
	}
	return p.Save(10*vg.Inch, 6*vg.Inch, path)
}

func order(s string) int {
	switch s {
	case "engine-defaults":
		return 0
	case "engine-tuned":
		return 1
	case "cli-script":
		return 2
	}
	return 3
}

// autoPlot is the plot of the halving runs, beside results.json.
const autoPlot = "auto-rate.png"

// plottedAutoRuns are the runs auto-rate.png draws: the halving runs, one
// panel each.
func plottedAutoRuns(res Results) []AutoRun {
	var out []AutoRun
	for _, a := range res.Auto {
		if a.Kind == "halving" {
			out = append(out, a)
		}
	}
	return out
}

// plotAutoRates draws each run in a panel of its own, one above the other.
func plotAutoRates(path string, runs []AutoRun) error {
	plots := make([][]*plot.Plot, len(runs))
	for i, r := range runs {
		p, err := autoRatePlot(r)
		if err != nil {
			return err
		}
		plots[i] = []*plot.Plot{p}
	}
	img := vgimg.New(10*vg.Inch, vg.Length(len(runs))*4.5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(runs), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12), PadY: vg.Points(18)}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// autoRatePlot draws one auto run over time: the rate the emulator allowed
// (from its RateChanges), the calls it answered and throttled each second,
// and when the calls followed the change.
func autoRatePlot(r AutoRun) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("CALLS_PER_SECOND=auto: SSM's rate %g → %g calls/s at %.0f s, burst %d (n=%s, L=%g ms)",
		r.RateFrom, r.RateTo, r.ChangeAtSeconds, r.Burst, num(r.N), r.LatencyMs)
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "time from the run's start, s"
	p.Y.Label.Text = "calls per second"
	p.Legend.Top, p.Legend.Left = true, false
	p.Add(plotter.NewGrid())

	end := r.WallSeconds
	var allowed plotter.XYs
	for i, st := range r.Allowed {
		from := max(st.FromSeconds, 0)
		to := end
		if i+1 < len(r.Allowed) {
			to = r.Allowed[i+1].FromSeconds
		}
		allowed = append(allowed, plotter.XY{X: from, Y: st.CallsPerSecond}, plotter.XY{X: to, Y: st.CallsPerSecond})
	}
	step := func(get func(secondCounts) int) plotter.XYs {
		var xy plotter.XYs
		for i, s := range r.Seconds {
			v := float64(get(s))
			xy = append(xy, plotter.XY{X: float64(i), Y: v}, plotter.XY{X: float64(i + 1), Y: v})
		}
		return xy
	}
	lines := []struct {
		label string
		xy    plotter.XYs
		c     color.Color
		dash  bool
	}{
		{"allowed by SSM (emulator's RateChanges)", allowed, color.Black, true},
		{"calls answered per second", step(func(s secondCounts) int { return s.Answered }), color.RGBA{R: 31, G: 119, B: 180, A: 255}, false},
		{"calls throttled per second", step(func(s secondCounts) int { return s.Throttled }), color.RGBA{R: 214, G: 39, B: 40, A: 255}, false},
	}
	for _, ln := range lines {
		l, err := plotter.NewLine(ln.xy)
		if err != nil {
			return nil, err
		}
		l.LineStyle.Color, l.LineStyle.Width = ln.c, vg.Points(1.5)
		if ln.dash {
			l.LineStyle.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
		}
		p.Add(l)
		p.Legend.Add(ln.label, l)
	}
	if r.ChangeAtSeconds > 0 {
		at := r.ChangeAtSeconds + r.FollowSeconds
		l, err := plotter.NewLine(plotter.XYs{{X: at, Y: 0}, {X: at, Y: r.RateFrom * 1.15}})
		if err != nil {
			return nil, err
		}
		l.LineStyle.Color, l.LineStyle.Width = color.RGBA{R: 44, G: 160, B: 44, A: 255}, vg.Points(1)
		l.LineStyle.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("followed: arrivals ≤ %g in every 1 s window from here (%.2f s after the change)", r.FollowLimit, r.FollowSeconds), l)
	}
	p.Y.Min, p.Y.Max = 0, r.RateFrom*1.35
	return p, nil
}
