package ssmlocal

import (
	"errors"
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

// TestAlreadyExists: a (document, node) pair already associated fails with
// exactly "Association Already Exists", whichever way the node is named;
// identical non-node targets count as the same association.
func TestAlreadyExists(t *testing.T) {
	tag := func() E {
		e := shellEntry(node1)
		e.Targets = []types.Target{{Key: aws.String("tag:Env"), Values: []string{"prod", "dev"}}}
		return e
	}
	tagReordered := func() E {
		e := tag()
		e.Targets[0].Values = []string{"dev", "prod"}
		return e
	}
	tests := []struct {
		name          string
		first, second E
		exists        bool
	}{
		{"same target form", shellEntry(node1), shellEntry(node1), true},
		{"InstanceId then InstanceIds", legacy("AWS-UpdateSSMAgent", node1), func() E {
			e := shellEntry(node1)
			e.Name, e.Parameters = aws.String("AWS-UpdateSSMAgent"), nil
			return e
		}(), true},
		{"InstanceIds then InstanceId", func() E {
			e := shellEntry(node1)
			e.Name, e.Parameters = aws.String("AWS-UpdateSSMAgent"), nil
			return e
		}(), legacy("AWS-UpdateSSMAgent", node1), true},
		{"node within a larger target", func() E {
			e := shellEntry(node1)
			e.Targets[0].Values = []string{node2, node1}
			return e
		}(), shellEntry(node1), true},
		{"other document", shellEntry(node1), legacy("AWS-UpdateSSMAgent", node1), false},
		{"other node", shellEntry(node1), shellEntry(node2), false},
		{"same tags", tag(), tagReordered(), true},
		{"other tags", tag(), func() E { e := tag(); e.Targets[0].Values = []string{"test"}; return e }(), false},
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
			if !tt.exists {
				if len(out.Successful) != 1 {
					t.Fatalf("second refused: %v", failedMessages(out))
				}
				return
			}
			if len(out.Failed) != 1 || aws.ToString(out.Failed[0].Message) != "Association Already Exists" || out.Failed[0].Fault != types.FaultClient {
				t.Fatalf("second: want Association Already Exists, got %v", failedMessages(out))
			}
			if st := s.Stats(); st.DuplicatesRefused != 1 || st.AssociationsCreated != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
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
