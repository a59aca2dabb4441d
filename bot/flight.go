package bot

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/cropshield/cropshield/store"
)

// flights runs one analysis per distinct photo however many turns wait for it (a group forwarding
// the same photo many times at once). The analysis runs on its own goroutine with its own
// context, detached from the turn that started it: a waiter that leaves (its message abandoned,
// its context cancelled) does not fail the others. The analysis is cancelled only when every
// waiter has left.
type flights struct {
	mu    sync.Mutex
	calls map[string]*flight
}

// flight is one analysis in progress.
type flight struct {
	done    chan struct{} // closed once a and err are set
	a       store.Analysis
	err     error
	waiters int
	cancel  context.CancelFunc
}

// do returns the result of fn for key, starting fn unless a call for key is in progress. fn's
// context keeps ctx's values but not its cancellation; it ends when every waiter's context has
// ended. wg counts the running fn, so that a drain waits for it too. A panic in fn becomes its
// error.
func (fs *flights) do(ctx context.Context, wg *sync.WaitGroup, key string, fn func(context.Context) (store.Analysis, error)) (store.Analysis, error) {
	fs.mu.Lock()
	if fs.calls == nil {
		fs.calls = map[string]*flight{}
	}
	f, ok := fs.calls[key]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		fs.calls[key] = f
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			defer func() {
				if p := recover(); p != nil {
					f.err = fmt.Errorf("panic in analysis: %v\n%s", p, debug.Stack())
				}
				fs.mu.Lock()
				if fs.calls[key] == f {
					delete(fs.calls, key)
				}
				fs.mu.Unlock()
				close(f.done)
			}()
			f.a, f.err = fn(fctx)
		}()
	}
	f.waiters++
	fs.mu.Unlock()

	select {
	case <-f.done:
		return f.a, f.err
	case <-ctx.Done():
		fs.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Nobody waits any more: stop the analysis, and let a later waiter start afresh
			// rather than join a cancelled one.
			f.cancel()
			if fs.calls[key] == f {
				delete(fs.calls, key)
			}
		}
		fs.mu.Unlock()
		return store.Analysis{}, ctx.Err()
	}
}
