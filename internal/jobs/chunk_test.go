package jobs_test

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/jobs"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// fleet is n entries of one document over random node IDs, as a fan-out
// job's are.
func fleet(n int) []request.Entry {
	es := make([]request.Entry, n)
	for i := range es {
		var b [9]byte
		_, _ = rand.Read(b[:])
		es[i] = request.Entry{Name: "AWS-UpdateSSMAgent", InstanceId: aws.String("i-" + hex.EncodeToString(b[:])[:17]),
			Parameters: map[string][]string{"version": {"3.3.40.0"}}, AssociationName: aws.String("agent")}
	}
	return es
}

// A chunk's entries travel gzipped: CHUNK_SIZE's maximum, 10,000 entries,
// fits one message, where plain JSON held about 2,000; the worker reads
// them back as they were sent.
func TestChunkMessageCarriesItsEntriesGzipped(t *testing.T) {
	entries := fleet(10_000)
	plain, _ := json.Marshal(entries)
	head := jobs.Chunk{JobID: "0123456789abcdef0123456789abcdef", AssociationDispatchAssumeRole: aws.String("arn:aws:iam::111122223333:role/dispatch"), OnExisting: request.OnExistingUpdate}
	chunks, tooLarge, err := jobs.Split(head, entries, []int{10_000}, jobs.MaxMessageBytes)
	if err != nil || len(tooLarge) != 0 || len(chunks) != 1 {
		t.Fatalf("Split: %d chunks, %d too large, %v; want 1 chunk", len(chunks), len(tooLarge), err)
	}
	chunks[0].Closing = true
	body, err := json.Marshal(chunks[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > jobs.MaxMessageBytes || len(body) > len(plain)/4 {
		t.Errorf("message of %d bytes for %d of plain JSON entries; want at most a quarter, and %d", len(body), len(plain), jobs.MaxMessageBytes)
	}
	if !bytes.Contains(body, []byte(`"EntriesGzip":"`)) || bytes.Contains(body, []byte(`"Entries":`)) {
		t.Errorf("message %.200s…: want the entries as EntriesGzip only", body)
	}
	var back jobs.Chunk
	if err := json.Unmarshal(body, &back); err != nil {
		t.Fatal(err)
	}
	if back.JobID != head.JobID || back.Index != 1 || aws.ToString(back.AssociationDispatchAssumeRole) != aws.ToString(head.AssociationDispatchAssumeRole) ||
		back.OnExisting != head.OnExisting || !back.Closing || !reflect.DeepEqual(back.Entries, entries) {
		t.Errorf("read back: job %q chunk %d role %q on-existing %q closing %t, %d entries equal %v", back.JobID, back.Index,
			aws.ToString(back.AssociationDispatchAssumeRole), back.OnExisting, back.Closing, len(back.Entries), reflect.DeepEqual(back.Entries, entries))
	}
}

// Messages queued by an earlier version, or written by hand, carry the
// entries as plain JSON: still read.
func TestChunkMessageInPlainJSONIsRead(t *testing.T) {
	body := `{"JobId":"j1","Chunk":3,"Entries":[{"Name":"AWS-UpdateSSMAgent","InstanceId":"i-0123456789abcdef0"}]}`
	var c jobs.Chunk
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	if c.JobID != "j1" || c.Index != 3 || len(c.Entries) != 1 || aws.ToString(c.Entries[0].InstanceId) != "i-0123456789abcdef0" {
		t.Errorf("read %+v", c)
	}
}

// Anyone allowed to send to the queue can write a message: one that is
// not what the submitter writes is refused with the field and the rule,
// and none makes the worker unzip more than MaxChunkJSON.
func TestChunkMessageRefusals(t *testing.T) {
	gz := func(b []byte) string {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	bomb := gz(bytes.Repeat([]byte(" "), jobs.MaxChunkJSON+1)) // ~8 KiB that unzip to 8 MiB and one byte
	for _, c := range []struct{ name, body, want string }{
		{"both", fmt.Sprintf(`{"JobId":"j","Chunk":1,"Entries":[{"Name":"d"}],"EntriesGzip":%q}`, gz([]byte(`[]`))), "Entries and EntriesGzip both set"},
		{"not gzip", `{"JobId":"j","Chunk":1,"EntriesGzip":"bm90IGd6aXA="}`, "EntriesGzip"},
		{"too large unzipped", fmt.Sprintf(`{"JobId":"j","Chunk":1,"EntriesGzip":%q}`, bomb), fmt.Sprintf("unzips to more than %d bytes", jobs.MaxChunkJSON)},
		{"not entries", fmt.Sprintf(`{"JobId":"j","Chunk":1,"EntriesGzip":%q}`, gz([]byte(`{"a":1}`))), "EntriesGzip"},
		{"cut short", fmt.Sprintf(`{"JobId":"j","Chunk":1,"EntriesGzip":%q}`, gz([]byte(`[{"Name":"d"}]`))[:12]), "EntriesGzip"},
	} {
		var ch jobs.Chunk
		err := json.Unmarshal([]byte(c.body), &ch)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
	if len(bomb) > 64<<10 {
		t.Fatalf("the bomb is %d bytes: not a small message", len(bomb))
	}
}

// Entries that compress badly still fit: a chunk whose message would pass
// the limit is halved until it fits, every entry placed once, in order. An
// entry larger than a message as JSON is refused, even when it would
// compress into one: its outcome could not be recorded.
func TestSplitHalvesChunksThatCompressBadly(t *testing.T) {
	entries := fleet(200)
	for i := range entries {
		noise := make([]byte, 600)
		_, _ = rand.Read(noise)
		entries[i].Parameters = map[string][]string{"blob": {base64.StdEncoding.EncodeToString(noise)}}
	}
	big := request.Entry{Name: "AWS-RunShellScript", InstanceId: aws.String("i-0123456789abcdef0"),
		Parameters: map[string][]string{"commands": {strings.Repeat("echo hi; ", 4000)}}} // 36 KB, compresses to little
	const limit = 32 << 10
	all := append(entries[:100:100], big)
	all = append(all, entries[100:]...)
	chunks, tooLarge, err := jobs.Split(jobs.Chunk{JobID: "j"}, all, []int{200}, limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(tooLarge) != 1 || aws.ToString(tooLarge[0].InstanceId) != "i-0123456789abcdef0" {
		t.Errorf("too large: %d entries, want the one of 36 KB", len(tooLarge))
	}
	if len(chunks) < 8 {
		t.Errorf("%d chunks: want the 200 entries of ~830 bytes each (~166 KB gzipped) halved into at least 8 under 32 KiB", len(chunks))
	}
	var placed []request.Entry
	for i, c := range chunks {
		body, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(body) > limit || c.Index != i+1 {
			t.Errorf("chunk %d (index %d): %d bytes, limit %d", i+1, c.Index, len(body), limit)
		}
		placed = append(placed, c.Entries...)
	}
	if !reflect.DeepEqual(placed, entries) {
		t.Errorf("%d entries placed, want the 200 in order", len(placed))
	}
}

// The submitter never writes a chunk the worker would refuse: entries that
// compress well but pass MaxChunkJSON unzipped go in more chunks than
// CHUNK_SIZE alone would make, and each reads back.
func TestSplitKeepsChunksWithinWhatTheWorkerUnzips(t *testing.T) {
	entries := fleet(10_000)
	for i := range entries {
		entries[i].Parameters = map[string][]string{"commands": {strings.Repeat("x", 1000)}} // ~1.1 KB, compresses to little
	}
	chunks, tooLarge, err := jobs.Split(jobs.Chunk{JobID: "j"}, entries, []int{10_000}, jobs.MaxMessageBytes)
	if err != nil || len(tooLarge) != 0 || len(chunks) != 2 {
		t.Fatalf("Split: %d chunks, %d too large, %v; want 2 chunks for ~11 MB of entries", len(chunks), len(tooLarge), err)
	}
	placed := 0
	for _, c := range chunks {
		body, _ := json.Marshal(c)
		var back jobs.Chunk
		if err := json.Unmarshal(body, &back); err != nil || len(back.Entries) != len(c.Entries) {
			t.Fatalf("chunk %d (%d entries, %d bytes) read back: %d entries, %v", c.Index, len(c.Entries), len(body), len(back.Entries), err)
		}
		placed += len(back.Entries)
	}
	if placed != len(entries) {
		t.Errorf("%d entries placed, want %d", placed, len(entries))
	}
}
