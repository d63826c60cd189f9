package ssmlocal

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// inventoryOpts has an explicit inventory: node1/node2 Linux online, winID
// Windows, node3 terminated; anything else is unmanaged.
func inventoryOpts() Options {
	o := DefaultOptions()
	o.Nodes = []Node{
		{ID: node1, PlatformType: "Linux", State: "Online"},
		{ID: node2, PlatformType: "Linux", State: "ConnectionLost"},
		{ID: winID, PlatformType: "Windows", State: "Online"},
		{ID: node3, PlatformType: "Linux", State: "Terminated"},
	}
	return o
}

func legacy(doc, node string) E {
	return E{Name: aws.String(doc), InstanceId: aws.String(node)}
}

// TestSemanticFailures: each entry passes the model's constraints but fails
// a semantic check, reported in Failed with Fault Client and a message that
// says what is wrong; the call itself succeeds.
func TestSemanticFailures(t *testing.T) {
	tests := []struct {
		name  string
		entry func() E
		want  string // substring of Failed[0].Message; "" means success
	}{
		{"valid shell", func() E { return shellEntry(node1) }, ""},
		{"valid legacy", func() E { return legacy("AWS-UpdateSSMAgent", node1) }, ""},
		{"connection lost node accepted", func() E { return shellEntry(node2) }, ""},
		{"unknown document", func() E { e := shellEntry(node1); e.Name = aws.String("No-Such-Doc"); return e }, "Document No-Such-Doc does not exist"},
		{"unknown version", func() E { e := shellEntry(node1); e.DocumentVersion = aws.String("9"); return e }, "has no version 9"},
		{"arn name", func() E {
			e := shellEntry(node1)
			e.Name = aws.String("arn:aws:ssm:us-east-1:123456789012:document/AWS-RunShellScript")
			return e
		}, ""},
		{"instanceId+AssociationName", func() E { e := legacy("AWS-UpdateSSMAgent", node1); e.AssociationName = aws.String("abc"); return e }, "can't use AssociationName"},
		{"instanceId+DocumentVersion", func() E { e := legacy("AWS-UpdateSSMAgent", node1); e.DocumentVersion = aws.String("1"); return e }, "can't use DocumentVersion"},
		{"instanceId+MaxErrors", func() E { e := legacy("AWS-UpdateSSMAgent", node1); e.MaxErrors = aws.String("1"); return e }, "can't use MaxErrors"},
		{"instanceId+MaxConcurrency", func() E { e := legacy("AWS-UpdateSSMAgent", node1); e.MaxConcurrency = aws.String("1"); return e }, "can't use MaxConcurrency"},
		{"instanceId+OutputLocation", func() E {
			e := legacy("AWS-UpdateSSMAgent", node1)
			e.OutputLocation = &types.InstanceAssociationOutputLocation{S3Location: &types.S3OutputLocation{OutputS3BucketName: aws.String("bucket")}}
			return e
		}, "can't use OutputLocation"},
		{"instanceId+ScheduleExpression", func() E {
			e := legacy("AWS-UpdateSSMAgent", node1)
			e.ScheduleExpression = aws.String("rate(1 day)")
			return e
		}, "can't use ScheduleExpression"},
		{"instanceId+Targets", func() E { e := shellEntry(node1); e.InstanceId = aws.String(node2); return e }, "InstanceId can't be combined with Targets"},
		{"instanceId schema 2.2", func() E {
			e := legacy("AWS-RunPatchBaseline", node1)
			e.Parameters = map[string][]string{"Operation": {"Scan"}}
			return e
		}, "Document schema version, 2.2, is not supported by association that is created with instance id"},
		{"no target", func() E { e := shellEntry(node1); e.Targets = nil; return e }, "Specify InstanceId or Targets"},
		{"unmanaged node", func() E { return shellEntry("i-0fffffffffffffff0") }, "is not a managed node"},
		{"unmanaged legacy", func() E { return legacy("AWS-UpdateSSMAgent", "i-0fffffffffffffff0") }, "is not a managed node"},
		{"terminated node", func() E { return shellEntry(node3) }, "is in state Terminated"},
		{"windows doc on linux", func() E { e := shellEntry(node1); e.Name = aws.String("AWS-RunPowerShellScript"); return e }, "does not support platform type Linux"},
		{"linux doc on windows", func() E { return shellEntry(winID) }, "does not support platform type Windows"},
		{"windows doc on windows", func() E { e := shellEntry(winID); e.Name = aws.String("AWS-RunPowerShellScript"); return e }, ""},
		{"missing commands", func() E { e := shellEntry(node1); e.Parameters = nil; return e }, "requires parameter commands"},
		{"missing Operation", func() E {
			e := shellEntry(node1)
			e.Name = aws.String("AWS-RunPatchBaseline")
			e.Parameters = nil
			return e
		}, "requires parameter Operation"},
		{"bad Operation value", func() E {
			e := shellEntry(node1)
			e.Name = aws.String("AWS-RunPatchBaseline")
			e.Parameters = map[string][]string{"Operation": {"Explode"}}
			return e
		}, "must be one of: Scan, Install"},
		{"configure package missing name", func() E {
			e := shellEntry(node1)
			e.Name = aws.String("AWS-ConfigureAWSPackage")
			e.Parameters = map[string][]string{"action": {"Install"}}
			return e
		}, "requires parameter name"},
		{"configure package valid", func() E {
			e := shellEntry(node1)
			e.Name = aws.String("AWS-ConfigureAWSPackage")
			e.Parameters = map[string][]string{"action": {"Install"}, "name": {"AmazonCloudWatchAgent"}}
			return e
		}, ""},
		{"unknown parameter", func() E { e := shellEntry(node1); e.Parameters["bogus"] = []string{"x"}; return e }, "Parameters bogus are not defined by document AWS-RunShellScript"},
		{"inventory no params", func() E {
			e := shellEntry(node1)
			e.Name = aws.String("AWS-GatherSoftwareInventory")
			e.Parameters = nil
			return e
		}, ""},
		{"ansible missing source", func() E {
			e := shellEntry(node1)
			e.Name = aws.String("AWS-ApplyAnsiblePlaybooks")
			e.Parameters = nil
			return e
		}, "requires parameter SourceType"},
		{"schedule rate ok", func() E { e := shellEntry(node1); e.ScheduleExpression = aws.String("rate(30 minutes)"); return e }, ""},
		{"schedule too frequent", func() E { e := shellEntry(node1); e.ScheduleExpression = aws.String("rate(10 minutes)"); return e }, "at least 30 minutes"},
		{"schedule singular", func() E { e := shellEntry(node1); e.ScheduleExpression = aws.String("rate(1 hours)"); return e }, `unit must be "hour"`},
		{"schedule cron both days", func() E { e := shellEntry(node1); e.ScheduleExpression = aws.String("cron(0 2 * * SUN *)"); return e }, "must be '?'"},
		{"schedule cron ok", func() E { e := shellEntry(node1); e.ScheduleExpression = aws.String("cron(0 2 ? * SUN *)"); return e }, ""},
		{"apply at cron with rate", func() E {
			e := shellEntry(node1)
			e.ScheduleExpression = aws.String("rate(1 day)")
			e.ApplyOnlyAtCronInterval = true
			return e
		}, "ApplyOnlyAtCronInterval needs a cron"},
		{"schedule offset without cron interval", func() E {
			e := shellEntry(node1)
			e.ScheduleExpression = aws.String("cron(0 2 ? * SUN *)")
			e.ScheduleOffset = aws.Int32(2)
			return e
		}, "ScheduleOffset needs"},
		{"schedule offset ok", func() E {
			e := shellEntry(node1)
			e.ScheduleExpression = aws.String("cron(0 2 ? * SUN *)")
			e.ApplyOnlyAtCronInterval = true
			e.ScheduleOffset = aws.Int32(2)
			return e
		}, ""},
		{"targets with target maps", func() E { e := shellEntry(node1); e.TargetMaps = []map[string][]string{{"k": {"v"}}}; return e }, "Targets and TargetMaps can't be specified together"},
		{"unsupported target key", func() E { e := shellEntry(node1); e.Targets[0].Key = aws.String("Colour"); return e }, "Unsupported Target Type: Colour"},
		{"tag target", func() E {
			e := shellEntry(node1)
			e.Targets[0] = types.Target{Key: aws.String("tag:Env"), Values: []string{"prod"}}
			return e
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, _ := newEnv(t, inventoryOpts())
			out, err := batch(t, c, tt.entry())
			if err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if tt.want == "" {
				if len(out.Failed) != 0 || len(out.Successful) != 1 {
					t.Fatalf("want success, got Failed %+v", failedMessages(out))
				}
				if n := len(s.Ledger()); n != 1 {
					t.Fatalf("ledger has %d associations, want 1", n)
				}
				return
			}
			if len(out.Failed) != 1 || len(out.Successful) != 0 {
				t.Fatalf("want one Failed entry, got %d Successful, Failed %v", len(out.Successful), failedMessages(out))
			}
			f := out.Failed[0]
			if f.Fault != types.FaultClient || !strings.Contains(aws.ToString(f.Message), tt.want) {
				t.Fatalf("Failed = %s %q, want Client %q", f.Fault, aws.ToString(f.Message), tt.want)
			}
			if f.Entry == nil || aws.ToString(f.Entry.Name) != aws.ToString(tt.entry().Name) {
				t.Fatalf("Failed entry not echoed: %+v", f.Entry)
			}
			if n := len(s.Ledger()); n != 0 {
				t.Fatalf("ledger has %d associations after a failure", n)
			}
		})
	}
}

