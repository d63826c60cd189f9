package jobs

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestChunkSizes(t *testing.T) {
	for _, c := range []struct {
		n, most, workers, batch int
		want                    []int // runs of (count, size)
	}{
		// 50 chunks of 2000 → 52 (13 a worker, not 12.5), of 96 or 97 calls of 20.
		{100_000, 2000, 4, 20, []int{8, 1940, 44, 1920}},
		{100_000, 2000, 4, 1, []int{4, 1924, 48, 1923}},    // no batch: equal to an entry
		{100_000, 2000, 2, 10, []int{50, 2000}},            // 50 already a multiple of 2
		{8000, 2000, 4, 10, []int{4, 2000}},                //
		{2500, 2000, 4, 10, []int{2, 630, 2, 620}},         // 2 chunks → 4
		{2001, 2000, 4, 10, []int{1, 510, 3, 500}},         // the last holds 491
		{3, 2000, 4, 10, []int{1, 2000}},                   // one chunk stays one chunk
		{5, 2, 4, 10, []int{1, 2, 3, 1}},                   // fewer calls than chunks: to an entry
		{0, 2000, 4, 10, []int{1, 2000}},                   //
		{5000, 2000, 1, 10, []int{1, 2000}},                // one worker: chunks as large as allowed
		{100_000, 1990, 4, 1000, []int{4, 1924, 48, 1923}}, // whole calls would pass most
	} {
		var want []int
		for i := 0; i < len(c.want); i += 2 {
			want = append(want, slices.Repeat([]int{c.want[i+1]}, c.want[i])...)
		}
		if got := chunkSizes(c.n, c.most, c.workers, c.batch); !slices.Equal(got, want) {
			t.Errorf("chunkSizes(%d, %d, %d, %d) = %v, want %v", c.n, c.most, c.workers, c.batch, got, want)
		}
	}
}

// Whatever the numbers: every entry has a place, no chunk passes most, the
// chunks come in a multiple of the workers and within one call of each
// other, and whole calls whenever chunks of whole calls fit.
func TestChunkSizesHoldForAnyJob(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		n, most, workers, batch := r.IntN(200_000)+1, r.IntN(3000)+1, r.IntN(10)+1, r.IntN(100)+1
		sizes := chunkSizes(n, most, workers, batch)
		if n <= most || workers == 1 {
			if !slices.Equal(sizes, []int{most}) {
				t.Fatalf("chunkSizes(%d, %d, %d, %d) = %v, want [%d]", n, most, workers, batch, sizes, most)
			}
			continue
		}
		sum := 0
		for _, s := range sizes {
			sum += s
		}
		lo, hi := slices.Min(sizes), slices.Max(sizes)
		unit := 1
		if whole := (n + batch - 1) / batch; whole >= len(sizes) && (whole+len(sizes)-1)/len(sizes)*batch <= most {
			unit = batch
		}
		switch {
		case sum < n || sum-n >= unit:
			t.Fatalf("chunkSizes(%d, %d, %d, %d): %d places for %d entries", n, most, workers, batch, sum, n)
		case hi > most || lo < 1:
			t.Fatalf("chunkSizes(%d, %d, %d, %d): sizes from %d to %d, most %d", n, most, workers, batch, lo, hi, most)
		case len(sizes)%workers != 0 && len(sizes) != n:
			t.Fatalf("chunkSizes(%d, %d, %d, %d): %d chunks for %d workers", n, most, workers, batch, len(sizes), workers)
		case hi-lo > unit:
			t.Fatalf("chunkSizes(%d, %d, %d, %d): sizes from %d to %d", n, most, workers, batch, lo, hi)
		case unit > 1 && (lo%unit != 0 || hi%unit != 0):
			t.Fatalf("chunkSizes(%d, %d, %d, %d) = %v: not whole calls of %d", n, most, workers, batch, sizes, batch)
		}
	}
}
