package telegram_test

import (
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// The bot the fake server knows. The token looks like a real one so that a leak is found by a
// plain search of the logs.
const (
	testToken  = "7301234567:AAGz-fakeTokenForTests_k3Y9qLmN0pR"
	tokenPart  = "AAGz-fakeTokenForTests_k3Y9qLmN0pR" // the secret half, searched for on its own
	botID      = 7301234567
	botName    = "CropShieldTestBot"
	floodRetry = 1 // retry_after of injected 429s, in seconds (Telegram's unit)
)

// sent is one message the bot sent, as the fake recorded it.
type sent struct {
	Method  string
	Chat    int64
	ReplyTo int
	Text    string   // text, or the (first) caption
	Photos  [][]byte // uploaded images, in order
	AllowNo bool     // allow_sending_without_reply
	At      time.Time
	// Buttons are the inline keyboard's buttons (text and callback_data), row by row.
	Buttons []tgbotapi.InlineKeyboardButton
}

type fakeFile struct {
	uniqueID string
	path     string
	data     []byte
	size     int // reported size (len(data) unless set larger)
}

type queued struct {
	id  int64
	raw []byte
	at  time.Time
}

// fakeAPI is a Bot API server on 127.0.0.1 speaking just enough of the protocol for the real
// tgbotapi client: getMe, getUpdates with offsets and long polling, getFile and file downloads,
// sendMessage, sendPhoto and sendMediaGroup (multipart), sendChatAction, getChatMember,
// setWebhook and deleteWebhook, 409 conflicts, 429 flood control and groups moved to a
// supergroup (400 with migrate_to_chat_id). It records what the bot did.
type fakeAPI struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	queue     []queued      // updates not yet confirmed
	nextID    int64
	nextMsg   int
	files     map[string]fakeFile // by file_id
	downloads map[string]int      // by file_path
	calls     []string            // methods, in order
	sends     []sent
	actions   []int64          // chats of sendChatAction
	members   map[int64]string // user id → status
	hookURL   string
	hookSec   string
	hookAllow string
	badToken  int
	// answerAtOnce: getUpdates answers at once, empty if there is nothing, whatever its timeout
	// (a Bot API server that does not hold long polls).
	answerAtOnce bool

	conflicts   int            // 409s still to give on getUpdates
	floodPlan   map[string]int // method → 429s to give for each chat before success
	floodGiven  map[string]int // method/chat → 429s given
	floodAt     map[int64]time.Time
	floodSeen   int
	tooSoon     []string // requests made before retry_after had passed
	holdSend    func(method string, chat int64) bool
	released    chan struct{}
	deliveredAt map[string]time.Time // "chat/message" → when getUpdates handed it out
	answered    []string             // callback query ids answered (answerCallbackQuery)
	moved       map[int64]int64      // chat → the supergroup it became: sends to it are refused
	refused     []string             // "method/chat" of the sends refused because the chat moved
}

func newFakeAPI(t testing.TB) *fakeAPI {
	f := &fakeAPI{t: t, changed: make(chan struct{}), nextID: 100, nextMsg: 5000,
		files: map[string]fakeFile{}, downloads: map[string]int{}, members: map[int64]string{},
		floodPlan: map[string]int{}, floodGiven: map[string]int{}, floodAt: map[int64]time.Time{},
		released: make(chan struct{}), deliveredAt: map[string]time.Time{}, moved: map[int64]int64{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.release()
		f.srv.Close()
	})
	return f
}

func (f *fakeAPI) URL() string { return f.srv.URL }

// changedLocked wakes everyone waiting for a change. f.mu is held.
func (f *fakeAPI) changedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor blocks until cond (called with f.mu held) is true. The deadline only turns a hang
// into a readable failure.
func (f *fakeAPI) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(3 * time.Minute)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		ok, ch := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("gave up waiting for %s; calls: %v", what, f.callLog())
		}
	}
}

func (f *fakeAPI) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// push queues messages as updates for getUpdates and returns their update ids.
func (f *fakeAPI) push(msgs ...tgbotapi.Message) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []int64
	for _, m := range msgs {
		f.nextID++
		if m.Date == 0 {
			m.Date = int(time.Now().Unix())
		}
		raw, err := json.Marshal(tgbotapi.Update{UpdateID: int(f.nextID), Message: &m})
		if err != nil {
			f.t.Fatal(err)
		}
		f.queue = append(f.queue, queued{id: f.nextID, raw: raw, at: time.Now()})
		ids = append(ids, f.nextID)
	}
	f.changedLocked()
	return ids
}

