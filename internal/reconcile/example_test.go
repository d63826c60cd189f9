package reconcile_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/time/rate"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/reconcile"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/ssmlocal"
)

// An entry whose CreateAssociationBatch answer was lost: read SSM back,
// paced by the same limiter as the calls, before deciding to resend.
func ExampleReader_Find() {
	srv := httptest.NewServer(ssmlocal.New(ssmlocal.Options{}))
	defer srv.Close()
	client := ssm.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(srv.URL),
	})
	ctx := context.Background()
	scan := request.Entry{
		Name:            "AWS-RunPatchBaseline",
		AssociationName: aws.String("patch-scan"),
		Targets:         []request.Target{{Key: request.InstanceIDsKey, Values: []string{"i-0123456789abcdef0"}}},
		Parameters:      map[string][]string{"Operation": {"Scan"}},
	}
	install := scan
	install.AssociationName = aws.String("patch-install")
	install.Parameters = map[string][]string{"Operation": {"Install"}}
	// The call whose answer was lost did create the Scan association.
	if _, err := client.CreateAssociationBatch(ctx, &ssm.CreateAssociationBatchInput{
		Entries: []ssmtypes.CreateAssociationBatchRequestEntry{scan.SDK()},
	}); err != nil {
		fmt.Println(err)
		return
	}

	limiter := rate.NewLimiter(10, 1)
	r := reconcile.New(client, limiter.Wait)
	found, err := r.Find(ctx, []request.Entry{scan, install})
	if err != nil {
		fmt.Println("still in doubt:", err)
		return
	}
	for i, d := range found {
		if d != nil {
			fmt.Printf("entry %d exists: settle it, do not resend\n", i)
		} else {
			fmt.Printf("entry %d absent: resend it\n", i)
		}
	}
	fmt.Println("SSM calls:", r.Reads())
	// Output:
	// entry 0 exists: settle it, do not resend
	// entry 1 absent: resend it
	// SSM calls: 2
}

func ExampleDifferences() {
	entry := request.Entry{
		Name:       "AWS-RunShellScript",
		Parameters: map[string][]string{"commands": {"echo secret-token"}},
		MaxErrors:  aws.String("1"),
	}
	existing := ssmtypes.AssociationDescription{
		Name:               aws.String("AWS-RunShellScript"),
		DocumentVersion:    aws.String("$DEFAULT"), // filled in by SSM: equal to the omitted member
		Parameters:         map[string][]string{"commands": {"echo other-token"}},
		MaxErrors:          aws.String("2"),
		ComplianceSeverity: ssmtypes.AssociationComplianceSeverityUnspecified,
	}
	fmt.Println(reconcile.Differences(entry, existing))
	// Output: [Parameters MaxErrors]
}

// An entry in doubt whose identity SSM already holds with other settings:
// report it (or update that association), never create a second one.
func ExampleReader_Match() {
	srv := httptest.NewServer(ssmlocal.New(ssmlocal.Options{}))
	defer srv.Close()
	client := ssm.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		BaseEndpoint: aws.String(srv.URL),
	})
	ctx := context.Background()
	existing := request.Entry{
		Name:               "AWS-RunPatchBaseline",
		AssociationName:    aws.String("patch-scan"),
		Targets:            []request.Target{{Key: request.InstanceIDsKey, Values: []string{"i-0123456789abcdef0"}}},
		Parameters:         map[string][]string{"Operation": {"Scan"}},
		ScheduleExpression: aws.String("cron(0 2 ? * SUN *)"),
	}
	if _, err := client.CreateAssociationBatch(ctx, &ssm.CreateAssociationBatchInput{
		Entries: []ssmtypes.CreateAssociationBatchRequestEntry{existing.SDK()},
	}); err != nil {
		fmt.Println(err)
		return
	}
	entry := existing
	entry.ScheduleExpression = aws.String("cron(0 3 ? * SUN *)")

	r := reconcile.New(client, nil)
	ms, err := r.Match(ctx, []request.Entry{entry})
	if err != nil {
		fmt.Println("still in doubt:", err)
		return
	}
	switch m := ms[0]; {
	case m.Exact != nil:
		fmt.Println("exists: settle it")
	case m.Same != nil:
		fmt.Println("associated with different settings:", m.Differences)
	default:
		fmt.Println("absent: resend it")
	}
	fmt.Println("SSM calls:", r.Reads())
	// Output:
	// associated with different settings: [ScheduleExpression]
	// SSM calls: 2
}
