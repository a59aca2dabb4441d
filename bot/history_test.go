package bot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
)

// TestHistorySkipsRateLimited: /history lists a photo that could not be read, but not the
// messages the rate limit turned away (noted "rate limited" on their records), whether the
// farmer was told or not.
func TestHistorySkipsRateLimited(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 2, Refill: time.Hour}, nil)
	chat, me := private("rl"), bot.Sender{ID: "u-rl", Name: "Juma"}
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	send := func(at time.Time, text string, photo *bot.Photo) []bot.Reply {
		t.Helper()
		m := bot.Message{ID: fmt.Sprintf("m%d", f.seq.Add(1)), Chat: chat, Sender: me, Text: text, Photo: photo, Time: at}
		if err := f.handler.Handle(context.Background(), m, f.out); err != nil {
			t.Fatalf("Handle(%q): %v", text, err)
		}
		return f.out.take()
	}
	send(t0, "", bytesPhoto([]byte("not a photo"))) // answered: it could not be read
	send(t0, "hello", nil)
	if r := send(t0, "hello again", nil); len(r) != 1 || r[0].Kind != bot.KindError {
		t.Fatalf("over the limit: %v, want the rate-limit warning", r)
	}
	if r := send(t0, "", bytesPhoto([]byte("not a photo either"))); len(r) != 0 {
		t.Fatalf("over the limit again: %v, want silence", r)
	}
	h := send(t0.Add(3*time.Hour), "/history", nil)
	if len(h) != 1 || strings.Count(h[0].Text, "could not be read") != 1 || strings.Count(h[0].Text, "\n") != 1 {
		t.Fatalf("/history: %v, want the one photo that could not be read", h)
	}
}
