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
//
// An analysis is handed to its waiters as soon as the model is done, not stored yet: storing it
// (the photo, the overlay: a write of megabytes, and an fsync) would delay every reply. Each
// waiter gets a store function instead, starts it once its reply's attempt is written (while the
// reply goes out) and ends its turn only once it returned nil; the first call stores, the others
// wait for it and share its error. If every waiter left first, nothing is stored: their messages
// are handed in again and analysed again.
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

	store    func(context.Context) error // nil if nothing is to be stored
	once     sync.Once
	storeErr error
}

// analysis is what a flight's function returns: the analysis and how to store it (nil if it is
// stored already).
type analysis struct {
	a     store.Analysis
	store func(context.Context) error
}

// stored stores the flight's analysis the first time it is called; every call returns once it
// is stored, with the error of storing it. A panic while storing becomes that error.
func (f *flight) stored(ctx context.Context) error {
	f.once.Do(func() {
		if f.store == nil {
			return
		}
		defer func() {
			if p := recover(); p != nil {
				f.storeErr = fmt.Errorf("panic while storing the analysis: %v\n%s", p, debug.Stack())
			}
		}()
		f.storeErr = f.store(context.WithoutCancel(ctx))
	})
	return f.storeErr
}

// do returns the result of fn for key, starting fn unless a call for key is in progress, and the
// function that stores it (see flights). fn's context keeps ctx's values but not its
// cancellation; it ends when every waiter's context has ended. wg counts the running fn, so that a
// drain waits for it too. A panic in fn becomes its error.
func (fs *flights) do(ctx context.Context, wg *sync.WaitGroup, key string, fn func(context.Context) (analysis, error)) (store.Analysis, func() error, error) {
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
			res, err := fn(fctx)
			f.a, f.store, f.err = res.a, res.store, err
		}()
	}
	f.waiters++
	fs.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return store.Analysis{}, nil, f.err
		}
		return f.a, func() error { return f.stored(ctx) }, nil
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
		return store.Analysis{}, nil, ctx.Err()
	}
}
