package samtemplate

// Operating the stack (issue 16): the alarms. The dashboard
// (dashboard_test.go) and tracing (tracing_test.go) are next to it. The
// metric alarms and the dashboard are checked against what the code
// writes: the EMF namespace and dimensions as metrics.Write emits them, the
// metric names and dimension values read from the code that calls it
// (internal/handler observe, internal/jobs Reaper), and the event sources
// the Source dimension takes (internal/event).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/metrics"
)

// ---------------------------------------------------------------------
// What the code emits.

// emitted is the shape of the EMF lines metrics.Write produces.
type emitted struct {
	namespace  string
	dimensions []string // sorted
	latency    string   // the metric with a unit of time: the SSM call latency
}

func emfShape(t *testing.T) emitted {
	t.Helper()
	var buf bytes.Buffer
	err := metrics.Write(&buf, metrics.Invocation{
		Function: "fn", Source: "src",
		Counts:      map[string]int{"Failed": 1},
		CallLatency: []time.Duration{time.Millisecond},
		Time:        time.Unix(1, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	type directive struct {
		Namespace  string
		Dimensions [][]string
		Metrics    []struct{ Name, Unit string }
	}
	var directives []directive
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var line struct {
			AWS struct{ CloudWatchMetrics []directive } `json:"_aws"`
		}
		if err := json.Unmarshal(l, &line); err != nil {
			t.Fatalf("metrics.Write wrote %q: %v", l, err)
		}
		directives = append(directives, line.AWS.CloudWatchMetrics...)
	}
	if len(directives) == 0 {
		t.Fatalf("metrics.Write wrote no EMF directive:\n%s", buf.String())
	}
	var out emitted
	for _, d := range directives {
		if out.namespace != "" && d.Namespace != out.namespace {
			t.Fatalf("EMF namespaces %q and %q: the alarms assume one", out.namespace, d.Namespace)
		}
		out.namespace = d.Namespace
		if len(d.Dimensions) != 1 {
			t.Fatalf("EMF dimension sets %v: the alarms assume one", d.Dimensions)
		}
		dims := slices.Sorted(slices.Values(d.Dimensions[0]))
		if out.dimensions != nil && !slices.Equal(dims, out.dimensions) {
			t.Fatalf("EMF dimensions %v and %v: the alarms assume one set", out.dimensions, dims)
		}
		out.dimensions = dims
		for _, m := range d.Metrics {
			if m.Unit != "Count" {
				out.latency = m.Name
			}
		}
	}
	if out.namespace != metrics.Namespace {
		t.Errorf("metrics.Write uses namespace %q, metrics.Namespace is %q", out.namespace, metrics.Namespace)
	}
	if out.latency == "" {
		t.Fatal("metrics.Write wrote no latency metric for CallLatency")
	}
	return out
}

// emitter is one place in the code that writes an EMF line: its metric
// names and, where the code names them literally, its dimension values.
type emitter struct {
	where    string
	names    []string
	function string // "" when not a string literal
	source   string // "" when not a string literal
	body     string // the source of the enclosing function
}

// emitters finds every metrics.Invocation literal in the non-test Go code
// of internal/ and functions/, with the metric names of its Counts (a map
// literal there, or the map literals passed to the enclosing function's
// callers when Counts is a parameter, as in Reaper.emit).
// summaryCountNames are the keys of the map literal report.Summary.Counts
// returns.
func summaryCountNames(t *testing.T, fset *token.FileSet) []string {
	t.Helper()
	f, err := parser.ParseFile(fset, filepath.Join(root(t), "internal", "report", "result.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range f.Decls {
		if fd, ok := decl.(*ast.FuncDecl); ok && fd.Name.Name == "Counts" && fd.Recv != nil && fd.Body != nil {
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if m, ok := n.(*ast.CompositeLit); ok {
					names = append(names, mapKeys(m)...)
					return false
				}
				return true
			})
		}
	}
	if len(names) == 0 {
		t.Fatal("internal/report/result.go: no Summary.Counts returning a map literal")
	}
	return names
}

func emitters(t *testing.T) map[string]emitter {
	t.Helper()
	out := map[string]emitter{}
	fset := token.NewFileSet()
	for _, dir := range []string{"internal", "functions"} {
		err := filepath.WalkDir(filepath.Join(root(t), dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f, err := parser.ParseFile(fset, path, src, 0)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					lit, ok := n.(*ast.CompositeLit)
					if !ok || exprString(lit.Type) != "metrics.Invocation" {
						return true
					}
					rel, _ := filepath.Rel(root(t), path)
					e := emitter{where: filepath.ToSlash(rel) + " " + fd.Name.Name, body: string(src[fset.Position(fd.Pos()).Offset:fset.Position(fd.End()).Offset])}
					for _, el := range lit.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						switch exprString(kv.Key) {
						case "Function":
							e.function = stringLit(kv.Value)
						case "Source":
							e.source = stringLit(kv.Value)
						case "Counts":
							if m, ok := kv.Value.(*ast.CompositeLit); ok {
								e.names = append(e.names, mapKeys(m)...)
							} else if _, ok := kv.Value.(*ast.Ident); ok {
								// A parameter: the map literals its callers pass.
								e.names = append(e.names, callerMapKeys(f, fd.Name.Name)...)
							} else if c, ok := kv.Value.(*ast.CallExpr); ok && strings.HasSuffix(exprString(c.Fun), ".Counts") {
								// A report.Summary's Counts: the map literal it returns.
								e.names = append(e.names, summaryCountNames(t, fset)...)
							}
						}
					}
					sort.Strings(e.names)
					out[e.where] = e
					return true
				})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	}
	return ""
}

