package bot

import (
	"sync"
	"time"
)

// limiter is a token bucket per chat: a flood from one chat cannot starve the others, and the
// flooder is told once per empty bucket rather than once per message.
type limiter struct {
	burst  float64
	refill time.Duration

	mu      sync.Mutex
	buckets map[chatKey]*bucket
}

type chatKey struct {
	platform Platform
	id       string
}

type bucket struct {
	tokens float64
	last   time.Time
	warned bool
}

// maxBuckets bounds the limiter's memory; idle full buckets are dropped past it.
const maxBuckets = 50_000

func newLimiter(burst int, refill time.Duration) *limiter {
	return &limiter{burst: float64(burst), refill: refill, buckets: map[chatKey]*bucket{}}
}

// allow takes a token for the chat at time now.
func (l *limiter) allow(p Platform, chat string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := chatKey{p, chat}
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[k] = b
	}
	if now.After(b.last) {
		b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.last))/float64(l.refill))
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		b.warned = false
		return true
	}
	return false
}

// shouldWarn reports true once per stretch of refused messages.
func (l *limiter) shouldWarn(p Platform, chat string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[chatKey{p, chat}]
	if !ok || b.warned {
		return false
	}
	b.warned = true
	return true
}

func (l *limiter) prune(now time.Time) {
	full := time.Duration(l.burst) * l.refill
	for k, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
}