func failedMessages(out *ssm.CreateAssociationBatchOutput) []string {
	var ms []string
	for _, f := range out.Failed {
		ms = append(ms, string(f.Fault)+": "+aws.ToString(f.Message))
	}
	return ms
}

// TestSecondAssociation: only an entry in the legacy InstanceId form is
// refused with exactly "Association Already Exists", when an active
// association of the document covers its node in either form. An entry in
// the Targets form is always created, even identical to an existing one,
// and counted as a double when it covers what an active association with
// the same document and AssociationName covers.
func TestSecondAssociation(t *testing.T) {
	agent := func(node string) E { // AWS-UpdateSSMAgent (schema 1.2) by InstanceIds
		e := shellEntry(node)
		e.Name, e.Parameters = aws.String("AWS-UpdateSSMAgent"), nil
		return e
	}
	named := func(e E, name string) E { e.AssociationName = aws.String(name); return e }
	patch := func(op string) E {
		e := shellEntry(node1)
		e.Name, e.Parameters = aws.String("AWS-RunPatchBaseline"), map[string][]string{"Operation": {op}}
		return e
	}
	tag := func(values ...string) E {
		e := shellEntry(node1)
		e.Targets = []types.Target{{Key: aws.String("tag:Env"), Values: values}}
		return e
	}
	twoTargets := func(first, second types.Target) E {
		e := shellEntry(node1)
		e.Targets = []types.Target{first, second}
		return e
	}
	env := types.Target{Key: aws.String("tag:Env"), Values: []string{"prod", "dev"}}
	team := types.Target{Key: aws.String("tag:Team"), Values: []string{"a"}}
	group := func(name string) E {
		e := shellEntry(node1)
		e.Targets = []types.Target{{Key: aws.String("resource-groups:Name"), Values: []string{name}}}
		return e
	}
	maps := func(values ...string) E {
		e := shellEntry(node1)
		e.Targets, e.TargetMaps = nil, []map[string][]string{{"tag:Env": values}}
		return e
	}
	located := func(regions ...string) E {
		e := tag("prod")
		e.TargetLocations = []types.TargetLocation{{Accounts: []string{"123456789012"}, Regions: regions}}
		return e
	}
	tests := []struct {
		name          string
		first, second E
		refused       bool
		doubles       int
	}{
		{"InstanceId after InstanceId", legacy("AWS-UpdateSSMAgent", node1), legacy("AWS-UpdateSSMAgent", node1), true, 0},
		{"InstanceId after InstanceIds target", agent(node1), legacy("AWS-UpdateSSMAgent", node1), true, 0},
		{"InstanceId after a larger target", func() E { e := agent(node2); e.Targets[0].Values = []string{node2, node1}; return e }(),
			legacy("AWS-UpdateSSMAgent", node1), true, 0},
		{"InstanceId after a named target association", named(agent(node1), "agent"), legacy("AWS-UpdateSSMAgent", node1), true, 0},
		{"InstanceId, other document", shellEntry(node1), legacy("AWS-UpdateSSMAgent", node1), false, 0},
		{"InstanceId, other node", legacy("AWS-UpdateSSMAgent", node2), legacy("AWS-UpdateSSMAgent", node1), false, 0},

		{"same target twice", shellEntry(node1), shellEntry(node1), false, 1},
		{"InstanceIds target after InstanceId", legacy("AWS-UpdateSSMAgent", node1), agent(node1), false, 1},
		{"one node of two covered", shellEntry(node1), func() E { e := shellEntry(node2); e.Targets[0].Values = []string{node1, node2}; return e }(), false, 1},
		{"two nodes covered", func() E { e := shellEntry(node2); e.Targets[0].Values = []string{node2, node1}; return e }(),
			func() E { e := shellEntry(node1); e.Targets[0].Values = []string{node1, node2}; return e }(), false, 2},
		{"same name twice", named(shellEntry(node1), "run"), named(shellEntry(node1), "run"), false, 1},
		{"other AssociationName", named(patch("Scan"), "scan"), named(patch("Install"), "install"), false, 0},
		{"name then no name", named(shellEntry(node1), "run"), shellEntry(node1), false, 0},
		{"name \"null\" then no name", named(shellEntry(node1), "null"), shellEntry(node1), false, 0},
		{"other parameters, no names", patch("Scan"), patch("Install"), false, 1},
		{"other node", shellEntry(node1), shellEntry(node2), false, 0},
		{"other document", shellEntry(node1), agent(node1), false, 0},
		{"same tags reordered", tag("prod", "dev"), tag("dev", "prod"), false, 1},
		{"same targets reordered", twoTargets(env, team), twoTargets(team, env), false, 1},
		{"other tags", tag("prod"), tag("test"), false, 0},
		{"tags, other name", named(tag("prod"), "a-1"), named(tag("prod"), "b-1"), false, 0},
		{"same resource group", group("web"), group("web"), false, 1},
		{"same target maps reordered", maps("a", "b"), maps("b", "a"), false, 1},
		{"same target locations", located("us-east-1", "eu-west-1"), located("eu-west-1", "us-east-1"), false, 1},
		{"other target locations", located("us-east-1"), located("eu-west-1"), false, 0},
		{"all nodes twice", func() E { e := shellEntry("*"); return e }(), func() E { e := shellEntry("*"); return e }(), false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, _ := newEnv(t, DefaultOptions())
			if out, err := batch(t, c, tt.first); err != nil || len(out.Successful) != 1 {
				t.Fatalf("first: %v %v", err, failedMessages(out))
			}
			out, err := batch(t, c, tt.second)
			if err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			if tt.refused {
				if len(out.Failed) != 1 || aws.ToString(out.Failed[0].Message) != "Association Already Exists" || out.Failed[0].Fault != types.FaultClient {
					t.Fatalf("second: want Association Already Exists, got %v", failedMessages(out))
				}
				if st.DuplicatesRefused != 1 || st.AssociationsCreated != 1 || st.DoubleAssociations != 0 {
					t.Fatalf("stats %+v", st)
				}
				return
			}
			if len(out.Successful) != 1 {
				t.Fatalf("second refused: %v", failedMessages(out))
			}
			if st.AssociationsCreated != 2 || st.ActiveAssociations != 2 || st.DuplicatesRefused != 0 || st.DoubleAssociations != tt.doubles {
				t.Fatalf("stats %+v, want %d doubles; doubles %+v", st, tt.doubles, s.Doubles())
			}
			ds := s.Doubles()
			if len(ds) != tt.doubles {
				t.Fatalf("Doubles() = %+v, want %d", ds, tt.doubles)
			}
			ids := []string{s.Ledger()[0].AssociationID, aws.ToString(out.Successful[0].AssociationId)}
			for _, d := range ds {
				if d.Document != docName(aws.ToString(tt.second.Name)) || d.AssociationName != aws.ToString(tt.second.AssociationName) ||
					!slices.Equal(d.AssociationIDs, ids) {
					t.Fatalf("double %+v, want document %s, name %q, IDs %v", d, aws.ToString(tt.second.Name), aws.ToString(tt.second.AssociationName), ids)
				}
				if (d.Node == "") != (len(entryNodesOf(tt.second)) == 0) {
					t.Fatalf("double %+v: node set for a double by targets or the reverse", d)
				}
			}
		})
	}
}

