package jobs_test

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
)

func messageAttrs(jobID string, chunk int) map[string]sqstypes.MessageAttributeValue {
	return map[string]sqstypes.MessageAttributeValue{
		jobs.JobIDAttribute: {DataType: aws.String("String"), StringValue: aws.String(jobID)},
		jobs.ChunkAttribute: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(chunk))},
	}
}

func jobKey(jobID string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		jobs.PartitionKey: &ddbtypes.AttributeValueMemberS{Value: jobID},
		jobs.SortKey:      &ddbtypes.AttributeValueMemberS{Value: "META"},
	}
}

func numberValue(name string, n int) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{name: &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(n)}}
}
