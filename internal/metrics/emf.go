// Package metrics writes CloudWatch Embedded Metric Format: one JSON line on
// stdout that CloudWatch Logs turns into metrics, with no API call and no
// library (AWS ships none for Go).
package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// Namespace is the CloudWatch namespace of the function's metrics.
const Namespace = "SSMAssociationBatcher"

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

// Write writes the invocation as one EMF line.
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
			ms[i] = float64(d.Microseconds()) / 1000
		}
		doc["SSMCallLatency"] = ms
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
