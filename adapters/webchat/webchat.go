// Package webchat is a browser channel for CropShield: a local web page where a person uploads a
// leaf photo or types a command and sees the bot's reply exactly as a farmer would (text and
// overlay image). It implements bot.Adapter like the Telegram and WhatsApp adapters, and is how
// `make run` shows the product on a machine without any bot token.
//
// Each browser gets a random chat cookie; the chat id stored in the conversation log is a hash of
// it, so the log never holds the secret that opens the chat. Replies wait in a bounded in-memory
// outbox per chat that the page polls, so that replies written later (by support staff) arrive
// too.
package webchat

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cropshield/cropshield/bot"
)

//go:embed assets
var assets embed.FS

// Options configure the adapter; zero fields take the defaults in parentheses.
type Options struct {
	// MaxPhotoBytes is the largest photo passed on; larger uploads are reported as too large
	// (20 MB). The handler enforces the same limit.
	MaxPhotoBytes int64
	// MaxChats bounds the chats kept in memory; the least recently active is dropped (1000).
	MaxChats int
	// MaxEntries bounds each chat's outbox (100).
	MaxEntries int
	// SecureCookie marks the chat cookie Secure (behind TLS).
	SecureCookie bool
	// Pages gives the page its texts in the chat's language and a returning visitor's
	// conversation from the store (nil: an English page without the stored conversation).
	Pages bot.Pages
	Now   func() time.Time
}

const cookieName = "cropshield_chat"

// maxRequestBytes caps a whole upload request; past the photo limit we only count bytes so that
// the user hears "too big" rather than a broken connection.
const maxRequestBytes = 64 << 20

// Adapter is the web chat channel.
type Adapter struct {
	opts Options
	log  *slog.Logger
	page *template.Template

	intake atomic.Pointer[bot.Intake] // set while Run runs
	msgSeq atomic.Uint64

	mu    sync.Mutex
	chats map[string]*chat
}

// chat is one browser's conversation as the page shows it.
type chat struct {
	// accepting is held by a post from showing the user's line to the intake's answer, so that
	// a chat's messages are taken in the order their lines show.
	accepting sync.Mutex
	entries   []Entry
	images    map[uint64][]byte
	next      uint64
	active    time.Time
	// overlays are the photo hashes of restored entries' overlays (Pages.Overlay), by Seq.
	overlays map[uint64]string
}

// Entry is one line of the chat as the page renders it.
type Entry struct {
	Seq      uint64    `json:"seq"`
	From     string    `json:"from"` // "you" or "bot"
	Kind     string    `json:"kind"` // the reply's kind, or "photo" / "text" for the user's
	Text     string    `json:"text"`
	ImageURL string    `json:"image_url,omitempty"`
	Time     time.Time `json:"time"`
	// Choices are the reply's buttons; the page posts a tapped one's Data as "choice".
	Choices []Choice `json:"choices,omitempty"`
	// msgID is the message a "you" entry shows: a message the page sends again (same client_id)
	// is not shown twice.
	msgID string
}

// Choice is a button under a bot's entry.
type Choice struct {
	Label string `json:"label"`
	Data  string `json:"data"`
}

// maxChoice bounds a posted choice's data (Telegram's callback_data limit, which the bot keeps).
const maxChoice = 64

var _ bot.Adapter = (*Adapter)(nil)

// New builds the adapter; mount it with Routes.
func New(log *slog.Logger, opts Options) (*Adapter, error) {
	if opts.MaxPhotoBytes <= 0 {
		opts.MaxPhotoBytes = 20 << 20
	}
	if opts.MaxChats <= 0 {
		opts.MaxChats = 1000
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	page, err := template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("webchat: parse page: %w", err)
	}
	return &Adapter{opts: opts, log: log, page: page, chats: map[string]*chat{}}, nil
}

// Platform is bot.WebChat.
func (a *Adapter) Platform() bot.Platform { return bot.WebChat }

