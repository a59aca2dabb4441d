package bot_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// TestChatPage: the web chat's page in the chat's language, with the conversation as stored (the
// overlay readable by its photo hash), and the name a visitor gives, which the bot then greets.
func TestChatPage(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	chat := private("web-1")
	visitor := bot.Sender{ID: "web-1", LangHint: "sw-KE,sw;q=0.9,en;q=0.5"}

	page, err := f.handler.ChatPage(ctx, chat, visitor, 50)
	if err != nil || page.Lang != "sw" || page.Text.Send != loc.T("sw", "web.send") || page.Name != "" || len(page.Thread) != 0 {
		t.Fatalf("a new visitor's page: %+v, %v", page, err)
	}
	f.send(chat, visitor, "/language fr", nil)
	f.send(chat, visitor, "", bytesPhoto(testenv.LeafJPEG(t, 640, 480, 1)))
	page, err = f.handler.ChatPage(ctx, chat, visitor, 50)
	if err != nil || page.Lang != "fr" || page.Text.Placeholder != loc.T("fr", "web.placeholder") {
		t.Fatalf("after /language fr: %+v, %v", page, err)
	}
	var kinds []string
	var overlay string
	for _, it := range page.Thread {
		kinds = append(kinds, it.Kind)
		if it.Overlay != "" {
			overlay = it.Overlay
		}
	}
	if strings.Join(kinds, " ") != "text command photo diagnosis" || overlay == "" {
		t.Fatalf("thread kinds %q, overlay %q", kinds, overlay)
	}
	if img, err := f.handler.Overlay(ctx, overlay); err != nil || len(img) == 0 {
		t.Errorf("overlay: %d bytes, %v", len(img), err)
	}
	if _, err := f.handler.Overlay(ctx, strings.Repeat("0", 64)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("overlay of an unknown photo: %v", err)
	}

	for _, bad := range []string{"", "   ", "a\x00b", strings.Repeat("n", bot.MaxNameRunes+1)} {
		if err := f.handler.SetName(ctx, chat, visitor, bad); !errors.Is(err, bot.ErrBadName) {
			t.Errorf("SetName(%q): %v, want ErrBadName", bad, err)
		}
	}
	if err := f.handler.SetName(ctx, chat, visitor, "  Amina   Juma "); err != nil {
		t.Fatal(err)
	}
	if page, err = f.handler.ChatPage(ctx, chat, visitor, 0); err != nil || page.Name != "Amina Juma" || page.Thread != nil {
		t.Errorf("after SetName: %+v, %v", page, err)
	}
	if r := f.send(chat, visitor, "/start", nil); len(r) != 1 || !strings.HasPrefix(r[0].Text, "Bonjour Amina Juma") {
		t.Errorf("/start after SetName: %v", r)
	}
}

// TestOldWebVisitorNameIsNoName: a web visitor stored with the made-up name "Web visitor" (before
// visitors could give one) is greeted without it and asked for a name.
func TestOldWebVisitorNameIsNoName(t *testing.T) {
	f := newFixture(t, bot.Config{Threshold: 0.01}, nil)
	if _, err := f.store.TouchUser(t.Context(), store.User{Platform: "webchat", ID: "web-2", Name: "Web visitor"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	visitor := bot.Sender{ID: "web-2"}
	if r := f.send(private("web-2"), visitor, "/start", nil); len(r) != 1 || strings.Contains(r[0].Text, "Web visitor") {
		t.Errorf("/start: %v", r)
	}
	if page, err := f.handler.ChatPage(t.Context(), private("web-2"), visitor, 0); err != nil || page.Name != "" {
		t.Errorf("page %+v, %v: want no name", page, err)
	}
}
