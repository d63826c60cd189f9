package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

func TestTargetsKeyIsCanonical(t *testing.T) {
	a := request.Entry{Name: "D", Targets: []request.Target{{Key: "tag:Env", Values: []string{"a", "b"}}, {Key: "tag:Team", Values: []string{"x"}}}}
	b := request.Entry{Name: "D", Targets: []request.Target{{Key: "tag:Team", Values: []string{"x"}}, {Key: "tag:Env", Values: []string{"b", "a"}}}}
	if TargetsKey(a) != TargetsKey(b) {
		t.Error("order of targets or values changes the key")
	}
	c := b
	c.Name = "E"
	if TargetsKey(a) == TargetsKey(c) {
		t.Error("document is not part of the key")
	}
	m1 := request.Entry{Name: "D", TargetMaps: []map[string][]string{{"k": {"2", "1"}}}}
	m2 := request.Entry{Name: "D", TargetMaps: []map[string][]string{{"k": {"1", "2"}}}}
	if TargetsKey(m1) != TargetsKey(m2) {
		t.Error("TargetMaps value order changes the key")
	}
	if m1.TargetMaps[0]["k"][0] != "2" {
		t.Error("computing the key changed the entry")
	}
}

func TestKeysTellNamedAssociationsApart(t *testing.T) {
	// Records written before names counted keep their keys.
	if got := NodeKey("AWS-RunPatchBaseline", "", "i-1"); got != "node#AWS-RunPatchBaseline#i-1" {
		t.Errorf("unnamed key %q changed", got)
	}
	scan, install := NodeKey("AWS-RunPatchBaseline", "patch-scan", "i-1"), NodeKey("AWS-RunPatchBaseline", "patch-install", "i-1")
	if scan == install || scan == NodeKey("AWS-RunPatchBaseline", "", "i-1") {
		t.Errorf("names do not tell keys apart: %q %q", scan, install)
	}
	tags := []request.Target{{Key: "tag:Env", Values: []string{"prod"}}}
	unnamed := request.Entry{Name: "D", Targets: tags}
	before := "targets#D#" + hashOf(`{"Targets":[{"Key":"tag:Env","Values":["prod"]}]}`, "D")
	if got := TargetsKey(unnamed); got != before {
		t.Errorf("unnamed targets key %q, want the one computed before names counted, %q", got, before)
	}
	named := unnamed
	named.AssociationName = aws.String("weekly")
	if TargetsKey(named) == TargetsKey(unnamed) {
		t.Error("AssociationName is not part of the targets key")
	}
}

// TargetLocations are a setting: two entries that differ only in them are
// one association (one key) with other settings, as SSM and reconcile see
// it, and the keys of entries without them are byte for byte those of
// before.
func TestTargetLocationsAreNotPartOfTheKey(t *testing.T) {
	tags := []request.Target{{Key: "tag:Env", Values: []string{"prod"}}}
	eu := request.Entry{Name: "D", Targets: tags, AssociationName: aws.String("weekly"),
		TargetLocations: []request.TargetLocation{{Accounts: []string{"111111111111"}, Regions: []string{"eu-west-1"}}}}
	us := eu
	us.TargetLocations = []request.TargetLocation{{Accounts: []string{"111111111111"}, Regions: []string{"us-east-1"}}}
	if TargetsKey(eu) != TargetsKey(us) {
		t.Errorf("a TargetLocations.Regions change changes the key: %q, %q", TargetsKey(eu), TargetsKey(us))
	}
	none := eu
	none.TargetLocations = nil
	if TargetsKey(eu) != TargetsKey(none) {
		t.Errorf("key with TargetLocations %q, without %q: want the same association", TargetsKey(eu), TargetsKey(none))
	}
	if d := SettingsOf(eu).Differences(SettingsOf(us)); !slices.Equal(d, []string{"TargetLocations"}) {
		t.Errorf("differences %v, want [TargetLocations]", d)
	}
	// Entries without TargetLocations: the key as computed before, named or not.
	if got, want := TargetsKey(none), "targets#D#"+hashOf(`{"Targets":[{"Key":"tag:Env","Values":["prod"]}],"AssociationName":"weekly"}`, "D"); got != want {
		t.Errorf("named targets key %q, want the one of before, %q", got, want)
	}
	maps := request.Entry{Name: "D", TargetMaps: []map[string][]string{{"k": {"2", "1"}}}}
	if got, want := TargetsKey(maps), "targets#D#"+hashOf(`{"TargetMaps":[{"k":["1","2"]}]}`, "D"); got != want {
		t.Errorf("TargetMaps key %q, want the one of before, %q", got, want)
	}
	// The key records of entries with TargetLocations were written under.
	legacy := "targets#D#" + hashOf(`{"Targets":[{"Key":"tag:Env","Values":["prod"]}],"TargetLocations":[{"Accounts":["111111111111"],"Regions":["eu-west-1"]}],"AssociationName":"weekly"}`, "D")
	if got := LegacyTargetsKey(eu); got != legacy {
		t.Errorf("legacy key %q, want %q", got, legacy)
	}
	if LegacyTargetsKey(eu) == TargetsKey(eu) || LegacyTargetsKey(us) == LegacyTargetsKey(eu) {
		t.Error("legacy keys do not tell the old keys apart")
	}
	if got := LegacyTargetsKey(none); got != "" {
		t.Errorf("an entry without TargetLocations has legacy key %q; its key never changed", got)
	}
}

func TestSettingsDifferences(t *testing.T) {
	base := request.Entry{Name: "D", ScheduleExpression: aws.String("rate(1 day)"), Parameters: map[string][]string{"Operation": {"Scan"}}}
	same := base
	same.DocumentVersion = aws.String("$DEFAULT")       // the default, spelled out
	same.ComplianceSeverity = aws.String("UNSPECIFIED") // likewise
	if d := SettingsOf(base).Differences(SettingsOf(same)); len(d) != 0 {
		t.Errorf("defaults spelled out differ in %v", d)
	}
	changed := base
	changed.ScheduleExpression = aws.String("rate(7 days)")
	changed.Parameters = map[string][]string{"Operation": {"Install"}}
	changed.MaxErrors = aws.String("10%")
	if d := SettingsOf(base).Differences(SettingsOf(changed)); !slices.Equal(d, []string{"Parameters", "ScheduleExpression", "MaxErrors"}) {
		t.Errorf("differences %v", d)
	}
	// Hashes only: no value reaches the fingerprint.
	for name, h := range SettingsOf(changed) {
		if strings.Contains(h, "Install") || strings.Contains(h, "10%") || len(h) != 16 {
			t.Errorf("%s fingerprint %q", name, h)
		}
	}
	// A record without a fingerprint differs in nothing.
	if d := SettingsOf(base).Differences(nil); d != nil {
		t.Errorf("against no fingerprint: %v", d)
	}
}

// hashOf is the targets key's hash as it was computed before names counted.
func hashOf(canon, doc string) string {
	sum := sha256.Sum256(append([]byte(doc+"\x00"), canon...))
	return hex.EncodeToString(sum[:16])
}