// Run hands messages to the intake until ctx ends. Requests outside Run, and after the intake
// stopped, get 503 with the "busy, try again" text.
func (a *Adapter) Run(ctx context.Context, in *bot.Intake) error {
	// Stored before Open, so that nothing is refused once /healthz (which asks the intake) says
	// the channel is open; a message sent before Open returned gets 503 with the "busy, try
	// again" text.
	a.intake.Store(in)
	if _, err := in.Open(ctx, a); err != nil {
		a.intake.Store(nil)
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("webchat: %w", err)
	}
	a.log.Info("web chat accepting messages")
	<-ctx.Done()
	a.intake.Store(nil)
	in.Close(bot.WebChat)
	a.log.Info("web chat stopped accepting messages")
	return nil
}

// FetchPhoto fails: the web chat's photos come inline (Photo.Data), never by reference.
func (a *Adapter) FetchPhoto(context.Context, string, int64) ([]byte, error) {
	return nil, errors.New("webchat: photos are uploaded with the message, there is nothing to fetch")
}

// Routes registers the page, its assets and its API on mux.
func (a *Adapter) Routes(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "assets")
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("GET /favicon.ico", a.serveFavicon)
	mux.HandleFunc("GET /api/page", a.pageJSON)
	mux.HandleFunc("POST /api/name", a.setName)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("POST /api/send", a.send)
	mux.HandleFunc("GET /api/messages", a.messages)
	mux.HandleFunc("GET /api/image/{seq}", a.image)
}

// Send queues a reply in its chat's outbox.
func (a *Adapter) Send(ctx context.Context, r bot.Reply) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.Chat.Platform != bot.WebChat {
		return fmt.Errorf("webchat: reply for platform %q", r.Chat.Platform)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.chatLocked(r.Chat.ID)
	e := Entry{From: "bot", Kind: string(r.Kind), Text: r.FullText()}
	for _, ch := range r.Choices {
		e.Choices = append(e.Choices, Choice{Label: ch.Label, Data: ch.Data})
	}
	e = a.appendLocked(c, e)
	if r.Image != nil {
		c.images[e.Seq] = r.Image
		c.entries[len(c.entries)-1].ImageURL = "/api/image/" + strconv.FormatUint(e.Seq, 10)
	}
	return nil
}

// dropEntry removes an entry the user's message could not keep (it was not taken).
func (a *Adapter) dropEntry(id string, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.chats[id]; ok {
		c.entries = slices.DeleteFunc(c.entries, func(e Entry) bool { return e.Seq == seq })
	}
}

func (a *Adapter) chatLocked(id string) *chat {
	c, ok := a.chats[id]
	if !ok {
		if len(a.chats) >= a.opts.MaxChats {
			a.evictLocked()
		}
		c = &chat{images: map[uint64][]byte{}}
		a.chats[id] = c
	}
	c.active = a.opts.Now()
	return c
}

func (a *Adapter) evictLocked() {
	var oldest string
	var at time.Time
	for id, c := range a.chats {
		if oldest == "" || c.active.Before(at) {
			oldest, at = id, c.active
		}
	}
	delete(a.chats, oldest)
}

// shown returns the "you" entry of message id if the chat still shows it (the page sent the
// message again after a failed request). Called with a.mu held.
func (c *chat) shown(id string) (Entry, bool) {
	for _, e := range slices.Backward(c.entries) {
		if e.msgID == id {
			return e, true
		}
	}
	return Entry{}, false
}

func (a *Adapter) appendLocked(c *chat, e Entry) Entry {
	c.next++
	e.Seq, e.Time = c.next, a.opts.Now()
	c.entries = append(c.entries, e)
	if over := len(c.entries) - a.opts.MaxEntries; over > 0 {
		for _, old := range c.entries[:over] {
			delete(c.images, old.Seq)
		}
		c.entries = append([]Entry(nil), c.entries[over:]...)
	}
	return e
}

