package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/awsclient"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/dedupe"
)

// ClaimCost is one way of writing n claims or completions to DynamoDB
// Local: the answer to "would batching the claim writes cut their cost?"
// measured rather than argued.
type ClaimCost struct {
	Write        string  `json:"write"` // "claim" or "completion"
	How          string  `json:"how"`
	Used         bool    `json:"used"` // what the engine does
	N            int     `json:"n"`
	Requests     int     `json:"requests"`
	WriteUnits   int     `json:"writeUnits"`
	WallSeconds  float64 `json:"wallSeconds"`
	CPUSeconds   float64 `json:"cpuSeconds"`              // this process: the SDK's side
	JVMCPUSecond float64 `json:"dynamoDBLocalCpuSeconds"` // DynamoDB Local's side
}

// measureClaimCosts writes n keys' claims and completions both ways, 16
// requests in flight as the engine's claim pool does, after a warm-up of
// every way (the JVM compiles what it runs often).
func (b *bench) measureClaimCosts(ctx context.Context, n, per int) ([]ClaimCost, error) {
	if b.jvm == nil {
		return nil, fmt.Errorf("DynamoDB Local's process was not found: its CPU cannot be measured")
	}
	dcfg := b.cfg.Copy()
	dcfg.BaseEndpoint = aws.String(b.ddb.Endpoint())
	client := awsclient.DynamoDB(dcfg)
	const owner = "claim-cost"
	lease := time.Now().Add(time.Hour)
	ways := []struct {
		write, how string
		used       bool
		units      int // per item
		perRequest int
		do         func(ctx context.Context, s *dedupe.Store, table string, keys []string) error
	}{
		{"claim", "PutItem with the claim's condition, one per key (dedupe.Store.Claim)", true, 1, 1,
			func(ctx context.Context, s *dedupe.Store, _ string, keys []string) error {
				_, err := s.Claim(ctx, keys[0], owner, lease)
				return err
			}},
		{"claim", fmt.Sprintf("TransactWriteItems of %d conditional Puts (the same item and an attribute_not_exists condition)", per), false, 2, per,
			func(ctx context.Context, _ *dedupe.Store, table string, keys []string) error {
				items := make([]ddbtypes.TransactWriteItem, len(keys))
				for i, k := range keys {
					items[i] = ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{
						TableName:                aws.String(table),
						ConditionExpression:      aws.String("attribute_not_exists(#id)"),
						ExpressionAttributeNames: map[string]string{"#id": dedupe.KeyAttribute},
						Item: map[string]ddbtypes.AttributeValue{
							dedupe.KeyAttribute: &ddbtypes.AttributeValueMemberS{Value: k},
							"status":            &ddbtypes.AttributeValueMemberS{Value: "IN_PROGRESS"},
							"owner":             &ddbtypes.AttributeValueMemberS{Value: owner},
							"lease_expiry":      &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(lease.UnixMilli())},
							dedupe.TTLAttribute: &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(lease.Add(24 * time.Hour).Unix())},
						},
					}}
				}
				_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
				return err
			}},
		{"completion", "UpdateItem conditional on the owner, one per key (dedupe.Store.Complete)", false, 1, 1,
			func(ctx context.Context, s *dedupe.Store, _ string, keys []string) error {
				return s.Complete(ctx, keys[0], owner, dedupe.Association{AssociationID: "assoc-" + keys[0]})
			}},
		{"completion", fmt.Sprintf("BatchWriteItem of the %d keys a call associated (dedupe.Store.CompleteAll)", per), true, 1, per,
			func(ctx context.Context, s *dedupe.Store, _ string, keys []string) error {
				done := make([]dedupe.Association, len(keys))
				for i, k := range keys {
					done[i] = dedupe.Association{Key: k, AssociationID: "assoc-" + k}
				}
				return s.CompleteAll(ctx, owner, done)
			}},
	}
	// Completions need claimed keys: each round claims on one table with
	// PutItem, then completes there; the transactional claims get a table
	// of their own.
	pass := func(size int, record bool) ([]ClaimCost, error) {
		var out []ClaimCost
		var claimed string
		for _, w := range ways {
			table := claimed
			if w.write == "claim" {
				table = fmt.Sprintf("claim-cost-%d", b.tables.Add(1))
				if _, err := client.CreateTable(ctx, dedupe.TableDefinition(table)); err != nil {
					return nil, fmt.Errorf("create table: %w", err)
				}
				if w.used {
					claimed = table
				}
			}
			if w.write == "completion" && !w.used {
				// The per-key completions need keys of their own, claimed
				// and not completed yet: claim a second set first.
				table = fmt.Sprintf("claim-cost-%d", b.tables.Add(1))
				if _, err := client.CreateTable(ctx, dedupe.TableDefinition(table)); err != nil {
					return nil, fmt.Errorf("create table: %w", err)
				}
				if err := writeAll(ctx, dedupe.NewStore(client, table, 24*time.Hour), table, size, 1, ways[0].do); err != nil {
					return nil, err
				}
			}
			store := dedupe.NewStore(client, table, 24*time.Hour)
			cpu0, jvm0 := processCPU(), b.jvm()
			t0 := time.Now()
			if err := writeAll(ctx, store, table, size, w.perRequest, w.do); err != nil {
				return nil, fmt.Errorf("%s by %s: %w", w.write, w.how, err)
			}
			if record {
				out = append(out, ClaimCost{Write: w.write, How: w.how, Used: w.used, N: size,
					Requests: (size + w.perRequest - 1) / w.perRequest, WriteUnits: size * w.units,
					WallSeconds: round(time.Since(t0).Seconds(), 3), CPUSeconds: round(processCPU().sub(cpu0).total().Seconds(), 3),
					JVMCPUSecond: round((b.jvm() - jvm0).Seconds(), 3)})
			}
		}
		return out, nil
	}
	if _, err := pass(n/5, false); err != nil {
		return nil, err
	}
	return pass(n, true)
}

// writeAll writes keys k0 … k(n-1) in groups of per, 16 groups at a time.
func writeAll(ctx context.Context, s *dedupe.Store, table string, n, per int, do func(context.Context, *dedupe.Store, string, []string) error) error {
	groups := make(chan []string)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range 16 {
		wg.Go(func() {
			for g := range groups {
				if err := do(ctx, s, table, g); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for start := 0; start < n; start += per {
		g := make([]string, 0, per)
		for i := start; i < min(start+per, n); i++ {
			g = append(g, fmt.Sprintf("i-%017x#cost", i))
		}
		groups <- g
	}
	close(groups)
	wg.Wait()
	return first
}