// tap queues a callback query: user taps the button with data under the bot's message msg in
// chat. It returns the update id.
func (f *fakeAPI) tap(chat *tgbotapi.Chat, user *tgbotapi.User, msg int, data string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	cb := &tgbotapi.CallbackQuery{ID: fmt.Sprintf("cbq-%d", f.nextID), From: user, Data: data, ChatInstance: "ci",
		Message: &tgbotapi.Message{MessageID: msg, Chat: chat, Date: int(time.Now().Unix()), From: &tgbotapi.User{ID: botID, IsBot: true}}}
	raw, err := json.Marshal(tgbotapi.Update{UpdateID: int(f.nextID), CallbackQuery: cb})
	if err != nil {
		f.t.Fatal(err)
	}
	f.queue = append(f.queue, queued{id: f.nextID, raw: raw, at: time.Now()})
	f.changedLocked()
	return f.nextID
}

func (f *fakeAPI) answeredCallbacks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.answered...)
}

// update returns the JSON of a message as an update with a fresh id (for webhook posts).
func (f *fakeAPI) update(m tgbotapi.Message) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	if m.Date == 0 {
		m.Date = int(time.Now().Unix())
	}
	raw, err := json.Marshal(tgbotapi.Update{UpdateID: int(f.nextID), Message: &m})
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// addFile stores a file the bot may download and returns its file_id.
func (f *fakeAPI) addFile(uniqueID string, data []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.files)
	id := fmt.Sprintf("F%d-%s", n, uniqueID)
	f.files[id] = fakeFile{uniqueID: uniqueID, path: fmt.Sprintf("photos/file_%d.jpg", n), data: data, size: len(data)}
	return id
}

// alias gives an existing file a second file_id, as a forward does.
func (f *fakeAPI) alias(fileID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, ok := f.files[fileID]
	if !ok {
		f.t.Fatalf("alias of unknown file %s", fileID)
	}
	id := fmt.Sprintf("F%d-fwd-%s", len(f.files), ff.uniqueID)
	f.files[id] = ff
	return id
}

func (f *fakeAPI) setMember(user int64, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members[user] = status
}

// flood makes each chat's first n calls of method answer 429 retry_after=floodRetry.
func (f *fakeAPI) flood(method string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.floodPlan[method] = n
}

// move turns group chat from into supergroup to: from then refuses messages, naming to.
func (f *fakeAPI) move(from, to int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moved[from] = to
}

func (f *fakeAPI) refusals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.refused...)
}

func (f *fakeAPI) setConflicts(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conflicts = n
}

// hold makes matching sends wait until release (or until the bot gives up on them).
func (f *fakeAPI) hold(match func(method string, chat int64) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdSend = match
}

func (f *fakeAPI) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.released:
	default:
		close(f.released)
	}
}

// sentTo returns what the bot sent to chat.
func (f *fakeAPI) sentTo(chat int64) []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sentToLocked(chat)
}

