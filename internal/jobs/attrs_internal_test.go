package jobs

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
)

// TestAttributeNamesMatchTags checks the attribute names the update
// expressions use against the items as attributevalue writes them: a name
// that drifted from its dynamodbav tag would update an attribute nobody reads.
func TestAttributeNamesMatchTags(t *testing.T) {
	meta := Meta{JobID: "j", SK: metaSK, State: StateRunning, Chunks: 1, ChunksDone: 1, ChunksPoisoned: 1,
		CreatedAt: 1, UpdatedAt: 1, Expiration: 1, FinishedBy: "b", AnnouncedAt: 1, Announcer: "b", AnnounceUntil: 1,
		Counts: Counts{Requested: 1, Successful: 1, Updated: 1, Failed: 1, Deduplicated: 1, Unprocessed: 1}}
	chunk := outcome{JobID: "j", SK: chunkSK(1), Result: "{}", Run: "r", Parts: 2, CountedAt: 1, Expiration: 1}
	for _, c := range []struct {
		item  any
		names []string
	}{
		{meta, []string{PartitionKey, SortKey, TTLAttribute, attrState, attrSuccessful, attrUpdated, attrFailed,
			attrDeduplicated, attrUnprocessed, attrChunksDone, attrChunksPoisoned, attrUpdatedAt, attrFinishedBy,
			attrAnnouncedAt, attrAnnouncer, attrAnnounceUntil}},
		{chunk, []string{PartitionKey, SortKey, TTLAttribute, attrResult, attrRun, attrParts, attrCountedAt}},
	} {
		av, err := attributevalue.MarshalMap(c.item)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range c.names {
			if _, ok := av[name]; !ok {
				t.Errorf("%T has no attribute %q", c.item, name)
			}
		}
	}
}
