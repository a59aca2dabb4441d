package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// The turn machine: each message is a turn, recorded (record, begin), answered (send, fail) and
// ended (endTurn) so that a redelivered or interrupted message is answered exactly once.

// turn is one message being handled.
type turn struct {
	msg  Message
	out  Responder
	lang string
	rec  store.Record // the inbound record
	// recChanged: rec holds what handling found (photo hash, error) and is not yet written; it
	// goes with the next write of the turn.
	recChanged bool
	prior      store.Turn // what an interrupted earlier handling of the same message did
	replies    int        // replies produced so far (sent, or skipped as sent before)
	// sent is the last reply delivered but not yet recorded: it is recorded before the next
	// reply's attempt or, finishing the turn in the same transaction, when handling ends.
	sent *sentReply
	// begun: the turn is being handled (not a duplicate), so its end must be written.
	begun bool
	// pending: nothing of the message is written yet. Its first write goes with its first reply's
	// attempt (BeginReply) or, if it gets no reply, with its end (BeginDone): one fsync before a
	// reply goes out, not two. chat and user are the upserts that go with it.
	pending bool
	chat    *store.Chat
	user    *store.User
	// taken: another delivery of the same message began its turn meanwhile; this one stays silent.
	taken bool
	// later are the writes made while the replies go out (a new photo's analysis, its content
	// id): started once the first reply's attempt is written, waited for before the turn is
	// finished, which stays open if one failed. Each may be called more than once.
	later   []func() error
	started int // later[:started] are running
	// unwritten: a write the turn needed failed (a reply attempt, say), so the turn must not be
	// finished: the adapter keeps the message and hands it in again, and the turn resumes.
	unwritten bool
	// cacheHits and cacheMisses count the photo analyses taken from the cache or not.
	cacheHits, cacheMisses int
	// savedCrop is the chat's crop (/crop): the group's in a group, else the sender's.
	savedCrop string
	// replyPhoto and replyTo: a reply about an earlier photo (the answer to a crop question)
	// shows that photo's hash in the log and quotes its message.
	replyPhoto, replyTo string
	log                 *slog.Logger
}

type sentReply struct {
	k   int
	rec store.Record
}

// inbound is the inbound record to write with the turn's next write if it changed (nil if not);
// recChanged is cleared once that write succeeds.
func (t *turn) inbound() *store.Record {
	if !t.recChanged {
		return nil
	}
	return &t.rec
}

// record reads the chat and the sender, resolves the language and prepares the inbound record
// with the chat's and sender's upserts, written with the turn's first write (pending); or finds
// the turn of an earlier delivery (existed). It writes nothing.
func (h *Handler) record(ctx context.Context, t *turn) (existed bool, err error) {
	m := t.msg
	p := string(m.Chat.Platform)
	// Read (no fsync) what the language depends on, then write everything in one transaction.
	chat, err := h.store.GetChat(ctx, p, m.Chat.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("read chat: %w", err)
	}
	var user store.User
	var touchUser *store.User
	if m.Sender.ID != "" {
		if user, err = h.store.GetUser(ctx, p, m.Sender.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("read user: %w", err)
		}
		if n := givenName(m.Chat.Platform, user.Name); m.Sender.Name == "" && n != "" {
			// The name the person gave their page (Pages.SetName): greetings and staff use it.
			m.Sender.Name, t.msg.Sender.Name = n, n
		}
		touchUser = &store.User{Platform: p, ID: m.Sender.ID, Name: m.Sender.Name, LangHint: m.Sender.LangHint}
	}
	t.lang = h.resolveLanguage(m, chat, user)
	t.savedCrop = user.Crop
	if m.Chat.Kind == Group {
		t.savedCrop = chat.Crop
	}
	text := m.Text
	if m.Choice != "" && text == "" {
		// A tapped button: log what it says.
		text = m.Choice
		if rest, ok := strings.CutPrefix(m.Choice, cropChoicePrefix); ok {
			crop, _, _ := strings.Cut(rest, ":")
			text = h.choiceName(t.lang, crop)
		}
	}
	t.rec = store.Record{Time: m.Time, Platform: p, ChatID: m.Chat.ID, Direction: store.Inbound,
		SenderID: m.Sender.ID, SenderName: m.Sender.Name, MessageID: m.ID, Text: text, Lang: t.lang}
	t.chat = &store.Chat{Platform: p, ID: m.Chat.ID, Kind: string(m.Chat.Kind), Title: m.Chat.Title}
	t.user = touchUser
	if m.ID != "" {
		prior, err := h.store.GetTurn(ctx, p, m.Chat.ID, m.ID)
		switch {
		case err == nil:
			t.prior, t.rec.Seq = prior, prior.Seq
			return true, nil
		case !errors.Is(err, store.ErrNotFound):
			return false, fmt.Errorf("read turn: %w", err)
		}
	}
	t.pending = true
	return false, nil
}

