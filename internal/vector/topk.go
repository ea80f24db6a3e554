package vector

import "slices"

// topK keeps the k best (key, id) pairs seen: higher key first, then lower
// id, so that ties are broken the same way on every run and every machine.
// It is a binary heap whose root is the worst pair kept.
type topK struct {
	k    int
	keys []float64
	ids  []int32
}

func newTopK(k int) *topK {
	return &topK{k: k, keys: make([]float64, 0, k), ids: make([]int32, 0, k)}
}

// worse reports whether pair i ranks below pair j.
func (t *topK) worse(i, j int) bool {
	return t.keys[i] < t.keys[j] || (t.keys[i] == t.keys[j] && t.ids[i] > t.ids[j])
}

// push offers a pair; the common case, a key below the worst kept, returns
// after one comparison.
func (t *topK) push(key float64, id int32) {
	if len(t.keys) == t.k {
		if key < t.keys[0] || (key == t.keys[0] && id > t.ids[0]) {
			return
		}
		t.keys[0], t.ids[0] = key, id
		t.down(0)
		return
	}
	t.keys = append(t.keys, key)
	t.ids = append(t.ids, id)
	for i := len(t.keys) - 1; i > 0; {
		p := (i - 1) / 2
		if !t.worse(i, p) {
			break
		}
		t.swap(i, p)
		i = p
	}
}

func (t *topK) down(i int) {
	n := len(t.keys)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.worse(r, l) {
			m = r
		}
		if !t.worse(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}

func (t *topK) swap(i, j int) {
	t.keys[i], t.keys[j] = t.keys[j], t.keys[i]
	t.ids[i], t.ids[j] = t.ids[j], t.ids[i]
}

type keyed struct {
	key float64
	id  int32
}

// sorted returns the kept pairs best first.
func (t *topK) sorted() []keyed {
	out := make([]keyed, len(t.keys))
	for i := range out {
		out[i] = keyed{t.keys[i], t.ids[i]}
	}
	slices.SortFunc(out, func(a, b keyed) int {
		switch {
		case a.key > b.key:
			return -1
		case a.key < b.key:
			return 1
		}
		return int(a.id) - int(b.id)
	})
	return out
}
