package whatsapp

import "sync"

// queue holds the received messages waiting for a worker. Messages of one chat are handed out
// one at a time and in order (a farmer's "/language sw" is applied before the photo that follows
// it); different chats run in parallel on the bounded pool of workers.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chats  map[string][]inboxRow // per chat, oldest first; the head may be running
	ready  []string              // chats whose head may run now
	closed bool
}

func newQueue() *queue {
	q := &queue{chats: map[string][]inboxRow{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push adds a message; it reports false once the queue is closed.
func (q *queue) push(r inboxRow) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	key := r.Meta.ChatID
	if len(q.chats[key]) == 0 {
		q.ready = append(q.ready, key)
		q.cond.Signal()
	}
	q.chats[key] = append(q.chats[key], r)
	return true
}

// next blocks until a chat's next message may run, or the queue is closed (ok false). The caller
// must call done with the chat afterwards.
func (q *queue) next() (r inboxRow, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return inboxRow{}, false
	}
	key := q.ready[0]
	q.ready = q.ready[1:]
	return q.chats[key][0], true
}

// done ends the head message of the chat and lets the chat's next one run.
func (q *queue) done(chat string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	rest := q.chats[chat][1:]
	if len(rest) == 0 {
		delete(q.chats, chat)
		return
	}
	q.chats[chat] = rest
	if !q.closed {
		q.ready = append(q.ready, chat)
		q.cond.Signal()
	}
}

// close stops handing out messages; what is still queued stays pending in the inbox and is handed
// in again at the next start.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}