// The first writes of a pending turn (begin): the message alone, or with its first step.
const (
	beginNow  = -2 // the message alone, before a write that needs the chat and sender stored
	beginDone = -1 // the message and its end: answered without a reply
	// k >= 0: the message and the attempt of reply k
)

// written writes a pending turn now, before a write that needs the chat and the sender stored
// (a preference): a second fsync, for commands only. False if this delivery must not go on.
func (h *Handler) written(ctx context.Context, t *turn) bool {
	return !t.pending || h.begin(ctx, t, beginNow)
}

// begin writes a pending turn with its first step (k: beginNow, beginDone or a reply's number).
// It reports whether the turn is now written and is this delivery's to answer.
func (h *Handler) begin(ctx context.Context, t *turn, k int) bool {
	var a store.Arrival
	var err error
	switch {
	case k >= 0:
		a, err = h.store.BeginReply(ctx, t.rec, t.chat, t.user, k)
	case k == beginDone:
		a, err = h.store.BeginDone(ctx, t.rec, t.chat, t.user)
	default:
		a, err = h.store.RecordInbound(ctx, t.rec, t.chat, t.user)
	}
	if err != nil {
		h.metrics.Errors.WithLabelValues(string(t.msg.Chat.Platform), "store").Inc()
		t.log.Error("cannot record inbound message; it is handed in again", "err", err)
		t.unwritten = true
		return false
	}
	if a.Existed {
		t.log.Info("message begun by another delivery meanwhile: not answered twice")
		t.taken = true
		return false
	}
	t.pending, t.recChanged, t.rec.Seq = false, false, a.Turn.Seq
	return true
}

// endTurn writes what the turn still owes the store, in one transaction where it can: the last
// reply's record, the inbound record's changes and, unless handling was interrupted or a write
// failed, that the turn is done. It returns an error when the turn could not be finished: the
// adapter then keeps the message and hands it in again, the turn resumes and sends nothing twice.
func (h *Handler) endTurn(ctx context.Context, t *turn) error {
	for _, write := range t.later {
		if err := write(); err != nil {
			t.log.Error("cannot store the analysis; the message is handed in again", "err", err)
			t.unwritten = true
		}
	}
	t.later, t.started = nil, 0
	done := t.begun && ctx.Err() == nil && !t.unwritten
	wctx := context.WithoutCancel(ctx)
	p, chat, id := string(t.msg.Chat.Platform), t.msg.Chat.ID, t.msg.ID
	if t.pending {
		// Nothing written and no reply sent: the message and its end in one transaction; or, if
		// handling did not finish, nothing at all (it is handed in again).
		if done && h.begin(wctx, t, beginDone) {
			return nil
		}
		if t.unwritten && ctx.Err() == nil {
			return errTurnUnwritten
		}
		return nil
	}
	var errs []error
	if in := t.inbound(); in != nil && (t.sent != nil || !done) {
		// Rare: an error noted after the last reply went out, or an unfinished turn.
		if err := h.store.UpdateMessage(wctx, *in); err != nil {
			t.log.Error("cannot update inbound record", "err", err)
			errs, done = append(errs, err), false
		} else {
			t.recChanged = false
		}
	} else if in != nil || (done && t.sent == nil) {
		if err := h.store.FinishTurn(wctx, p, chat, id, in); err != nil {
			t.log.Error("cannot finish turn", "err", err)
			errs = append(errs, err)
		} else {
			t.recChanged = false
		}
	}
	errs = append(errs, h.recordSent(wctx, t, done))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("turn not finished: %w", err)
	}
	if t.unwritten && ctx.Err() == nil {
		return errTurnUnwritten
	}
	return nil
}

