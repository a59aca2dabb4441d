package telegram_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/adapters/telegram"
	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/store"
)

var _ bot.Adapter = (*telegram.Adapter)(nil)

// top3 matches the three ranked lines of a diagnosis.
var top3 = regexp.MustCompile(`(?m)^1\. .+\n2\. .+\n3\. .+`)

func isJPEG(b []byte) bool { return len(b) > 3 && b[0] == 0xff && b[1] == 0xd8 }

// checkAnswer checks the answer to one photo (or album): the image(s) with the top-3 in the
// caption, then the details as messages, all quoting replyTo.
func checkAnswer(t *testing.T, e *env, answer []sent, method string, photos, replyTo int) {
	t.Helper()
	if len(answer) == 0 {
		t.Fatal("no answer")
	}
	s := answer[0]
	if s.Method != method || len(s.Photos) != photos {
		t.Fatalf("answer is %s with %d photos, want %s with %d: %+v", s.Method, len(s.Photos), method, photos, answer)
	}
	for _, p := range s.Photos {
		if !isJPEG(p) {
			t.Errorf("an overlay is not a JPEG")
		}
	}
	if !strings.Contains(s.Text, e.loc.T("en", "diagnosis.header")) || !top3.MatchString(s.Text) {
		t.Errorf("caption has no top-3:\n%s", s.Text)
	}
	if n := len([]rune(s.Text)); n > 1024 {
		t.Errorf("caption of %d characters", n)
	}
	for _, m := range answer {
		if m.ReplyTo != replyTo {
			t.Errorf("%s quotes %d, want %d", m.Method, m.ReplyTo, replyTo)
		}
		if m.ReplyTo != 0 && !m.AllowNo {
			t.Errorf("%s quotes without allow_sending_without_reply", m.Method)
		}
	}
	for _, m := range answer[1:] {
		if m.Method != "sendMessage" || m.Text == "" {
			t.Errorf("after the %s: a %s %q, want the details as messages", method, m.Method, m.Text)
		}
	}
}

// countSends counts what was sent to chat by method, and fails on any message sent twice.
func countSends(t *testing.T, e *env, chat int64) map[string]int {
	t.Helper()
	n := map[string]int{}
	seen := map[string]bool{}
	for _, s := range e.api.sentTo(chat) {
		n[s.Method]++
		key := s.Method + "\x00" + s.Text
		if seen[key] && s.Method == "sendMessage" {
			t.Errorf("chat %d: %q sent twice", chat, s.Text)
		}
		seen[key] = true
	}
	return n
}

// TestPrivatePhoto: a photo in a private chat gets one sendPhoto whose caption has the top-3,
// after sendChatAction upload_photo; the smallest size large enough is the one downloaded; the
// same photo forwarded later (same file_unique_id, other file_id) is answered without getFile
// or a download.
func TestPrivatePhoto(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	chat, amina := privateChat(11), farmer(11)
	sizes := e.photoSizes(1)
	e.api.push(e.photo(chat, amina, "", sizes))
	first := e.untilHelp(chat, amina)
	checkAnswer(t, e, first, "sendPhoto", 1, 0)
	if len(first) < 2 {
		t.Errorf("no details after the photo: %+v", first)
	}
	calls := e.api.callLog()
	if a, p := slices.Index(calls, "sendChatAction"), slices.Index(calls, "sendPhoto"); a < 0 || a > p {
		t.Errorf("no sendChatAction before sendPhoto: %v", calls)
	}
	e.api.mu.Lock()
	downloads := maps(e.api.downloads)
	e.api.mu.Unlock()
	if want := map[string]int{"photos/file_2.jpg": 1}; !equalCounts(downloads, want) {
		t.Errorf("downloads %v, want only the 800x600 size (file_2) once", downloads)
	}

	e.api.push(e.photo(chat, amina, "", e.forwarded(sizes)))
	second := e.untilHelp(chat, amina)
	checkAnswer(t, e, second, "sendPhoto", 1, 0)
	if second[0].Text != first[0].Text {
		t.Errorf("the forward got another diagnosis:\n%s\nvs\n%s", second[0].Text, first[0].Text)
	}
	if n, g := e.api.downloadCount(), e.api.countCalls("getFile"); n != 1 || g != 1 {
		t.Errorf("after the forward: %d downloads and %d getFile calls, want 1 and 1", n, g)
	}
}

