package bottest

import (
	"sync"
	"testing"
	"time"
)

// Guard is a mutex whose holders announce changes to the state it guards, so that a test can
// wait for that state to reach a condition without sleeping: call Changed with the lock held
// after each change; WaitFor returns once its condition holds.
type Guard struct {
	sync.Mutex
	changed chan struct{} // closed and replaced by Changed
}

// Changed wakes the WaitFor callers. g is locked.
func (g *Guard) Changed() {
	if g.changed != nil {
		close(g.changed)
	}
	g.changed = make(chan struct{})
}

// WaitFor blocks until cond (called with g locked) holds. The deadline only turns a hang into a
// readable failure naming what.
func (g *Guard) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		g.Lock()
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		ok, ch := cond(), g.changed
		g.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}