func (f *fakeAPI) sentToLocked(chat int64) []sent {
	var out []sent
	for _, s := range f.sends {
		if s.Chat == chat {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeAPI) downloadCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.downloads {
		n += c
	}
	return n
}

func (f *fakeAPI) countCalls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

func (f *fakeAPI) webhook() (url, secret, allowed string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hookURL, f.hookSec, f.hookAllow
}

// --- the protocol ---

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ok(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": result})
}

func fail(w http.ResponseWriter, code int, desc string, params map[string]any) {
	body := map[string]any{"ok": false, "error_code": code, "description": desc}
	if params != nil {
		body["parameters"] = params
	}
	writeJSON(w, code, body)
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if rest, found := strings.CutPrefix(path, "/file/bot"); found {
		token, file, _ := strings.Cut(rest, "/")
		if token != testToken {
			f.mu.Lock()
			f.badToken++
			f.mu.Unlock()
			http.NotFound(w, r)
			return
		}
		f.serveFile(w, file)
		return
	}
	rest, found := strings.CutPrefix(path, "/bot")
	token, method, _ := strings.Cut(rest, "/")
	if !found || token != testToken {
		f.mu.Lock()
		f.badToken++
		f.mu.Unlock()
		fail(w, http.StatusUnauthorized, "Unauthorized", nil)
		return
	}
	form, files, err := params(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "Bad Request: "+err.Error(), nil)
		return
	}
	chat, _ := strconv.ParseInt(form["chat_id"], 10, 64)

	f.mu.Lock()
	f.calls = append(f.calls, method)
	if last, ok := f.floodAt[chat]; ok && chat != 0 && time.Since(last) < floodRetry*time.Second {
		f.tooSoon = append(f.tooSoon, fmt.Sprintf("%s to chat %d %v after its 429", method, chat, time.Since(last)))
	}
	key := fmt.Sprintf("%s/%d", method, chat)
	if f.floodGiven[key] < f.floodPlan[method] {
		f.floodGiven[key]++
		f.floodSeen++
		if chat != 0 {
			f.floodAt[chat] = time.Now()
		}
		f.changedLocked()
		f.mu.Unlock()
		fail(w, http.StatusTooManyRequests, "Too Many Requests: retry after "+strconv.Itoa(floodRetry), map[string]any{"retry_after": floodRetry})
		return
	}
	hold := f.holdSend != nil && f.holdSend(method, chat)
	movedTo, moved := f.moved[chat]
	moved = moved && strings.HasPrefix(method, "send")
	if moved {
		f.refused = append(f.refused, fmt.Sprintf("%s/%d", method, chat))
	}
	f.changedLocked()
	f.mu.Unlock()
	if moved {
		fail(w, http.StatusBadRequest, "Bad Request: group chat was upgraded to a supergroup chat", map[string]any{"migrate_to_chat_id": movedTo})
		return
	}

	if hold {
		select {
		case <-f.released:
		case <-r.Context().Done():
			return // the bot gave up: nothing was sent
		}
	}

	switch method {
	case "getMe":
		ok(w, tgbotapi.User{ID: botID, IsBot: true, FirstName: "CropShield", UserName: botName})
	case "deleteWebhook":
		f.mu.Lock()
		f.hookURL, f.hookSec = "", ""
		f.mu.Unlock()
		ok(w, true)
	case "setWebhook":
		f.mu.Lock()
		f.hookURL, f.hookSec, f.hookAllow = form["url"], form["secret_token"], form["allowed_updates"]
		f.changedLocked()
		f.mu.Unlock()
		ok(w, true)
	case "getUpdates":
		f.getUpdates(w, r, form)
	case "getFile":
		f.mu.Lock()
		ff, found := f.files[form["file_id"]]
		f.mu.Unlock()
		switch {
		case !found:
			fail(w, http.StatusBadRequest, "Bad Request: invalid file_id", nil)
		case ff.size > 20<<20:
			fail(w, http.StatusBadRequest, "Bad Request: file is too big", nil)
		default:
			ok(w, tgbotapi.File{FileID: form["file_id"], FileUniqueID: ff.uniqueID, FileSize: ff.size, FilePath: ff.path})
		}
	case "getChatMember":
		user, _ := strconv.ParseInt(form["user_id"], 10, 64)
		f.mu.Lock()
		status := f.members[user]
		f.mu.Unlock()
		if status == "" {
			status = "member"
		}
		ok(w, tgbotapi.ChatMember{User: &tgbotapi.User{ID: user}, Status: status})
	case "sendChatAction":
		if form["action"] != "upload_photo" {
			fail(w, http.StatusBadRequest, "Bad Request: wrong action", nil)
			return
		}
		f.mu.Lock()
		f.actions = append(f.actions, chat)
		f.changedLocked()
		f.mu.Unlock()
		ok(w, true)
	case "answerCallbackQuery":
		if form["callback_query_id"] == "" {
			fail(w, http.StatusBadRequest, "Bad Request: query id is empty", nil)
			return
		}
		f.mu.Lock()
		f.answered = append(f.answered, form["callback_query_id"])
		f.changedLocked()
		f.mu.Unlock()
		ok(w, true)
	case "sendMessage", "sendPhoto", "sendMediaGroup":
		f.send(w, method, chat, form, files)
	default:
		fail(w, http.StatusNotFound, "Not Found", nil)
	}
}

// params reads a form or multipart request: the fields, and the uploaded files by field name.
func params(r *http.Request) (map[string]string, map[string][]byte, error) {
	out, files := map[string]string{}, map[string][]byte{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		if err := r.ParseMultipartForm(64 << 20); err != nil {
			return nil, nil, err
		}
		for k, v := range r.MultipartForm.Value {
			out[k] = v[0]
		}
		for k, hs := range r.MultipartForm.File {
			b, err := readPart(hs[0])
			if err != nil {
				return nil, nil, err
			}
			files[k] = b
		}
		return out, files, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, nil, err
	}
	for k, v := range r.PostForm {
		out[k] = v[0]
	}
	return out, files, nil
}