func maps(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDocuments: images sent as files are photos (JPEG, PNG); other files are not; a file over
// getFile's 20 MB limit gets the "too large" answer without any download.
func TestDocuments(t *testing.T) {
	tests := []struct {
		name      string
		mime      string
		data      func(t *testing.T) []byte
		size      int // reported size, if not len(data)
		wantPhoto bool
		wantText  string // the answer's text, for non-photos
		downloads int
	}{
		{name: "png", mime: "image/png", data: func(t *testing.T) []byte { return leafPNG(t, 640, 480, 3) }, wantPhoto: true, downloads: 1},
		{name: "jpeg", mime: "image/jpeg", data: func(t *testing.T) []byte { return testenv.LeafJPEG(t, 640, 480, 4) }, wantPhoto: true, downloads: 1},
		{name: "pdf", mime: "application/pdf", data: func(*testing.T) []byte { return []byte("%PDF-1.4") }, wantText: "text.need_photo"},
		{name: "too large", mime: "image/jpeg", data: func(*testing.T) []byte { return []byte{0xff, 0xd8} }, size: 25 << 20, wantText: "error.too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.start()
			data := tt.data(t)
			uid := "BQAD-" + tt.name
			id := e.api.addFile(uid, data)
			size := len(data)
			if tt.size > 0 {
				size = tt.size
				e.api.mu.Lock()
				f := e.api.files[id]
				f.size = size
				e.api.files[id] = f
				e.api.mu.Unlock()
			}
			chat, amina := privateChat(21), farmer(21)
			m := e.text(chat, amina, "")
			m.Caption = "leaf from the north field"
			m.Document = &tgbotapi.Document{FileID: id, FileUniqueID: uid, FileName: "leaf." + tt.name, MimeType: tt.mime, FileSize: size}
			e.api.push(m)
			before := e.untilHelp(chat, amina)
			if tt.wantPhoto {
				checkAnswer(t, e, before, "sendPhoto", 1, 0)
			} else {
				if len(before) != 1 {
					t.Fatalf("sent %d messages, want 1: %+v", len(before), before)
				}
				first := strings.SplitN(e.loc.T("en", tt.wantText, "size", "25 MB", "limit", "20 MB"), "{", 2)[0]
				if before[0].Method != "sendMessage" || !strings.HasPrefix(before[0].Text, first[:min(len(first), 12)]) {
					t.Errorf("answer %s %q, want the %s text", before[0].Method, before[0].Text, tt.wantText)
				}
			}
			if n := e.api.downloadCount(); n != tt.downloads {
				t.Errorf("%d downloads, want %d", n, tt.downloads)
			}
		})
	}
}

// TestAlbum: three photos sent as one album get one combined answer: one sendMediaGroup with
// the overlays and the verdict in the caption (the rest, if any, in following messages).
func TestAlbum(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	chat, amina := privateChat(31), farmer(31)
	var album []tgbotapi.Message
	for i := range 3 {
		m := e.photo(chat, amina, "", e.onePhotoSize(40+i))
		m.MediaGroupID = "13579"
		if i == 0 {
			m.Caption = "three leaves of the same plant"
		}
		album = append(album, m)
	}
	e.api.push(album...)
	// The album is complete after its quiet period: nothing else arrives in the chat meanwhile.
	e.api.waitFor(t, "the album's answer", func() bool { return len(e.api.sentToLocked(31)) > 0 })
	e.untilHelp(chat, amina)
	all := e.api.sentTo(31)
	checkAnswer(t, e, all[:len(all)-1], "sendMediaGroup", 3, 0) // the last is the /help answer
}

