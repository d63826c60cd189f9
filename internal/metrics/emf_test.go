package metrics

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
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

// TestWriteThousandsOfCalls is an invocation of 1,500 SSM calls (15,000
// entries at 10 per call): its line must stay within CloudWatch's 100
// values per metric, or CloudWatch drops every metric in it, and its
// latency distribution must survive the folding.
func TestWriteThousandsOfCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		calls int
		draw  func(i int) time.Duration
	}{
		// log-normal around 80 ms, with a tail of throttled retries
		{"realistic", 1500, func(int) time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*0.8+math.Log(80)) * float64(time.Millisecond))
		}},
		// from a microsecond to a minute, uniformly on a log scale
		{"seven decades", 2000, func(int) time.Duration {
			return time.Duration(math.Pow(10, rng.Float64()*7.8)) * time.Microsecond
		}},
		{"all equal", 1200, func(int) time.Duration { return 42 * time.Millisecond }},
		{"with zeros", 1100, func(i int) time.Duration {
			return time.Duration(i%3) * time.Duration(rng.IntN(5000)) * time.Microsecond
		}},
		{"exactly 100", 100, func(i int) time.Duration { return time.Duration(i) * time.Millisecond }},
		{"101", 101, func(i int) time.Duration { return time.Duration(i) * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lat := make([]time.Duration, tc.calls)
			var want []float64
			for i := range lat {
				lat[i] = tc.draw(i)
				want = append(want, float64(lat[i].Microseconds())/1000)
			}
			var buf bytes.Buffer
			if err := Write(&buf, Invocation{Function: "fn", Source: "direct", Counts: map[string]int{"Calls": tc.calls}, CallLatency: lat, Time: time.UnixMilli(1)}); err != nil {
				t.Fatal(err)
			}
			if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
				t.Fatalf("want exactly one line, got %d", bytes.Count(buf.Bytes(), []byte("\n")))
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal(buf.Bytes(), &top); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			checkArraysAtMost(t, top, MaxValues)

			slices.Sort(want)
			var sum float64
			for _, v := range want {
				sum += v
			}
			raw := top["SSMCallLatency"]
			if tc.calls <= MaxValues {
				var got []float64
				if err := json.Unmarshal(raw, &got); err != nil || len(got) != tc.calls {
					t.Fatalf("up to %d calls stay a plain array: %s (%v)", MaxValues, raw, err)
				}
				return
			}
			var h Histogram
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&h); err != nil {
				t.Fatalf("SSMCallLatency is not a histogram: %v", err)
			}
			if len(h.Values) != len(h.Counts) || len(h.Values) == 0 {
				t.Fatalf("%d values and %d counts", len(h.Values), len(h.Counts))
			}
			total := 0
			for i, c := range h.Counts {
				if c < 1 {
					t.Errorf("count %d at %d", c, i)
				}
				total += c
				if i > 0 && h.Values[i] < h.Values[i-1] {
					t.Errorf("values out of order at %d", i)
				}
			}
			if total != tc.calls || h.Count != tc.calls {
				t.Errorf("counts sum to %d, Count %d; want %d calls", total, h.Count, tc.calls)
			}
			if h.Min != want[0] || h.Max != want[len(want)-1] {
				t.Errorf("Min %v Max %v, want %v %v", h.Min, h.Max, want[0], want[len(want)-1])
			}
			if h.Values[0] < h.Min || h.Values[len(h.Values)-1] > h.Max {
				t.Errorf("values %v..%v outside [Min, Max]", h.Values[0], h.Values[len(h.Values)-1])
			}
			if math.Abs(h.Sum-sum) > 0.001*float64(tc.calls) {
				t.Errorf("Sum %v, want %v", h.Sum, sum)
			}
			var weighted float64
			for i := range h.Values {
				weighted += h.Values[i] * float64(h.Counts[i])
			}
			if math.Abs(weighted-sum) > 0.01*sum+0.001*float64(tc.calls) {
				t.Errorf("Σ value·count = %v, want about %v", weighted, sum)
			}
			// p50 and p99 of the histogram are within the group width of the truth.
			for _, q := range []float64{0.5, 0.99} {
				exact := want[int(q*float64(len(want)-1))]
				got := quantile(h, q)
				if math.Abs(got-exact) > 0.35*exact+0.001 {
					t.Errorf("p%v = %v, want about %v", q*100, got, exact)
				}
			}
			t.Logf("%d calls in %d values; p50 %.3f (exact %.3f), p99 %.3f (exact %.3f)", tc.calls, len(h.Values),
				quantile(h, 0.5), want[len(want)/2], quantile(h, 0.99), want[int(0.99*float64(len(want)-1))])
		})
	}
}

// checkArraysAtMost fails if any member of the line, or any array inside a
// member's object, has more than n entries.
func checkArraysAtMost(t *testing.T, top map[string]json.RawMessage, n int) {
	t.Helper()
	for name, raw := range top {
		if name == "_aws" {
			continue
		}
		var arr []json.RawMessage
		if json.Unmarshal(raw, &arr) == nil && len(arr) > n {
			t.Errorf("%s has %d values", name, len(arr))
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			for k, v := range obj {
				if json.Unmarshal(v, &arr) == nil && len(arr) > n {
					t.Errorf("%s.%s has %d entries", name, k, len(arr))
				}
			}
		}
	}
}

func quantile(h Histogram, q float64) float64 {
	rank := int(q * float64(h.Count-1))
	for i, c := range h.Counts {
		if rank < c {
			return h.Values[i]
		}
		rank -= c
	}
	return h.Max
}

func TestNewHistogramKeepsFewValuesExact(t *testing.T) {
	h := NewHistogram([]float64{3, 1, 3, 2, 3}, MaxValues)
	if !slices.Equal(h.Values, []float64{1, 2, 3}) || !slices.Equal(h.Counts, []int{1, 1, 3}) || h.Sum != 12 || h.Min != 1 || h.Max != 3 || h.Count != 5 {
		t.Errorf("%+v", h)
	}
	if h := NewHistogram([]float64{0, 5, 0, 7}, 1); len(h.Values) > 2 || h.Count != 4 {
		t.Errorf("tiny bin limit: %+v", h)
	}
}
