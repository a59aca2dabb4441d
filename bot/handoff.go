package bot

import (
	"context"
	"time"

	"github.com/cropshield/cropshield/store"
)

// While support staff handle a conversation, a farmer's plain text is for them: it is logged (the
// dashboard shows it) and gets no stock answer ("send me a photo"), which after a staff reply
// reads as the bot talking over the staff. Photos and commands are still answered.

// HandoffStore is what the hand-off reads beyond Store; *store.Store implements it.
type HandoffStore interface {
	StaffActions(ctx context.Context, platform, chatID string, limit int) ([]store.StaffAction, error)
}

// DefaultStaffHandoff is Config.StaffHandoff's default.
const DefaultStaffHandoff = 24 * time.Hour

// handoffLookback is how many of a chat's last messages are searched for a staff reply.
const handoffLookback = 50

// staffHandling reports whether support staff are handling t's chat: a delivered staff reply
// within Config.StaffHandoff before the message, and the conversation not resolved since.
func (h *Handler) staffHandling(ctx context.Context, t *turn) bool {
	if h.cfg.StaffHandoff < 0 {
		return false
	}
	p, id := string(t.msg.Chat.Platform), t.msg.Chat.ID
	recs, err := h.store.RecentMessages(ctx, p, id, handoffLookback)
	if err != nil {
		t.log.Warn("hand-off: cannot read the conversation", "err", err)
		return false
	}
	var last time.Time
	for _, r := range recs {
		if r.Direction == store.Outbound && r.Kind == string(KindStaff) && r.Error == "" && r.Time.After(last) {
			last = r.Time
		}
	}
	if last.IsZero() || t.msg.Time.Sub(last) > h.cfg.StaffHandoff {
		return false
	}
	actions, err := h.store.StaffActions(ctx, p, id, handoffLookback)
	if err != nil {
		// A staff member replied within the window: rather quiet than talking over them.
		t.log.Warn("hand-off: cannot read the staff actions", "err", err)
		return true
	}
	for _, a := range actions {
		if a.Action == store.ActionResolve && !a.Time.Before(last) {
			return false
		}
	}
	return true
}