// TestSendSplits: a reply larger than Telegram's limits is cut: more than ten images go as
// several albums (a single one left over as a photo), a caption over 1024 characters continues
// in the text, text over 4096 characters in several messages, each cut at a line break, and
// in a group every part quotes the farmer's message.
func TestSendSplits(t *testing.T) {
	e := newEnv(t, nil) // Send works without Run
	img := testenv.LeafJPEG(t, 64, 48, 1)
	var images [][]byte
	for range 11 {
		images = append(images, img)
	}
	caption := strings.Repeat("Late blight: brown patches with pale edges.\n", 30)             // 1320 characters
	text := strings.Repeat("Remove the sick leaves and burn them; do not compost them.\n", 90) // 5310
	r := bot.Reply{Chat: bot.ChatRef{Platform: bot.Telegram, ID: "-100777", Kind: bot.Group}, ReplyTo: "321",
		Caption: caption, Text: text, Images: images, Kind: bot.KindDiagnosis}
	if err := e.a2().Send(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := e.api.sentTo(-100777)
	var methods []string
	var all strings.Builder
	for i, s := range got {
		methods = append(methods, fmt.Sprintf("%s/%d", s.Method, len(s.Photos)))
		if s.ReplyTo != 321 || !s.AllowNo {
			t.Errorf("part %d quotes %d", i, s.ReplyTo)
		}
		if s.Text != "" && (strings.HasPrefix(s.Text, "\n") || strings.HasSuffix(s.Text, "\n")) {
			t.Errorf("part %d not cut at a line break: %q...", i, s.Text[:20])
		}
		all.WriteString(s.Text + "\n")
	}
	want := []string{"sendMediaGroup/10", "sendPhoto/1", "sendMessage/0", "sendMessage/0"}
	if !slices.Equal(methods, want) {
		t.Fatalf("sent %v, want %v", methods, want)
	}
	if n := len([]rune(got[0].Text)); n > 1024 || n < 1000 {
		t.Errorf("caption of %d characters, want as much as fits in 1024", n)
	}
	if got[1].Text != "" {
		t.Errorf("the second album has a caption too: %q", got[1].Text)
	}
	if squash(all.String()) != squash(caption+text) {
		t.Error("the parts do not add up to the caption and the text")
	}
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// a2 is an adapter on the env's fake server and store, not running.
func (e *env) a2() *telegram.Adapter {
	e.t.Helper()
	opts := e.opts
	opts.Chats = bot.NewMoves(e.st)
	a, err := telegram.New(sink.logger(e.t), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// TestGroups: in a group the bot answers only photos addressed to it (or all, if configured),
// as a reply to the farmer's message, and only commands for it; nothing else is even recorded.
func TestGroups(t *testing.T) {
	type tc struct {
		name       string
		all        bool
		caption    string
		text       string // a text message instead of a photo
		replyToBot bool
		answered   bool
	}
	tests := []tc{
		{name: "photo without mention", caption: "", answered: false},
		{name: "photo with other caption", caption: "our field today", answered: false},
		{name: "diagnose caption", caption: "/diagnose", answered: true},
		{name: "diagnose for this bot", caption: "/diagnose@CropShieldTestBot please", answered: true},
		{name: "diagnose for another bot", caption: "/diagnose@OtherBot", answered: false},
		{name: "mention", caption: "what is this @cropshieldtestbot?", answered: true},
		{name: "mention of a longer name", caption: "@CropShieldTestBot2 look", answered: false},
		{name: "reply to the bot", replyToBot: true, answered: true},
		{name: "every photo when configured", all: true, answered: true},
		{name: "chatter", text: "rain tomorrow?", answered: false},
		{name: "command for another bot", text: "/start@OtherBot", answered: false},
		{name: "command for this bot", text: "/start@CropShieldTestBot", answered: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *telegram.Options) {
				if tt.all {
					o.GroupPhotos = telegram.GroupPhotosAll
				}
			})
			e.start()
			chat, amina := groupChat(-1001000000+int64(i)), farmer(41)
			var m tgbotapi.Message
			if tt.text != "" {
				m = e.text(chat, amina, tt.text)
			} else {
				m = e.photo(chat, amina, tt.caption, e.onePhotoSize(50))
			}
			if tt.replyToBot {
				m.ReplyToMessage = &tgbotapi.Message{MessageID: 7, Chat: chat, From: &tgbotapi.User{ID: botID, IsBot: true, UserName: botName}}
			}
			e.api.push(m)
			before := e.untilHelp(chat, amina)
			switch {
			case !tt.answered && len(before) != 0:
				t.Fatalf("answered a message not for the bot: %+v", before)
			case !tt.answered:
				recs, err := e.st.RecentMessages(context.Background(), "telegram", strconv.FormatInt(chat.ID, 10), 10)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if r.Direction == store.Inbound && r.Text != "/help" {
						t.Errorf("the ignored message was recorded: %+v", r)
					}
				}
			case len(before) == 0:
				t.Fatal("not answered")
			case tt.text == "":
				checkAnswer(t, e, before, "sendPhoto", 1, m.MessageID)
			default:
				if before[0].ReplyTo != m.MessageID || !before[0].AllowNo {
					t.Errorf("group answer quotes %d (allow without reply %v), want %d", before[0].ReplyTo, before[0].AllowNo, m.MessageID)
				}
			}
		})
	}
}

