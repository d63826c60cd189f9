// Package testinfra starts the real local services that the integration
// tests and the demo run against, from the pinned copies that
// scripts/install-tools.sh puts in the git-ignored .tools folder:
//
//   - DynamoDB Local (the real AWS engine, a JVM) on a free 127.0.0.1 port;
//   - the AWS Lambda Runtime Interface Emulator (what `sam local invoke` runs
//     inside its container), running a built bootstrap on free 127.0.0.1 ports.
//
// Every child runs in its own process group and is killed with it, so a test
// leaves no JVM or function process behind. Both services are only ever
// addressed on 127.0.0.1 (DynamoDB Local listens on all interfaces and has no
// flag to change that).
//
// A missing tool is an error, not a reason to skip: CI installs the tools, so
// RequireTools fails the test and names the command that installs them.
package testinfra
