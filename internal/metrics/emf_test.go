package metrics

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, Invocation{
		Function:    "fn",
		Source:      "direct",
		Counts:      map[string]int{"Successful": 3, "Failed": 1},
		CallLatency: []time.Duration{1500 * time.Microsecond, 20 * time.Millisecond},
		Time:        time.UnixMilli(1700000000123),
	})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want exactly one line, got %q", buf.String())
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []metricDef
			}
		} `json:"_aws"`
		FunctionName   string
		Successful     int
		Failed         int
		SSMCallLatency []float64
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.AWS.Timestamp != 1700000000123 || doc.FunctionName != "fn" || doc.Successful != 3 || doc.Failed != 1 {
		t.Errorf("unexpected document %+v", doc)
	}
	if got := doc.SSMCallLatency; len(got) != 2 || got[0] != 1.5 || got[1] != 20 {
		t.Errorf("SSMCallLatency = %v", got)
	}
	cw := doc.AWS.CloudWatchMetrics
	if len(cw) != 1 || cw[0].Namespace != Namespace || len(cw[0].Metrics) != 3 {
		t.Fatalf("CloudWatchMetrics = %+v", cw)
	}
	// Every declared metric must have a value at the top level, or CloudWatch drops it.
	var top map[string]any
	_ = json.Unmarshal(buf.Bytes(), &top)
	for _, m := range cw[0].Metrics {
		if _, ok := top[m.Name]; !ok {
			t.Errorf("metric %s declared without a value", m.Name)
		}
	}
}
