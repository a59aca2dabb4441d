package bot_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/store"
)

// TestReplyKinds: every reply kind, produced by the real handler (or SendStaffReply for staff),
// has what the adapters and the conversation log need: a kind that is a plain token (the web
// chat's CSS class, a metrics label), text every channel can show (FullText), a caption only
// with a photo and within Telegram's caption limit, buttons only on the crop question, each
// within Telegram's callback-data limit and numbered in the text for channels without buttons,
// a photo where the kind has one and none where it has not, and the kind stored with the reply.
func TestReplyKinds(t *testing.T) {
	type photoRule int
	const (
		never photoRule = iota
		always
		maybe
	)
	leaf := func(seed int) *bot.Photo { return bytesPhoto(testenv.LeafJPEG(t, 320, 240, seed)) }
	sender := bot.Sender{ID: "u1", Name: "Amina"}
	tests := []struct {
		kind  bot.ReplyKind
		photo photoRule
		// fixture makes the handler; reply produces the one reply of the kind in a new chat.
		fixture func(t *testing.T) *fixture
		reply   func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply
	}{
		{bot.KindNotLeaf, never, func(t *testing.T) *fixture {
			return newFixture(t, bot.Config{Threshold: 0.01}, judging{testenv.ContractSession(t), false, true})
		}, func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply { return f.send(chat, sender, "", leaf(1)) }},
		{bot.KindCropQuestion, never, func(t *testing.T) *fixture { return newCropFixture(t, maizeOrTom, true, true) },
			func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply { return f.send(chat, sender, "", leaf(2)) }},
		{bot.KindUnknownCrop, never, func(t *testing.T) *fixture {
			return newFixture(t, bot.Config{Threshold: 0.01}, judging{testenv.ContractSession(t), true, false})
		}, func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply { return f.send(chat, sender, "", leaf(3)) }},
		{bot.KindCropMismatch, never, func(t *testing.T) *fixture { return newCropFixture(t, clearlyTom, true, true) },
			func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply {
				return f.send(chat, sender, "maize", leaf(4))
			}},
		{bot.KindUnsure, maybe, func(t *testing.T) *fixture { return newFixture(t, bot.Config{Threshold: 0.99}, nil) },
			func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply { return f.send(chat, sender, "", leaf(5)) }},
		{bot.KindDiagnosis, always, func(t *testing.T) *fixture { return newFixture(t, bot.Config{Threshold: 0.01}, nil) },
			func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply { return f.send(chat, sender, "", leaf(6)) }},
		{bot.KindCommand, never, func(t *testing.T) *fixture { return newFixture(t, bot.Config{}, nil) },
			func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply {
				return f.send(chat, sender, "/help", nil)
			}},
		{bot.KindError, never, func(t *testing.T) *fixture { return newFixture(t, bot.Config{}, nil) },
			func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply {
				return f.send(chat, sender, "", bytesPhoto([]byte("not a photo")))
			}},
		{bot.KindStaff, never, func(t *testing.T) *fixture { return newFixture(t, bot.Config{}, nil) },
			func(t *testing.T, f *fixture, chat bot.ChatRef) []bot.Reply {
				if err := bot.SendStaffReply(t.Context(), f.store, f.out, chat, "alice", "Spray copper in the evening.", time.Now()); err != nil {
					t.Fatal(err)
				}
				return f.out.take()
			}},
	}
	var tested []bot.ReplyKind
	token := regexp.MustCompile(`^[a-z][a-z_]*$`)
	for _, tt := range tests {
		tested = append(tested, tt.kind)
		t.Run(string(tt.kind), func(t *testing.T) {
			if !token.MatchString(string(tt.kind)) {
				t.Errorf("kind %q is not a lower-case token", tt.kind)
			}
			f := tt.fixture(t)
			chat := private("kind-" + string(tt.kind))
			replies := tt.reply(t, f, chat)
			if len(replies) != 1 {
				t.Fatalf("%d replies, want 1: %v", len(replies), replies)
			}
			r := replies[0]
			if r.Kind != tt.kind {
				t.Fatalf("reply %v, want kind %s", r, tt.kind)
			}
			if strings.TrimSpace(r.FullText()) == "" {
				t.Errorf("no text to show: %v", r)
			}
			hasPhoto := r.Image != nil || len(r.Images) > 0
			if r.Caption != "" && !hasPhoto {
				t.Errorf("a caption without a photo: %v", r)
			}
			if n := utf8.RuneCountInString(r.Caption); n > 1024 {
				t.Errorf("caption of %d characters, over Telegram's 1024", n)
			}
			switch {
			case tt.photo == always && !hasPhoto:
				t.Errorf("no photo: %v", r)
			case tt.photo == never && hasPhoto:
				t.Errorf("a photo with a %s reply: %v", tt.kind, r)
			}
			if (len(r.Choices) > 0) != (tt.kind == bot.KindCropQuestion) {
				t.Errorf("choices %v with a %s reply", r.Choices, tt.kind)
			}
			for i, c := range r.Choices {
				if c.Label == "" || c.Data == "" || len(c.Data) > 64 {
					t.Errorf("choice %+v: want a label and 1-64 bytes of data", c)
				}
				if !strings.Contains(r.Text, fmt.Sprintf("%d. %s", i+1, c.Label)) {
					t.Errorf("choice %d (%s) is not numbered in the text:\n%s", i+1, c.Label, r.Text)
				}
			}
			recs, err := f.store.RecentMessages(context.Background(), string(chat.Platform), chat.ID, 10)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(recs, func(rec store.Record) bool {
				return rec.Direction == store.Outbound && rec.Kind == string(tt.kind) && rec.Text == r.FullText()
			}) {
				t.Errorf("the reply is not logged with its kind: %+v", recs)
			}
		})
	}
	if all := bot.ReplyKinds(); !slices.Equal(tested, all) {
		t.Errorf("kinds tested %v, want every kind %v", tested, all)
	}
}
