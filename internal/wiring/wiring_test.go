package wiring

import (
	"slices"
	"testing"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/config"
)

// TestSettingsCarryTheAllowLists: both engine functions (associate and
// worker) build their engine through Settings, so the allow lists of the
// configuration reach the engine; with the variables unset (local runs) the
// defaults apply, never the engine's allow-all zero value. The Region is the
// SSM client's, the one whose documents entries may name by ARN.
func TestSettingsCarryTheAllowLists(t *testing.T) {
	unset, err := config.FromLookup(func(name string) (string, bool) {
		if name == "DEDUPE_TABLE" {
			return "claims", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	s := Settings(unset, "eu-west-1", 3)
	if !slices.Equal(s.Allow.Documents, []string{"AWS-UpdateSSMAgent", "AWS-GatherSoftwareInventory", "AWS-RunPatchBaseline", "AWS-ConfigureAWSPackage"}) {
		t.Errorf("Allow.Documents = %q, want the default list", s.Allow.Documents)
	}
	if !slices.Equal(s.Allow.TargetKeys, []string{"InstanceIds"}) {
		t.Errorf("Allow.TargetKeys = %q, want [InstanceIds]", s.Allow.TargetKeys)
	}
	if s.Allow.Region != "eu-west-1" {
		t.Errorf("Allow.Region = %q, want the SSM client's eu-west-1", s.Allow.Region)
	}
	if s.CallsPerSecond != 3 || s.BatchSize != unset.BatchSize || s.MaxAttempts != unset.MaxAttempts {
		t.Errorf("settings %+v do not follow the configuration", s)
	}

	set, err := config.FromLookup(func(name string) (string, bool) {
		v, ok := map[string]string{"DEDUPE_TABLE": "claims", "ALLOWED_DOCUMENTS": "MyOrg-*", "ALLOWED_TARGET_KEYS": "tag:*,TargetLocations"}[name]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	s = Settings(set, "eu-west-1", 1)
	if !slices.Equal(s.Allow.Documents, []string{"MyOrg-*"}) || !slices.Equal(s.Allow.TargetKeys, []string{"tag:*", "TargetLocations"}) {
		t.Errorf("Allow = %+v, want the configured lists", s.Allow)
	}
}
