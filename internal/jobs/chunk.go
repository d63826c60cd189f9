package jobs

import (
	"encoding/json"
	"fmt"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Chunk is the body of one queue message: part of a job's entries, already
// validated and free of in-request duplicates.
type Chunk struct {
	JobID                         string  `json:"JobId"`
	Index                         int     `json:"Chunk"` // 1-based; 0 is the submission's own outcomes
	AssociationDispatchAssumeRole *string `json:"AssociationDispatchAssumeRole,omitempty"`
	// OnExisting is the request's: what to do with an association that
	// exists with other settings.
	OnExisting string          `json:"OnExisting,omitempty"`
	Entries    []request.Entry `json:"Entries"`
}

// MaxMessageBytes bounds a chunk message and a SendMessageBatch call. SQS
// accepts 1 MiB since 2026 in most Regions, but 256 KiB is accepted
// everywhere; the margin leaves room for the message attributes.
const MaxMessageBytes = 250 << 10

// Split packs entries into chunks like head (the job, and the request's
// members every chunk carries), in order: chunk i of at most sizes[i]
// entries (the last of sizes for those after it; at least one) and each of
// at most maxBytes of JSON. An entry too large for a message on its own is
// returned in tooLarge instead (it cannot be queued).
func Split(head Chunk, entries []request.Entry, sizes []int, maxBytes int) (chunks []Chunk, tooLarge []request.Entry, err error) {
	if len(sizes) == 0 {
		return nil, nil, fmt.Errorf("split: no chunk size")
	}
	maxEntries := func() int { return max(sizes[min(len(chunks), len(sizes)-1)], 1) }
	head.Index, head.Entries = 1<<30, nil
	overhead, err := json.Marshal(head)
	if err != nil {
		return nil, nil, fmt.Errorf("encode chunk: %w", err)
	}
	head.Index = 0
	cur := head
	size := len(overhead)
	flush := func() {
		if len(cur.Entries) > 0 {
			cur.Index = len(chunks) + 1
			chunks = append(chunks, cur)
		}
		cur = head
		size = len(overhead)
	}
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, nil, fmt.Errorf("encode entry: %w", err)
		}
		n := len(b) + 1 // the comma
		if len(overhead)+n > maxBytes {
			tooLarge = append(tooLarge, e)
			continue
		}
		if len(cur.Entries) >= maxEntries() || size+n > maxBytes {
			flush()
		}
		cur.Entries = append(cur.Entries, e)
		size += n
	}
	flush()
	return chunks, tooLarge, nil
}

// Request turns a chunk back into a request for the engine; paths name the
// chunk so messages stay meaningful in the job's outcomes.
func (c Chunk) Request() *request.Request {
	req := &request.Request{AssociationDispatchAssumeRole: c.AssociationDispatchAssumeRole, OnExisting: c.OnExisting, Items: make([]request.Item, len(c.Entries))}
	if req.OnExisting != request.OnExistingUpdate {
		req.OnExisting = request.OnExistingSkip
	}
	for i, e := range c.Entries {
		path := fmt.Sprintf("Chunk[%d].Entries[%d]", c.Index, i)
		// Validated at submission; checked again because a queue message
		// can be sent by anyone allowed to write to the queue.
		req.Items[i] = request.Item{Entry: e, Path: path, Problems: request.ValidateEntry(path, e)}
	}
	return req
}