func readPart(h *multipart.FileHeader) ([]byte, error) {
	f, err := h.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func (f *fakeAPI) getUpdates(w http.ResponseWriter, r *http.Request, form map[string]string) {
	offset, _ := strconv.ParseInt(form["offset"], 10, 64)
	timeout, _ := strconv.Atoi(form["timeout"])
	deadline := time.NewTimer(time.Duration(timeout) * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		if f.hookURL != "" {
			f.mu.Unlock()
			fail(w, http.StatusConflict, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first", nil)
			return
		}
		if f.conflicts > 0 {
			f.conflicts--
			f.mu.Unlock()
			fail(w, http.StatusConflict, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running", nil)
			return
		}
		// An offset confirms every update before it, for good.
		if offset > 0 {
			kept := f.queue[:0]
			for _, q := range f.queue {
				if q.id >= offset {
					kept = append(kept, q)
				}
			}
			f.queue = kept
		}
		if len(f.queue) > 0 || timeout == 0 || f.answerAtOnce {
			out := make([]json.RawMessage, 0, len(f.queue))
			now := time.Now()
			for _, q := range f.queue {
				var u tgbotapi.Update
				_ = json.Unmarshal(q.raw, &u)
				if u.CallbackQuery != nil && !strings.Contains(form["allowed_updates"], "callback_query") {
					continue // as Telegram: only the update kinds asked for
				}
				out = append(out, q.raw)
				if m := u.Message; m != nil {
					k := fmt.Sprintf("%d/%d", m.Chat.ID, m.MessageID)
					if _, seen := f.deliveredAt[k]; !seen {
						f.deliveredAt[k] = now
					}
				}
			}
			f.changedLocked()
			f.mu.Unlock()
			ok(w, out)
			return
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			ok(w, []json.RawMessage{})
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeAPI) serveFile(w http.ResponseWriter, path string) {
	f.mu.Lock()
	var data []byte
	found := false
	for _, ff := range f.files {
		if ff.path == path {
			data, found = ff.data, true
			break
		}
	}
	if found {
		f.downloads[path]++
		f.changedLocked()
	}
	f.mu.Unlock()
	if !found {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(data)
}

func (f *fakeAPI) send(w http.ResponseWriter, method string, chat int64, form map[string]string, files map[string][]byte) {
	s := sent{Method: method, Chat: chat, At: time.Now(), AllowNo: form["allow_sending_without_reply"] == "true"}
	s.ReplyTo, _ = strconv.Atoi(form["reply_to_message_id"])
	switch method {
	case "sendMessage":
		s.Text = form["text"]
		if rm := form["reply_markup"]; rm != "" {
			var kb tgbotapi.InlineKeyboardMarkup
			if err := json.Unmarshal([]byte(rm), &kb); err != nil {
				fail(w, http.StatusBadRequest, "Bad Request: can't parse reply keyboard markup JSON object", nil)
				return
			}
			for _, row := range kb.InlineKeyboard {
				for _, b := range row {
					if b.CallbackData == nil || len(*b.CallbackData) > 64 || b.Text == "" {
						fail(w, http.StatusBadRequest, "Bad Request: BUTTON_DATA_INVALID", nil)
						return
					}
				}
				s.Buttons = append(s.Buttons, row...)
			}
		}
	case "sendPhoto":
		s.Text = form["caption"]
		s.Photos = [][]byte{files["photo"]}
	case "sendMediaGroup":
		var media []struct {
			Type, Media, Caption string
		}
		if err := json.Unmarshal([]byte(form["media"]), &media); err != nil {
			fail(w, http.StatusBadRequest, "Bad Request: can't parse media JSON", nil)
			return
		}
		if len(media) < 2 || len(media) > 10 {
			fail(w, http.StatusBadRequest, "Bad Request: wrong number of media", nil)
			return
		}
		for _, m := range media {
			name, attached := strings.CutPrefix(m.Media, "attach://")
			if m.Type != "photo" || !attached || files[name] == nil {
				fail(w, http.StatusBadRequest, "Bad Request: wrong media "+m.Media, nil)
				return
			}
			s.Photos = append(s.Photos, files[name])
		}
		s.Text = media[0].Caption
	}
	if len([]rune(s.Text)) > 4096 || (method != "sendMessage" && len([]rune(s.Text)) > 1024) {
		fail(w, http.StatusBadRequest, "Bad Request: message is too long", nil)
		return
	}
	if method == "sendMessage" && s.Text == "" {
		fail(w, http.StatusBadRequest, "Bad Request: message text is empty", nil)
		return
	}
	f.mu.Lock()
	f.sends = append(f.sends, s)
	var msgs []tgbotapi.Message
	for range max(1, len(s.Photos)) {
		f.nextMsg++
		msgs = append(msgs, tgbotapi.Message{MessageID: f.nextMsg, Date: int(time.Now().Unix()),
			From: &tgbotapi.User{ID: botID, IsBot: true, UserName: botName}, Chat: &tgbotapi.Chat{ID: chat}})
	}
	f.changedLocked()
	f.mu.Unlock()
	if method == "sendMediaGroup" {
		ok(w, msgs)
		return
	}
	ok(w, msgs[0])
}
