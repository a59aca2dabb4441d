package whatsapp

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/cropshield/cropshield/bot"
)

// Users is where the adapter records that a farmer known until then only by a LID continues
// under their phone-number id, with their private chat; *bot.Moves implements it.
type Users interface {
	MoveUser(ctx context.Context, p bot.Platform, from, to string, at time.Time) (moved bool, language string, err error)
}

// moveUser carries what the bot keeps under a LID that was a farmer's canonical id (their
// language, name, private chat and conversation) to the phone-number id, when the adapter learns
// the pair. A LID the bot never stored anything under has nothing to carry. It reports whether the
// pair may be remembered: false when the move failed, so that the next message carrying the pair
// tries again (the message itself is handed over either way, under the phone-number id).
func (a *Adapter) moveUser(ctx context.Context, lid, pn types.JID, at time.Time) bool {
	if a.opts.Users == nil {
		return true
	}
	moved, lang, err := a.opts.Users.MoveUser(ctx, bot.WhatsApp, lid.String(), pn.String(), at)
	switch {
	case err != nil:
		a.log.Error("cannot move a farmer known by LID to their phone number; the message is answered anyway, the next one tries again",
			"lid", lid, "phone", pn, "err", err)
		return false
	case !moved:
		return true
	}
	a.log.Info("a farmer known by LID is now keyed by phone number: their language and conversation moved",
		"lid", lid, "phone", pn, "language", lang)
	return true
}
