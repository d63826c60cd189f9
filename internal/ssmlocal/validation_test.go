package ssmlocal

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

type entryMut = func(e *types.CreateAssociationBatchRequestEntry)

func targetLocation(f func(tl *types.TargetLocation)) entryMut {
	return func(e *types.CreateAssociationBatchRequestEntry) {
		tl := types.TargetLocation{Accounts: []string{"123456789012"}, Regions: []string{"us-east-1"}}
		f(&tl)
		e.TargetLocations = []types.TargetLocation{tl}
	}
}

func s3(region, bucket, prefix *string) entryMut {
	return func(e *types.CreateAssociationBatchRequestEntry) {
		e.OutputLocation = &types.InstanceAssociationOutputLocation{S3Location: &types.S3OutputLocation{
			OutputS3Region: region, OutputS3BucketName: bucket, OutputS3KeyPrefix: prefix}}
	}
}

func alarms(names ...string) *types.AlarmConfiguration {
	ac := &types.AlarmConfiguration{}
	for _, n := range names {
		ac.Alarms = append(ac.Alarms, types.Alarm{Name: aws.String(n)})
	}
	return ac
}

// TestEntryConstraints sends one valid and at least one invalid value for
// every constrained member of CreateAssociationBatchRequestEntry through the
// real SDK client. Valid values must not fail the call (the entry may still
// fail a semantic check); invalid ones must fail it with ValidationException
// naming the member path.
func TestEntryConstraints(t *testing.T) {
	const p = "entries.1.member."
	tests := []struct {
		name string
		mut  entryMut
		path string // "" means the value is valid
	}{
		{"name valid", func(e *E) { e.Name = aws.String("AWS-RunShellScript") }, ""},
		{"name arn valid", func(e *E) { e.Name = aws.String("arn:aws:ssm:us-east-1:123456789012:document/My-Doc") }, ""},
		{"name too short", func(e *E) { e.Name = aws.String("ab") }, p + "name"},
		{"name bad char", func(e *E) { e.Name = aws.String("bad name!") }, p + "name"},
		{"name too long", func(e *E) { e.Name = aws.String(rep("a", 129)) }, p + "name"},

		{"instanceId 8 valid", func(e *E) {
			e.Targets = nil
			e.Name = aws.String("AWS-UpdateSSMAgent")
			e.Parameters = nil
			e.InstanceId = aws.String("i-12345678")
		}, ""},
		{"instanceId 17 valid", func(e *E) { e.Targets = nil; e.InstanceId = aws.String("i-0471e04240EXAMPLE") }, ""},
		{"instanceId mi valid", func(e *E) { e.Targets = nil; e.InstanceId = aws.String("mi-0123456789abcdef0") }, ""},
		{"instanceId short", func(e *E) { e.Targets = nil; e.InstanceId = aws.String("i-123") }, p + "instanceId"},
		{"instanceId 9", func(e *E) { e.Targets = nil; e.InstanceId = aws.String("i-123456789") }, p + "instanceId"},
		{"instanceId prefix", func(e *E) { e.Targets = nil; e.InstanceId = aws.String("x-12345678") }, p + "instanceId"},

		{"automationTargetParameterName valid", func(e *E) { e.AutomationTargetParameterName = aws.String("InstanceId") }, ""},
		{"automationTargetParameterName empty", func(e *E) { e.AutomationTargetParameterName = aws.String("") }, p + "automationTargetParameterName"},
		{"automationTargetParameterName long", func(e *E) { e.AutomationTargetParameterName = aws.String(rep("a", 51)) }, p + "automationTargetParameterName"},

		{"documentVersion $LATEST", func(e *E) { e.DocumentVersion = aws.String("$LATEST") }, ""},
		{"documentVersion $DEFAULT", func(e *E) { e.DocumentVersion = aws.String("$DEFAULT") }, ""},
		{"documentVersion 1", func(e *E) { e.DocumentVersion = aws.String("1") }, ""},
		{"documentVersion 0", func(e *E) { e.DocumentVersion = aws.String("0") }, p + "documentVersion"},
		{"documentVersion 01", func(e *E) { e.DocumentVersion = aws.String("01") }, p + "documentVersion"},
		{"documentVersion word", func(e *E) { e.DocumentVersion = aws.String("latest") }, p + "documentVersion"},

		{"targets 5", func(e *E) {
			e.Targets = append(e.Targets, types.Target{Key: aws.String("tag:a"), Values: []string{"1"}}, types.Target{Key: aws.String("tag:b"), Values: []string{"1"}},
				types.Target{Key: aws.String("tag:c"), Values: []string{"1"}}, types.Target{Key: aws.String("tag:d"), Values: []string{"1"}})
		}, ""},
		{"targets 6", func(e *E) {
			for i := range 5 {
				e.Targets = append(e.Targets, types.Target{Key: aws.String(fmt.Sprintf("tag:k%d", i)), Values: []string{"v"}})
			}
		}, p + "targets"},
		{"target key tag valid", func(e *E) { e.Targets[0].Key = aws.String("tag:Env") }, ""},
		{"target key resource group", func(e *E) { e.Targets[0].Key = aws.String("resource-groups:Name") }, ""},
		{"target key empty", func(e *E) { e.Targets[0].Key = aws.String("") }, p + "targets.1.member.key"},
		{"target key long", func(e *E) { e.Targets[0].Key = aws.String("tag:" + rep("k", 160)) }, p + "targets.1.member.key"},
		{"target key bad char", func(e *E) { e.Targets[0].Key = aws.String("tag:bad!") }, p + "targets.1.member.key"},
		{"target values 50", func(e *E) { e.Targets[0] = types.Target{Key: aws.String("tag:Env"), Values: repList("x", 50)} }, ""},
		{"target values 51", func(e *E) { e.Targets[0] = types.Target{Key: aws.String("tag:Env"), Values: repList("x", 51)} }, p + "targets.1.member.values"},

		{"schedule valid", func(e *E) { e.ScheduleExpression = aws.String("rate(30 minutes)") }, ""},
		{"schedule empty", func(e *E) { e.ScheduleExpression = aws.String("") }, p + "scheduleExpression"},
		{"schedule long", func(e *E) { e.ScheduleExpression = aws.String(rep("x", 257)) }, p + "scheduleExpression"},

		{"s3 valid", s3(aws.String("us-east-1"), aws.String("abc"), aws.String(rep("p", 500))), ""},
		{"s3 region short", s3(aws.String("us"), nil, nil), p + "outputLocation.s3Location.outputS3Region"},
		{"s3 region long", s3(aws.String(rep("r", 21)), nil, nil), p + "outputLocation.s3Location.outputS3Region"},
		{"s3 bucket short", s3(nil, aws.String("ab"), nil), p + "outputLocation.s3Location.outputS3BucketName"},
		{"s3 bucket long", s3(nil, aws.String(rep("b", 64)), nil), p + "outputLocation.s3Location.outputS3BucketName"},
		{"s3 prefix long", s3(nil, nil, aws.String(rep("p", 501))), p + "outputLocation.s3Location.outputS3KeyPrefix"},

		{"associationName valid", func(e *E) { e.AssociationName = aws.String("my-assoc_1.0") }, ""},
		{"associationName short", func(e *E) { e.AssociationName = aws.String("ab") }, p + "associationName"},
		{"associationName space", func(e *E) { e.AssociationName = aws.String("has space") }, p + "associationName"},
		{"associationName long", func(e *E) { e.AssociationName = aws.String(rep("a", 129)) }, p + "associationName"},

		{"maxErrors 0", func(e *E) { e.MaxErrors = aws.String("0") }, ""},
		{"maxErrors 10%", func(e *E) { e.MaxErrors = aws.String("10%") }, ""},
		{"maxErrors 100%", func(e *E) { e.MaxErrors = aws.String("100%") }, ""},
		{"maxErrors 5%", func(e *E) { e.MaxErrors = aws.String("5%") }, ""},
		{"maxErrors 101%", func(e *E) { e.MaxErrors = aws.String("101%") }, p + "maxErrors"},
		{"maxErrors 01", func(e *E) { e.MaxErrors = aws.String("01") }, p + "maxErrors"},
		{"maxErrors empty", func(e *E) { e.MaxErrors = aws.String("") }, p + "maxErrors"},
		{"maxErrors long", func(e *E) { e.MaxErrors = aws.String("12345678") }, p + "maxErrors"},

		{"maxConcurrency 1", func(e *E) { e.MaxConcurrency = aws.String("1") }, ""},
		{"maxConcurrency 50%", func(e *E) { e.MaxConcurrency = aws.String("50%") }, ""},
		{"maxConcurrency 0", func(e *E) { e.MaxConcurrency = aws.String("0") }, p + "maxConcurrency"},
		{"maxConcurrency 0%", func(e *E) { e.MaxConcurrency = aws.String("0%") }, p + "maxConcurrency"},
		{"maxConcurrency long", func(e *E) { e.MaxConcurrency = aws.String("12345678") }, p + "maxConcurrency"},

		{"complianceSeverity valid", func(e *E) { e.ComplianceSeverity = types.AssociationComplianceSeverityHigh }, ""},
		{"complianceSeverity bad", func(e *E) { e.ComplianceSeverity = "SEVERE" }, p + "complianceSeverity"},
		{"syncCompliance valid", func(e *E) { e.SyncCompliance = types.AssociationSyncComplianceManual }, ""},
		{"syncCompliance bad", func(e *E) { e.SyncCompliance = "SOMETIMES" }, p + "syncCompliance"},

		{"targetLocations valid", targetLocation(func(*types.TargetLocation) {}), ""},
		{"targetLocations empty", func(e *E) { e.TargetLocations = []types.TargetLocation{} }, p + "targetLocations"},
		{"targetLocations 101", func(e *E) {
			e.TargetLocations = make([]types.TargetLocation, 101)
		}, p + "targetLocations"},
		{"accounts empty", targetLocation(func(tl *types.TargetLocation) { tl.Accounts = []string{} }), p + "targetLocations.1.member.accounts"},
		{"accounts 51", targetLocation(func(tl *types.TargetLocation) { tl.Accounts = repList("123456789012", 51) }), p + "targetLocations.1.member.accounts"},
		{"regions 51", targetLocation(func(tl *types.TargetLocation) { tl.Regions = repList("us-east-1", 51) }), p + "targetLocations.1.member.regions"},
		{"executionRoleName valid", targetLocation(func(tl *types.TargetLocation) {
			tl.ExecutionRoleName = aws.String("AWS-SystemsManager-AutomationExecutionRole")
		}), ""},
		{"executionRoleName bad", targetLocation(func(tl *types.TargetLocation) { tl.ExecutionRoleName = aws.String("bad role!") }), p + "targetLocations.1.member.executionRoleName"},
		{"executionRoleName long", targetLocation(func(tl *types.TargetLocation) { tl.ExecutionRoleName = aws.String(rep("r", 65)) }), p + "targetLocations.1.member.executionRoleName"},
		{"excludeAccounts valid", targetLocation(func(tl *types.TargetLocation) { tl.ExcludeAccounts = []string{"123456789012", "ou-abcd-12345678"} }), ""},
		{"excludeAccounts bad", targetLocation(func(tl *types.TargetLocation) { tl.ExcludeAccounts = []string{"12345"} }), p + "targetLocations.1.member.excludeAccounts"},
		{"excludeAccounts empty", targetLocation(func(tl *types.TargetLocation) { tl.ExcludeAccounts = []string{} }), p + "targetLocations.1.member.excludeAccounts"},
		{"targetLocationMaxConcurrency valid", targetLocation(func(tl *types.TargetLocation) { tl.TargetLocationMaxConcurrency = aws.String("10%") }), ""},
		{"targetLocationMaxConcurrency bad", targetLocation(func(tl *types.TargetLocation) { tl.TargetLocationMaxConcurrency = aws.String("0") }), p + "targetLocations.1.member.targetLocationMaxConcurrency"},
		{"targetLocationMaxErrors bad", targetLocation(func(tl *types.TargetLocation) { tl.TargetLocationMaxErrors = aws.String("101%") }), p + "targetLocations.1.member.targetLocationMaxErrors"},
		{"targetLocation targets 2", targetLocation(func(tl *types.TargetLocation) {
			tl.Targets = []types.Target{{Key: aws.String("tag:a"), Values: []string{"1"}}, {Key: aws.String("tag:b"), Values: []string{"1"}}}
		}), p + "targetLocations.1.member.targets"},
		{"targetLocation target key bad", targetLocation(func(tl *types.TargetLocation) { tl.Targets = []types.Target{{Key: aws.String("bad!")}} }), p + "targetLocations.1.member.targets.1.member.key"},
		{"targetsMaxConcurrency bad", targetLocation(func(tl *types.TargetLocation) { tl.TargetsMaxConcurrency = aws.String("0%") }), p + "targetLocations.1.member.targetsMaxConcurrency"},
		{"targetsMaxErrors bad", targetLocation(func(tl *types.TargetLocation) { tl.TargetsMaxErrors = aws.String("x") }), p + "targetLocations.1.member.targetsMaxErrors"},
		{"targetLocation alarm bad", targetLocation(func(tl *types.TargetLocation) { tl.TargetLocationAlarmConfiguration = alarms("  ") }), p + "targetLocations.1.member.targetLocationAlarmConfiguration.alarms.1.member.name"},

		{"scheduleOffset 1", func(e *E) { e.ScheduleOffset = aws.Int32(1) }, ""},
		{"scheduleOffset 6", func(e *E) { e.ScheduleOffset = aws.Int32(6) }, ""},
		{"scheduleOffset 0", func(e *E) { e.ScheduleOffset = aws.Int32(0) }, p + "scheduleOffset"},
		{"scheduleOffset 7", func(e *E) { e.ScheduleOffset = aws.Int32(7) }, p + "scheduleOffset"},
		{"duration 1", func(e *E) { e.Duration = aws.Int32(1) }, ""},
		{"duration 24", func(e *E) { e.Duration = aws.Int32(24) }, ""},
		{"duration 0", func(e *E) { e.Duration = aws.Int32(0) }, p + "duration"},
		{"duration 25", func(e *E) { e.Duration = aws.Int32(25) }, p + "duration"},

		{"targetMaps valid", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{{"k": {"v"}}} }, ""},
		{"targetMaps 300", func(e *E) {
			e.Targets = nil
			for range 300 {
				e.TargetMaps = append(e.TargetMaps, map[string][]string{"k": {"v"}})
			}
		}, ""},
		{"targetMaps 301", func(e *E) {
			e.Targets = nil
			for range 301 {
				e.TargetMaps = append(e.TargetMaps, map[string][]string{"k": {"v"}})
			}
		}, p + "targetMaps"},
		{"targetMap empty", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{{}} }, p + "targetMaps.1.member"},
		{"targetMap 20 keys", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{keysN(20, "v", 1)} }, ""},
		{"targetMap 21 keys", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{keysN(21, "v", 1)} }, p + "targetMaps.1.member"},
		{"targetMap key long", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{{rep("k", 51): {"v"}}} }, p + "targetMaps.1.member"},
		{"targetMap 25 values", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{{"k": repList("v", 25)}} }, ""},
		{"targetMap 26 values", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{{"k": repList("v", 26)}} }, p + "targetMaps.1.member"},
		{"targetMap value empty", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{{"k": {""}}} }, p + "targetMaps.1.member"},
		{"targetMap value long", func(e *E) { e.Targets = nil; e.TargetMaps = []map[string][]string{{"k": {rep("v", 51)}}} }, p + "targetMaps.1.member"},

		{"alarm valid", func(e *E) { e.AlarmConfiguration = alarms("my-alarm") }, ""},
		{"alarms 2", func(e *E) { e.AlarmConfiguration = alarms("a", "b") }, p + "alarmConfiguration.alarms"},
		{"alarm name blank", func(e *E) { e.AlarmConfiguration = alarms("   ") }, p + "alarmConfiguration.alarms.1.member.name"},
		{"alarm name long", func(e *E) { e.AlarmConfiguration = alarms(rep("a", 256)) }, p + "alarmConfiguration.alarms.1.member.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, _ := newEnv(t, DefaultOptions())
			e := shellEntry(node1)
			tt.mut(&e)
			_, err := batch(t, c, e)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("valid value refused: %v", err)
				}
				return
			}
			assertValidation(t, err, tt.path)
		})
	}
}

