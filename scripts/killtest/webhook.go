package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// hookDeliverer plays Telegram in webhook mode behind a load balancer: each update is POSTed to
// the webhook of one replica (a seeded random pick), with the secret_token of the last
// setWebhook; an answer other than 200, or a connection error, sends it again to the next
// replica after a short back-off. One chat's updates go one at a time, in order (the next only
// once the previous got its 200), as Telegram does; different chats go at once, up to conns.
type hookDeliverer struct {
	f       *fakeBot
	targets []string // each replica's webhook listener, host:port
	client  *http.Client
	sem     chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	rng      *rand.Rand
	queues   map[int64][]queued // per chat: the update being delivered first
	active   map[int64]bool     // a goroutine delivers the chat's queue
	pending  int
	posts    int         // POSTs made
	failures map[int]int // non-200 answers by status (0: connection error)
	taken    []int       // updates each replica took (answered 200)
	takenAt  map[int64]time.Time
	takenBy  map[int64]int
}

// startWebhook switches the fake to webhook mode, delivering to targets.
func (f *fakeBot) startWebhook(targets []string, conns int, seed uint64) {
	ctx, cancel := context.WithCancel(context.Background())
	f.hook = &hookDeliverer{f: f, targets: targets, sem: make(chan struct{}, max(1, conns)), ctx: ctx, cancel: cancel,
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: max(1, conns)}},
		rng:    rand.New(rand.NewPCG(seed, 0x686f6f6b)), queues: map[int64][]queued{}, active: map[int64]bool{},
		failures: map[int]int{}, taken: make([]int, len(targets)), takenAt: map[int64]time.Time{}, takenBy: map[int64]int{}}
}

func (d *hookDeliverer) stop() {
	d.cancel()
	d.wg.Wait()
	d.client.CloseIdleConnections()
}

func (d *hookDeliverer) pendingCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending
}

// stats: POSTs made, failed answers by status (0: connection error), updates taken per replica.
func (d *hookDeliverer) stats() (posts int, failures map[int]int, taken []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	failures = map[int]int{}
	for k, v := range d.failures {
		failures[k] = v
	}
	return d.posts, failures, append([]int(nil), d.taken...)
}

// acceptedAt is when a replica took update id (answered 200), zero if none did.
func (d *hookDeliverer) acceptedAt(id int64) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.takenAt[id]
}

// describeAlbum says which replica took each of an album's updates and when, after the first
// ("r1 +0ms, r3 +1650ms"), for a problem's line.
func (d *hookDeliverer) describeAlbum(ids []int64) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var parts []string
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("r%d +%dms", d.takenBy[id]+1, d.takenAt[id].Sub(d.takenAt[ids[0]]).Milliseconds()))
	}
	return strings.Join(parts, ", ")
}

// enqueue adds an update to its chat's queue, starting the chat's delivery if none runs.
func (d *hookDeliverer) enqueue(chat int64, q queued) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queues[chat] = append(d.queues[chat], q)
	d.pending++
	if d.active[chat] {
		return
	}
	d.active[chat] = true
	d.wg.Go(func() { d.run(chat) })
}

// run delivers a chat's updates one after another until its queue is empty.
func (d *hookDeliverer) run(chat int64) {
	for {
		d.mu.Lock()
		if len(d.queues[chat]) == 0 {
			delete(d.queues, chat)
			delete(d.active, chat)
			d.mu.Unlock()
			return
		}
		head := d.queues[chat][0]
		d.mu.Unlock()
		if !d.deliver(head) {
			return // stopped
		}
		d.mu.Lock()
		d.queues[chat] = d.queues[chat][1:]
		d.pending--
		d.mu.Unlock()
		d.f.mu.Lock()
		d.f.changedLocked()
		d.f.mu.Unlock()
	}
}

// deliver posts q until a replica answers 200; false if the deliverer stopped first.
func (d *hookDeliverer) deliver(q queued) bool {
	d.mu.Lock()
	i := d.rng.IntN(len(d.targets))
	d.mu.Unlock()
	for try := 0; ; try++ {
		hookURL, secret, err := d.webhook()
		if err != nil {
			return false
		}
		status := d.post(i, hookURL, secret, q)
		d.mu.Lock()
		d.posts++
		if status == http.StatusOK {
			d.taken[i]++
			d.takenAt[q.id], d.takenBy[q.id] = time.Now(), i
			d.mu.Unlock()
			return true
		}
		d.failures[status]++
		d.mu.Unlock()
		// Another replica next (the load balancer's choice after a failure), after a back-off.
		i = (i + 1) % len(d.targets)
		select {
		case <-d.ctx.Done():
			return false
		case <-time.After(min(50*time.Millisecond<<min(try, 6), 2*time.Second)):
		}
	}
}

// webhook waits until a webhook is set and returns its URL and secret.
func (d *hookDeliverer) webhook() (string, string, error) {
	for {
		d.f.mu.Lock()
		hookURL, secret, changed := d.f.hookURL, d.f.hookSecret, d.f.changed
		d.f.mu.Unlock()
		if hookURL != "" {
			return hookURL, secret, nil
		}
		select {
		case <-d.ctx.Done():
			return "", "", d.ctx.Err()
		case <-changed:
		}
	}
}

// post sends q to replica i's listener at the path of the webhook's URL and returns the status
// (0 for a connection error).
func (d *hookDeliverer) post(i int, hookURL, secret string, q queued) int {
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	d.f.mu.Lock()
	d.f.deliver[q.id]++
	d.f.mu.Unlock()
	u, err := url.Parse(hookURL)
	if err != nil {
		return 0
	}
	target := "http://" + d.targets[i] + u.EscapedPath()
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, target, bytes.NewReader(q.raw))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// describeFailures is the failed webhook answers for the summary: "503 ×4, connection error ×2".
func describeFailures(failures map[int]int) string {
	s := ""
	for _, code := range []int{0, 401, 500, 503} {
		if n := failures[code]; n > 0 {
			s += fmt.Sprintf(", %s ×%d", statusName(code), n)
		}
	}
	for code, n := range failures {
		if code != 0 && code != 401 && code != 500 && code != 503 {
			s += fmt.Sprintf(", %s ×%d", statusName(code), n)
		}
	}
	if s == "" {
		return "none"
	}
	return s[2:]
}

func statusName(code int) string {
	if code == 0 {
		return "connection error"
	}
	return fmt.Sprint(code)
}
