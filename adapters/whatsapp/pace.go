package whatsapp

import (
	"context"
	"sync"
	"time"
)

// pacer spaces the bot's outgoing messages like a person typing rather than a bulk sender: at
// least perChat between two messages to the same chat and at least global between any two.
type pacer struct {
	perChat, global time.Duration
	now             func() time.Time

	mu    sync.Mutex
	next  time.Time            // earliest time of the next message anywhere
	chats map[string]time.Time // earliest time of the next message per chat
}

func newPacer(perChat, global time.Duration, now func() time.Time) *pacer {
	return &pacer{perChat: perChat, global: global, now: now, chats: map[string]time.Time{}}
}

// reserve books the next slot for a message to chat and returns how long to wait for it.
func (p *pacer) reserve(chat string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	at := now
	if p.next.After(at) {
		at = p.next
	}
	if t := p.chats[chat]; t.After(at) {
		at = t
	}
	p.next = at.Add(p.global)
	p.chats[chat] = at.Add(p.perChat)
	if len(p.chats) > 1024 { // forget chats whose slot has passed
		for c, t := range p.chats {
			if !t.After(now) {
				delete(p.chats, c)
			}
		}
	}
	return at.Sub(now)
}

// wait blocks until the next slot for chat.
func (p *pacer) wait(ctx context.Context, chat string) error {
	d := p.reserve(chat)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