// TestGroupLanguage: /language in a group changes the group's language only for admins; the
// adapter asks getChatMember, an anonymous admin (writing as the group) needs no asking.
func TestGroupLanguage(t *testing.T) {
	tests := []struct {
		name      string
		status    string
		anonymous bool
		want      func(e *env) string
	}{
		{"member is refused", "member", false, func(e *env) string { return e.loc.T("en", "language.group_admin_only") }},
		{"administrator", "administrator", false, func(e *env) string { return e.loc.T("sw", "language.set") }},
		{"creator", "creator", false, func(e *env) string { return e.loc.T("sw", "language.set") }},
		{"anonymous admin", "", true, func(e *env) string { return e.loc.T("sw", "language.set") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.start()
			chat, amina := groupChat(-100200300), farmer(51)
			if tt.status != "" {
				e.api.setMember(51, tt.status)
			}
			m := e.text(chat, amina, "/language@CropShieldTestBot sw")
			if tt.anonymous {
				m.From = &tgbotapi.User{ID: 1087968824, IsBot: true, FirstName: "Group", UserName: "GroupAnonymousBot"}
				m.SenderChat = chat
			}
			e.api.push(m)
			e.api.waitFor(t, "the answer", func() bool { return len(e.api.sentToLocked(chat.ID)) > 0 })
			got := e.api.sentTo(chat.ID)[0]
			if got.Text != tt.want(e) || got.ReplyTo != m.MessageID {
				t.Errorf("answer %q quoting %d, want %q quoting %d", got.Text, got.ReplyTo, tt.want(e), m.MessageID)
			}
			if asked := e.api.countCalls("getChatMember"); asked != 1 && !tt.anonymous || asked != 0 && tt.anonymous {
				t.Errorf("getChatMember asked %d times", asked)
			}
		})
	}
}

// TestFloodStorm: every send, the first getUpdates and the first typing indicator of each chat
// get 429 retry_after=1, twice for sends. Every reply still arrives exactly once, and no request
// for a chat comes before its retry_after has passed.
func TestFloodStorm(t *testing.T) {
	e := newEnv(t, nil)
	e.api.flood("sendPhoto", 2)
	e.api.flood("sendMessage", 2)
	e.api.flood("sendChatAction", 1)
	e.api.flood("getUpdates", 1)
	e.start()
	const chats = 6
	var msgs []tgbotapi.Message
	for c := range int64(chats) {
		msgs = append(msgs, e.photo(privateChat(600+c), farmer(600+c), "", e.onePhotoSize(60+int(c))),
			e.text(privateChat(600+c), farmer(600+c), "/help"))
	}
	e.api.push(msgs...)
	e.api.waitFor(t, "every reply", func() bool {
		for c := range int64(chats) {
			if !slices.ContainsFunc(e.api.sentToLocked(600+c), e.isHelp) {
				return false
			}
		}
		return true
	})
	e.stop() // nothing is in flight any more: the counts below are final
	for c := range int64(chats) {
		got := e.api.sentTo(600 + c)
		checkAnswer(t, e, got[:len(got)-1], "sendPhoto", 1, 0)
		if n := countSends(t, e, 600+c); n["sendPhoto"] != 1 || !e.isHelp(got[len(got)-1]) {
			t.Errorf("chat %d got %v, want one photo answer and one /help answer", 600+c, n)
		}
	}
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	if e.api.floodSeen < 2*chats {
		t.Errorf("only %d 429s were given", e.api.floodSeen)
	}
	if len(e.api.tooSoon) > 0 {
		t.Errorf("retry_after not honoured: %v", e.api.tooSoon)
	}
}

