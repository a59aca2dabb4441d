package telegram_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/adapters/telegram"
	"github.com/cropshield/cropshield/bot/bottest"
)

// TestConformance runs the adapter conformance suite against the Telegram adapter on the fake
// Bot API (long polling).
func TestConformance(t *testing.T) {
	bottest.Run(t, func(t *testing.T) bottest.Driver {
		return &tgDriver{api: newFakeAPI(t), msgs: map[string]tgbotapi.Message{}}
	})
}

// tgDriver drives the adapter through the fake Bot API: chat n is the private chat 9000+n.
type tgDriver struct {
	api *fakeAPI

	mu     sync.Mutex
	nextID int
	msgs   map[string]tgbotapi.Message // by text or caption
}

func tgChat(n int) int64 { return 9000 + int64(n) }

func (d *tgDriver) Start(t *testing.T, env bottest.Env) func() {
	a, err := telegram.New(sink.logger(t), telegram.Options{Token: testToken, APIEndpoint: d.api.URL(),
		RetryDelay: 5 * time.Millisecond, Chats: env.Moves})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, env.Intake) }()
	d.api.waitFor(t, "the first getUpdates", func() bool { return countLocked(d.api.calls, "getUpdates") > 0 })
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after a stop, want nil", err)
		}
	}
}

func (d *tgDriver) message(n int, text string, photo []byte) tgbotapi.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextID++
	m := tgbotapi.Message{MessageID: 100 + d.nextID, From: farmer(tgChat(n)), Chat: privateChat(tgChat(n))}
	if photo == nil {
		m.Text = text
	} else {
		uid := "conf-" + text
		m.Caption = text
		m.Photo = []tgbotapi.PhotoSize{{FileID: d.api.addFile(uid, photo), FileUniqueID: uid, Width: 320, Height: 240, FileSize: len(photo)}}
	}
	d.msgs[text] = m
	return m
}

func (d *tgDriver) Text(t *testing.T, n int, text string) { d.api.push(d.message(n, text, nil)) }

func (d *tgDriver) Photo(t *testing.T, n int, caption string, jpeg []byte) {
	d.api.push(d.message(n, caption, jpeg))
}

// Redeliver queues the same message again under a new update id, as Telegram does when the
// offset that confirmed it was not saved.
func (d *tgDriver) Redeliver(t *testing.T, n int, text string) bool {
	d.mu.Lock()
	m := d.msgs[text]
	d.mu.Unlock()
	d.api.mu.Lock()
	delete(d.api.deliveredAt, fmt.Sprintf("%d/%d", m.Chat.ID, m.MessageID))
	d.api.mu.Unlock()
	d.api.push(m)
	return true
}

func (d *tgDriver) Offered(n int) int {
	d.api.mu.Lock()
	defer d.api.mu.Unlock()
	c := 0
	for k := range d.api.deliveredAt {
		if strings.HasPrefix(k, strconv.FormatInt(tgChat(n), 10)+"/") {
			c++
		}
	}
	return c
}

func (d *tgDriver) Delivered(n int) int { return len(d.api.sentTo(tgChat(n))) }

func (d *tgDriver) Refused(int) int { return 0 }
