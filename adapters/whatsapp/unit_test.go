package whatsapp

import (
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
)

func TestPacer(t *testing.T) {
	now := time.Unix(1700000000, 0)
	p := newPacer(time.Second, 300*time.Millisecond, func() time.Time { return now })
	for i, tc := range []struct {
		chat    string
		advance time.Duration // clock moves before the reservation
		want    time.Duration
	}{
		{"a", 0, 0},
		{"a", 0, time.Second},             // the same chat: a second after the first
		{"b", 0, 1300 * time.Millisecond}, // another chat: after the global gap behind a's second message
		{"c", 2 * time.Second, 0},         // everything has passed
		{"c", 100 * time.Millisecond, 900 * time.Millisecond}, // per chat wins over global
		{"d", 0, 1200 * time.Millisecond},                     // the global gap behind the slot booked for c at 3 s
	} {
		now = now.Add(tc.advance)
		if got := p.reserve(tc.chat); got != tc.want {
			t.Errorf("reservation %d (%s): wait %v, want %v", i, tc.chat, got, tc.want)
		}
	}
}

func TestTextHelpers(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"/diagnose", true}, {"/DIAGNOSE please", true}, {"/diagnose\nmaize", true}, {"/diagnosed", false}, {"diagnose", false}, {"", false},
	} {
		if got := startsWithWord(tc.text, "/diagnose"); got != tc.want {
			t.Errorf("startsWithWord(%q) = %v", tc.text, got)
		}
	}
	for _, tc := range []struct{ text, want string }{
		{"@254700000001 /language sw", "/language sw"},
		{"@111111111111111 @254700000001  hi", "hi"},
		{"hi @254700000001", "hi @254700000001"},
		{"@2547000000012 hi", "@2547000000012 hi"}, // another number
	} {
		if got := stripMentions(tc.text, botPN, botLID); got != tc.want {
			t.Errorf("stripMentions(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	for _, tc := range []struct {
		jid  string
		want bool
	}{
		{"254700000001@s.whatsapp.net", true}, {"254700000001:12@s.whatsapp.net", true}, {"111111111111111@lid", true},
		{"254700000001@lid", false}, {"254712345678@s.whatsapp.net", false}, {"garbage@@", false},
	} {
		if got := isOwn(tc.jid, botPN, botLID); got != tc.want {
			t.Errorf("isOwn(%q) = %v", tc.jid, got)
		}
	}
	if isOwn(botPN.String(), types.EmptyJID, types.EmptyJID) {
		t.Error("an unlinked bot is mentioned")
	}
}
