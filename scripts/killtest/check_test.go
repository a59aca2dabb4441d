package main

import (
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// TestCheck: the verdict of a run from what the fake Bot API recorded and what the web chat
// showed: a loss, a reply sent twice (whole, or one part again), an answer to what wants none,
// and a reply quoting nothing sent are each counted; the rest of a photo's answer is not a second
// answer.
func TestCheck(t *testing.T) {
	t0 := time.Now()
	items := []tgItem{
		{Kind: "private photo", Chat: 1, IDs: []int{10}, Expect: true},                 // photo + rest: one answer
		{Kind: "private photo", Chat: 2, IDs: []int{11}, Expect: true},                 // answered twice
		{Kind: "private text", Chat: 3, IDs: []int{12}, Expect: true},                  // lost
		{Kind: "group /help", Chat: -5, Group: true, IDs: []int{13}, Expect: true},     // one answer
		{Kind: "group chatter", Chat: -5, Group: true, IDs: []int{14}, Expect: false},  // answered: unexpected
		{Kind: "group album", Chat: -5, Group: true, IDs: []int{15, 16}, Expect: true}, // quoted by its second part
		{Kind: "private photo", Chat: 4, IDs: []int{17}, Expect: true},                 // its rest sent twice
		{Kind: "private text", Chat: 6, IDs: []int{18}, Expect: true},                  // lost, reply suppressed
	}
	released := make([]time.Time, len(items))
	for i := range released {
		released[i] = t0
	}
	at := t0.Add(time.Second)
	fake := &fakeBot{sends: []sendRec{
		{Method: "sendPhoto", Chat: 1, Text: "diagnosis", Images: 1, At: at},
		{Method: "sendMessage", Chat: 1, Text: "details", At: at},
		{Method: "sendPhoto", Chat: 2, Text: "diagnosis", Images: 1, At: at},
		{Method: "sendPhoto", Chat: 2, Text: "diagnosis", Images: 1, At: at},
		{Method: "sendMessage", Chat: -5, ReplyTo: 13, Text: "help", At: at},
		{Method: "sendMessage", Chat: -5, ReplyTo: 14, Text: "send a photo", At: at},
		{Method: "sendMediaGroup", Chat: -5, ReplyTo: 16, Text: "album", Images: 2, At: at},
		{Method: "sendMessage", Chat: -5, ReplyTo: 99, Text: "to whom?", At: at},
		{Method: "sendPhoto", Chat: 4, Text: "diagnosis", Images: 1, At: at},
		{Method: "sendMessage", Chat: 4, Text: "details", At: at},
		{Method: "sendMessage", Chat: 4, Text: "details", At: at},
	}, deliver: map[int64]int{}}
	answered := &webMsg{item: webItem{Kind: "web photo"}, sentAt: t0, answeredAt: at, given: true,
		live: map[[2]int64]bool{{1, 2}: true}, final: []entry{{From: "you"}, {From: "bot"}}}
	twice := &webMsg{item: webItem{Kind: "web photo"}, sentAt: t0, answeredAt: at, given: true,
		final: []entry{{From: "you"}, {From: "bot"}, {From: "you"}, {From: "bot"}}}
	// Answered by one process, then again by the next: the store shows one reply.
	again := &webMsg{item: webItem{Kind: "web photo"}, sentAt: t0, answeredAt: at, given: true,
		live: map[[2]int64]bool{{1, 2}: true, {2, 1}: true}, final: []entry{{From: "you"}, {From: "bot"}}}
	unsent := &webMsg{item: webItem{Kind: "web text"}, sentAt: t0, gaveUp: true, ambiguous: 1, attempts: 1}
	for _, m := range []*webMsg{answered, twice, again, unsent} {
		var err error
		if m.client, err = newClient(); err != nil {
			t.Fatal(err)
		}
	}
	var r result
	r.check(items, released, fake, []*webMsg{answered, twice, again, unsent}, "http://127.0.0.1:1",
		map[suppressedKey]bool{{"telegram", "6", "18"}: true})

	tests := []struct {
		name      string
		got, want int
	}{
		{"telegram messages", r.tg.messages, 9},
		{"telegram wanting an answer", r.tg.expect, 7},
		{"telegram answered", r.tg.answered, 5},
		{"telegram lost", r.tg.lost, 2},
		{"telegram lost after an attempt", r.tg.lostAttempted, 1},
		{"telegram answered twice", r.tg.dups, 2},
		{"telegram unexpected", r.tg.unexpected, 2},
		{"telegram latencies", len(r.tg.latency), 5},
		{"web messages", r.web.messages, 4},
		{"web answered", r.web.answered, 3},
		{"web lost", r.web.lost, 1},
		{"web lost unsent", r.web.lostUnsent, 1},
		{"web answered twice", r.web.dups, 2},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	if r.clean() {
		t.Error("clean() with losses and duplicates")
	}
}

// TestCheckOrder: an answer that comes before the answer to an earlier message of its chat is
// counted out of order, except an album of another member still being collected (the intake
// lets another sender's message pass it); the album's own sender's next message must wait.
func TestCheckOrder(t *testing.T) {
	t0 := time.Now()
	amina, baraka := &tgbotapi.User{ID: 1}, &tgbotapi.User{ID: 2}
	msg := func(id int, from *tgbotapi.User) tgbotapi.Message { return tgbotapi.Message{MessageID: id, From: from} }
	items := []tgItem{
		{Kind: "group /help", Chat: -7, Group: true, IDs: []int{1}, Expect: true, Msgs: []tgbotapi.Message{msg(1, amina)}},
		{Kind: "group /help", Chat: -7, Group: true, IDs: []int{2}, Expect: true, Msgs: []tgbotapi.Message{msg(2, amina)}}, // answered before 1
		{Kind: "group album", Chat: -7, Group: true, IDs: []int{3, 4}, Expect: true, Msgs: []tgbotapi.Message{msg(3, amina), msg(4, amina)}},
		{Kind: "group /help", Chat: -7, Group: true, IDs: []int{5}, Expect: true, Msgs: []tgbotapi.Message{msg(5, baraka)}}, // passes amina's album: allowed
		{Kind: "group /help", Chat: -7, Group: true, IDs: []int{6}, Expect: true, Msgs: []tgbotapi.Message{msg(6, amina)}},  // passes her own album: out of order
		{Kind: "group /help", Chat: -8, Group: true, IDs: []int{7}, Expect: true, Msgs: []tgbotapi.Message{msg(7, amina)}},  // another chat
	}
	released := make([]time.Time, len(items))
	at := t0.Add(time.Second)
	fake := &fakeBot{sends: []sendRec{
		{Method: "sendMessage", Chat: -8, ReplyTo: 7, Text: "help", At: at},
		{Method: "sendMessage", Chat: -7, ReplyTo: 2, Text: "help", At: at},
		{Method: "sendMessage", Chat: -7, ReplyTo: 1, Text: "help", At: at},
		{Method: "sendMessage", Chat: -7, ReplyTo: 5, Text: "help", At: at},
		{Method: "sendMessage", Chat: -7, ReplyTo: 6, Text: "help", At: at},
		{Method: "sendMediaGroup", Chat: -7, ReplyTo: 4, Text: "album", Images: 2, At: at},
	}, deliver: map[int64]int{}}
	var r result
	r.check(items, released, fake, nil, "http://127.0.0.1:1", nil)
	if r.tg.outOfOrder != 2 || r.tg.answered != 6 || r.clean() {
		t.Errorf("%d out of order (want 2: message 1 after 2, album 3-4 after 6), %d answered (want 6), clean %v; problems: %q",
			r.tg.outOfOrder, r.tg.answered, r.clean(), r.problems)
	}
}

// TestCheckAlbumParts: in webhook mode an album whose photos reached the bot more than the album
// wait apart may be answered in one part more per such gap (the intake's rule), and no more.
func TestCheckAlbumParts(t *testing.T) {
	t0 := time.Now()
	fake := &fakeBot{deliver: map[int64]int{}}
	fake.startWebhook([]string{"127.0.0.1:1"}, 1, 1)
	defer fake.hook.stop()
	fake.hook.takenAt = map[int64]time.Time{
		1: t0, 2: t0.Add(100 * time.Millisecond), 3: t0.Add(2 * time.Second), // a gap: two parts
		4: t0, 5: t0.Add(100 * time.Millisecond), // none: one part
	}
	items := []tgItem{
		{Kind: "private album", Chat: 1, IDs: []int{11, 12, 13}, Expect: true},
		{Kind: "private album", Chat: 2, IDs: []int{14, 15}, Expect: true},
	}
	parts := albumParts(items, [][]int64{{1, 2, 3}, {4, 5}}, fake, 1500*time.Millisecond)
	if parts[0] != 2 || parts[1] != 1 {
		t.Fatalf("albumParts = %v, want [2 1]", parts)
	}
	at := t0.Add(3 * time.Second)
	fake.sends = []sendRec{
		{Method: "sendMessage", Chat: 1, Text: "I looked at your 2 photos together", At: at},
		{Method: "sendMessage", Chat: 1, Text: "not a leaf", At: at},
		{Method: "sendMessage", Chat: 2, Text: "not a leaf", At: at},
		{Method: "sendMessage", Chat: 2, Text: "not a leaf", At: at},
	}
	r := result{albumParts: parts}
	r.check(items, []time.Time{t0, t0}, fake, nil, "http://127.0.0.1:1", nil)
	if r.albumSplit != 1 || r.tg.dups != 1 || r.tg.answered != 2 {
		t.Errorf("%d albums in parts (want 1), %d answered twice (want 1: the album without a gap), %d answered; problems %q",
			r.albumSplit, r.tg.dups, r.tg.answered, r.problems)
	}
}
