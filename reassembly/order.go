package reassembly

import "container/heap"

// orderer holds finished sessions until the output order allows them out:
// a min-heap on (k1, k2).
type orderer struct{ h ordHeap }

type ordItem struct {
	k1, k2 uint64
	v      any
}

type ordHeap []ordItem

func (h ordHeap) Len() int { return len(h) }
func (h ordHeap) Less(i, j int) bool {
	return h[i].k1 < h[j].k1 || (h[i].k1 == h[j].k1 && h[i].k2 < h[j].k2)
}
func (h ordHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *ordHeap) Push(x any)   { *h = append(*h, x.(ordItem)) }
func (h *ordHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = ordItem{}
	*h = old[:len(old)-1]
	return it
}

func (o *orderer) len() int { return len(o.h) }

func (o *orderer) push(k1, k2 uint64, v any) { heap.Push(&o.h, ordItem{k1, k2, v}) }

// popBelow emits, in order, every item whose k1 is below bound.
func (o *orderer) popBelow(bound uint64, emit func(any)) {
	for len(o.h) > 0 && o.h[0].k1 < bound {
		emit(heap.Pop(&o.h).(ordItem).v)
	}
}
