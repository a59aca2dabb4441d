package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/store"
)

func (f *fixture) handle(m bot.Message) []bot.Reply {
	f.t.Helper()
	if err := f.handler.Handle(context.Background(), m, f.out); err != nil {
		f.t.Fatalf("Handle(%s): %v", m.ID, err)
	}
	return f.out.take()
}

func (f *fixture) inbound(chat string) int {
	f.t.Helper()
	recs, err := f.store.RecentMessages(context.Background(), "telegram", chat, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Direction == store.Inbound {
			n++
		}
	}
	return n
}

// TestEachMessageAnsweredOnce: the same platform message delivered again gets no second reply and
// no second log record; an interrupted handling resumes without repeating what was sent.
func TestEachMessageAnsweredOnce(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100}, nil)
	chat := bot.ChatRef{Platform: bot.Telegram, ID: "42", Kind: bot.Private}
	leaf := testenv.LeafJPEG(t, 320, 240, 12)
	msg := func(id string) bot.Message {
		return bot.Message{ID: id, Chat: chat, Sender: bot.Sender{ID: "7"}, Photo: bytesPhoto(leaf), Time: time.Unix(1700000000, 0)}
	}
	if r := f.handle(msg("100")); len(r) != 1 {
		t.Fatalf("first delivery: %v", r)
	}
	if r := f.handle(msg("100")); len(r) != 0 {
		t.Fatalf("second delivery of the same message answered again: %v", r)
	}
	if f.inbound("42") != 1 {
		t.Errorf("inbound records = %d, want 1", f.inbound("42"))
	}

	ctx := context.Background()
	begin := func(id string) {
		t.Helper()
		if _, existed, err := f.store.BeginTurn(ctx, store.Record{Time: time.Now(), Platform: "telegram", ChatID: "42",
			Direction: store.Inbound, SenderID: "7", MessageID: id}); err != nil || existed {
			t.Fatalf("BeginTurn: %v %v", existed, err)
		}
	}
	for _, tc := range []struct {
		name      string
		crash     func(id string) // what happened before the crash
		wantReply bool
	}{
		{"crashed after recording, before replying", func(id string) { begin(id) }, true},
		{"crashed while sending (delivery unknown)", func(id string) {
			begin(id)
			if err := f.store.AttemptReply(ctx, "telegram", "42", id, 0); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"crashed after the reply was sent", func(id string) {
			begin(id)
			if err := f.store.ReplySent(ctx, id, 0, store.Record{Time: time.Now(), Platform: "telegram", ChatID: "42",
				Direction: store.Outbound, Text: "sent before the crash", ReplyTo: id}); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "-")
			before := f.inbound("42")
			tc.crash(id)
			r := f.handle(msg(id))
			if got := len(r) == 1; got != tc.wantReply {
				t.Fatalf("after restart replies = %v, want a reply: %v", r, tc.wantReply)
			}
			if f.inbound("42") != before+1 {
				t.Errorf("inbound records %d, want %d: the resumed message was logged twice", f.inbound("42"), before+1)
			}
			if r := f.handle(msg(id)); len(r) != 0 {
				t.Errorf("delivered once more after finishing: %v", r)
			}
		})
	}
}

func TestAlbumAnsweredOnceTogether(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	chat := bot.ChatRef{Platform: bot.Telegram, ID: "-100", Kind: bot.Group}
	album := []*bot.Photo{
		bytesPhoto(testenv.LeafJPEG(t, 320, 240, 13)), bytesPhoto([]byte("not a photo")), bytesPhoto(testenv.LeafJPEG(t, 320, 240, 14)),
	}
	r := f.handle(bot.Message{ID: "55", Chat: chat, Sender: bot.Sender{ID: "7"}, Album: album})
	if len(r) != 1 {
		t.Fatalf("%d replies, want one combined verdict: %v", len(r), r)
	}
	got := r[0]
	if got.Kind != "diagnosis" || len(got.Images) != 2 || got.Image != nil || got.ReplyTo != "55" {
		t.Fatalf("reply %v with %d images", got, len(got.Images))
	}
	for _, want := range []string{"I looked at your 3 photos together.", "1 photo was left out: it is not a leaf, or I could not read it.", "Most likely diseases:"} {
		if !strings.Contains(got.FullText(), want) {
			t.Errorf("reply lacks %q:\n%s", want, got.FullText())
		}
	}
	recs, err := f.store.RecentMessages(context.Background(), "telegram", "-100", 10)
	if err != nil || len(recs) != 2 || len(recs[0].Album) != 2 || recs[0].PhotoHash != recs[0].Album[0] {
		t.Fatalf("log %+v %v", recs, err)
	}
	if f.inferences() != 2 {
		t.Errorf("inferences %v, want 2", f.inferences())
	}
}

// TestInterruptedByShutdownIsAnsweredLater: a message cut short by shutdown (its context
// cancelled during the download) sends nothing, stays unfinished, and is answered in full when it
// is handed in again.
func TestInterruptedByShutdownIsAnsweredLater(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	chat := bot.ChatRef{Platform: bot.Telegram, ID: "9", Kind: bot.Private}
	leaf := testenv.LeafJPEG(t, 320, 240, 31)
	ctx, cancel := context.WithCancel(context.Background())
	m := bot.Message{ID: "500", Chat: chat, Sender: bot.Sender{ID: "9"}, Photo: &bot.Photo{Fetch: func(context.Context) ([]byte, error) {
		cancel() // shutdown arrives while downloading
		return nil, context.Canceled
	}}}
	if err := f.handler.Handle(ctx, m, f.out); err != nil {
		t.Fatal(err)
	}
	if r := f.out.take(); len(r) != 0 {
		t.Fatalf("replied while shutting down: %v", r)
	}
	m.Photo = bytesPhoto(leaf)
	if r := f.handle(m); len(r) != 1 || r[0].Kind != "diagnosis" {
		t.Fatalf("handed in again after restart: %v", r)
	}
}
