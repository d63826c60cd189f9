// Package samtemplate holds the tests that keep template.yaml, samconfig.toml
// and events/ in step with the code: each function's environment against
// config.Variables (and config.WorkerVariables for the worker), the claim and
// jobs tables against the stores' attribute names, the IAM policies against
// the calls the code makes, the jobs queue and the worker's event source
// against each other, the sample events through the built functions, and
// cfn-lint.
package samtemplate
