package ssmlocal

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Document describes an SSM document as far as association checks need it.
// The JSON form (camelCase tags) is what -documents FILE holds: a JSON array
// of documents.
type Document struct {
	Name string `json:"name"`
	// DocumentType is Command (the default), Policy or Automation. Only
	// Automation documents may be associated without any target.
	DocumentType string `json:"documentType,omitempty"`
	// SchemaVersion such as "1.2" or "2.2". Legacy InstanceId associations
	// work only with schema versions below 2.0.
	SchemaVersion string `json:"schemaVersion"`
	// PlatformTypes the document supports: Linux, Windows, MacOS.
	PlatformTypes []string `json:"platformTypes"`
	// LatestVersion is the highest version number (versions are 1..Latest);
	// DefaultVersion the one $DEFAULT names. Zero means 1 and Latest.
	LatestVersion  int                 `json:"latestVersion,omitempty"`
	DefaultVersion int                 `json:"defaultVersion,omitempty"`
	Parameters     []DocumentParameter `json:"parameters,omitempty"`
}

// DocumentParameter is one parameter a document declares.
type DocumentParameter struct {
	Name     string `json:"name"`
	Required bool   `json:"required,omitempty"`
	// AllowedValues, when set, restricts every value given.
	AllowedValues []string `json:"allowedValues,omitempty"`
}

func (d Document) latest() int { return max(d.LatestVersion, 1) }

func (d Document) defaultVersion() int {
	if d.DefaultVersion < 1 || d.DefaultVersion > d.latest() {
		return d.latest()
	}
	return d.DefaultVersion
}

// legacySchema reports whether the document's schema predates 2.0, the only
// kind an association made with InstanceId may use.
func (d Document) legacySchema() bool {
	major, _, _ := strings.Cut(d.SchemaVersion, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n < 2
}

var (
	allPlatforms = []string{"Windows", "Linux", "MacOS"}
	unixOnly     = []string{"Linux", "MacOS"}
)

func optional(names ...string) []DocumentParameter {
	ps := make([]DocumentParameter, len(names))
	for i, n := range names {
		ps[i] = DocumentParameter{Name: n}
	}
	return ps
}

// BuiltinDocuments returns the preloaded catalogue: AWS-owned documents with
// their real schema versions and parameters (platform types and versions are
// close to, not guaranteed equal to, the live ones; see docs/ssm-local.md).
func BuiltinDocuments() []Document {
	return []Document{
		{Name: "AWS-UpdateSSMAgent", SchemaVersion: "1.2", PlatformTypes: allPlatforms, LatestVersion: 1,
			Parameters: optional("version", "allowDowngrade")},
		{Name: "AWS-RunShellScript", SchemaVersion: "1.2", PlatformTypes: unixOnly, LatestVersion: 1,
			Parameters: append([]DocumentParameter{{Name: "commands", Required: true}}, optional("workingDirectory", "executionTimeout")...)},
		// Windows only here (the live document also runs PowerShell Core on
		// Linux) so that tests have a document a Linux node cannot take.
		{Name: "AWS-RunPowerShellScript", SchemaVersion: "1.2", PlatformTypes: []string{"Windows"}, LatestVersion: 1,
			Parameters: append([]DocumentParameter{{Name: "commands", Required: true}}, optional("workingDirectory", "executionTimeout")...)},
		{Name: "AWS-RunPatchBaseline", SchemaVersion: "2.2", PlatformTypes: allPlatforms, LatestVersion: 2, DefaultVersion: 2,
			Parameters: append([]DocumentParameter{{Name: "Operation", Required: true, AllowedValues: []string{"Scan", "Install"}}},
				append(optional("SnapshotId", "InstallOverrideList", "BaselineOverride"),
					DocumentParameter{Name: "RebootOption", AllowedValues: []string{"RebootIfNeeded", "NoReboot"}})...)},
		{Name: "AWS-GatherSoftwareInventory", DocumentType: "Policy", SchemaVersion: "2.0", PlatformTypes: allPlatforms, LatestVersion: 1,
			Parameters: optional("applications", "awsComponents", "files", "networkConfig", "billingInfo", "windowsUpdates",
				"instanceDetailedInformation", "services", "windowsRegistry", "windowsRoles", "customInventory")},
		{Name: "AWS-ConfigureAWSPackage", SchemaVersion: "2.2", PlatformTypes: allPlatforms, LatestVersion: 1,
			Parameters: append([]DocumentParameter{
				{Name: "action", Required: true, AllowedValues: []string{"Install", "Uninstall"}},
				{Name: "installationType", AllowedValues: []string{"Uninstall and reinstall", "In-place update"}},
				{Name: "name", Required: true}}, optional("version", "additionalArguments")...)},
		{Name: "AWS-ApplyAnsiblePlaybooks", SchemaVersion: "2.2", PlatformTypes: []string{"Linux"}, LatestVersion: 1,
			Parameters: append([]DocumentParameter{
				{Name: "SourceType", Required: true, AllowedValues: []string{"GitHub", "S3"}},
				{Name: "SourceInfo", Required: true}},
				optional("InstallDependencies", "PlaybookFile", "ExtraVariables", "Check", "Verbose", "TimeoutSeconds")...)},
	}
}

// catalogue maps document names to documents. It is immutable after New, so
// it needs no lock.
type catalogue map[string]Document

func newCatalogue(extra []Document) catalogue {
	c := catalogue{}
	for _, d := range append(BuiltinDocuments(), extra...) {
		c[d.Name] = d
	}
	return c
}

// lookup accepts a document name or its ARN
// (arn:aws:ssm:<region>:<account>:document/<name>).
func (c catalogue) lookup(nameOrARN string) (Document, bool) {
	name := nameOrARN
	if strings.HasPrefix(name, "arn:") {
		if _, after, ok := strings.Cut(name, ":document/"); ok {
			name = after
		}
	}
	d, ok := c[name]
	return d, ok
}

// LoadDocuments reads a JSON array of Documents from path (-documents).
func LoadDocuments(path string) ([]Document, error) {
	var docs []Document
	if err := readJSONFile(path, &docs); err != nil {
		return nil, fmt.Errorf("documents: %w", err)
	}
	for i, d := range docs {
		if d.Name == "" {
			return nil, fmt.Errorf("documents: %s: entry %d has no name", path, i+1)
		}
	}
	return docs, nil
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