// entryNodesOf lists the node IDs of an SDK entry, as the emulator sees them.
func entryNodesOf(e E) []string {
	var out []string
	if e.InstanceId != nil {
		out = append(out, *e.InstanceId)
	}
	for _, t := range e.Targets {
		if aws.ToString(t.Key) == "InstanceIds" {
			out = append(out, slices.DeleteFunc(slices.Clone(t.Values), func(v string) bool { return v == "*" })...)
		}
	}
	return out
}

// TestDoubleAfterDelete: only an ACTIVE association makes a double; once it
// is deleted, the same target association is new again.
func TestDoubleAfterDelete(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	out, err := batch(t, c, shellEntry(node1))
	if err != nil || len(out.Successful) != 1 {
		t.Fatalf("first: %v", err)
	}
	if _, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{AssociationId: out.Successful[0].AssociationId}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if out, err := batch(t, c, shellEntry(node1)); err != nil || len(out.Successful) != 1 {
			t.Fatalf("again: %v %v", err, failedMessages(out))
		}
	}
	if st := s.Stats(); st.DoubleAssociations != 1 || st.ActiveAssociations != 2 {
		t.Fatalf("stats %+v, doubles %+v", st, s.Doubles())
	}
	// A double stays counted after the association is deleted, and Reset
	// forgets it.
	ds := s.Doubles()
	if _, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{AssociationId: aws.String(ds[0].AssociationIDs[1])}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.DoubleAssociations != 1 {
		t.Fatalf("stats %+v", st)
	}
	s.Reset()
	if st := s.Stats(); st.DoubleAssociations != 0 || len(s.Doubles()) != 0 {
		t.Fatalf("after reset %+v", st)
	}
}

