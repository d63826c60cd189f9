package awsclient

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The engine keeps 16 claims and their completions in flight: a second
// round of as many requests must reuse the first round's connections, not
// close them after use and open new ones (the SDK's own client keeps 10).
func TestClientsKeepTheirConnections(t *testing.T) {
	const inFlight, slack = 32, 4
	var (
		opened  atomic.Int32
		arrived sync.WaitGroup
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived.Done()
		arrived.Wait() // every request of the round in flight at once
		_, _ = w.Write([]byte(`{}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	client := DynamoDB(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
		BaseEndpoint: aws.String(srv.URL),
	})
	for round := range 2 {
		arrived.Add(inFlight)
		var wg sync.WaitGroup
		for range inFlight {
			wg.Go(func() {
				_, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
					TableName: aws.String("claims"),
					Key:       map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "k"}},
				})
				if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
		// A connection goes back to the pool just after its answer is
		// read; the transport may dial while one is on its way back.
		time.Sleep(50 * time.Millisecond)
	}
	// Keeping 10, the second round opens 22 new connections.
	if n := opened.Load(); n > inFlight+slack {
		t.Errorf("opened %d connections for 2 rounds of %d requests in flight, want at most %d: the second round opened %d new ones", n, inFlight, inFlight+slack, n-inFlight)
	}
}

// A client the caller chose is kept as it is.
func TestPooledKeepsAnotherClient(t *testing.T) {
	mine := &http.Client{}
	if got := pooled(mine); got != mine {
		t.Errorf("pooled replaced the caller's %T with %T", mine, got)
	}
}
