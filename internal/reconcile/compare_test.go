package reconcile_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/reconcile"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func TestDifferences(t *testing.T) {
	// described returns the association SSM would describe for e, with
	// the defaults SSM may fill in.
	described := func(e request.Entry) ssmtypes.AssociationDescription {
		s := e.SDK()
		d := ssmtypes.AssociationDescription{
			Name: s.Name, InstanceId: s.InstanceId, Targets: s.Targets, TargetMaps: s.TargetMaps,
			TargetLocations: s.TargetLocations, Parameters: s.Parameters, DocumentVersion: s.DocumentVersion,
			AssociationName: s.AssociationName, AutomationTargetParameterName: s.AutomationTargetParameterName,
			ScheduleExpression: s.ScheduleExpression, ScheduleOffset: s.ScheduleOffset, Duration: s.Duration,
			ApplyOnlyAtCronInterval: s.ApplyOnlyAtCronInterval, OutputLocation: s.OutputLocation,
			MaxErrors: s.MaxErrors, MaxConcurrency: s.MaxConcurrency, ComplianceSeverity: s.ComplianceSeverity,
			SyncCompliance: s.SyncCompliance, CalendarNames: s.CalendarNames, AlarmConfiguration: s.AlarmConfiguration,
		}
		if d.DocumentVersion == nil {
			d.DocumentVersion = aws.String("$DEFAULT")
		}
		if d.ComplianceSeverity == "" {
			d.ComplianceSeverity = ssmtypes.AssociationComplianceSeverityUnspecified
		}
		if d.SyncCompliance == "" {
			d.SyncCompliance = ssmtypes.AssociationSyncComplianceAuto
		}
		return d
	}
	base := request.Entry{
		Name:                    "AWS-RunPatchBaseline",
		Targets:                 []request.Target{{Key: request.InstanceIDsKey, Values: []string{"i-0123456789abcdef0"}}},
		Parameters:              map[string][]string{"Operation": {"Scan"}, "InstallOverrideList": {"s3://b/k"}},
		ScheduleExpression:      aws.String("cron(0 2 ? * SUN *)"),
		ApplyOnlyAtCronInterval: true,
		ScheduleOffset:          aws.Int32(1),
		Duration:                aws.Int32(2),
		MaxErrors:               aws.String("1"),
		MaxConcurrency:          aws.String("10%"),
		CalendarNames:           []string{"cal-a", "cal-b"},
		OutputLocation:          &request.OutputLocation{S3Location: &request.S3Location{OutputS3BucketName: aws.String("logs")}},
		AlarmConfiguration:      &request.AlarmConfiguration{Alarms: []request.Alarm{{Name: "stop"}}},
		TargetLocations: []request.TargetLocation{{
			Accounts: []string{"111111111111", "222222222222"}, Regions: []string{"us-east-1", "eu-west-1"},
		}},
	}
	change := func(f func(*request.Entry)) request.Entry {
		e := base
		e.Parameters = map[string][]string{"Operation": {"Scan"}, "InstallOverrideList": {"s3://b/k"}}
		e.CalendarNames = slices.Clone(base.CalendarNames)
		e.AlarmConfiguration = &request.AlarmConfiguration{Alarms: []request.Alarm{{Name: "stop"}}}
		e.TargetLocations = []request.TargetLocation{{
			Accounts: []string{"111111111111", "222222222222"}, Regions: []string{"us-east-1", "eu-west-1"},
		}}
		f(&e)
		return e
	}
	cases := []struct {
		name        string
		entry       request.Entry // compared with described(base) unless existing is set
		existing    *ssmtypes.AssociationDescription
		differences []string
	}{
		{name: "same", entry: base},
		{name: "sets in another order", entry: change(func(e *request.Entry) {
			e.CalendarNames = []string{"cal-b", "cal-a"}
			e.TargetLocations[0].Regions = []string{"eu-west-1", "us-east-1"}
		})},
		{name: "defaults given explicitly", entry: change(func(e *request.Entry) {
			e.DocumentVersion = aws.String("$DEFAULT")
			e.ComplianceSeverity = aws.String("UNSPECIFIED")
			e.SyncCompliance = aws.String("AUTO")
		})},
		{name: "defaults left empty by SSM", entry: change(func(e *request.Entry) { e.ComplianceSeverity = aws.String("UNSPECIFIED") }),
			existing: func() *ssmtypes.AssociationDescription {
				d := described(base)
				d.ComplianceSeverity, d.SyncCompliance, d.DocumentVersion = "", "", nil
				return &d
			}()},
		{name: "empty equals absent", entry: change(func(e *request.Entry) {
			e.Parameters = map[string][]string{"Operation": {"Scan"}, "InstallOverrideList": {"s3://b/k"}, "SnapshotId": {}}
		})},
		{name: "DocumentVersion", entry: change(func(e *request.Entry) { e.DocumentVersion = aws.String("2") }), differences: []string{"DocumentVersion"}},
		{name: "parameter value", entry: change(func(e *request.Entry) { e.Parameters["Operation"] = []string{"Install"} }), differences: []string{"Parameters"}},
		{name: "parameter missing", entry: change(func(e *request.Entry) { delete(e.Parameters, "InstallOverrideList") }), differences: []string{"Parameters"}},
		{name: "parameter values reordered", entry: change(func(e *request.Entry) { e.Parameters["Operation"] = []string{"Scan", "Scan2"} }),
			existing: func() *ssmtypes.AssociationDescription {
				d := described(base)
				d.Parameters = map[string][]string{"Operation": {"Scan2", "Scan"}, "InstallOverrideList": {"s3://b/k"}}
				return &d
			}(), differences: []string{"Parameters"}},
		{name: "ScheduleExpression", entry: change(func(e *request.Entry) { e.ScheduleExpression = aws.String("cron(0 3 ? * SUN *)") }), differences: []string{"ScheduleExpression"}},
		{name: "ScheduleOffset and Duration", entry: change(func(e *request.Entry) { e.ScheduleOffset, e.Duration = nil, aws.Int32(3) }),
			differences: []string{"ScheduleOffset", "Duration"}},
		{name: "ApplyOnlyAtCronInterval", entry: change(func(e *request.Entry) { e.ApplyOnlyAtCronInterval = false }), differences: []string{"ApplyOnlyAtCronInterval"}},
		{name: "MaxErrors and MaxConcurrency", entry: change(func(e *request.Entry) { e.MaxErrors, e.MaxConcurrency = aws.String("2"), nil }),
			differences: []string{"MaxErrors", "MaxConcurrency"}},
		{name: "ComplianceSeverity", entry: change(func(e *request.Entry) { e.ComplianceSeverity = aws.String("CRITICAL") }), differences: []string{"ComplianceSeverity"}},
		{name: "SyncCompliance", entry: change(func(e *request.Entry) { e.SyncCompliance = aws.String("MANUAL") }), differences: []string{"SyncCompliance"}},
		{name: "OutputLocation", entry: change(func(e *request.Entry) {
			e.OutputLocation = &request.OutputLocation{S3Location: &request.S3Location{OutputS3BucketName: aws.String("logs"), OutputS3KeyPrefix: aws.String("p/")}}
		}), differences: []string{"OutputLocation"}},
		{name: "CalendarNames", entry: change(func(e *request.Entry) { e.CalendarNames = []string{"cal-a"} }), differences: []string{"CalendarNames"}},
		{name: "AlarmConfiguration", entry: change(func(e *request.Entry) { e.AlarmConfiguration.IgnorePollAlarmFailure = true }), differences: []string{"AlarmConfiguration"}},
		{name: "TargetLocations", entry: change(func(e *request.Entry) { e.TargetLocations[0].Accounts = []string{"111111111111"} }), differences: []string{"TargetLocations"}},
		{name: "AutomationTargetParameterName", entry: change(func(e *request.Entry) { e.AutomationTargetParameterName = aws.String("InstanceId") }),
			differences: []string{"AutomationTargetParameterName"}},
		{name: "AssociationName", entry: change(func(e *request.Entry) { e.AssociationName = aws.String("patch-scan") }), differences: []string{"AssociationName"}},
		{name: "nothing set against everything", entry: request.Entry{Name: base.Name},
			differences: []string{"Parameters", "ScheduleExpression", "ScheduleOffset", "Duration", "ApplyOnlyAtCronInterval", "MaxErrors",
				"MaxConcurrency", "OutputLocation", "CalendarNames", "AlarmConfiguration", "TargetLocations"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			existing := described(base)
			if c.existing != nil {
				existing = *c.existing
			}
			got := reconcile.Differences(c.entry, existing)
			if !slices.Equal(got, c.differences) {
				t.Errorf("Differences = %v, want %v", got, c.differences)
			}
			if s := strings.Join(got, " "); strings.Contains(s, "Scan") || strings.Contains(s, "s3://") {
				t.Errorf("Differences shows a parameter value: %s", s)
			}
		})
	}
}