// TestDoubleInOneCall: two identical non-node entries in one call are
// created, the second counted as a double. (Node IDs twice in one call are
// a DuplicateInstanceId of the whole call instead.)
func TestDoubleInOneCall(t *testing.T) {
	s, c, _ := newEnv(t, DefaultOptions())
	tag := shellEntry(node1)
	tag.Targets = []types.Target{{Key: aws.String("tag:Env"), Values: []string{"prod"}}}
	out, err := batch(t, c, tag, tag)
	if err != nil || len(out.Successful) != 2 {
		t.Fatalf("%v %v", err, failedMessages(out))
	}
	if st := s.Stats(); st.DoubleAssociations != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAlreadyExistsSingle: CreateAssociation reports the same as the
// modeled AssociationAlreadyExists error.
func TestAlreadyExistsSingle(t *testing.T) {
	_, c, _ := newEnv(t, DefaultOptions())
	in := &ssm.CreateAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1)}
	if _, err := c.CreateAssociation(ctx(t), in); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateAssociation(ctx(t), in)
	var ae *types.AssociationAlreadyExists
	if !errors.As(err, &ae) {
		t.Fatalf("want AssociationAlreadyExists, got %v", err)
	}
	// Semantic failures of the single form are the modeled exceptions.
	_, err = c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("Nope-Doc"), InstanceId: aws.String(node1)})
	var id *types.InvalidDocument
	if !errors.As(err, &id) || !strings.Contains(id.ErrorMessage(), "Nope-Doc") {
		t.Fatalf("want InvalidDocument with a message, got %v", err)
	}
}