// chatID returns the browser's chat id, setting a new cookie if it has none.
func (a *Adapter) chatID(w http.ResponseWriter, r *http.Request, create bool) (string, bool) {
	if ck, err := r.Cookie(cookieName); err == nil && len(ck.Value) == 32 {
		if _, err := hex.DecodeString(ck.Value); err == nil {
			return hashID(ck.Value), true
		}
	}
	if !create {
		return "", false
	}
	var secret [16]byte
	_, _ = rand.Read(secret[:]) // never fails (crypto/rand panics rather than return an error)
	raw := hex.EncodeToString(secret[:])
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: raw, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: a.opts.SecureCookie, MaxAge: 30 * 24 * 3600})
	return hashID(raw), true
}

func hashID(secret string) string {
	sum := sha256.Sum256([]byte("cropshield-webchat:" + secret))
	return "web-" + hex.EncodeToString(sum[:8])
}

// send takes one message (a text field and/or a photo file), hands it to the intake and waits
// until it is answered. The replies are then in the outbox, and the response carries every entry
// after `after`. A full queue gets the "busy, try again" answer in the user's language, a
// stopped intake (shutdown) 503 with the same text.
func (a *Adapter) send(w http.ResponseWriter, r *http.Request) {
	in := a.intake.Load()
	if in == nil {
		http.Error(w, "the bot is not accepting messages right now", http.StatusServiceUnavailable)
		return
	}
	id, _ := a.chatID(w, r, true)
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	msg, label, err := a.readMessage(r, id)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "upload too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "bad upload: "+err.Error(), http.StatusBadRequest)
		return
	}
	if msg.Text == "" && msg.Photo == nil && msg.Choice == "" {
		http.Error(w, "empty message", http.StatusBadRequest)
		return
	}
	ctx := context.WithoutCancel(r.Context()) // a browser that goes away does not cancel its message
	kind, shown := "text", msg.Text
	switch {
	case msg.Photo != nil:
		kind = "photo"
	case msg.Choice != "":
		// A tapped button: the page shows its label as what the user said.
		kind, shown, msg.Text = "choice", label, ""
	}
	if !in.Accepting(bot.WebChat) {
		// Not open yet (Run is taking back the last run's messages) or closing: like the other
		// channels, nothing is taken before Open returned.
		http.Error(w, in.Busy(ctx, msg), http.StatusServiceUnavailable)
		return
	}
	// The user's line first: the reply may come before TryAccept returns.
	a.mu.Lock()
	c := a.chatLocked(id)
	a.mu.Unlock()
	c.accepting.Lock()
	a.mu.Lock()
	mine, again := c.shown(msg.ID)
	if !again {
		mine = a.appendLocked(c, Entry{From: "you", Kind: kind, Text: shown, msgID: msg.ID})
	}
	a.mu.Unlock()
	err = in.TryAccept(ctx, bot.WebChat, []bot.Message{msg}, 0)
	c.accepting.Unlock()
	if again {
		mine.Seq = 0 // not this request's to drop
	}
	switch {
	case errors.Is(err, bot.ErrBusy):
		a.mu.Lock()
		a.appendLocked(a.chatLocked(id), Entry{From: "bot", Kind: string(bot.KindError), Text: in.Busy(ctx, msg)})
		a.mu.Unlock()
	case errors.Is(err, bot.ErrStopped): // shutting down
		a.dropEntry(id, mine.Seq)
		http.Error(w, in.Busy(ctx, msg), http.StatusServiceUnavailable)
		return
	case err != nil:
		a.dropEntry(id, mine.Seq)
		a.log.Error("web chat message not stored", "msg", msg.ID, "err", err)
		http.Error(w, "the message could not be stored; try again", http.StatusInternalServerError)
		return
	}
	if err == nil {
		// The intake hands it to the handler, which answers through Send.
		if err := in.WaitHandled(r.Context(), bot.WebChat, id, msg.ID); err != nil {
			return // the browser went away; the message is answered all the same
		}
	}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	a.writeEntries(w, id, after)
}

