package whatsapp

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/bot/bottest"
)

// TestConformance runs the adapter conformance suite against the WhatsApp adapter on the fake
// client.
func TestConformance(t *testing.T) {
	bottest.Run(t, func(t *testing.T) bottest.Driver {
		return &waDriver{client: newFakeClient(), events: map[string]*events.Message{}, chats: map[int]chan *events.Message{}}
	})
}

// waDriver drives the adapter through the fake client: chat n is the private chat of the farmer
// +2557000000n. Each chat's messages are emitted in order on a goroutine of their own, as
// whatsmeow delivers them; one the adapter does not acknowledge is delivered again, as WhatsApp
// does.
type waDriver struct {
	client *fakeClient

	mu      sync.Mutex
	nextID  int
	events  map[string]*events.Message // by text
	chats   map[int]chan *events.Message
	offered map[int]int
	stopped bool
	wg      sync.WaitGroup
}

func waChat(n int) types.JID {
	return types.NewJID(fmt.Sprintf("2557000000%02d", n), types.DefaultUserServer)
}

func (d *waDriver) Start(t *testing.T, env bottest.Env) func() {
	opts := testOptions()
	opts.Users = env.Moves
	a := New(testLogger, d.client, openTestStore(t, ""), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, env.Intake) }()
	select {
	case <-d.client.connected:
	case err := <-done:
		t.Fatalf("Run stopped before connecting: %v", err)
	}
	return func() {
		d.mu.Lock()
		d.stopped = true
		for _, ch := range d.chats {
			close(ch)
		}
		d.chats = map[int]chan *events.Message{}
		d.mu.Unlock()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after a stop, want nil", err)
		}
		d.wg.Wait()
	}
}

// deliver queues an event on its chat's goroutine.
func (d *waDriver) deliver(n int, e *events.Message) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	ch := d.chats[n]
	if ch == nil {
		ch = make(chan *events.Message, 64)
		d.chats[n] = ch
		d.wg.Go(func() {
			for e := range ch {
				d.mu.Lock()
				if d.offered == nil {
					d.offered = map[int]int{}
				}
				d.offered[n]++
				d.mu.Unlock()
				for !d.client.emit(e) {
					d.mu.Lock()
					stopped := d.stopped
					d.mu.Unlock()
					if stopped {
						break
					}
				}
			}
		})
	}
	ch <- e
}

func (d *waDriver) event(n int, text string, photo []byte) *events.Message {
	d.mu.Lock()
	d.nextID++
	id := fmt.Sprintf("CONF%04d", d.nextID)
	d.mu.Unlock()
	var e *events.Message
	if photo == nil {
		e = messageEvent(id, waChat(n), waChat(n), types.EmptyJID, &waE2E.Message{Conversation: proto.String(text)})
	} else {
		img := photoOf(d.client, "/v/t62/"+id, photo)
		img.Caption = proto.String(text)
		e = imageEvent(id, waChat(n), waChat(n), types.EmptyJID, img)
	}
	d.mu.Lock()
	d.events[text] = e
	d.mu.Unlock()
	return e
}

func (d *waDriver) Text(t *testing.T, n int, text string) { d.deliver(n, d.event(n, text, nil)) }

func (d *waDriver) Photo(t *testing.T, n int, caption string, jpeg []byte) {
	d.deliver(n, d.event(n, caption, jpeg))
}

// Redeliver emits the same message again, as WhatsApp does when the receipt did not reach it.
func (d *waDriver) Redeliver(t *testing.T, n int, text string) bool {
	d.mu.Lock()
	e := d.events[text]
	d.mu.Unlock()
	d.deliver(n, e)
	return true
}

func (d *waDriver) Offered(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offered[n]
}

func (d *waDriver) Delivered(n int) int {
	c := 0
	for _, s := range d.client.sentMessages() {
		if s.to.ToNonAD() == waChat(n) {
			c++
		}
	}
	return c
}

func (d *waDriver) Refused(int) int { return 0 }
