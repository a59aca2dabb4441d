package telegram_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/adapters/telegram"
	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
)

// A cooperative's basic group and the supergroup it is upgraded to.
const (
	oldGroup   = -4001
	superGroup = -1004001
)

func basicGroup(id int64) *tgbotapi.Chat {
	return &tgbotapi.Chat{ID: id, Type: "group", Title: "Mbeya tomato growers"}
}

// groupLanguage has the group's creator set the group's language with /language and waits for
// the answer.
func (e *env) groupLanguage(chat *tgbotapi.Chat, lang string) {
	e.t.Helper()
	e.api.setMember(31, "creator")
	e.api.push(e.text(chat, farmer(31), "/language@"+botName+" "+lang))
	want := e.loc.T(lang, "language.set")
	e.api.waitFor(e.t, "the /language answer", func() bool {
		return slices.ContainsFunc(e.api.sentToLocked(chat.ID), func(s sent) bool { return s.Text == want })
	})
}

// checkMoved checks that the store carried the group's language over to the supergroup and
// recorded the move on both chats.
func (e *env) checkMoved(lang string) {
	e.t.Helper()
	ctx := context.Background()
	from, to := strconv.Itoa(oldGroup), strconv.Itoa(superGroup)
	old, err := e.st.GetChat(ctx, "telegram", from)
	if err != nil || old.MovedTo != to {
		e.t.Errorf("old group %+v, %v; want MovedTo %s", old, err, to)
	}
	moved, err := e.st.GetChat(ctx, "telegram", to)
	if err != nil || moved.Language != lang || moved.MovedFrom != from || moved.FirstSeen != old.FirstSeen {
		e.t.Errorf("supergroup %+v, %v; want language %s, MovedFrom %s, first seen %v", moved, err, lang, from, old.FirstSeen)
	}
}

// TestGroupMigration: whichever notices of a group's upgrade arrive (migrate_to_chat_id in the
// group, migrate_from_chat_id in the supergroup, both in either order), a photo sent right after
// in the supergroup is answered in the language the group chose. The notices get no reply and
// take no turn of the rate limit (one message per chat here), and they leave the inbox.
func TestGroupMigration(t *testing.T) {
	to := tgbotapi.Message{Chat: basicGroup(oldGroup), From: farmer(31), MigrateToChatID: superGroup}
	from := tgbotapi.Message{Chat: groupChat(superGroup), From: farmer(31), MigrateFromChatID: oldGroup}
	tests := []struct {
		name    string
		notices []tgbotapi.Message
	}{
		{"migrate_to_chat_id", []tgbotapi.Message{to}},
		{"migrate_from_chat_id", []tgbotapi.Message{from}},
		{"both", []tgbotapi.Message{to, from}},
		{"both, the supergroup's first", []tgbotapi.Message{from, to}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.cfg.Burst = 1
			e.start()
			e.groupLanguage(basicGroup(oldGroup), "sw")

			var batch []tgbotapi.Message
			for _, n := range tt.notices {
				n.MessageID = e.nextID()
				batch = append(batch, n)
			}
			photo := e.photo(groupChat(superGroup), farmer(32), "/diagnose", e.onePhotoSize(7))
			e.api.push(append(batch, photo)...) // one batch: the photo may not overtake the notices
			e.api.waitFor(t, "the diagnosis in the supergroup", func() bool { return len(e.api.sentToLocked(superGroup)) > 0 })
			e.stop() // lets the whole answer go out and the handled updates leave the inbox

			answer := e.api.sentTo(superGroup)
			if first := answer[0]; first.Method != "sendPhoto" || !strings.Contains(first.Text, e.loc.T("sw", "diagnosis.header")) {
				t.Errorf("the supergroup got a %s %q, want the diagnosis in Kiswahili", first.Method, first.Text)
			}
			for _, s := range answer {
				if s.ReplyTo != photo.MessageID {
					t.Errorf("the supergroup got a %s %q quoting %d: only the photo's answer was expected", s.Method, s.Text, s.ReplyTo)
				}
			}
			if n := len(e.api.sentTo(oldGroup)); n != 1 {
				t.Errorf("the group got %d messages, want only the /language answer: %+v", n, e.api.sentTo(oldGroup))
			}
			e.checkMoved("sw")
			if pending, err := e.st.PendingInbox(context.Background(), "telegram"); err != nil || len(pending) != 0 {
				t.Errorf("inbox after the stop: %d updates, %v; want none", len(pending), err)
			}
		})
	}
}

