package samtemplate

// The dashboard (issue 16): valid JSON once its !Sub placeholders are
// replaced, and a widget for each thing an operator watches, on the metrics
// the code writes (see alarms_test.go for how those are read).

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

// standIn is what a !Sub placeholder of the dashboard becomes in the test:
// ${DedupeTable} → stand-in-DedupeTable.
func standIn(name string) string {
	return "stand-in-" + strings.NewReplacer("::", "-", ".", "-").Replace(name)
}

// dashboard returns the dashboard's body with its !Sub placeholders
// replaced by stand-ins (standIn; each checked to name a resource, an
// attribute or a pseudo parameter).
func dashboard(t *testing.T, tpl node) map[string]any {
	t.Helper()
	d := resource(t, tpl, "Dashboard", "AWS::CloudWatch::Dashboard")
	f, arg := d.get("Properties", "DashboardBody").fn()
	if f != "Sub" || arg.Kind != yaml.ScalarNode {
		t.Fatal("Dashboard DashboardBody: want !Sub of a JSON string, so that names resolve")
	}
	body := subVar.ReplaceAllStringFunc(arg.Value, func(m string) string {
		name := m[2 : len(m)-1]
		id, _, attr := strings.Cut(name, ".")
		switch {
		case name == "AWS::Region", name == "AWS::StackName", name == "AWS::AccountId", name == "AWS::Partition", name == "AWS::URLSuffix":
		case !attr && tpl.get("Resources", id).ok(), !attr && tpl.get("Parameters", id).ok():
		case attr && tpl.get("Resources", id).ok():
		default:
			t.Errorf("Dashboard: ${%s} names nothing of the template", name)
		}
		return standIn(name)
	})
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("Dashboard body is not JSON once substituted: %v\n%s", err, body)
	}
	return out
}

// widgetMetrics renders a metric widget's metrics, one string each:
// "namespace metric Name=value …" for a metric, the expression for an
// expression; a "..." row repeats the previous metric.
func widgetMetrics(t *testing.T, title string, rows []any) []string {
	t.Helper()
	var out []string
	prev := ""
	for _, r := range rows {
		row, _ := r.([]any)
		if len(row) == 0 {
			t.Errorf("widget %q: metric row %v", title, r)
			continue
		}
		if o, ok := row[0].(map[string]any); ok {
			e, _ := o["expression"].(string)
			if e == "" {
				t.Errorf("widget %q: row %v has no expression", title, o)
			}
			out = append(out, e)
			continue
		}
		var parts []string
		for _, p := range row {
			if s, ok := p.(string); ok {
				parts = append(parts, s)
			}
		}
		if len(parts) > 0 && parts[0] == "..." {
			out = append(out, prev)
			continue
		}
		if len(parts) < 2 || len(parts)%2 != 0 {
			t.Errorf("widget %q: metric row %v: want namespace, name and dimension pairs", title, row)
			continue
		}
		s := parts[0] + " " + parts[1]
		for i := 2; i+1 < len(parts); i += 2 {
			s += " " + parts[i] + "=" + parts[i+1]
		}
		prev = s
		out = append(out, s)
	}
	return out
}