// readMessage streams the multipart form: the "text" field and the "photo" file, or a tapped
// button's "choice" (its data) and "label". A photo over the limit is counted, not kept, and
// passed on with its size so the handler can say so.
func (a *Adapter) readMessage(r *http.Request, chatID string) (msg bot.Message, label string, err error) {
	msg = bot.Message{
		ID:   "w" + strconv.FormatUint(a.msgSeq.Add(1), 10) + "-" + strconv.FormatInt(a.opts.Now().UnixNano(), 36),
		Chat: bot.ChatRef{Platform: bot.WebChat, ID: chatID, Kind: bot.Private},
		// No name: the bot uses the one the visitor gave the page, if any (bot.Pages.SetName).
		Sender: bot.Sender{ID: chatID, LangHint: r.Header.Get("Accept-Language")},
		Time:   a.opts.Now(),
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return msg, "", fmt.Errorf("want multipart/form-data: %w", err)
	}
	field := func(part *multipart.Part, limit int64) (string, error) {
		b, err := io.ReadAll(io.LimitReader(part, limit))
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(strings.ToValidUTF8(string(b), "")), nil
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return msg, label, nil
		}
		if err != nil {
			return msg, "", err
		}
		switch part.FormName() {
		case "client_id": // the page's id of the message: a POST sent again is the same message
			id, err := field(part, 65) // one more than an id may have: a longer one is refused, not cut
			if err != nil {
				return msg, "", err
			}
			if validClientID(id) {
				msg.ID = "c-" + id
			}
		case "text":
			if msg.Text, err = field(part, 4096); err != nil {
				return msg, "", err
			}
		case "choice":
			if msg.Choice, err = field(part, maxChoice); err != nil {
				return msg, "", err
			}
		case "label":
			if label, err = field(part, 256); err != nil {
				return msg, "", err
			}
		case "photo":
			if part.FileName() == "" {
				continue
			}
			p, err := a.readPhoto(part)
			if err != nil {
				return msg, "", err
			}
			msg.Photo = p
		}
		_ = part.Close()
	}
}

func (a *Adapter) readPhoto(part *multipart.Part) (*bot.Photo, error) {
	data, err := io.ReadAll(io.LimitReader(part, a.opts.MaxPhotoBytes+1))
	if err != nil {
		return nil, err
	}
	size := int64(len(data))
	if size > a.opts.MaxPhotoBytes {
		rest, err := io.Copy(io.Discard, part)
		if err != nil {
			return nil, err
		}
		size += rest
		data = nil
	}
	// Over the limit there are no data: the handler refuses it by its size.
	return &bot.Photo{Size: size, MIME: part.Header.Get("Content-Type"), Data: data}, nil
}

func (a *Adapter) messages(w http.ResponseWriter, r *http.Request) {
	id, _ := a.chatID(w, r, true)
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	a.resume(id, after)
	a.writeEntries(w, id, after)
}

func (a *Adapter) writeEntries(w http.ResponseWriter, id string, after uint64) {
	a.mu.Lock()
	var out []Entry
	if c, ok := a.chats[id]; ok {
		c.active = a.opts.Now() // a page waiting for a staff reply is an active chat
		for _, e := range c.entries {
			if e.Seq > after {
				out = append(out, e)
			}
		}
	}
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(map[string]any{"entries": out}); err != nil {
		a.log.Debug("web chat: write entries", "err", err)
	}
}

// image serves an overlay, only to the browser whose chat it belongs to.
func (a *Adapter) image(w http.ResponseWriter, r *http.Request) {
	id, ok := a.chatID(w, r, false)
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if !ok || err != nil {
		http.NotFound(w, r)
		return
	}
	a.mu.Lock()
	var img []byte
	if c, ok := a.chats[id]; ok {
		img = c.images[seq]
	}
	a.mu.Unlock()
	if img == nil {
		img = a.storedOverlay(r.Context(), id, seq)
	}
	if img == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	_, _ = w.Write(img)
}

// VolatileOutbox: the outbox is in memory (bot.VolatileOutbox).
func (a *Adapter) VolatileOutbox() {}

func validClientID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
