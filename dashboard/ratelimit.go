package dashboard

import (
	"sync"
	"time"
)

// limiter counts failed logins per key (a client address, an account) in a sliding window. It is
// bounded: past maxKeys keys, the stale ones are dropped, then the oldest.
type limiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	fails map[string][]time.Time
}

const maxKeys = 10_000

func newLimiter(max int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{max: max, window: window, now: now, fails: map[string][]time.Time{}}
}

// recent drops the failures of key older than the window and returns the rest.
func (l *limiter) recent(key string, now time.Time) []time.Time {
	f := l.fails[key]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	if i == len(f) {
		delete(l.fails, key)
		return nil
	}
	f = f[i:]
	l.fails[key] = f
	return f
}

// blocked reports whether any key has had max failures within the window, and how long until
// the oldest of them leaves it.
func (l *limiter) blocked(keys ...string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, k := range keys {
		if f := l.recent(k, now); len(f) >= l.max {
			wait = max(wait, l.window-now.Sub(f[len(f)-l.max]))
		}
	}
	return wait, wait > 0
}

// fail records a failure for every key.
func (l *limiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.fails) >= maxKeys {
		l.shrink(now)
	}
	for _, k := range keys {
		f := append(l.recent(k, now), now)
		if len(f) > l.max {
			f = f[len(f)-l.max:]
		}
		l.fails[k] = f
	}
}

// reset forgets a key's failures (an account after a successful login).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}

// shrink drops stale keys, then, if still full, the keys whose last failure is oldest.
func (l *limiter) shrink(now time.Time) {
	var oldest string
	var at time.Time
	for k := range l.fails {
		if f := l.recent(k, now); f != nil && (oldest == "" || f[len(f)-1].Before(at)) {
			oldest, at = k, f[len(f)-1]
		}
	}
	if len(l.fails) >= maxKeys {
		delete(l.fails, oldest)
	}
}
