package bot_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

func TestForgetAfterConfirmation(t *testing.T) {
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, confirm := range []bot.Message{{Choice: "forget:yes"}, {Text: "/forget YES"}} {
		name := "button"
		if confirm.Text != "" {
			name = "text"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
			farmer := bot.Sender{ID: "u-f", Name: "Amina"}
			mine, shared := testenv.LeafJPEG(t, 320, 240, 1), testenv.LeafJPEG(t, 320, 240, 2)
			f.send(private("u-f"), farmer, "", bytesPhoto(mine))
			f.send(private("u-f"), farmer, "", bytesPhoto(shared))
			f.send(private("u-g"), bot.Sender{ID: "u-g", Name: "Baraka"}, "", bytesPhoto(shared))
			f.send(private("u-f"), farmer, "/language sw", nil)

			// In a group: never there.
			grp := bot.ChatRef{Platform: bot.WebChat, ID: "grp", Kind: bot.Group}
			if r := f.send(grp, farmer, "/forget yes", nil); len(r) != 1 || r[0].Text != loc.T("sw", "forget.private_only") {
				t.Fatalf("/forget in a group: %+v", r)
			}
			// First what it deletes, in the farmer's language, with a button; nothing is deleted.
			r := f.send(private("u-f"), farmer, "/forget", nil)
			if len(r) != 1 || r[0].Text != loc.T("sw", "forget.confirm") || len(r[0].Choices) != 1 || r[0].Choices[0].Data != "forget:yes" {
				t.Fatalf("/forget: %+v", r)
			}
			if _, _, err := f.store.GetPhoto(ctx, hashOf(mine)); err != nil {
				t.Fatalf("deleted before the confirmation: %v", err)
			}

			confirm.ID, confirm.Chat, confirm.Sender = "confirm", private("u-f"), farmer
			if err := f.handler.Handle(ctx, confirm, f.out); err != nil {
				t.Fatal(err)
			}
			if r := f.out.take(); len(r) != 1 || r[0].Text != loc.T("sw", "forget.done") {
				t.Fatalf("confirmed: %+v", r)
			}
			// Delivered again: answered once.
			if err := f.handler.Handle(ctx, confirm, f.out); err != nil {
				t.Fatal(err)
			}
			if r := f.out.take(); len(r) != 0 {
				t.Errorf("a second delivery answered again: %+v", r)
			}

			if _, _, err := f.store.GetPhoto(ctx, hashOf(mine)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the farmer's own photo: %v", err)
			}
			if _, err := f.store.StoredAnalysis(ctx, hashOf(mine)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("its analysis: %v", err)
			}
			if _, _, err := f.store.GetPhoto(ctx, hashOf(shared)); err != nil {
				t.Errorf("a photo someone else sent too: %v", err)
			}
			if _, err := f.store.GetUser(ctx, "webchat", "u-f"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("user record (with the language): %v", err)
			}
			recs, err := f.store.RecentMessages(ctx, "webchat", "u-f", 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 2 || recs[0].MessageID != "confirm" || recs[0].SenderName != "" || recs[1].Text != loc.T("sw", "forget.done") {
				t.Errorf("log after forget: %+v", recs)
			}
			sum, err := f.store.GetSummary(ctx, "webchat", "u-f")
			if err != nil || sum.Forgotten.IsZero() || sum.Name != "" || sum.PhotoHash != "" {
				t.Errorf("summary after forget: %+v %v", sum, err)
			}
			if _, err := f.store.GetUser(ctx, "webchat", "u-g"); err != nil {
				t.Errorf("the other farmer: %v", err)
			}
		})
	}
}
