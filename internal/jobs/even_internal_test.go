package jobs

import "testing"

func TestEvenSize(t *testing.T) {
	for _, c := range []struct{ n, most, workers, want int }{
		{100_000, 2000, 4, 1924}, // 50 chunks of 2000 → 52 of 1924 (13 a worker, not 12.5)
		{100_000, 2000, 2, 2000}, // 50 already a multiple of 2
		{8000, 2000, 4, 2000},
		{2500, 2000, 4, 625}, // 2 chunks → 4
		{3, 2000, 4, 2000},   // one chunk stays one chunk
		{2001, 2000, 4, 501}, // 2 chunks → 4
		{5, 2, 4, 2},         // 3 chunks → 4, but 5 entries: 3 chunks of 2 at most
		{0, 2000, 4, 2000},
		{5000, 2000, 1, 2000}, // one worker: chunks as large as allowed
	} {
		got := evenSize(c.n, c.most, c.workers)
		if got != c.want {
			t.Errorf("evenSize(%d, %d, %d) = %d, want %d", c.n, c.most, c.workers, got, c.want)
		}
	}
}
