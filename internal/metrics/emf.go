// Package metrics writes CloudWatch Embedded Metric Format: one JSON line on
// stdout that CloudWatch Logs turns into metrics, with no API call and no
// library (AWS ships none for Go).
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Namespace is the CloudWatch namespace of the function's metrics.
const Namespace = "SSMAssociationBatcher"

// MaxValues is the most values one metric may carry in one EMF line:
// CloudWatch drops a line whose metric array is longer, with every metric
// in it.
const MaxValues = 100

// Invocation is what one invocation reports. Only counts and timings go
// here, never entry contents: metrics are not a place for parameters.
type Invocation struct {
	Function string // dimension FunctionName
	Source   string // dimension Source (direct, api-rest, …)
	Counts   map[string]int
	// CallLatency is the duration of each CreateAssociationBatch call,
	// reported as one metric with many values.
	CallLatency []time.Duration
	Time        time.Time
}

type metricDef struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// Histogram is a metric's values as CloudWatch's values-with-counts form,
// the form PutMetricData takes (Values, Counts) with the statistic set
// (Max, Min, Count, Sum) that AWS's own EMF libraries write with it. At
// most MaxValues distinct values, however many observations.
type Histogram struct {
	Values []float64 `json:"Values"`
	Counts []int     `json:"Counts"`
	Max    float64   `json:"Max"`
	Min    float64   `json:"Min"`
	Count  int       `json:"Count"`
	Sum    float64   `json:"Sum"`
}

// Write writes the invocation as one EMF line. Up to MaxValues call
// latencies are written as they are, an array of values; beyond that, as a
// Histogram, so that an invocation of thousands of calls still fits the
// limit and keeps its metrics.
func Write(w io.Writer, m Invocation) error {
	names := make([]string, 0, len(m.Counts))
	for name := range m.Counts {
		names = append(names, name)
	}
	slices.Sort(names)
	defs := make([]metricDef, 0, len(names)+1)
	doc := map[string]any{
		"FunctionName": m.Function,
		"Source":       m.Source,
	}
	for _, name := range names {
		defs = append(defs, metricDef{name, "Count"})
		doc[name] = m.Counts[name]
	}
	if len(m.CallLatency) > 0 {
		defs = append(defs, metricDef{"SSMCallLatency", "Milliseconds"})
		ms := make([]float64, len(m.CallLatency))
		for i, d := range m.CallLatency {
			ms[i] = millis(d)
		}
		if len(ms) <= MaxValues {
			doc["SSMCallLatency"] = ms
		} else {
			doc["SSMCallLatency"] = NewHistogram(ms, MaxValues)
		}
	}
	doc["_aws"] = map[string]any{
		"Timestamp": m.Time.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{{"FunctionName", "Source"}},
			"Metrics":    defs,
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	if _, err := w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}

// millis is d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// NewHistogram folds values (non-negative) into at most maxBins distinct
// values with their counts. Values that are already few enough stay exact;
// otherwise they are grouped by relative width, starting at 1 % and
// growing by half until the groups fit, and each group is written as the
// mean of its values (so Sum is kept). Min, Max, Count and Sum are those of the
// values themselves, not of the groups.
func NewHistogram(values []float64, maxBins int) Histogram {
	h := Histogram{Count: len(values)}
	if len(values) == 0 {
		return h
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	h.Min, h.Max = sorted[0], sorted[len(sorted)-1]
	for _, v := range sorted {
		h.Sum += v
	}
	h.Sum = round3(h.Sum)
	maxBins = max(maxBins, 2) // zero and positive values never share a group
	for width := 0.0; ; width = nextWidth(width) {
		if h.fold(sorted, width, maxBins) {
			return h
		}
	}
}

// nextWidth is the relative width tried after width: exact (0), then 1 %,
// growing by half. Past a width of 2^40 every positive value falls in one group.
func nextWidth(width float64) float64 {
	if width == 0 {
		return 0.01
	}
	return width * 1.5
}

// fold groups sorted into h.Values and h.Counts with groups of the given
// relative width (0: equal values only), and reports whether they fit in
// maxBins.
func (h *Histogram) fold(sorted []float64, width float64, maxBins int) bool {
	h.Values, h.Counts = h.Values[:0], h.Counts[:0]
	key := func(v float64) float64 {
		switch {
		case width == 0:
			return v
		case v <= 0:
			return math.Inf(-1)
		case width > 1<<40:
			return 0
		default:
			return math.Floor(math.Log(v) / math.Log1p(width))
		}
	}
	start := 0
	for i := 1; i <= len(sorted); i++ {
		if i < len(sorted) && key(sorted[i]) == key(sorted[start]) {
			continue
		}
		if len(h.Values) == maxBins {
			return false
		}
		var sum float64
		for _, v := range sorted[start:i] {
			sum += v
		}
		n := i - start
		h.Values = append(h.Values, round3(sum/float64(n)))
		h.Counts = append(h.Counts, n)
		start = i
	}
	return true
}

// round3 rounds to three decimals: a microsecond, for milliseconds.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