func TestDashboard(t *testing.T) {
	tpl := loadTemplate(t)
	body := dashboard(t, tpl)
	shape := emfShape(t)
	handler, worker, reaper := codeEmitters(t)

	widgets, _ := body["widgets"].([]any)
	if len(widgets) == 0 {
		t.Fatal("the dashboard has no widgets")
	}
	type widget struct {
		title   string
		metrics []string
		stats   string // the JSON of the widget, for stats such as p99
	}
	var ws []widget
	for i, w := range widgets {
		m, _ := w.(map[string]any)
		p, _ := m["properties"].(map[string]any)
		title, _ := p["title"].(string)
		if m["type"] != "metric" || title == "" || p["region"] != standIn("AWS::Region") {
			t.Errorf("widget %d: want a metric widget with a title and region ${AWS::Region}: %v", i, m)
			continue
		}
		x, _ := m["x"].(float64)
		width, _ := m["width"].(float64)
		if x+width > 24 {
			t.Errorf("widget %q: x %v + width %v is over the 24 columns", title, x, width)
		}
		rows, _ := p["metrics"].([]any)
		raw, _ := json.Marshal(m)
		ws = append(ws, widget{title, widgetMetrics(t, title, rows), string(raw)})
	}

	// has finds the widget showing every wanted metric (a substring of its
	// rendered metrics), and the stats it must give.
	has := func(item string, want []string, stats ...string) {
		t.Helper()
		for _, w := range ws {
			all := strings.Join(w.metrics, "\n")
			ok := true
			for _, s := range want {
				ok = ok && strings.Contains(all, s)
			}
			for _, s := range stats {
				ok = ok && strings.Contains(w.stats, s)
			}
			if ok {
				return
			}
		}
		t.Errorf("no widget shows %s: want one with %q and stats %q", item, want, stats)
	}

	// EMF metrics of this stack's functions, whatever their Source: a
	// SEARCH of the namespace and dimensions by the function's name.
	search := func(metric, stat string) string {
		return fmt.Sprintf(`SEARCH('{%s,%s} MetricName="%s" (FunctionName="%s"`, shape.namespace, strings.Join(shape.dimensions, ","), metric, standIn(functionID)) +
			fmt.Sprintf(` OR FunctionName="%s")', '%s', `, standIn(workerID), stat)
	}
	var outcomes []string
	for _, o := range []string{"Successful", "Updated", "Deduplicated", "Failed", "Unprocessed"} {
		if !slices.Contains(handler.names, o) || !slices.Contains(worker.names, o) {
			t.Errorf("outcome %s: the handler or the worker writes no such metric (they write %v and %v)", o, handler.names, worker.names)
		}
		outcomes = append(outcomes, "SUM("+search(o, "Sum"))
	}
	has("outcomes per minute", outcomes, `"period":60`)

	for _, m := range []string{"Calls", "Throttles"} {
		if !slices.Contains(handler.names, m) {
			t.Errorf("%s: the handler writes no such metric (it writes %v)", m, handler.names)
		}
	}
	has("SSM calls and throttles", []string{"SUM(" + search("Calls", "Sum"), "SUM(" + search("Throttles", "Sum")})
	has("SSM call latency p50 and p99", []string{search(shape.latency, "p50"), search(shape.latency, "p99")})

	has("claim latency in DynamoDB", []string{"AWS/DynamoDB SuccessfulRequestLatency TableName=" + standIn("DedupeTable") + " Operation=PutItem"})

	var dlq []string
	for _, q := range deadLetterQueues(t, tpl) {
		dlq = append(dlq, "AWS/SQS ApproximateNumberOfMessagesVisible QueueName="+standIn(q+".QueueName"))
	}
	has("dead-letter queue depth", dlq)

	var jobs []string
	for _, m := range []string{"JobsOpen", "JobsStalled", "JobsOverdue"} {
		if !slices.Contains(reaper.names, m) {
			t.Errorf("%s: the reaper writes no such metric (it writes %v)", m, reaper.names)
		}
		jobs = append(jobs, fmt.Sprintf("%s %s %s=%s %s=%s", shape.namespace, m, "FunctionName", standIn(reaperID), "Source", reaper.source))
	}
	has("job progress", jobs)
	has("chunks of jobs waiting and running", []string{
		"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=" + standIn("JobsQueue.QueueName"),
		"AWS/SQS ApproximateNumberOfMessagesNotVisible QueueName=" + standIn("JobsQueue.QueueName"),
	})

	if f, _ := tpl.get("Outputs", "DashboardName", "Value").fn(); f != "Ref" {
		t.Error("no output DashboardName")
	}
}
