package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// TestStaffHandoff: after a support staff reply, the farmer's plain text ("Asante! Thank you") is
// for the staff: logged, no stock "send me a photo"; commands and photos are still answered. The
// stock answer comes back once the conversation is resolved, or StaffHandoff after the last
// staff reply.
func TestStaffHandoff(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f := newFixture(t, bot.Config{Threshold: 0.01, StaffHandoff: 2 * time.Hour, Now: clock}, nil)
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	chat, farmer := private("c1"), bot.Sender{ID: "u-c1", Name: "Amina"}
	stock := loc.T("en", "text.need_photo")
	staffReply := func(text string) {
		t.Helper()
		now = now.Add(time.Minute)
		if err := bot.SendStaffReply(ctx, f.store, f.out, chat, "alice", bot.SignStaffReply(loc, "en", "", text), now); err != nil {
			t.Fatal(err)
		}
		f.out.take()
	}
	say := func(text string) []bot.Reply {
		t.Helper()
		now = now.Add(time.Minute)
		return f.send(chat, farmer, text, nil)
	}
	stockAnswer := func(r []bot.Reply) bool { return len(r) == 1 && r[0].Text == stock }

	if r := say("hello"); !stockAnswer(r) {
		t.Fatalf("before any staff reply: %v, want the stock answer", r)
	}
	staffReply("Please remove the spotted leaves.")
	if r := say("Asante! Thank you"); len(r) != 0 {
		t.Errorf("after a staff reply the farmer's thanks got %v, want no answer", r)
	}
	recs, err := f.store.RecentMessages(ctx, "webchat", "c1", 1)
	if err != nil || len(recs) != 1 || recs[0].Direction != store.Inbound || recs[0].Text != "Asante! Thank you" {
		t.Errorf("the farmer's text is not logged for the staff: %+v %v", recs, err)
	}
	if r := say("/help"); len(r) != 1 || r[0].Kind != bot.KindCommand || r[0].Text == stock {
		t.Errorf("/help while staff handle the chat: %v", r)
	}
	now = now.Add(time.Minute)
	if r := f.photo("c1", bytesPhoto(testenv.LeafJPEG(t, 640, 480, 1))); r.Kind != bot.KindDiagnosis {
		t.Errorf("a photo while staff handle the chat: %v, want a diagnosis", r)
	}

	// Resolved in the dashboard: the bot answers again.
	now = now.Add(time.Minute)
	if err := f.store.SetResolved(ctx, "webchat", "c1", true, "alice", now); err != nil {
		t.Fatal(err)
	}
	if r := say("hello again"); !stockAnswer(r) {
		t.Errorf("after the conversation was resolved: %v, want the stock answer", r)
	}

	// A new staff reply, then more than StaffHandoff of silence: the bot answers again.
	staffReply("How are the plants?")
	if r := say("better"); len(r) != 0 {
		t.Errorf("after a new staff reply: %v, want no answer", r)
	}
	now = now.Add(2*time.Hour + time.Minute)
	if r := say("hello?"); !stockAnswer(r) {
		t.Errorf("hours after the last staff reply: %v, want the stock answer", r)
	}
}

// TestSignStaffReply: a staff reply reads, in the chat's language, as from the support team, with
// the first name the staff member chose to give; a blank reply stays blank (refused).
func TestSignStaffReply(t *testing.T) {
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range loc.Languages() {
		team, named := loc.T(l.Code, "staff.from"), loc.T(l.Code, "staff.from_named", "name", "Amina")
		tests := []struct{ name, text, want string }{
			{"", " Spray in the evening. ", team + "\nSpray in the evening."},
			{"  Amina Juma\n", "Spray in the evening.", named + "\nSpray in the evening."},
			{"\x00\x07", "Spray.", team + "\nSpray."},
			{"Amina", "  \n ", ""},
		}
		for _, tt := range tests {
			if got := bot.SignStaffReply(loc, l.Code, tt.name, tt.text); got != tt.want {
				t.Errorf("%s: SignStaffReply(%q, %q) = %q, want %q", l.Code, tt.name, tt.text, got, tt.want)
			}
		}
		if !strings.Contains(named, "Amina") || named == team {
			t.Errorf("%s: the signed form %q does not name the staff member", l.Code, named)
		}
	}
}