// E shortens the entry type in the table above.
type E = types.CreateAssociationBatchRequestEntry

func keysN(n int, value string, values int) map[string][]string {
	m := map[string][]string{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = repList(value, values)
	}
	return m
}

// TestRequestConstraints covers the members outside the entries and the
// other operations' inputs.
func TestRequestConstraints(t *testing.T) {
	tests := []struct {
		name string
		call func(c *ssm.Client) error
		path string
	}{
		{"entries empty", func(c *ssm.Client) error {
			_, err := c.CreateAssociationBatch(ctx(t), &ssm.CreateAssociationBatchInput{Entries: []types.CreateAssociationBatchRequestEntry{}})
			return err
		}, "entries"},
		{"assume role valid", func(c *ssm.Client) error {
			_, err := c.CreateAssociationBatch(ctx(t), &ssm.CreateAssociationBatchInput{Entries: []E{shellEntry(node1)},
				AssociationDispatchAssumeRole: aws.String("arn:aws:iam::123456789012:role/ssm")})
			return err
		}, ""},
		{"assume role bad", func(c *ssm.Client) error {
			_, err := c.CreateAssociationBatch(ctx(t), &ssm.CreateAssociationBatchInput{Entries: []E{shellEntry(node1)},
				AssociationDispatchAssumeRole: aws.String("arn:aws:iam::1234:role/ssm")})
			return err
		}, "associationDispatchAssumeRole"},
		{"create instanceId bad", func(c *ssm.Client) error {
			_, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String("i-1")})
			return err
		}, "instanceId"},
		{"create valid", func(c *ssm.Client) error {
			_, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1),
				Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}}})
			return err
		}, ""},
		{"create tag key bad", func(c *ssm.Client) error {
			_, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1),
				Tags: []types.Tag{{Key: aws.String("bad!"), Value: aws.String("ops")}}})
			return err
		}, "tags.1.member.key"},
		{"create tag value long", func(c *ssm.Client) error {
			_, err := c.CreateAssociation(ctx(t), &ssm.CreateAssociationInput{Name: aws.String("AWS-UpdateSSMAgent"), InstanceId: aws.String(node1),
				Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String(rep("v", 257))}}})
			return err
		}, "tags.1.member.value"},
		{"describe id bad", func(c *ssm.Client) error {
			_, err := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{AssociationId: aws.String("not-a-uuid")})
			return err
		}, "associationId"},
		{"describe version bad", func(c *ssm.Client) error {
			_, err := c.DescribeAssociation(ctx(t), &ssm.DescribeAssociationInput{AssociationId: aws.String(newUUID()), AssociationVersion: aws.String("0")})
			return err
		}, "associationVersion"},
		{"delete name bad", func(c *ssm.Client) error {
			_, err := c.DeleteAssociation(ctx(t), &ssm.DeleteAssociationInput{Name: aws.String("x"), InstanceId: aws.String(node1)})
			return err
		}, "name"},
		{"list valid", func(c *ssm.Client) error {
			_, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{MaxResults: aws.Int32(50),
				AssociationFilterList: []types.AssociationFilter{{Key: types.AssociationFilterKeyName, Value: aws.String("AWS-RunShellScript")}}})
			return err
		}, ""},
		{"list maxResults 0", func(c *ssm.Client) error {
			_, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{MaxResults: aws.Int32(0)})
			return err
		}, "maxResults"},
		{"list maxResults 51", func(c *ssm.Client) error {
			_, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{MaxResults: aws.Int32(51)})
			return err
		}, "maxResults"},
		{"list filters empty", func(c *ssm.Client) error {
			_, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{AssociationFilterList: []types.AssociationFilter{}})
			return err
		}, "associationFilterList"},
		{"list filter key bad", func(c *ssm.Client) error {
			_, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{
				AssociationFilterList: []types.AssociationFilter{{Key: "Bogus", Value: aws.String("x")}}})
			return err
		}, "associationFilterList.1.member.key"},
		{"list filter value empty", func(c *ssm.Client) error {
			_, err := c.ListAssociations(ctx(t), &ssm.ListAssociationsInput{
				AssociationFilterList: []types.AssociationFilter{{Key: types.AssociationFilterKeyName, Value: aws.String("")}}})
			return err
		}, "associationFilterList.1.member.value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c, _ := newEnv(t, DefaultOptions())
			err := tt.call(c)
			if tt.path == "" {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			assertValidation(t, err, tt.path)
		})
	}
}

