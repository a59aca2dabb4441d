package webchat

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cropshield/cropshield/bot"
)

// threadLen is how many of a conversation's last messages a returning visitor's page shows when
// the chat is not in memory (after a restart).
const threadLen = 50

// english is the page's wording without Options.Pages (tests of the adapter alone).
var english = bot.PageText{
	Tagline: "Plant doctor · send a photo of one sick leaf", Placeholder: "Send a leaf photo or /help",
	Send: "Send", Working: "CropShield is looking at your photo…",
	PhotoAlt: "Your photo", HeatmapAlt: "Heat-map of your photo: red shows where CropShield looked",
	Offline:    "Could not reach CropShield. Check the connection and try again.",
	NamePrompt: "What should we call you? (optional)", NameSave: "Save", NameSkip: "No thanks",
}

// pageView is what the page template shows.
type pageView struct {
	Lang    string
	Text    bot.PageText
	AskName bool // the visitor has given no name: the page may ask once
}

// chatPage asks the bot for the chat's page; without Options.Pages, or when the store cannot be
// read, the page is English and has no thread (logged).
func (a *Adapter) chatPage(ctx context.Context, r *http.Request, id string, limit int) bot.ChatPage {
	page := bot.ChatPage{Lang: "en", Text: english}
	page.Text.Attach = fmt.Sprintf("Attach a photo (max %d MB)", a.opts.MaxPhotoBytes>>20)
	if a.opts.Pages == nil {
		return page
	}
	p, err := a.opts.Pages.ChatPage(ctx, bot.ChatRef{Platform: bot.WebChat, ID: id, Kind: bot.Private},
		bot.Sender{ID: id, LangHint: r.Header.Get("Accept-Language")}, limit)
	if err != nil {
		a.log.Error("web chat page: cannot read the chat", "chat", id, "err", err)
		return page
	}
	return p
}

// index renders the page in the chat's language. A returning visitor whose chat is not in memory
// (the server restarted, or the chat was dropped) gets the conversation's last messages from the
// store in the outbox, so that the page shows them.
func (a *Adapter) index(w http.ResponseWriter, r *http.Request) {
	id, _ := a.chatID(w, r, true)
	a.mu.Lock()
	_, known := a.chats[id]
	a.mu.Unlock()
	limit := threadLen
	if known {
		limit = 0
	}
	page := a.chatPage(r.Context(), r, id, limit)
	if !known && len(page.Thread) > 0 {
		a.restore(id, page.Thread)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'")
	view := pageView{Lang: page.Lang, Text: page.Text, AskName: a.opts.Pages != nil && page.Name == ""}
	if err := a.page.Execute(w, view); err != nil {
		a.log.Error("web chat page", "err", err)
	}
}

// restore puts a conversation's stored messages in a chat's empty outbox; a chat that got
// messages meanwhile is left as it is.
func (a *Adapter) restore(id string, thread []bot.ThreadItem) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.chats[id]; ok {
		return
	}
	c := a.chatLocked(id)
	c.overlays = map[uint64]string{}
	for _, it := range thread {
		e := Entry{From: "you", Kind: it.Kind, Text: it.Text, msgID: it.MessageID}
		if it.Outbound {
			e.From = "bot"
		}
		e = a.appendLocked(c, e)
		last := &c.entries[len(c.entries)-1]
		last.Time = it.Time
		if it.Overlay != "" {
			c.overlays[e.Seq] = it.Overlay
			last.ImageURL = "/api/image/" + strconv.FormatUint(e.Seq, 10)
		}
	}
}

// resume: a page that polls for entries after seq `after` of a chat that is not in memory was
// open while the server restarted (or dropped the chat). The chat's new entries then continue
// after `after`, so that the page shows them (numbered from 1 again they stayed below it).
func (a *Adapter) resume(id string, after uint64) {
	if after == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.chats[id]; !ok {
		a.chatLocked(id).next = after
	}
}

// storedOverlay is the overlay of a restored entry, nil if it has none or it cannot be read.
func (a *Adapter) storedOverlay(ctx context.Context, id string, seq uint64) []byte {
	a.mu.Lock()
	var hash string
	if c, ok := a.chats[id]; ok {
		hash = c.overlays[seq]
	}
	a.mu.Unlock()
	if hash == "" || a.opts.Pages == nil {
		return nil
	}
	img, err := a.opts.Pages.Overlay(ctx, hash)
	if err != nil {
		a.log.Debug("web chat: stored overlay", "chat", id, "err", err)
		return nil
	}
	return img
}

// pageJSON gives the page its texts in the chat's language again (after /language).
func (a *Adapter) pageJSON(w http.ResponseWriter, r *http.Request) {
	id, _ := a.chatID(w, r, true)
	page := a.chatPage(r.Context(), r, id, 0)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(map[string]any{"lang": page.Lang, "text": page.Text, "name": page.Name}); err != nil {
		a.log.Debug("web chat: write page", "err", err)
	}
}

// setName keeps the name the visitor gave (the "name" form field).
func (a *Adapter) setName(w http.ResponseWriter, r *http.Request) {
	id, ok := a.chatID(w, r, false)
	if !ok || a.opts.Pages == nil {
		http.Error(w, "no chat", http.StatusBadRequest)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	name := r.PostFormValue("name")
	err := a.opts.Pages.SetName(r.Context(), bot.ChatRef{Platform: bot.WebChat, ID: id, Kind: bot.Private}, bot.Sender{ID: id}, name)
	switch {
	case errors.Is(err, bot.ErrBadName):
		http.Error(w, "not a name", http.StatusBadRequest)
	case err != nil:
		a.log.Error("web chat: cannot keep the name", "chat", id, "err", err)
		http.Error(w, "could not keep the name", http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

//go:embed assets/favicon.svg
var favicon []byte

// serveFavicon is the page's icon (an SVG leaf), also asked for as /favicon.ico.
func (a *Adapter) serveFavicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(favicon)
}
