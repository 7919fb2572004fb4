package routing

import "sync"

// stateCache keeps recent referral states by id, so that a command reads
// only the events appended since its referral was last seen. Entries are
// only ever replaced by newer ones (a higher log sequence); when full, an
// arbitrary entry is evicted. A nil cache (size < 0) keeps nothing.
type stateCache struct {
	mu   sync.Mutex
	max  int
	byID map[string]refState
}

func newStateCache(size int) *stateCache {
	if size < 0 {
		return nil
	}
	return &stateCache{max: size, byID: make(map[string]refState, min(size, 1024))}
}

func (c *stateCache) get(id string) (refState, bool) {
	if c == nil {
		return refState{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.byID[id]
	return st, ok
}

func (c *stateCache) put(st refState) {
	if c == nil || st.ID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byID[st.ID]; ok && old.Sequence >= st.Sequence {
		return
	}
	if _, ok := c.byID[st.ID]; !ok && len(c.byID) >= c.max {
		for k := range c.byID { // map order is random enough for eviction
			delete(c.byID, k)
			break
		}
	}
	c.byID[st.ID] = st
}

func (c *stateCache) drop(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byID, id)
}
