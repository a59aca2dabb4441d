package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// The bot the fake Bot API server plays. The token only has to look like one.
const (
	fakeToken   = "7309999999:KILLTEST-fake-token-not-a-secret_x"
	fakeBotID   = 7309999999
	fakeBotName = "CropShieldKillTestBot"
)

// sendRec is one message the bot sent, as the fake Bot API recorded it.
type sendRec struct {
	Method  string // sendMessage, sendPhoto or sendMediaGroup
	Chat    int64
	ReplyTo int
	Text    string // the text, or the (first) caption
	Images  int
	Buttons bool
	At      time.Time
}

func (s sendRec) image() bool { return s.Images > 0 }

// queued is an update released to the bot and not yet confirmed by a later offset.
type queued struct {
	id  int64
	raw []byte
}

// fakeBot is a Telegram Bot API server on 127.0.0.1 with what the adapter calls: getMe,
// deleteWebhook, getUpdates (long polling; an update is gone once a later offset confirms it),
// getFile and file downloads, sendMessage, sendPhoto, sendMediaGroup, sendChatAction,
// answerCallbackQuery and getChatMember. It records every message the bot sends. In webhook mode
// (hook set) it delivers the updates by POST to the replicas' webhooks instead (webhook.go):
// setWebhook is recorded, getUpdates answers 409 as Telegram does while a webhook is set.
type fakeBot struct {
	srv *http.Server
	url string

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	queue     []queued
	nextID    int64
	nextMsg   int
	files     map[string]string // file_id → file_path
	data      map[string][]byte // file_path → bytes
	sends     []sendRec
	deliver   map[int64]int // update id → how many times getUpdates handed it out
	downloads int
	unknown   map[string]int // methods the fake does not know
	cutOff    int            // sends whose request broke off (the bot was killed while sending)
	lastSend  time.Time

	hook        *hookDeliverer // webhook mode; nil: getUpdates
	hookURL     string         // the last setWebhook's url and secret_token
	hookSecret  string
	hookSecrets map[string]bool // every secret_token set
	hookSet     chan struct{}   // closed by the first setWebhook
	hookDeletes int             // deleteWebhook calls
}

func startFakeBot() (*fakeBot, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake Bot API: %w", err)
	}
	f := &fakeBot{changed: make(chan struct{}), nextID: 1000, nextMsg: 1_000_000,
		files: map[string]string{}, data: map[string][]byte{}, deliver: map[int64]int{}, unknown: map[string]int{},
		hookSecrets: map[string]bool{}, hookSet: make(chan struct{})}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 10 * time.Second}
	f.url = "http://" + ln.Addr().String()
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

func (f *fakeBot) close() {
	if f.hook != nil {
		f.hook.stop()
	}
	_ = f.srv.Close()
}

func (f *fakeBot) changedLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// addFile makes data downloadable as file_id id.
func (f *fakeBot) addFile(id string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := "photos/" + id + ".jpg"
	f.files[id] = path
	f.data[path] = data
}

// release queues messages as updates (an album's parts together): for getUpdates, or for the
// webhook deliveries. It returns their update ids.
func (f *fakeBot) release(msgs []tgbotapi.Message) ([]int64, error) {
	f.mu.Lock()
	var out []queued
	for _, m := range msgs {
		f.nextID++
		m.Date = int(time.Now().Unix())
		raw, err := json.Marshal(tgbotapi.Update{UpdateID: int(f.nextID), Message: &m})
		if err != nil {
			f.mu.Unlock()
			return nil, fmt.Errorf("update: %w", err)
		}
		out = append(out, queued{id: f.nextID, raw: raw})
	}
	var ids []int64
	for _, q := range out {
		ids = append(ids, q.id)
	}
	if f.hook == nil {
		f.queue = append(f.queue, out...)
	}
	f.changedLocked()
	f.mu.Unlock()
	if f.hook != nil {
		for i, q := range out {
			f.hook.enqueue(msgs[i].Chat.ID, q)
		}
	}
	return ids, nil
}

// state is what the run checks while waiting: updates not yet confirmed, and when the bot last
// sent something.
func (f *fakeBot) state() (unconfirmed int, lastSend time.Time, changed <-chan struct{}) {
	pending := 0
	if f.hook != nil {
		pending = f.hook.pendingCount()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queue) + pending, f.lastSend, f.changed
}

func (f *fakeBot) sent() []sendRec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sendRec(nil), f.sends...)
}

// stats: the sends that broke off mid-request, and the methods the fake does not know.
func (f *fakeBot) stats() (cutOff int, unknown []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for m, n := range f.unknown {
		unknown = append(unknown, fmt.Sprintf("%s ×%d", m, n))
	}
	return f.cutOff, unknown
}

// redelivered counts the updates handed out more than once: by getUpdates (after a kill), or
// posted to a webhook again after a failure.
func (f *fakeBot) redelivered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.deliver {
		if c > 1 {
			n++
		}
	}
	return n
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func ok(w http.ResponseWriter, result any) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "result": result})
}

func fail(w http.ResponseWriter, code int, desc string) {
	writeJSON(w, code, map[string]any{"ok": false, "error_code": code, "description": desc})
}

