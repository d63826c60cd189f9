package jobs

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Chunk is the body of one queue message: part of a job's entries, already
// validated and free of in-request duplicates.
type Chunk struct {
	JobID                         string
	Index                         int // 1-based; 0 is the submission's own outcomes
	AssociationDispatchAssumeRole *string
	// OnExisting is the request's: what to do with an association that
	// exists with other settings.
	OnExisting string
	Entries    []request.Entry
	// Closing marks the job's last chunks, one per worker: its worker is
	// expected to run no other chunk of the job after it, and leaves the
	// shared rate (CALLS_PER_SECOND=auto) at once (associate.Job.Closing).
	Closing bool

	gz []byte // Entries gzipped, when Split made the chunk
}

// wireChunk is a chunk message's body. The entries travel gzipped
// (EntriesGzip, base64 in the JSON): a job's entries repeat their document,
// parameters and targets, so 2,000 take ~30 KB instead of the ~200 KB of
// plain JSON that capped a chunk at about 2,000 entries, and a chunk can
// hold CHUNK_SIZE. Entries as plain JSON are still read: messages queued by
// an earlier version, and chunks written by hand.
type wireChunk struct {
	JobID                         string          `json:"JobId"`
	Index                         int             `json:"Chunk"`
	AssociationDispatchAssumeRole *string         `json:"AssociationDispatchAssumeRole,omitempty"`
	OnExisting                    string          `json:"OnExisting,omitempty"`
	Closing                       bool            `json:"Closing,omitempty"`
	Entries                       []request.Entry `json:"Entries,omitempty"`
	EntriesGzip                   []byte          `json:"EntriesGzip,omitempty"`
}

// MaxMessageBytes bounds a chunk message and a SendMessageBatch call. SQS
// accepts 1 MiB since 2026 in most Regions, but 256 KiB is accepted
// everywhere; the margin leaves room for the message attributes.
const MaxMessageBytes = 250 << 10

// MaxChunkJSON bounds a chunk's entries as JSON once unzipped: what a
// worker decodes, and all a message can make it decode.
const MaxChunkJSON = 8 << 20

// MarshalJSON writes the message body, its entries gzipped.
func (c Chunk) MarshalJSON() ([]byte, error) {
	gz := c.gz
	if gz == nil {
		raw, err := json.Marshal(c.Entries)
		if err != nil {
			return nil, fmt.Errorf("encode entries: %w", err)
		}
		if gz, err = gzipJSON(raw); err != nil {
			return nil, err
		}
	}
	return json.Marshal(c.wire(gz))
}

// wire is the chunk's body with its entries as gz.
func (c Chunk) wire(gz []byte) wireChunk {
	return wireChunk{JobID: c.JobID, Index: c.Index, AssociationDispatchAssumeRole: c.AssociationDispatchAssumeRole, OnExisting: c.OnExisting, Closing: c.Closing, EntriesGzip: gz}
}

// UnmarshalJSON reads a message body, its entries gzipped or not. A message
// can be sent by anyone allowed to write to the queue: the entries unzip to
// at most MaxChunkJSON bytes.
func (c *Chunk) UnmarshalJSON(b []byte) error {
	var w wireChunk
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Chunk{JobID: w.JobID, Index: w.Index, AssociationDispatchAssumeRole: w.AssociationDispatchAssumeRole, OnExisting: w.OnExisting, Closing: w.Closing, Entries: w.Entries}
	if w.EntriesGzip == nil {
		return nil
	}
	if w.Entries != nil {
		return errors.New("chunk: Entries and EntriesGzip both set")
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.EntriesGzip))
	if err != nil {
		return fmt.Errorf("chunk: EntriesGzip: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, MaxChunkJSON+1))
	if err != nil {
		return fmt.Errorf("chunk: EntriesGzip: %w", err)
	}
	if len(raw) > MaxChunkJSON {
		return fmt.Errorf("chunk: EntriesGzip unzips to more than %d bytes", MaxChunkJSON)
	}
	if err := json.Unmarshal(raw, &c.Entries); err != nil {
		return fmt.Errorf("chunk: EntriesGzip: %w", err)
	}
	return nil
}

func gzipJSON(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the level is valid
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("gzip entries: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip entries: %w", err)
	}
	return buf.Bytes(), nil
}

// Split packs entries into chunks like head (the job, and the request's
// members every chunk carries), in order: chunk i of at most sizes[i]
// entries (the last of sizes for those after it; at least one), of at most
// MaxChunkJSON bytes of entries, and each message of at most maxBytes. A
// chunk whose message would be larger, its entries compressing badly, is
// halved until it fits. An entry larger than maxBytes as JSON is returned
// in tooLarge instead (it cannot be queued, and its outcome could not be
// recorded).
func Split(head Chunk, entries []request.Entry, sizes []int, maxBytes int) (chunks []Chunk, tooLarge []request.Entry, err error) {
	if len(sizes) == 0 {
		return nil, nil, fmt.Errorf("split: no chunk size")
	}
	head.Entries, head.gz = nil, nil
	largest := head // sizes measured with it only shrink
	largest.Index, largest.Closing = 1<<30, true
	overhead, err := json.Marshal(largest.wire(nil))
	if err != nil {
		return nil, nil, fmt.Errorf("encode chunk: %w", err)
	}
	// By count and unzipped size first; each entry is encoded once, to
	// measure it and into its chunk.
	type encoded struct {
		e    *request.Entry
		json []byte
	}
	var (
		groups [][]encoded
		cur    []encoded
		size   int
	)
	for i, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, nil, fmt.Errorf("encode entry: %w", err)
		}
		n := len(b) + 1 // the comma
		if len(overhead)+n > maxBytes {
			tooLarge = append(tooLarge, e)
			continue
		}
		if len(cur) >= max(sizes[min(len(groups), len(sizes)-1)], 1) || len(cur) > 0 && size+n > MaxChunkJSON {
			groups, cur, size = append(groups, cur), nil, 0
		}
		cur = append(cur, encoded{&entries[i], b})
		size += n
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	// Then each message within maxBytes, halving those that are not.
	var fit func(g []encoded) error
	fit = func(g []encoded) error {
		c := head
		c.Entries = make([]request.Entry, len(g))
		n := 2
		for _, en := range g {
			n += len(en.json) + 1
		}
		raw := append(make([]byte, 0, n), '[')
		for i, en := range g {
			if i > 0 {
				raw = append(raw, ',')
			}
			raw = append(raw, en.json...)
			c.Entries[i] = *en.e
		}
		gz, err := gzipJSON(append(raw, ']'))
		if err != nil {
			return err
		}
		c.gz = gz
		body, err := json.Marshal(c)
		switch {
		case err != nil:
			return fmt.Errorf("encode chunk: %w", err)
		case len(body) <= maxBytes:
			chunks = append(chunks, c)
		case len(g) == 1:
			tooLarge = append(tooLarge, *g[0].e)
		default:
			if err := fit(g[:len(g)/2]); err != nil {
				return err
			}
			return fit(g[len(g)/2:])
		}
		return nil
	}
	for _, g := range groups {
		if err := fit(g); err != nil {
			return nil, nil, err
		}
	}
	for i := range chunks {
		chunks[i].Index = i + 1
	}
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