func stringLit(e ast.Expr) string {
	if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
		s, err := strconv.Unquote(b.Value)
		if err == nil {
			return s
		}
	}
	return ""
}

func mapKeys(m *ast.CompositeLit) []string {
	var out []string
	for _, el := range m.Elts {
		if kv, ok := el.(*ast.KeyValueExpr); ok {
			if k := stringLit(kv.Key); k != "" {
				out = append(out, k)
			}
		}
	}
	return out
}

// callerMapKeys: the keys of the map literals passed to calls of method or
// function fn in file f (fn's only parameter is the counts).
func callerMapKeys(f *ast.File, fn string) []string {
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			return true
		}
		if name := exprString(call.Fun); name == fn || strings.HasSuffix(name, "."+fn) {
			if m, ok := call.Args[0].(*ast.CompositeLit); ok {
				out = append(out, mapKeys(m)...)
			}
		}
		return true
	})
	return out
}

// sources are the values of the Source dimension the handler writes: the
// event.Source constants.
func sources(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, filepath.Join(root(t), "internal", "event"), func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					if exprString(vs.Type) != "Source" {
						continue
					}
					for _, v := range vs.Values {
						out = append(out, stringLit(v))
					}
				}
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("no event.Source constants found")
	}
	return out
}

// The emitters the alarms and the dashboard are built on.
const (
	handlerEmitter = "internal/handler/handler.go observe"
	workerEmitter  = "internal/jobs/worker.go observe"
	reaperEmitter  = "internal/jobs/reaper.go emit"
)