// TestSendToMovedGroup: a reply to a group that has become a supergroup is refused by Telegram
// with 400 and migrate_to_chat_id; the adapter records the move (the group's language goes
// along) and sends the reply once more to the new id, the reply's later parts straight there.
// A second refusal is not followed: one retry, never a loop, and no part is sent twice.
func TestSendToMovedGroup(t *testing.T) {
	group := bot.ChatRef{Platform: bot.Telegram, ID: strconv.Itoa(oldGroup), Kind: bot.Group}
	tests := []struct {
		name        string
		movedAgain  bool                       // the supergroup refuses too, naming another id
		send        func(e *env) error         // sends the reply (through the adapter or the handler)
		wantMethods []string                   // what the supergroup receives
		wantRefused []string                   // the refused requests
		wantErr     error                      // what Send returns
		check       func(t *testing.T, e *env) // more checks
	}{
		{
			name: "text",
			send: func(e *env) error {
				return e.a.Send(context.Background(), bot.Reply{Chat: group, Text: "Agent Juma: spray in the evening.", Kind: bot.KindStaff})
			},
			wantMethods: []string{"sendMessage"},
			wantRefused: []string{"sendMessage/-4001"},
		},
		{
			name: "photo, caption and a long text",
			send: func(e *env) error {
				return e.a.Send(context.Background(), bot.Reply{Chat: group, Caption: "Late blight", Text: strings.Repeat("Remove the sick leaves. ", 200),
					Image: testenv.LeafJPEG(e.t, 64, 48, 1), Kind: bot.KindDiagnosis})
			},
			wantMethods: []string{"sendPhoto", "sendMessage", "sendMessage"},
			wantRefused: []string{"sendPhoto/-4001"},
		},
		{
			name: "album",
			send: func(e *env) error {
				return e.a.Send(context.Background(), bot.Reply{Chat: group, Caption: "Two leaves", Kind: bot.KindDiagnosis,
					Images: [][]byte{testenv.LeafJPEG(e.t, 64, 48, 1), testenv.LeafJPEG(e.t, 64, 48, 2)}})
			},
			wantMethods: []string{"sendMediaGroup"},
			wantRefused: []string{"sendMediaGroup/-4001"},
		},
		{
			name: "the handler's answer to a message from the group",
			send: func(e *env) error {
				e.api.push(e.text(basicGroup(oldGroup), farmer(32), "/help"))
				e.api.waitFor(e.t, "the /help answer in the supergroup", func() bool { return len(e.api.sentToLocked(superGroup)) > 0 })
				return nil
			},
			wantMethods: []string{"sendMessage"},
			wantRefused: []string{"sendMessage/-4001"},
			check: func(t *testing.T, e *env) {
				if got, want := e.api.sentTo(superGroup)[0].Text, e.loc.T("sw", "help"); !strings.HasPrefix(got, strings.TrimSpace(want)) {
					t.Errorf("the supergroup got %q, want /help in Kiswahili", got)
				}
				recs, err := e.st.RecentMessages(context.Background(), "telegram", strconv.Itoa(oldGroup), 1)
				if err != nil || len(recs) != 1 || recs[0].Kind != "command" || recs[0].Error != "" {
					t.Errorf("the group's log ends with %+v, %v; want the delivered answer", recs, err)
				}
			},
		},
		{
			name:       "the new id refuses too",
			movedAgain: true,
			send: func(e *env) error {
				return e.a.Send(context.Background(), bot.Reply{Chat: group, Text: "Agent Juma: spray in the evening.", Kind: bot.KindStaff})
			},
			wantRefused: []string{"sendMessage/-4001", "sendMessage/-1004001"},
			wantErr:     telegram.ErrAPI,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.start()
			e.groupLanguage(basicGroup(oldGroup), "sw")
			e.api.move(oldGroup, superGroup)
			if tt.movedAgain {
				e.api.move(superGroup, -1009009)
			}
			err := tt.send(e)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Send = %v, want %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), tokenPart) {
				t.Errorf("the error holds the token: %v", err)
			}
			e.stop()
			var methods []string
			for _, s := range e.api.sentTo(superGroup) {
				methods = append(methods, s.Method)
			}
			if !slices.Equal(methods, tt.wantMethods) {
				t.Errorf("the supergroup got %v, want %v", methods, tt.wantMethods)
			}
			if got := e.api.refusals(); !slices.Equal(got, tt.wantRefused) {
				t.Errorf("refused requests %v, want %v", got, tt.wantRefused)
			}
			if n := len(e.api.sentTo(oldGroup)); n != 1 {
				t.Errorf("the group got %d messages, want only the /language answer", n)
			}
			e.checkMoved("sw")
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}
