// Package ssmlocal is a wire-compatible emulator of the part of AWS Systems
// Manager State Manager that the project uses (CreateAssociationBatch,
// CreateAssociation, DescribeAssociation, ListAssociations,
// UpdateAssociation, DeleteAssociation), with limits and fault injection.
//
// It speaks awsJson1.1 exactly as SSM does, so the real aws-sdk-go-v2
// ssm.Client and the AWS CLI work against it unchanged. A *Server is an
// http.Handler: run it behind httptest in tests, or with cmd/ssm-local.
//
// The package deliberately shares no code with the function's own request
// validation: it re-derives every constraint from the SSM service model so
// that a mistake in one is caught by the other. See docs/ssm-local.md.
package ssmlocal