// codeEmitters returns the EMF writers of the associate function (the
// handler), of the worker (one line per chunk run) and of the reaper.
func codeEmitters(t *testing.T) (handler, worker, reaper emitter) {
	t.Helper()
	all := emitters(t)
	for where := range all {
		if where != handlerEmitter && where != workerEmitter && where != reaperEmitter {
			t.Errorf("%s writes EMF metrics that no alarm or dashboard widget knows of: add them to template.yaml and to this test", where)
		}
	}
	handler, ok1 := all[handlerEmitter]
	worker, ok2 := all[workerEmitter]
	reaper, ok3 := all[reaperEmitter]
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("EMF writers found: %v; want %s, %s and %s", slices.Sorted(func(yield func(string) bool) {
			for k := range all {
				if !yield(k) {
					return
				}
			}
		}), handlerEmitter, workerEmitter, reaperEmitter)
	}
	// The handler's FunctionName is the function's own name, which
	// !Ref AssociateFunction gives the template.
	if !strings.Contains(handler.body, "lambdacontext.FunctionName") {
		t.Errorf("%s: FunctionName no longer comes from lambdacontext.FunctionName; the alarms use !Ref %s", handlerEmitter, functionID)
	}
	if !strings.Contains(handler.body, "string(inv.Source)") {
		t.Errorf("%s: Source no longer is string(inv.Source); the alarms list the event.Source constants", handlerEmitter)
	}
	// The worker and the reaper write their own deployed name too (so that
	// two stacks keep their alarms apart): !Ref WorkerFunction and !Ref
	// ReaperFunction in the template, with a literal Source.
	for _, e := range []struct {
		where, id string
		e         emitter
	}{{workerEmitter, workerID, worker}, {reaperEmitter, reaperID, reaper}} {
		if !strings.Contains(e.e.body, "lambdacontext.FunctionName") {
			t.Errorf("%s: FunctionName no longer comes from lambdacontext.FunctionName; the alarms use !Ref %s", e.where, e.id)
		}
		if e.e.source == "" {
			t.Fatalf("%s: Source %q, want a string literal (the alarms name it)", e.where, e.e.source)
		}
	}
	// The worker writes the handler's metrics, so that the same alarms and
	// widgets add its chunks to the function's requests.
	for _, n := range handler.names {
		if !slices.Contains(worker.names, n) {
			t.Errorf("%s writes no %s (the handler does; the alarms and the dashboard sum both)", workerEmitter, n)
		}
	}
	// The deployed worker writes them where CloudWatch Logs reads them:
	// NewWorker alone writes none.
	main, err := os.ReadFile(filepath.Join(root(t), "functions", "worker", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\.\s*WriteMetrics\(os\.Stdout\)`).Match(main) {
		t.Error("functions/worker/main.go: the worker's metrics are not written to os.Stdout (WriteMetrics)")
	}
	return handler, worker, reaper
}

// ---------------------------------------------------------------------
// Alarms.

// alarmActions: every alarm notifies the stack's topic, or AlarmTopicArn
// when given.
func checkNotifies(t *testing.T, id string, alarm node) {
	t.Helper()
	actions := alarm.get("Properties", "AlarmActions").items()
	if len(actions) != 1 {
		t.Errorf("%s AlarmActions: want one action, the alarm topic", id)
		return
	}
	f, arg := actions[0].fn()
	args := arg.items()
	if f != "If" || len(args) != 3 || args[0].str() != "CreateAlarmTopic" || args[1].ref() != "AlarmTopic" || args[2].ref() != "AlarmTopicArn" {
		t.Errorf("%s AlarmActions = %v, want [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]]", id, actions[0].Value)
	}
}

// alarms lists the template's alarms by logical ID.
func alarms(tpl node) map[string]node {
	out := map[string]node{}
	res := tpl.get("Resources")
	for _, id := range res.keys() {
		if r := res.get(id); r.get("Type").str() == "AWS::CloudWatch::Alarm" {
			out[id] = r
		}
	}
	return out
}

// dims renders an alarm's or metric's dimensions as Name=value (values as
// the template writes them: a literal, "Ref X" or "GetAtt X.Y"), sorted.
func dims(n node) []string {
	var out []string
	for _, d := range n.items() {
		v := d.get("Value")
		s := v.str()
		if r := v.ref(); r != "" {
			s = "Ref " + r
		} else if g := v.getAtt(); g != "" {
			s = "GetAtt " + g
		}
		out = append(out, d.get("Name").str()+"="+s)
	}
	sort.Strings(out)
	return out
}

// simpleAlarm describes an alarm on one metric that fires above a threshold.
type simpleAlarm struct {
	namespace, metric string
	dims              []string
}

func (a simpleAlarm) String() string {
	return a.namespace + " " + a.metric + " " + strings.Join(a.dims, ",")
}

// findAlarm returns the alarm on exactly this metric that fires on any
// value above 0 (or at 1 or more), and notifies.
func findAlarm(t *testing.T, tpl node, want simpleAlarm) (string, node) {
	t.Helper()
	for id, a := range alarms(tpl) {
		p := a.get("Properties")
		got := simpleAlarm{p.get("Namespace").str(), p.get("MetricName").str(), dims(p.get("Dimensions"))}
		if got.String() != want.String() {
			continue
		}
		th, op := p.get("Threshold").str(), p.get("ComparisonOperator").str()
		if !(th == "0" && op == "GreaterThanThreshold" || th == "1" && op == "GreaterThanOrEqualToThreshold") {
			t.Errorf("%s: %s %s, want > 0", id, op, th)
		}
		if p.get("TreatMissingData").str() != "notBreaching" {
			t.Errorf("%s: TreatMissingData %q, want notBreaching (no data is nothing wrong)", id, p.get("TreatMissingData").str())
		}
		if p.get("AlarmDescription").str() == "" {
			t.Errorf("%s: no AlarmDescription (it is what the mail says)", id)
		}
		checkNotifies(t, id, a)
		return id, a
	}
	t.Errorf("no alarm on %v", want)
	return "", node{}
}

// deadLetterQueues are the queues the stack sends what it could not do to:
// the jobs queue's redrive target, the functions' OnFailure destinations
// and the event rules' dead-letter queues.
func deadLetterQueues(t *testing.T, tpl node) []string {
	t.Helper()
	set := map[string]bool{}
	res := tpl.get("Resources")
	for _, id := range res.keys() {
		r := res.get(id)
		switch r.get("Type").str() {
		case "AWS::SQS::Queue":
			if q := r.get("Properties", "RedrivePolicy", "deadLetterTargetArn").getAtt(); q != "" {
				set[strings.TrimSuffix(q, ".Arn")] = true
			}
		case "AWS::Serverless::Function":
			p := r.get("Properties")
			if q := p.get("EventInvokeConfig", "DestinationConfig", "OnFailure", "Destination").getAtt(); q != "" {
				set[strings.TrimSuffix(q, ".Arn")] = true
			}
			if q := p.get("DeadLetterQueue", "TargetArn").getAtt(); q != "" {
				set[strings.TrimSuffix(q, ".Arn")] = true
			}
			for _, ev := range p.get("Events").keys() {
				if q := p.get("Events", ev, "Properties", "DeadLetterConfig", "Arn").getAtt(); q != "" {
					set[strings.TrimSuffix(q, ".Arn")] = true
				}
			}
		}
	}
	out := slices.Sorted(func(yield func(string) bool) {
		for q := range set {
			if !yield(q) {
				return
			}
		}
	})
	if want := []string{"AsyncFailureQueue", "EventDeadLetterQueue", "JobsDeadLetterQueue"}; !slices.Equal(out, want) {
		t.Errorf("dead-letter queues %v, want %v (update the alarms, the dashboard and this list together)", out, want)
	}
	return out
}

func TestDeadLetterQueueAlarms(t *testing.T) {
	tpl := loadTemplate(t)
	for _, q := range deadLetterQueues(t, tpl) {
		resource(t, tpl, q, "AWS::SQS::Queue")
		findAlarm(t, tpl, simpleAlarm{"AWS/SQS", "ApproximateNumberOfMessagesVisible", []string{"QueueName=GetAtt " + q + ".QueueName"}})
	}
}

func TestFunctionAlarms(t *testing.T) {
	tpl := loadTemplate(t)
	res := tpl.get("Resources")
	var fns []string
	for _, id := range res.keys() {
		if res.get(id, "Type").str() == "AWS::Serverless::Function" {
			fns = append(fns, id)
		}
	}
	if !slices.Equal(slices.Sorted(slices.Values(fns)), slices.Sorted(slices.Values(functionIDs))) {
		t.Errorf("functions %v, want %v", fns, functionIDs)
	}
	for _, id := range fns {
		for _, m := range []string{"Errors", "Throttles"} {
			findAlarm(t, tpl, simpleAlarm{"AWS/Lambda", m, []string{"FunctionName=Ref " + id}})
		}
	}
}

// TestEntryAlarmsMatchTheCode: the Failed and Unprocessed alarms sum the
// metric over every Source the handler writes and the worker's, with the
// namespace, dimensions and names the code uses; the reaper's alarms name
// its metrics and literal dimensions.
func TestEntryAlarmsMatchTheCode(t *testing.T) {
	tpl := loadTemplate(t)
	shape := emfShape(t)
	handler, worker, reaper := codeEmitters(t)
	srcs := sources(t)
	if !slices.Equal(shape.dimensions, []string{"FunctionName", "Source"}) {
		t.Fatalf("EMF dimensions %v: the alarms give FunctionName and Source", shape.dimensions)
	}

	for id, metric := range map[string]string{"FailedEntriesAlarm": "Failed", "UnprocessedEntriesAlarm": "Unprocessed"} {
		if !slices.Contains(handler.names, metric) {
			t.Errorf("%s: the handler writes no metric %q (it writes %v)", id, metric, handler.names)
		}
		if !slices.Contains(worker.names, metric) {
			t.Errorf("%s: the worker writes no metric %q (it writes %v)", id, metric, worker.names)
		}
		a := resource(t, tpl, id, "AWS::CloudWatch::Alarm")
		p := a.get("Properties")
		checkNotifies(t, id, a)
		if p.get("Threshold").str() != "0" || p.get("ComparisonOperator").str() != "GreaterThanThreshold" || p.get("TreatMissingData").str() != "notBreaching" {
			t.Errorf("%s: want > 0, missing data not breaching", id)
		}
		var want, got []string
		for _, s := range srcs {
			want = append(want, fmt.Sprintf("%s %s FunctionName=Ref %s,Source=%s Sum", shape.namespace, metric, functionID, s))
		}
		// A job's chunks: their entries are no request's answer.
		want = append(want, fmt.Sprintf("%s %s FunctionName=Ref %s,Source=%s Sum", shape.namespace, metric, workerID, worker.source))
		sort.Strings(want)
		var ids []string
		var expr string
		for _, q := range p.get("Metrics").items() {
			if e := q.get("Expression").str(); e != "" {
				if expr != "" || q.get("ReturnData").str() != "true" {
					t.Errorf("%s: want one expression, the one returned", id)
				}
				expr = e
				continue
			}
			if q.get("ReturnData").str() != "false" {
				t.Errorf("%s metric %s: ReturnData must be false (the alarm is on the sum)", id, q.get("Id").str())
			}
			ids = append(ids, q.get("Id").str())
			ms := q.get("MetricStat")
			got = append(got, fmt.Sprintf("%s %s %s %s", ms.get("Metric", "Namespace").str(), ms.get("Metric", "MetricName").str(),
				strings.Join(dims(ms.get("Metric", "Dimensions")), ","), ms.get("Stat").str()))
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s metrics:\n got %v\nwant %v", id, got, want)
		}
		for _, q := range ids {
			if !regexp.MustCompile(`\bFILL\(` + regexp.QuoteMeta(q) + `, 0\)`).MatchString(expr) {
				t.Errorf("%s: expression %q does not sum FILL(%s, 0)", id, expr, q)
			}
		}
		if !strings.HasPrefix(expr, "SUM([") {
			t.Errorf("%s: expression %q, want SUM([...])", id, expr)
		}
	}

	reaperDims := []string{"FunctionName=Ref " + reaperID, "Source=" + reaper.source}
	for id, metric := range map[string]string{"JobsStalledAlarm": "JobsStalled", "JobsOverdueAlarm": "JobsOverdue", "ChunksDeadLetteredAlarm": "ChunksDeadLettered"} {
		if !slices.Contains(reaper.names, metric) {
			t.Errorf("%s: the reaper writes no metric %q (it writes %v)", id, metric, reaper.names)
		}
		got, _ := findAlarm(t, tpl, simpleAlarm{shape.namespace, metric, reaperDims})
		if got != id {
			t.Errorf("the alarm on %s is %q, want %s", metric, got, id)
		}
	}
}

// TestJobsStalledFollowsTheParameter: a job without progress is the one
// the reaper marks STALLED after JobStallAfter.
func TestJobsStalledFollowsTheParameter(t *testing.T) {
	tpl := loadTemplate(t)
	if v := tpl.get("Resources", reaperID, "Properties", "Environment", "Variables", "JOB_STALL_AFTER").ref(); v != "JobStallAfter" {
		t.Errorf("%s JOB_STALL_AFTER = !Ref %q, want !Ref JobStallAfter", reaperID, v)
	}
}

// TestJobsOverdueFollowsTheParameter: the job that stays RUNNING longer
// than a parameter allows (issue 16) is the one the reaper counts in
// JobsOverdue after JobMaxRunning, which JobsOverdueAlarm reports; the
// parameter takes what the code's duration check takes.
func TestJobsOverdueFollowsTheParameter(t *testing.T) {
	tpl := loadTemplate(t)
	if v := tpl.get("Resources", reaperID, "Properties", "Environment", "Variables", "JOB_MAX_RUNNING").ref(); v != "JobMaxRunning" {
		t.Errorf("%s JOB_MAX_RUNNING = !Ref %q, want !Ref JobMaxRunning", reaperID, v)
	}
	p := tpl.get("Parameters", "JobMaxRunning")
	re, err := regexp.Compile(p.get("AllowedPattern").str())
	if err != nil {
		t.Fatalf("JobMaxRunning AllowedPattern: %v", err)
	}
	for v, want := range map[string]bool{"24h": true, "90m": true, "1h30m": true, "2.5h": true, "": false, "1d": false, "24": false, "-1h": false} {
		if re.MatchString(v) != want {
			t.Errorf("JobMaxRunning AllowedPattern on %q: %v, want %v", v, !want, want)
		}
		if _, perr := time.ParseDuration(v); want && perr != nil {
			t.Errorf("JobMaxRunning lets %q through, which Go cannot parse", v)
		}
	}
	_, a := findAlarm(t, tpl, simpleAlarm{metrics.Namespace, "JobsOverdue", []string{"FunctionName=Ref " + reaperID, "Source=reaper"}})
	if st := a.get("Properties", "Statistic").str(); st != "Maximum" {
		t.Errorf("JobsOverdueAlarm Statistic %q, want Maximum (each sweep counts every overdue job)", st)
	}
}

// opsCondition evaluates the operations conditions (!And over the others).
func opsCondition(t *testing.T, tpl node, name string, params map[string]string) bool {
	t.Helper()
	c := tpl.get("Conditions", name)
	if !c.ok() {
		t.Fatalf("no condition %s", name)
	}
	if f, arg := c.fn(); f == "And" {
		for _, it := range arg.items() {
			v, err := evalCondition(tpl, it, params)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !v {
				return false
			}
		}
		return true
	}
	v, err := evalCondition(tpl, c, params)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func TestAlarmTopic(t *testing.T) {
	tpl := loadTemplate(t)
	for name, ok := range map[string]map[string]bool{
		"AlarmEmail":    {"": true, "ops@example.com": true, "a.b+alarms@ops.example.co.uk": true, "ops": false, "a b@example.com": false, "a@b@example.com": false},
		"AlarmTopicArn": {"": true, "arn:aws:sns:eu-west-1:123456789012:ops-alarms": true, "arn:aws-us-gov:sns:us-gov-west-1:123456789012:Ops_1": true, "ops-alarms": false, "arn:aws:sqs:eu-west-1:123456789012:q": false},
	} {
		p := tpl.get("Parameters", name)
		if p.get("Type").str() != "String" || p.get("Default").str() != "" || p.get("Default").Tag != "!!str" {
			t.Errorf("parameter %s: want a String defaulting to \"\"", name)
		}
		re, err := regexp.Compile(p.get("AllowedPattern").str())
		if err != nil {
			t.Errorf("parameter %s AllowedPattern: %v", name, err)
			continue
		}
		for v, want := range ok {
			if re.MatchString(v) != want {
				t.Errorf("parameter %s AllowedPattern lets %q through: %v, want %v", name, v, !want, want)
			}
		}
	}

	topic := resource(t, tpl, "AlarmTopic", "AWS::SNS::Topic")
	sub := resource(t, tpl, "AlarmEmailSubscription", "AWS::SNS::Subscription")
	pol := resource(t, tpl, "AlarmTopicPolicy", "AWS::SNS::TopicPolicy")
	if c := topic.get("Condition").str(); c != "CreateAlarmTopic" {
		t.Errorf("AlarmTopic Condition %q, want CreateAlarmTopic", c)
	}
	if c := pol.get("Condition").str(); c != "CreateAlarmTopic" {
		t.Errorf("AlarmTopicPolicy Condition %q, want CreateAlarmTopic", c)
	}
	if c := sub.get("Condition").str(); c != "SubscribeAlarmEmail" {
		t.Errorf("AlarmEmailSubscription Condition %q, want SubscribeAlarmEmail", c)
	}
	sp := sub.get("Properties")
	if sp.get("Protocol").str() != "email" || sp.get("Endpoint").ref() != "AlarmEmail" || sp.get("TopicArn").ref() != "AlarmTopic" {
		t.Error("AlarmEmailSubscription: want Protocol email, Endpoint !Ref AlarmEmail, TopicArn !Ref AlarmTopic")
	}
	for _, c := range []struct {
		email, arn        string
		create, subscribe bool
	}{
		{"", "", true, false},
		{"ops@example.com", "", true, true},
		{"", "arn:aws:sns:eu-west-1:123456789012:ops", false, false},
		{"ops@example.com", "arn:aws:sns:eu-west-1:123456789012:ops", false, false},
	} {
		params := map[string]string{"AlarmEmail": c.email, "AlarmTopicArn": c.arn}
		if got := opsCondition(t, tpl, "CreateAlarmTopic", params); got != c.create {
			t.Errorf("AlarmEmail %q, AlarmTopicArn %q: CreateAlarmTopic %v, want %v", c.email, c.arn, got, c.create)
		}
		if got := opsCondition(t, tpl, "SubscribeAlarmEmail", params); got != c.subscribe {
			t.Errorf("AlarmEmail %q, AlarmTopicArn %q: SubscribeAlarmEmail %v, want %v", c.email, c.arn, got, c.subscribe)
		}
	}

	// Only this account's CloudWatch alarms publish, over TLS.
	var allow, deny bool
	for _, st := range pol.get("Properties", "PolicyDocument", "Statement").items() {
		switch st.get("Effect").str() {
		case "Allow":
			allow = st.get("Principal", "Service").str() == "cloudwatch.amazonaws.com" && slices.Equal(st.get("Action").strs(), []string{"sns:Publish"}) &&
				st.get("Condition", "StringEquals", "aws:SourceAccount").ref() == "AWS::AccountId" && st.get("Condition", "ArnLike", "aws:SourceArn").ok()
			if !allow {
				t.Errorf("AlarmTopicPolicy allows %v: want only cloudwatch.amazonaws.com sns:Publish from this account's alarms", st.Value)
			}
		case "Deny":
			deny = st.get("Condition", "Bool", "aws:SecureTransport").str() == "false"
		}
	}
	if !allow || !deny {
		t.Errorf("AlarmTopicPolicy: allow CloudWatch %v, deny insecure transport %v; want both", allow, deny)
	}

	// Every alarm notifies.
	for id, a := range alarms(tpl) {
		checkNotifies(t, id, a)
	}
	out := tpl.get("Outputs", "AlarmTopic", "Value")
	if f, _ := out.fn(); f != "If" {
		t.Error("no output AlarmTopic giving the topic the alarms notify")
	}
}

// TestAlarmsNamedAsTheReadme: every alarm has a name of the stack's
// (!Sub ${AWS::StackName}-…), so that two stacks in one account keep theirs
// apart and the mail names the stack, and the README's alarm table lists it
// as <stack>-… (the function alarms as <stack>-<Function>-…).
func TestAlarmsNamedAsTheReadme(t *testing.T) {
	tpl := loadTemplate(t)
	readme, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for id, a := range alarms(tpl) {
		f, arg := a.get("Properties", "AlarmName").fn()
		name := arg.str()
		if f != "Sub" || !strings.HasPrefix(name, "${AWS::StackName}-") {
			t.Errorf("%s AlarmName: want !Sub ${AWS::StackName}-…", id)
			continue
		}
		if other, ok := seen[name]; ok {
			t.Errorf("%s and %s are both named %s", id, other, name)
		}
		seen[name] = id
		shown := "<stack>-" + strings.TrimPrefix(name, "${AWS::StackName}-")
		generic := shown
		for _, fn := range functionIDs {
			generic = strings.Replace(generic, "-"+fn+"-", "-<Function>-", 1)
		}
		if !bytes.Contains(readme, []byte("| `"+shown+"` |")) && !bytes.Contains(readme, []byte("| `"+generic+"` ")) {
			t.Errorf("%s (%s): the README's alarm table has no row `%s`", id, name, shown)
		}
	}
}
