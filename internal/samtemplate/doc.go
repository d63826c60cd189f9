// Package samtemplate reads template.yaml to run its functions on this
// machine as a deployment would set them up (Template, Local: what make
// invoke and make local-tables run), and holds the tests that keep
// template.yaml, samconfig.toml and events/ in step with the code: each
// function's environment against config.Variables (config.WorkerVariables
// for the worker, config.ReaperVariables for the reaper), the claim and jobs
// tables against the stores' attribute names, the IAM policies against the
// calls the code makes, the jobs queue and the worker's event source against
// each other, events/env.local.json against the template, the sample events
// through the built functions, and cfn-lint.
package samtemplate
