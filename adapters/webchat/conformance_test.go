package webchat_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/adapters/webchat"
	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/bot/bottest"
)

// TestConformance runs the adapter conformance suite against the web chat: browsers post to its
// HTTP API on 127.0.0.1.
func TestConformance(t *testing.T) {
	bottest.Run(t, func(t *testing.T) bottest.Driver {
		return &webDriver{browsers: map[int]*http.Client{}, queues: map[int]chan upload{}, offered: map[int]int{}, refused: map[int]int{}}
	})
}

// webDriver is a browser per chat. A chat's messages are posted one after the other: the next
// once the last one's line shows in the chat (the adapter took it) or its POST returned (a
// "busy" answer).
type webDriver struct {
	e *env

	mu       sync.Mutex
	browsers map[int]*http.Client
	queues   map[int]chan upload
	offered  map[int]int
	refused  map[int]int
	wg       sync.WaitGroup
}

func (d *webDriver) Start(t *testing.T, benv bottest.Env) func() {
	a, err := webchat.New(slog.New(slog.DiscardHandler), webchat.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Routes(mux)
	srv := httptest.NewServer(mux)
	d.e = &env{a: a, srv: srv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, benv.Intake) }()
	for d.e.probe(t) == http.StatusServiceUnavailable || !benv.Intake.Accepting(bot.WebChat) {
		time.Sleep(time.Millisecond) // until Run has opened the channel
	}
	return func() {
		d.mu.Lock()
		for _, q := range d.queues {
			close(q)
		}
		d.queues = map[int]chan upload{}
		d.mu.Unlock()
		d.wg.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after a stop, want nil", err)
		}
		srv.Close()
	}
}

func (d *webDriver) browser(t *testing.T, n int) *http.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.browsers[n]
	if b == nil {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		b = &http.Client{Jar: jar}
		// The chat cookie first: a post and the polls for its line must be the same chat.
		if _, err := d.e.tryMessages(b, 0); err != nil {
			t.Fatal(err)
		}
		d.browsers[n] = b
	}
	return b
}

func (d *webDriver) post(t *testing.T, n int, u upload) {
	b := d.browser(t, n)
	d.mu.Lock()
	q := d.queues[n]
	if q == nil {
		q = make(chan upload, 64)
		d.queues[n] = q
		d.wg.Go(func() {
			for u := range q {
				d.postOne(b, n, u)
			}
		})
	}
	d.mu.Unlock()
	q <- u
}

// postOne posts a message and returns once the adapter took it (its line shows) or answered.
func (d *webDriver) postOne(b *http.Client, n int, u upload) {
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		req, err := d.e.sendReq(u)
		if err != nil {
			return
		}
		resp, err := b.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var out entries
		if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&out) == nil {
			// This message's line, then a "busy" answer before the next line of the user.
			mine := false
			for _, e := range out.Entries {
				switch {
				case e.From == "you":
					mine = e.Text == u.text
				case mine && e.Kind == "error" && strings.Contains(e.Text, "busy"):
					d.mu.Lock()
					d.refused[n]++
					d.mu.Unlock()
					return
				}
			}
		}
	}()
	for {
		select {
		case <-answered:
			d.countOffered(n)
			return
		default:
		}
		if got, err := d.e.tryMessages(b, 0); err == nil {
			for _, e := range got {
				if e.From == "you" && e.Text == u.text {
					d.countOffered(n)
					return
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func (d *webDriver) countOffered(n int) {
	d.mu.Lock()
	d.offered[n]++
	d.mu.Unlock()
}

func (d *webDriver) Text(t *testing.T, n int, text string) { d.post(t, n, upload{text: text}) }

func (d *webDriver) Photo(t *testing.T, n int, caption string, jpeg []byte) {
	d.post(t, n, upload{text: caption, photo: jpeg})
}

// Redeliver: a browser never posts the same message twice (a new post is a new message).
func (d *webDriver) Redeliver(*testing.T, int, string) bool { return false }

func (d *webDriver) Offered(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offered[n]
}

func (d *webDriver) Delivered(n int) int {
	got, err := d.e.tryMessages(d.browser(nil, n), 0)
	if err != nil {
		return 0
	}
	c := 0
	for _, e := range got {
		if e.From == "bot" && !strings.Contains(e.Text, "busy") {
			c++
		}
	}
	return c
}

func (d *webDriver) Refused(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refused[n]
}
