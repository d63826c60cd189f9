// Package samtemplate holds the tests that keep template.yaml, samconfig.toml
// and events/ in step with the code: the function's environment against
// config.Variables, the claim table against the dedupe store's attribute
// names, the IAM policy against the calls the code makes, and cfn-lint.
package samtemplate
