// Package reliability holds the reliability test suite of the function: a
// fault matrix against the SSM emulator and DynamoDB Local (with faults
// injected through internal/faultproxy), crash recovery and deadline tests
// of the real bootstrap under the Lambda Runtime Interface Emulator,
// concurrent overlapping invocations, and a secrets test. Everything lives
// in the package's _test.go files; RELIABILITY.md at the project root
// describes the matrix, its numbers and how to rerun it.
//
//	go test -race ./internal/reliability                  # the quick sizes, part of make test
//	SOAK=1 go test -race -timeout 60m -run 'Reliability|Soak' -v ./internal/reliability  # make soak
package reliability