func (f *fakeBot) serve(w http.ResponseWriter, r *http.Request) {
	if rest, found := strings.CutPrefix(r.URL.Path, "/file/bot"); found {
		token, path, _ := strings.Cut(rest, "/")
		f.mu.Lock()
		data, known := f.data[path]
		if known && token == fakeToken {
			f.downloads++
		}
		f.mu.Unlock()
		if !known || token != fakeToken {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = w.Write(data)
		return
	}
	rest, found := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, _ := strings.Cut(rest, "/")
	if !found || token != fakeToken {
		fail(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	form, files, err := params(r)
	if err != nil {
		if strings.HasPrefix(method, "send") {
			f.mu.Lock()
			f.cutOff++ // the bot died while sending it: nothing was sent
			f.mu.Unlock()
		}
		fail(w, http.StatusBadRequest, "Bad Request: "+err.Error())
		return
	}
	chat, _ := strconv.ParseInt(form["chat_id"], 10, 64)
	switch method {
	case "getMe":
		ok(w, tgbotapi.User{ID: fakeBotID, IsBot: true, FirstName: "CropShield", UserName: fakeBotName})
	case "sendChatAction", "answerCallbackQuery":
		ok(w, true)
	case "deleteWebhook":
		f.mu.Lock()
		f.hookDeletes++
		f.hookURL, f.hookSecret = "", ""
		f.mu.Unlock()
		ok(w, true)
	case "setWebhook":
		f.mu.Lock()
		f.hookURL, f.hookSecret = form["url"], form["secret_token"]
		f.hookSecrets[f.hookSecret] = true
		select {
		case <-f.hookSet:
		default:
			close(f.hookSet)
		}
		f.changedLocked()
		f.mu.Unlock()
		ok(w, true)
	case "getChatMember":
		user, _ := strconv.ParseInt(form["user_id"], 10, 64)
		ok(w, tgbotapi.ChatMember{User: &tgbotapi.User{ID: user}, Status: "member"})
	case "getUpdates":
		if f.hook != nil {
			fail(w, http.StatusConflict, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
			return
		}
		f.getUpdates(w, r, form)
	case "getFile":
		f.mu.Lock()
		path, known := f.files[form["file_id"]]
		size := len(f.data[path])
		f.mu.Unlock()
		if !known {
			fail(w, http.StatusBadRequest, "Bad Request: invalid file_id")
			return
		}
		ok(w, tgbotapi.File{FileID: form["file_id"], FileUniqueID: "u" + form["file_id"], FileSize: size, FilePath: path})
	case "sendMessage", "sendPhoto", "sendMediaGroup":
		f.send(w, method, chat, form, files)
	default:
		f.mu.Lock()
		f.unknown[method]++
		f.mu.Unlock()
		fail(w, http.StatusNotFound, "Not Found: method "+method)
	}
}

// params reads a form or multipart request: its fields, and its files by field name.
func params(r *http.Request) (map[string]string, map[string][]byte, error) {
	out, files := map[string]string{}, map[string][]byte{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		if err := r.ParseMultipartForm(32 << 20); err != nil {
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

func (f *fakeBot) getUpdates(w http.ResponseWriter, r *http.Request, form map[string]string) {
	offset, _ := strconv.ParseInt(form["offset"], 10, 64)
	timeout, _ := strconv.Atoi(form["timeout"])
	limit, _ := strconv.Atoi(form["limit"])
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	deadline := time.NewTimer(time.Duration(timeout) * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		if offset > 0 { // an offset confirms every update before it, for good
			kept := f.queue[:0]
			for _, q := range f.queue {
				if q.id >= offset {
					kept = append(kept, q)
				}
			}
			if len(kept) != len(f.queue) {
				f.queue = kept
				f.changedLocked()
			}
		}
		if len(f.queue) > 0 || timeout == 0 {
			out := make([]json.RawMessage, 0, min(limit, len(f.queue)))
			for _, q := range f.queue[:min(limit, len(f.queue))] {
				out = append(out, q.raw)
				f.deliver[q.id]++
			}
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

func (f *fakeBot) send(w http.ResponseWriter, method string, chat int64, form map[string]string, files map[string][]byte) {
	s := sendRec{Method: method, Chat: chat, At: time.Now(), Buttons: form["reply_markup"] != ""}
	s.ReplyTo, _ = strconv.Atoi(form["reply_to_message_id"])
	switch method {
	case "sendMessage":
		s.Text = form["text"]
		if s.Text == "" {
			fail(w, http.StatusBadRequest, "Bad Request: message text is empty")
			return
		}
	case "sendPhoto":
		if len(files["photo"]) == 0 {
			fail(w, http.StatusBadRequest, "Bad Request: there is no photo in the request")
			return
		}
		s.Text, s.Images = form["caption"], 1
	case "sendMediaGroup":
		var media []struct{ Type, Media, Caption string }
		if err := json.Unmarshal([]byte(form["media"]), &media); err != nil || len(media) < 2 || len(media) > 10 {
			fail(w, http.StatusBadRequest, "Bad Request: wrong media")
			return
		}
		s.Text, s.Images = media[0].Caption, len(media)
	}
	if chat == 0 {
		fail(w, http.StatusBadRequest, "Bad Request: chat not found")
		return
	}
	f.mu.Lock()
	f.sends = append(f.sends, s)
	f.lastSend = s.At
	var msgs []tgbotapi.Message
	for range max(1, s.Images) {
		f.nextMsg++
		msgs = append(msgs, tgbotapi.Message{MessageID: f.nextMsg, Date: int(time.Now().Unix()),
			From: &tgbotapi.User{ID: fakeBotID, IsBot: true, UserName: fakeBotName}, Chat: &tgbotapi.Chat{ID: chat}})
	}
	f.changedLocked()
	f.mu.Unlock()
	if method == "sendMediaGroup" {
		ok(w, msgs)
		return
	}
	ok(w, msgs[0])
}

// waitChange waits for the next change of the fake's state, or d.
func waitChange(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// contentID is a photo's stand-in for Telegram's file_unique_id: the same bytes, the same id.
func contentID(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:9])
}
