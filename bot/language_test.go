package bot_test

import (
	"strings"
	"testing"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
)

func loc(t *testing.T) *locales.Bundle {
	t.Helper()
	b, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLanguageChoice: the platform's hint for a new user, the stored choice after /language (also
// after reopening the store), and in a group the group's choice over its members'.
func TestLanguageChoice(t *testing.T) {
	l := loc(t)
	for _, code := range []string{"sw", "hi"} {
		if !l.Has(code) {
			t.Fatalf("language %s is not shipped", code)
		}
	}
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100}, nil)
	amina := bot.Sender{ID: "u1", Name: "Amina", LangHint: "sw-KE"}
	chat := private("c1")
	if r := f.send(chat, amina, "/start", nil); len(r) != 1 || !strings.HasPrefix(r[0].Text, l.T("sw", "start", "name", "Amina")+"\n\n") {
		t.Fatalf("new user with a Swahili hint: %v", r)
	}
	if r := f.send(chat, amina, "/language hi", nil); len(r) != 1 || r[0].Text != l.T("hi", "language.set") {
		t.Fatalf("/language hi: %v", r)
	}
	// Survives closing and reopening the store.
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	f.store = openStore(t, f.path)
	f.build(bot.Config{Threshold: 0.01, Burst: 100}, nil)
	if r := f.send(chat, amina, "/help", nil); len(r) != 1 || !strings.HasPrefix(r[0].Text, l.T("hi", "help")+"\n\n") {
		t.Fatalf("after reopening, /help: %v", r)
	}
	// A photo's answer comes in Hindi too, with Hindi disease names.
	r := f.send(chat, amina, "", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 21)))
	if len(r) != 1 || !strings.Contains(r[0].Caption, l.T("hi", "diagnosis.header")) {
		t.Fatalf("photo answer not in Hindi: %v", r)
	}

	// In a group, the group's language wins over a member's own choice.
	group := bot.ChatRef{Platform: bot.Telegram, ID: "-7", Kind: bot.Group}
	chair := bot.Sender{ID: "u2", Name: "Chair", IsAdmin: true, LangHint: "en"}
	if r := f.send(group, chair, "/language Kiswahili", nil); len(r) != 1 || r[0].Text != l.T("sw", "language.set") {
		t.Fatalf("group /language Kiswahili: %v", r)
	}
	hindiMember := bot.Sender{ID: "u1", Name: "Amina", LangHint: "hi"}
	if r := f.send(group, hindiMember, "/help", nil); len(r) != 1 || !strings.HasPrefix(r[0].Text, l.T("sw", "help")+"\n\n") {
		t.Fatalf("group member with Hindi chosen: %v", r)
	}
	// And /language without an argument lists every language by its own name.
	r = f.send(chat, amina, "/language", nil)
	for _, lang := range l.Languages() {
		if len(r) != 1 || !strings.Contains(r[0].Text, "/language "+lang.Code+" - "+lang.Name) {
			t.Errorf("/language lacks %s (%s): %v", lang.Code, lang.Name, r)
		}
	}
}

// TestLanguageCommandOnTwoLines: "/language" and its argument on separate lines (as a phone's
// keyboard sends it) set the language; the handler once read "language\nsw" as an unknown
// command while the adapters read "language".
func TestLanguageCommandOnTwoLines(t *testing.T) {
	l := loc(t)
	f := newFixture(t, bot.Config{Threshold: 0.01, Burst: 100}, nil)
	amina := bot.Sender{ID: "u1", Name: "Amina", LangHint: "en"}
	if r := f.send(private("c1"), amina, "  /LANGUAGE\nsw", nil); len(r) != 1 || r[0].Text != l.T("sw", "language.set") {
		t.Fatalf(`"/LANGUAGE\nsw": %v`, r)
	}
}
