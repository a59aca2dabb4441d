package bot

import (
	"context"

	"github.com/cropshield/cropshield/store"
)

// BusyText is the "busy, try again" text for the sender of m, in the language the handler would
// answer them in (their stored choice, else the platform's hint). A store failure leaves the hint.
func (h *Handler) BusyText(ctx context.Context, m Message) string {
	p := string(m.Chat.Platform)
	var chat store.Chat
	var user store.User
	if m.Chat.Kind == Group {
		chat, _ = h.store.GetChat(ctx, p, m.Chat.ID)
	}
	if m.Sender.ID != "" {
		user, _ = h.store.GetUser(ctx, p, m.Sender.ID)
	}
	return h.loc.T(h.resolveLanguage(m, chat, user), "error.busy")
}
