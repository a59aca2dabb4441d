package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cropshield/cropshield/store"
)

// A channel with a page of its own (the web chat) shows the page's texts in the chat's language
// and, for a returning visitor, the conversation as the store has it: the page's own memory is
// gone after a restart. It asks through Pages; *Handler implements it.

// PageText is the page's own wording in one language (the locales' web.* messages).
type PageText struct {
	Tagline     string // under the product's name
	Placeholder string // in the empty text field
	Send        string // the send button
	Working     string // while a photo is analysed
	Attach      string // the attach button's title
	PhotoAlt    string // the farmer's photo
	HeatmapAlt  string // the overlay of a diagnosis
	Offline     string // the page cannot reach the server
	NamePrompt  string // the one-time, optional question for the visitor's name
	NameSave    string
	NameSkip    string
}

// ChatPage is what a page shows around a conversation.
type ChatPage struct {
	Lang string // the language the chat is answered in (a locales code, a BCP 47 tag)
	Text PageText
	// Name is the name the person gave (Pages.SetName, or their platform's), "" if none.
	Name string
	// Thread is the conversation's last messages, oldest first.
	Thread []ThreadItem
}

// ThreadItem is one message of a conversation as a page shows it again.
type ThreadItem struct {
	Seq      uint64 // the message's number in the conversation's log
	Outbound bool   // from the bot or the support staff
	// Kind is an outbound message's reply kind (Reply.Kind), or "photo" or "text" for the user's.
	Kind string
	Text string
	// Overlay: the reply showed the overlay of this photo (Pages.Overlay gives it), "" if none.
	Overlay string
	Time    time.Time
	// MessageID is a user's message's id (the page's client id, for the web chat), "" for the bot's.
	MessageID string
}

// Pages is what a channel's page needs from the bot; *Handler implements it.
type Pages interface {
	// ChatPage is the page of sender's chat in chat's language, with the last limit messages.
	ChatPage(ctx context.Context, chat ChatRef, sender Sender, limit int) (ChatPage, error)
	// Overlay is the overlay of a photo the current model analysed (store.ErrNotFound if none).
	Overlay(ctx context.Context, photoHash string) ([]byte, error)
	// SetName keeps the name a person gave for themselves (the web chat asks once, optionally):
	// the bot greets them with it and the support staff see it. ErrBadName if it is empty or
	// not a name.
	SetName(ctx context.Context, chat ChatRef, sender Sender, name string) error
}

// legacyWebName is the name the web chat once gave every visitor: no name a person gave.
const legacyWebName = "Web visitor"

// givenName is a stored user name, "" for the web chat's old made-up one.
func givenName(p Platform, name string) string {
	if p == WebChat && name == legacyWebName {
		return ""
	}
	return name
}

// ErrBadName: a name given with Pages.SetName is empty, too long or has control characters.
var ErrBadName = errors.New("bot: not a name")

// MaxNameRunes is the longest name SetName keeps.
const MaxNameRunes = 64

var _ Pages = (*Handler)(nil)

// PageStore is what the pages need from the store beyond Store; *store.Store implements it.
type PageStore interface {
	TouchUser(ctx context.Context, u store.User, seen time.Time) (store.User, error)
}

// ChatPage implements Pages.
func (h *Handler) ChatPage(ctx context.Context, chat ChatRef, sender Sender, limit int) (ChatPage, error) {
	p := string(chat.Platform)
	c, err := h.store.GetChat(ctx, p, chat.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return ChatPage{}, fmt.Errorf("read chat: %w", err)
	}
	var u store.User
	if sender.ID != "" {
		if u, err = h.store.GetUser(ctx, p, sender.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return ChatPage{}, fmt.Errorf("read user: %w", err)
		}
	}
	lang := h.resolveLanguage(Message{Chat: chat, Sender: sender}, c, u)
	page := ChatPage{Lang: lang, Text: h.pageText(lang), Name: givenName(chat.Platform, u.Name)}
	if limit <= 0 {
		return page, nil
	}
	recs, err := h.store.RecentMessages(ctx, p, chat.ID, limit)
	if err != nil {
		return ChatPage{}, fmt.Errorf("read conversation: %w", err)
	}
	for _, r := range recs {
		it := ThreadItem{Seq: r.Seq, Outbound: r.Direction == store.Outbound, Kind: r.Kind, Text: r.Text, Time: r.Time}
		if !it.Outbound {
			it.MessageID = r.MessageID
		}
		switch {
		case it.Outbound && r.Error != "":
			continue // the person never saw it
		case it.Outbound:
			it.Overlay = r.PhotoHash
		case r.PhotoHash != "" || len(r.Album) > 0:
			it.Kind = "photo"
		default:
			it.Kind = "text"
		}
		page.Thread = append(page.Thread, it)
	}
	return page, nil
}

func (h *Handler) pageText(lang string) PageText {
	t := func(key string) string { return h.loc.T(lang, key) }
	return PageText{
		Tagline: t("web.tagline"), Placeholder: t("web.placeholder"), Send: t("web.send"),
		Working: t("web.working"), Attach: h.loc.T(lang, "web.attach", "mb", strconv.FormatInt(h.cfg.MaxPhotoBytes>>20, 10)),
		PhotoAlt: t("web.photo_alt"), HeatmapAlt: t("web.heatmap_alt"), Offline: t("web.offline"),
		NamePrompt: t("web.name_prompt"), NameSave: t("web.name_save"), NameSkip: t("web.name_skip"),
	}
}

// Overlay implements Pages.
func (h *Handler) Overlay(ctx context.Context, photoHash string) ([]byte, error) {
	a, err := h.store.GetAnalysis(ctx, photoHash, h.model.Info().Version)
	if err != nil {
		return nil, err
	}
	if len(a.Overlay) == 0 {
		return nil, fmt.Errorf("photo %s: %w", photoHash, store.ErrNotFound)
	}
	return a.Overlay, nil
}

// SetName implements Pages.
func (h *Handler) SetName(ctx context.Context, chat ChatRef, sender Sender, name string) error {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" || len([]rune(name)) > MaxNameRunes || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return ErrBadName
	}
	if sender.ID == "" {
		return errors.New("bot: a name needs the sender's id")
	}
	_, err := h.store.TouchUser(ctx, store.User{Platform: string(chat.Platform), ID: sender.ID, Name: name}, h.cfg.Now())
	if err != nil {
		return fmt.Errorf("store name: %w", err)
	}
	return nil
}
