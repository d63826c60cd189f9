package associate

import (
	"sync"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/plan"
)

// queue hands batches to the callers of one round. Handling a batch can add
// batches (the halves of a refused one), so the round ends only when the
// queue is empty and no batch is being handled.
type queue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	batches  []plan.Batch
	handling int
}

func newQueue(batches []plan.Batch) *queue {
	q := &queue{batches: batches}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// pop returns the next batch, waiting while other callers may still add
// some; ok is false when the round is over.
func (q *queue) pop() (b plan.Batch, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.batches) == 0 && q.handling > 0 {
		q.cond.Wait()
	}
	if len(q.batches) == 0 {
		return nil, false
	}
	b, q.batches = q.batches[0], q.batches[1:]
	q.handling++
	return b, true
}

// done marks a popped batch handled, queueing the batches it gave rise to.
func (q *queue) done(more ...plan.Batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.batches = append(q.batches, more...)
	q.handling--
	q.cond.Broadcast()
}
