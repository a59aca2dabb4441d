package bot

import (
	"context"
	"strings"
	"time"

	"github.com/cropshield/cropshield/store"
)

// Forgetter is the store's ability to delete what it holds about a farmer on their request
// (/forget); *store.Store has it. A store without it answers /forget with an error.
type Forgetter interface {
	ForgetUser(ctx context.Context, platform, id string, at time.Time, o store.ForgetOptions) (store.ForgetReport, error)
}

// forgetChoice is the data of the confirmation button of /forget.
const forgetChoice = "forget:yes"

// forget answers /forget: without "yes", what it deletes and how to confirm (a button where the
// channel has buttons, "/forget yes" everywhere); with it, forgetConfirmed.
func (h *Handler) forget(ctx context.Context, t *turn, arg string) {
	if t.msg.Chat.Kind == Group {
		// The confirmation and the answer would be read by the whole group.
		h.send(ctx, t, Reply{Text: h.loc.T(t.lang, "forget.private_only"), Kind: KindCommand})
		return
	}
	if strings.EqualFold(strings.TrimSpace(arg), "yes") {
		h.forgetConfirmed(ctx, t)
		return
	}
	h.send(ctx, t, Reply{Text: h.loc.T(t.lang, "forget.confirm"), Kind: KindCommand,
		Choices: []Choice{{Label: h.loc.T(t.lang, "forget.button"), Data: forgetChoice}}})
}

// forgetConfirmed deletes the sender's messages, photos only they sent, analyses, questions,
// preferences and user record (store.ForgetUser), then says so in their language. The
// confirmation itself stays in the log, without the sender's name, so that its turn is answered
// exactly once; the conversation's summary shows it was forgotten.
func (h *Handler) forgetConfirmed(ctx context.Context, t *turn) {
	m := t.msg
	f, ok := h.store.(Forgetter)
	if !ok || m.Sender.ID == "" || m.Chat.Kind == Group {
		h.fail(ctx, t, "error.internal", "forget not possible")
		return
	}
	t.rec.SenderName = ""
	if !h.written(ctx, t) {
		return
	}
	rep, err := f.ForgetUser(ctx, string(m.Chat.Platform), m.Sender.ID, h.cfg.Now(),
		store.ForgetOptions{KeepChat: m.Chat.ID, KeepSeq: t.rec.Seq})
	if err != nil {
		// What was deleted stays deleted; "/forget yes" again finishes the work.
		t.log.Error("forget: not everything was deleted", "err", err, "messages", rep.Messages, "photos", rep.Photos)
		h.fail(ctx, t, "error.internal", "forget failed")
		return
	}
	t.log.Info("forgot a farmer on their request", "messages", rep.Messages, "photos", rep.Photos,
		"conversations", rep.Conversations, "users", rep.Users, "transactions", rep.Transactions)
	h.send(ctx, t, Reply{Text: h.loc.T(t.lang, "forget.done"), Kind: KindCommand})
}
