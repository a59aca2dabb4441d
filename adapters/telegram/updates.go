package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/bot"
)

// parseUpdates decodes raw updates and returns the highest update id seen. An update that does
// not decode is reported and skipped (and so confirmed: what cannot be read now cannot be read
// later either).
func (a *Adapter) parseUpdates(raws []json.RawMessage) (all []update, maxID int64) {
	maxID = -1
	for _, raw := range raws {
		var id struct {
			UpdateID int64 `json:"update_id"`
		}
		if err := json.Unmarshal(raw, &id); err != nil {
			a.log.Error("telegram: cannot decode an update; skipping it", "err", err)
			continue
		}
		maxID = max(maxID, id.UpdateID)
		var u tgbotapi.Update
		if err := json.Unmarshal(raw, &u); err != nil {
			a.log.Error("telegram: cannot decode an update; skipping it", "update", id.UpdateID, "err", err)
			continue
		}
		if u.CallbackQuery != nil {
			all = append(all, update{id: id.UpdateID, msg: callbackMessage(u.CallbackQuery), cb: u.CallbackQuery})
			continue
		}
		all = append(all, update{id: id.UpdateID, msg: u.Message})
	}
	return all, maxID
}

// receive turns updates into the handler's messages: a tapped button (in groups too: the handler
// decides) and what wanted keeps. A group's move to a supergroup is recorded here, before the
// batch is accepted, so that the supergroup's next message finds the group's language; it never
// reaches the handler. An error (the move could not be recorded) means the batch must not be
// confirmed: Telegram delivers it again.
func (a *Adapter) receive(ctx context.Context, us []update) ([]bot.Message, error) {
	var out []bot.Message
	for _, u := range us {
		m := u.msg
		switch {
		case u.cb != nil && m != nil:
			// Unique per tap: a second tap of the same button is a new message, a redelivery of
			// the same tap is not.
			out = append(out, bot.Message{ID: callbackPrefix + u.cb.ID, Chat: chatRef(m.Chat), Sender: sender(m),
				Choice: u.cb.Data, Time: a.opts.Now()})
		case u.cb != nil || !a.wanted(m):
		case isMigration(m):
			from, to, _ := migration(m)
			at := a.opts.Now()
			if m.Date != 0 {
				at = time.Unix(int64(m.Date), 0)
			}
			if err := a.migrate(context.WithoutCancel(ctx), from, to, at); err != nil {
				return nil, err
			}
		default:
			msg := a.message(m)
			if m.MediaGroupID != "" && msg.Photo != nil {
				msg.AlbumID = m.MediaGroupID
				msg.Unaddressed = isGroup(m.Chat) && a.opts.GroupPhotos != GroupPhotosAll && !a.addressed(m)
			}
			out = append(out, msg)
		}
	}
	return out, nil
}

// callbackPrefix starts the message id of a tapped button: "cb" and the callback query's id.
const callbackPrefix = "cb"

// Prepare is called by the intake just before the handler gets a message: a tapped button's
// spinner is stopped, and in a group the sender of a /language or /crop (a group's choices only
// admins make) is asked about.
func (a *Adapter) Prepare(ctx context.Context, m *bot.Message) {
	if id, ok := strings.CutPrefix(m.ID, callbackPrefix); ok && id != "" && m.Choice != "" {
		// Best effort: after a restart the query may be too old to answer, and the tap is handled
		// all the same.
		if err := a.answerCallback(ctx, id); err != nil {
			a.log.Info("telegram: callback query not answered", "chat", m.Chat.ID, "err", err)
		}
		return
	}
	if m.Chat.Kind != bot.Group || m.Sender.IsAdmin || !isLanguageCommand(m.Text) {
		return
	}
	chat, err1 := strconv.ParseInt(m.Chat.ID, 10, 64)
	user, err2 := strconv.ParseInt(m.Sender.ID, 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	admin, err := a.isAdmin(ctx, chat, user)
	if err != nil {
		a.log.Warn("telegram: cannot tell whether the sender is a group admin; treating as not", "chat", chat, "err", err)
	}
	m.Sender.IsAdmin = admin
}

// FetchPhoto downloads the file a photo's Ref names (its file_id).
func (a *Adapter) FetchPhoto(ctx context.Context, ref string, limit int64) ([]byte, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: photo without a file id", ErrAPI)
	}
	return a.download(ctx, ref, min(limit, MaxDownloadBytes))
}

// isLanguageCommand: /language or /lang, or /crop (a group's choices only admins make), with or
// without @bot and an argument.
func isLanguageCommand(text string) bool {
	c, ok := bot.ParseCommand(text)
	return ok && (c.Name == "language" || c.Name == "lang" || c.Name == "crop")
}

// chatID parses the handler's chat id.
func chatID(c bot.ChatRef) (int64, error) {
	if c.Platform != bot.Telegram {
		return 0, fmt.Errorf("%w: reply for platform %q", ErrConfig, c.Platform)
	}
	id, err := strconv.ParseInt(c.ID, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w: chat id %q", ErrConfig, c.ID)
	}
	return id, nil
}

// DecodeLegacy translates an inbox entry of the adapter before the shared intake (bot.LegacyInbox):
// a raw Bot API update, stored under its update_id and already confirmed to Telegram. It becomes
// the message the adapter would make of it now (none for an update it ignores; a group's move is
// recorded). ok is false for an entry that is not an update, or whose move cannot be recorded now
// (the entry stays for the next start).
func (a *Adapter) DecodeLegacy(ctx context.Context, data []byte) (msgs []bot.Message, ok bool) {
	var id struct {
		UpdateID *int64 `json:"update_id"`
	}
	if json.Unmarshal(data, &id) != nil || id.UpdateID == nil {
		return nil, false
	}
	us, _ := a.parseUpdates([]json.RawMessage{data})
	if len(us) != 1 {
		return nil, false
	}
	msgs, err := a.receive(ctx, us)
	if err != nil {
		a.log.Warn("telegram: an update stored by the previous version cannot be handed in now; it stays in the inbox", "update", *id.UpdateID, "err", err)
		return nil, false
	}
	return msgs, true
}