// TestValidationWording checks the exact message for one and for several
// violations, and that -max-batch is reported the same way.
func TestValidationWording(t *testing.T) {
	_, c, _ := newEnv(t, Options{MaxBatch: 2})
	e := shellEntry(node1)
	e.Targets = nil
	e.InstanceId = aws.String("i-bad")
	_, err := batch(t, c, e)
	want := `1 validation error detected: Value 'i-bad' at 'entries.1.member.instanceId' failed to satisfy constraint: Member must satisfy regular expression pattern: (^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)`
	if got := apiErr(t, err, "ValidationException").ErrorMessage(); got != want {
		t.Fatalf("message\n got %s\nwant %s", got, want)
	}

	e2 := shellEntry(node2)
	e2.MaxErrors = aws.String("x")
	_, err = batch(t, c, e, e2)
	msg := apiErr(t, err, "ValidationException").ErrorMessage()
	if !strings.HasPrefix(msg, "2 validation errors detected: Value 'i-bad' at 'entries.1.member.instanceId'") ||
		!strings.Contains(msg, "; Value 'x' at 'entries.2.member.maxErrors' failed to satisfy constraint: Member must satisfy regular expression pattern: ") {
		t.Fatalf("message %q", msg)
	}

	_, err = batch(t, c, shellEntry(node1), shellEntry(node2), shellEntry(node3))
	msg = apiErr(t, err, "ValidationException").ErrorMessage()
	if !strings.Contains(msg, "at 'entries' failed to satisfy constraint: Member must have length less than or equal to 2") {
		t.Fatalf("max-batch message %q", msg)
	}
	if _, err := batch(t, c, shellEntry(node1), shellEntry(node2)); err != nil {
		t.Fatalf("batch at the limit refused: %v", err)
	}
}
