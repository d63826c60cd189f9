module github.com/ssm-association-batcher/ssm-association-batcher

go 1.26.0

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/aws/aws-sdk-go-v2/service/ssm v1.82.1
)

require github.com/aws/smithy-go v1.28.9 // indirect