// recordSent records the reply delivered last, if it is not recorded yet; finish also marks the
// turn done.
func (h *Handler) recordSent(ctx context.Context, t *turn, finish bool) error {
	if t.sent == nil {
		return nil
	}
	s := t.sent
	t.sent = nil
	if err := h.store.ReplySent(ctx, t.msg.ID, s.k, s.rec, finish); err != nil {
		t.log.Error("cannot record reply", "err", err)
		return err
	}
	return nil
}

// send delivers a reply and logs it; a failed send is logged, not retried here (adapters retry
// what their platform allows).
func (h *Handler) send(ctx context.Context, t *turn, r Reply) {
	r.Chat = t.msg.Chat
	if r.ReplyTo == "" {
		r.ReplyTo = t.msg.ID
	}
	rec := store.Record{Time: h.cfg.Now(), Platform: string(r.Chat.Platform), ChatID: r.Chat.ID,
		Direction: store.Outbound, Text: r.FullText(), ReplyTo: r.ReplyTo,
		Kind: string(r.Kind), Lang: t.lang, CacheHit: t.cacheHits > 0 && t.cacheMisses == 0}
	if r.Image != nil || r.Images != nil {
		rec.PhotoHash = cmp.Or(t.rec.PhotoHash, t.replyPhoto)
	}
	switch r.Kind {
	case KindDiagnosis, KindUnsure, KindNotLeaf, KindUnknownCrop, KindCropMismatch:
		if t.rec.Crop != locales.AnyCrop {
			rec.Crop = t.rec.Crop
		}
	}
	if ctx.Err() != nil {
		// Shutting down: the message stays unfinished and is answered when it is handed in
		// again; a reply attempted now would be suppressed then as "maybe delivered".
		t.log.Info("not replying: interrupted", "kind", r.Kind)
		return
	}
	if t.taken {
		return
	}
	k := t.replies
	t.replies++
	switch {
	case k < t.prior.Sent:
		t.log.Debug("reply already sent before the interruption", "reply", k)
		return
	case k < t.prior.Attempted && !isVolatile(t.out):
		// It may or may not have reached the user: never risk a second copy.
		t.log.Warn("reply may not have been delivered before the interruption; not sending it twice", "reply", k, "kind", r.Kind)
		h.markError(ctx, t, "reply may not have been delivered (interrupted)")
		return
	}
	wctx := context.WithoutCancel(ctx)
	if err := h.recordSent(wctx, t, false); err != nil {
		t.unwritten = true
	}
	if t.pending {
		if !h.begin(wctx, t, k) {
			return
		}
	} else if t.msg.ID != "" {
		if err := h.store.AttemptReply(wctx, string(r.Chat.Platform), r.Chat.ID, t.msg.ID, k, t.inbound()); err != nil {
			t.log.Error("cannot note reply attempt; not sending it now, the message is handed in again", "err", err)
			t.unwritten = true
			return
		}
		t.recChanged = false
	}
	for ; t.started < len(t.later); t.started++ {
		go t.later[t.started]() //nolint:errcheck // endTurn calls it again for its error
	}
	if err := t.out.Send(ctx, r); err != nil {
		h.metrics.Errors.WithLabelValues(string(r.Chat.Platform), "send").Inc()
		t.log.Error("cannot send reply", "kind", r.Kind, "err", err)
		rec.Error = reasonNotDelivered
		if _, err := h.store.AppendMessage(wctx, rec); err != nil {
			t.log.Error("cannot record reply", "err", err)
		}
		return
	}
	h.metrics.Replies.WithLabelValues(string(r.Chat.Platform), string(r.Kind)).Inc()
	t.sent = &sentReply{k: k, rec: rec}
}

// fail replies with an error message and notes the error on the inbound record.
func (h *Handler) fail(ctx context.Context, t *turn, key, reason string, args ...string) {
	h.markError(ctx, t, reason)
	h.send(ctx, t, Reply{Text: h.loc.T(t.lang, key, args...), Kind: KindError})
}

func (h *Handler) markError(_ context.Context, t *turn, reason string) {
	if !t.begun {
		return
	}
	t.rec.Error = reason
	t.recChanged = true
}

func isVolatile(out Responder) bool {
	_, ok := out.(VolatileOutbox)
	return ok
}