// TestAssociationLimit: entries beyond MaxAssociations fail per entry.
func TestAssociationLimit(t *testing.T) {
	s, c, _ := newEnv(t, Options{MaxAssociations: 2})
	out, err := batch(t, c, shellEntry(node1), shellEntry(node2), shellEntry(node3))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 2 || len(out.Failed) != 1 || !strings.Contains(aws.ToString(out.Failed[0].Message), "Association limit exceeded") {
		t.Fatalf("got %d successful, failed %v", len(out.Successful), failedMessages(out))
	}
	// Deleting one frees a slot.
	if _, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{AssociationId: out.Successful[0].AssociationId}); err != nil {
		t.Fatal(err)
	}
	if out, err := batch(t, c, shellEntry(node3)); err != nil || len(out.Successful) != 1 {
		t.Fatalf("after delete: %v %v", err, failedMessages(out))
	}
	if st := s.Stats(); st.ActiveAssociations != 2 || st.AssociationsDeleted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDuplicateInstanceID: a node twice in one call fails the whole call,
// counting InstanceId and InstanceIds target values alike.
func TestDuplicateInstanceID(t *testing.T) {
	tests := []struct {
		name    string
		entries []E
	}{
		{"InstanceId twice", []E{legacy("AWS-UpdateSSMAgent", node1), legacy("AWS-RunShellScript", node1)}},
		{"InstanceId and target", []E{legacy("AWS-UpdateSSMAgent", node1), shellEntry(node1)}},
		{"two targets", []E{shellEntry(node2), func() E { e := shellEntry(node1); e.Targets[0].Values = []string{node3, node2}; return e }()}},
		{"twice in one target", []E{func() E { e := shellEntry(node1); e.Targets[0].Values = []string{node1, node1}; return e }()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, _ := newEnv(t, DefaultOptions())
			_, err := batch(t, c, tt.entries...)
			var d *types.DuplicateInstanceId
			if !errors.As(err, &d) {
				t.Fatalf("want DuplicateInstanceId, got %v", err)
			}
			if len(s.Ledger()) != 0 {
				t.Fatal("a refused call created associations")
			}
		})
	}
}