// TestRestartMidBatch: the adapter and the store are closed while a batch is being handled (one
// update answered, one being sent, four waiting) and opened again; one update had been answered
// but its inbox entry was still there (the crash window between the two). Every update is
// answered exactly once, and the inbox ends empty.
func TestRestartMidBatch(t *testing.T) {
	e := newEnv(t, nil)
	e.icfg.Workers = 1
	const n = 6
	var msgs []tgbotapi.Message
	for c := range int64(n) {
		msgs = append(msgs, e.photo(privateChat(700+c), farmer(700+c), "", e.onePhotoSize(70+int(c))))
	}
	e.api.hold(func(method string, chat int64) bool { return method == "sendPhoto" && chat == 701 })
	e.drainHook = e.api.release
	e.start()
	e.api.push(msgs...)
	e.api.waitFor(t, "chat 700 answered and chat 701's answer on its way", func() bool {
		held := 0
		for _, c := range e.api.calls {
			if c == "sendPhoto" {
				held++
			}
		}
		return held == 2
	})
	e.stop() // the drain hook releases chat 701's reply: it completes, nothing else starts

	pending, err := e.st.PendingInbox(context.Background(), "telegram")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, p := range pending {
		var m bot.Message
		if err := json.Unmarshal(p.Data, &m); err != nil {
			t.Fatal(err)
		}
		left = append(left, m.Chat.ID)
	}
	if want := []string{"702", "703", "704", "705"}; !slices.Equal(left, want) {
		t.Fatalf("inbox after the stop holds the messages of chats %v, want those not started %v", left, want)
	}
	// The crash window: chat 700's message answered but its inbox entry not yet deleted.
	again, err := json.Marshal(bot.Message{ID: strconv.Itoa(msgs[0].MessageID), Chat: bot.ChatRef{Platform: bot.Telegram, ID: "700", Kind: bot.Private},
		Sender: bot.Sender{ID: "700"}, Photo: &bot.Photo{Ref: msgs[0].Photo[0].FileID}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SaveInbox(context.Background(), "telegram", []store.InboxUpdate{{ID: 1 << 40, Data: again}}, 0); err != nil {
		t.Fatal(err)
	}

	e.restart()
	e.api.waitFor(t, "every chat answered", func() bool {
		for c := range int64(n) {
			if len(e.api.sentToLocked(700+c)) == 0 {
				return false
			}
		}
		return true
	})
	// Chat 700's message handed in again is handled (no second answer) before the stop.
	if err := e.in.WaitHandled(context.Background(), bot.Telegram, "700", strconv.Itoa(msgs[0].MessageID)); err != nil {
		t.Fatal(err)
	}
	e.stop() // drains: the answers being sent are complete
	for c := range int64(n) {
		checkAnswer(t, e, e.api.sentTo(700+c), "sendPhoto", 1, 0)
		if got := countSends(t, e, 700+c); got["sendPhoto"] != 1 {
			t.Errorf("chat %d got %d photo answers, want exactly 1", 700+c, got["sendPhoto"])
		}
	}
	if pending, err := e.st.PendingInbox(context.Background(), "telegram"); err != nil || len(pending) != 0 {
		t.Errorf("inbox after the restart: %d updates, %v; want empty: %s", len(pending), err, pending[0].Data)
	}
}

// TestAlbumResumedAfterRestart: the photos of an album received (and confirmed to Telegram) but
// not handled before a stop, because the album was still being collected, are regrouped at the
// next start and answered once, together.
func TestAlbumResumedAfterRestart(t *testing.T) {
	e := newEnv(t, nil)
	e.icfg.AlbumWait = time.Hour // the album is still being collected at the stop
	chat, amina := privateChat(81), farmer(81)
	e.start()
	for i := range 3 {
		m := e.photo(chat, amina, "", e.onePhotoSize(80+i))
		m.MediaGroupID = "24680"
		e.api.push(m)
	}
	e.api.waitFor(t, "the album confirmed to Telegram", func() bool { return len(e.api.queue) == 0 && countLocked(e.api.calls, "getUpdates") >= 2 })
	e.stop()
	if pending, err := e.st.PendingInbox(context.Background(), "telegram"); err != nil || len(pending) != 3 {
		t.Fatalf("inbox after the stop: %d entries, %v; want the album's 3 photos", len(pending), err)
	}
	e.icfg.AlbumWait = 50 * time.Millisecond
	e.restart()
	checkAnswer(t, e, e.untilHelp(chat, amina), "sendMediaGroup", 3, 0)
}

// TestWebhook: webhook mode sets the webhook with a secret token (and never polls); requests
// without that token get 401 and are not handled; an update delivered twice is answered once.
func TestWebhook(t *testing.T) {
	e, hook := startWebhook(t)
	_, secret, allowed := e.api.webhook()
	if len(secret) < 32 || allowed != `["message","callback_query"]` {
		t.Fatalf("setWebhook secret_token of %d characters, allowed_updates %s", len(secret), allowed)
	}

	post := func(method, secretHeader string, body []byte) int {
		t.Helper()
		req, err := http.NewRequest(method, hook, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if secretHeader != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secretHeader)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	intruder := privateChat(91)
	refused := []struct {
		name, method, secret string
		want                 int
	}{
		{"no secret", http.MethodPost, "", http.StatusUnauthorized},
		{"wrong secret", http.MethodPost, "guess", http.StatusUnauthorized},
		{"wrong secret of the right length", http.MethodPost, strings.Repeat("0", len(secret)), http.StatusUnauthorized},
		{"GET", http.MethodGet, secret, http.StatusMethodNotAllowed},
	}
	for _, tt := range refused {
		body := e.api.update(e.text(intruder, farmer(91), "/start"))
		if got := post(tt.method, tt.secret, body); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}

	chat, amina := privateChat(92), farmer(92)
	body := e.api.update(e.photo(chat, amina, "", e.onePhotoSize(90)))
	for range 2 { // Telegram delivers again when it missed our 200
		if got := post(http.MethodPost, secret, body); got != http.StatusOK {
			t.Fatalf("status %d for a right secret", got)
		}
	}
	if got := post(http.MethodPost, secret, e.api.update(e.text(chat, amina, "/help"))); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	e.api.waitFor(t, "the /help answer", func() bool { return slices.ContainsFunc(e.api.sentToLocked(92), e.isHelp) })
	e.stop()

	got := e.api.sentTo(92)
	checkAnswer(t, e, got[:len(got)-1], "sendPhoto", 1, 0)
	if n := countSends(t, e, 92); n["sendPhoto"] != 1 {
		t.Errorf("chat 92 got %v, want one photo answer", n)
	}
	if got := e.api.sentTo(91); len(got) != 0 {
		t.Errorf("refused requests were answered: %+v", got)
	}
	if recs, _ := e.st.RecentMessages(context.Background(), "telegram", "91", 10); len(recs) != 0 {
		t.Errorf("refused requests were recorded: %+v", recs)
	}
	if n, m := e.api.countCalls("getUpdates"), e.api.countCalls("deleteWebhook"); n != 0 || m != 0 {
		t.Errorf("webhook mode called getUpdates %d and deleteWebhook %d times", n, m)
	}
}

// TestPollingRemovesWebhook: polling starts with deleteWebhook, so a webhook left from an
// earlier webhook run does not make getUpdates fail with 409.
func TestPollingRemovesWebhook(t *testing.T) {
	e := newEnv(t, nil)
	e.api.mu.Lock()
	e.api.hookURL, e.api.hookSec = "https://old.example/hook", "old"
	e.api.mu.Unlock()
	e.start()
	chat, amina := privateChat(95), farmer(95)
	if before := e.untilHelp(chat, amina); len(before) != 0 {
		t.Fatalf("unexpected %+v", before)
	}
	calls := e.api.callLog()
	if d, g := slices.Index(calls, "deleteWebhook"), slices.Index(calls, "getUpdates"); d < 0 || d > g {
		t.Errorf("calls %v: want deleteWebhook before the first getUpdates", calls)
	}
}

// TestConflict: a 409 that does not go away stops Run with ErrConflict and a message that says
// what to do.
func TestConflict(t *testing.T) {
	e := newEnv(t, func(o *telegram.Options) { o.ConflictRetries = 2 })
	e.api.setConflicts(1 << 20)
	e.start()
	err := <-e.done
	e.cancel()
	e.cancel, e.done = nil, nil
	if !errors.Is(err, telegram.ErrConflict) {
		t.Fatalf("Run returned %v, want ErrConflict", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "another instance") || !strings.Contains(msg, "stop the other instance") {
		t.Errorf("message %q does not say what happened and what to do", msg)
	}
	if n := e.api.countCalls("getUpdates"); n != 3 {
		t.Errorf("%d getUpdates calls, want 3 (ConflictRetries 2)", n)
	}
}

// TestTokenNeverInErrors: transport errors (their url.Error holds the request URL) and API
// errors carry no token; TestMain checks the log lines of the whole run.
func TestTokenNeverInErrors(t *testing.T) {
	t.Run("endpoint down", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close() // connections to it are refused
		e := newEnv(t, func(o *telegram.Options) { o.Retries, o.APIEndpoint = 1, deadURL })
		e.start()
		sink.waitFor(t, "cannot reach the Bot API") // Run keeps trying; the error is logged
		e.stop()
		err := e.a.Send(context.Background(), bot.Reply{Chat: bot.ChatRef{Platform: bot.Telegram, ID: "5", Kind: bot.Private}, Text: "hello"})
		if err == nil {
			t.Fatal("Send succeeded")
		}
		if strings.Contains(err.Error(), tokenPart) {
			t.Errorf("error holds the token: %v", err)
		}
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Fatalf("error %v has no *url.Error", err)
		}
		if strings.Contains(ue.URL, tokenPart) || !strings.Contains(ue.URL, "<token>") {
			t.Errorf("url.Error URL %q not redacted", ue.URL)
		}
	})
	t.Run("token refused", func(t *testing.T) {
		const wrong = "123456:WrongTokenForTests"
		e := newEnv(t, func(o *telegram.Options) { o.Token = wrong })
		e.start()
		err := <-e.done
		e.cancel()
		e.cancel, e.done = nil, nil
		if !errors.Is(err, telegram.ErrUnauthorized) || strings.Contains(err.Error(), "WrongToken") {
			t.Errorf("Run = %v, want ErrUnauthorized without the token", err)
		}
	})
}

// TestEmptyPollsPause: a Bot API server that answers getUpdates at once with nothing (instead of
// holding the long poll) does not make polling spin: every quick empty answer is followed by a
// pause, twice as long as the one before up to 30 s. The pauses are counted, not timed: the
// first few return at once, the next one blocks, and by then there must have been exactly one
// getUpdates per pause (without pauses the calls run away).
func TestEmptyPollsPause(t *testing.T) {
	const free = 7 // pauses that return at once
	e := newEnv(t, func(o *telegram.Options) { o.EmptyPollDelay = time.Second })
	e.api.mu.Lock()
	e.api.answerAtOnce = true
	e.api.mu.Unlock()
	var mu sync.Mutex
	var pauses []time.Duration
	blocked := false
	e.beforeRun = func(a *telegram.Adapter) {
		telegram.SetPause(a, func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			pauses = append(pauses, d)
			n := len(pauses)
			if n > free {
				blocked = true
			}
			mu.Unlock()
			e.api.mu.Lock()
			e.api.changedLocked()
			e.api.mu.Unlock()
			if n <= free {
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		})
	}
	e.start()
	e.api.waitFor(t, "a blocking pause or runaway polling", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return blocked || countLocked(e.api.calls, "getUpdates") > free+1
	})
	e.stop()
	if n := e.api.countCalls("getUpdates"); n != free+1 {
		t.Errorf("%d getUpdates calls for %d empty answers that came at once, want %d (one per pause)", n, free+1, free+1)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(pauses, want) {
		t.Errorf("pauses %v, want %v", pauses, want)
	}
}

func countLocked(calls []string, method string) int {
	n := 0
	for _, c := range calls {
		if c == method {
			n++
		}
	}
	return n
}

// TestLegacyInboxAfterUpgrade: the updates the previous version left in the inbox (raw Bot API
// updates under their update_id, already confirmed to Telegram by the saved offset) are handled
// by the new adapter at its first start, in order before what arrives next, and leave the inbox;
// one the bot ignores (a group's text not for it) leaves it too.
func TestLegacyInboxAfterUpgrade(t *testing.T) {
	e := newEnv(t, nil)
	chat, amina := privateChat(91), farmer(91)
	photo := e.photo(chat, amina, "", e.onePhotoSize(91))
	photo.Date = int(time.Now().Unix())
	ignored := e.text(groupChat(-92), farmer(92), "hello all")
	var old []store.InboxUpdate
	for i, m := range []tgbotapi.Message{photo, ignored} {
		raw, err := json.Marshal(tgbotapi.Update{UpdateID: 90 + i, Message: &m})
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, store.InboxUpdate{ID: int64(90 + i), Data: raw})
	}
	if err := e.st.SaveInbox(context.Background(), "telegram", old, 92); err != nil { // as the previous version did
		t.Fatal(err)
	}
	e.start()
	checkAnswer(t, e, e.untilHelp(chat, amina), "sendPhoto", 1, 0)
	e.stop()
	if pending, err := e.st.PendingInbox(context.Background(), "telegram"); err != nil || len(pending) != 0 {
		t.Errorf("inbox after the upgrade's first run: %d entries, %v; want empty", len(pending), err)
	}
}
