package bot

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// Analyzer is the model as the handler sees it; *inference.Model implements it.
type Analyzer interface {
	Analyze(ctx context.Context, photo []byte) (inference.Result, error)
	Info() inference.Info
}

// Store is the persistence the handler needs; *store.Store implements it.
type Store interface {
	GetAnalysis(ctx context.Context, photoHash, modelVersion string) (store.Analysis, error)
	PutAnalysis(ctx context.Context, a store.Analysis, photo []byte, mime string) error
	PutContentID(ctx context.Context, platform, contentID, photoHash string) error
	LookupContentID(ctx context.Context, platform, contentID string) (string, error)
	GetChat(ctx context.Context, platform, id string) (store.Chat, error)
	GetUser(ctx context.Context, platform, id string) (store.User, error)
	GetTurn(ctx context.Context, platform, chatID, msgID string) (store.Turn, error)
	RecordInbound(ctx context.Context, r store.Record, chat *store.Chat, user *store.User) (store.Arrival, error)
	BeginReply(ctx context.Context, r store.Record, chat *store.Chat, user *store.User, k int) (store.Arrival, error)
	BeginDone(ctx context.Context, r store.Record, chat *store.Chat, user *store.User) (store.Arrival, error)
	SetChatLanguage(ctx context.Context, platform, id, lang string) error
	SetUserLanguage(ctx context.Context, platform, id, lang string) error
	SetChatCrop(ctx context.Context, platform, id, crop string) error
	SetUserCrop(ctx context.Context, platform, id, crop string) error
	PutCropQuestion(ctx context.Context, q store.CropQuestion) error
	GetCropQuestion(ctx context.Context, platform, chatID string, notBefore time.Time) (store.CropQuestion, error)
	DeleteCropQuestion(ctx context.Context, platform, chatID, photoHash string) error
	AppendMessage(ctx context.Context, r store.Record) (uint64, error)
	UpdateMessage(ctx context.Context, r store.Record) error
	AttemptReply(ctx context.Context, platform, chatID, msgID string, k int, inbound *store.Record) error
	ReplySent(ctx context.Context, msgID string, k int, out store.Record, finish bool) error
	FinishTurn(ctx context.Context, platform, chatID, msgID string, inbound *store.Record) error
	RecentMessages(ctx context.Context, platform, chatID string, limit int) ([]store.Record, error)
	// GetCorrection is support staff's verdict on a photo (store.ErrNotFound if none).
	GetCorrection(ctx context.Context, photoHash string) (store.Correction, error)
	PageStore
	HandoffStore
}

// Config tunes the handler; zero fields take the defaults in parentheses.
type Config struct {
	// Threshold: below this top-1 probability the answer is "not sure, retake the photo" (0.5).
	Threshold float64
	// MaxPhotoBytes refuses larger photos before and after download (20 MB).
	MaxPhotoBytes int64
	// FetchTimeout bounds a photo download (30 s).
	FetchTimeout time.Duration
	// Workers bounds concurrent analyses: the model already uses every core (2).
	Workers int
	// Burst and Refill rate-limit each chat: Burst messages at once, then one per Refill (10, 3 s).
	Burst  int
	Refill time.Duration
	// HistoryLen is how many photos /history lists (5).
	HistoryLen int
	// ClearCropShare: without a stated crop, when the model's most likely crop (the summed
	// probability of its classes) has less than this share, the bot asks which crop it is
	// (0.66). A leaf the model judges an unknown crop (a model with an unknown_crop output) is
	// asked about whatever its shares, with "another crop" as the last choice. Negative: it
	// never asks (an unknown crop gets the unknown-crop reply at once).
	ClearCropShare float64
	// StaffHandoff: for this long after a support staff reply, until the conversation is
	// resolved, the farmer's plain text is for the staff and gets no stock answer (24 h;
	// negative: always answered).
	StaffHandoff time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Threshold <= 0 {
		c.Threshold = 0.5
	}
	if c.MaxPhotoBytes <= 0 {
		c.MaxPhotoBytes = inference.DefaultLimits.MaxBytes
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 30 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Burst <= 0 {
		c.Burst = 10
	}
	if c.Refill <= 0 {
		c.Refill = 3 * time.Second
	}
	if c.HistoryLen <= 0 {
		c.HistoryLen = 5
	}
	if c.ClearCropShare == 0 {
		c.ClearCropShare = defaultClearCropShare
	}
	if c.StaffHandoff == 0 {
		c.StaffHandoff = DefaultStaffHandoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Handler turns messages into replies. One Handler serves every adapter; it is safe for
// concurrent use.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	model   Analyzer
	loc     *locales.Bundle
	metrics *Metrics
	limiter *limiter

	workers chan struct{}
	flight  flights
	wg      sync.WaitGroup
}

// NewHandler checks that every model class has texts in every language and builds the handler.
// metrics may be nil.
func NewHandler(cfg Config, log *slog.Logger, st Store, model Analyzer, loc *locales.Bundle, metrics *Metrics) (*Handler, error) {
	if err := loc.CheckClasses(model.Info().Classes); err != nil {
		return nil, fmt.Errorf("model %s: %w", model.Info().Version, err)
	}
	if err := loc.CheckCrops(model.Info().Classes); err != nil {
		return nil, fmt.Errorf("model %s: %w", model.Info().Version, err)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	cfg = cfg.withDefaults()
	return &Handler{
		cfg: cfg, log: log, store: st, model: model, loc: loc, metrics: metrics,
		limiter: newLimiter(cfg.Burst, cfg.Refill),
		workers: make(chan struct{}, cfg.Workers),
	}, nil
}

// Wait blocks until every message being handled is done, or ctx ends.
func (h *Handler) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain handler: %w", ctx.Err())
	}
}

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

// Handle logs the message, answers it through out and logs the answer. A failure inside gets the
// user a clear reply and the error is logged with the message's identity; the returned error is
// only for the adapter's bookkeeping (nil once the message was recorded and answered).
func (h *Handler) Handle(ctx context.Context, m Message, out Responder) (err error) {
	h.wg.Add(1)
	defer h.wg.Done()
	if m.Time.IsZero() {
		m.Time = h.cfg.Now()
	}
	t := &turn{msg: m, out: out, lang: locales.Default,
		log: h.log.With("platform", m.Chat.Platform, "chat", m.Chat.ID, "msg", m.ID)}
	// One deferred function, so that after a panic the error reply goes out before the turn is
	// written as done (in the same transaction as that reply's record).
	defer func() {
		if p := recover(); p != nil {
			t.log.Error("panic while handling message", "panic", p, "stack", string(debug.Stack()))
			h.metrics.Errors.WithLabelValues(string(m.Chat.Platform), "panic").Inc()
			if !t.begun {
				err = fmt.Errorf("panic before the message was recorded: %v", p)
				return
			}
			h.fail(ctx, t, "error.internal", "internal error")
		}
		if (!t.begun && t.sent == nil) || t.taken {
			return
		}
		if e := h.endTurn(ctx, t); e != nil && err == nil {
			// Not finished: the adapter must keep the message and hand it in again.
			err = e
		}
	}()
	kind := "text"
	switch {
	case m.Photo != nil:
		kind = "photo"
	case len(m.Album) > 0:
		kind = "album"
	case m.Choice != "":
		kind = "choice"
	case isCommand(m.Text):
		kind = "command"
	}
	h.metrics.Messages.WithLabelValues(string(m.Chat.Platform), kind).Inc()

	existed, err := h.record(ctx, t)
	if err != nil {
		// Without its turn read the message cannot be answered exactly once: it is handed in again.
		h.metrics.Errors.WithLabelValues(string(m.Chat.Platform), "store").Inc()
		t.log.Error("cannot read the message's chat, sender or turn", "err", err)
		h.send(ctx, t, Reply{Text: h.loc.T(t.lang, "error.internal"), Kind: KindError})
		return err
	}
	if existed && t.prior.Done {
		h.metrics.Errors.WithLabelValues(string(m.Chat.Platform), "duplicate").Inc()
		t.log.Info("message already answered: delivered again, not answered twice")
		return nil
	}
	if existed {
		t.log.Warn("resuming a message whose handling was interrupted", "replies_sent", t.prior.Sent, "replies_attempted", t.prior.Attempted)
	}
	t.begun = true
	if !h.limiter.allow(m.Chat.Platform, m.Chat.ID, m.Time) {
		h.metrics.Errors.WithLabelValues(string(m.Chat.Platform), "rate_limited").Inc()
		if h.limiter.shouldWarn(m.Chat.Platform, m.Chat.ID) {
			h.fail(ctx, t, "error.rate_limited", reasonRateLimited)
		} else {
			h.markError(ctx, t, reasonRateLimited)
		}
		return nil
	}
	if kind == "choice" || kind == "text" {
		q, crop, ok, err := h.cropAnswer(ctx, t)
		if err != nil {
			// No reply now: the turn stays open and the message is handed in again.
			t.log.Error("cannot read the crop question", "err", err)
			t.unwritten = true
			return nil
		}
		if ok {
			h.answerCropQuestion(ctx, t, q, crop)
			return nil
		}
	}
	switch kind {
	case "choice":
		if m.Choice == forgetChoice {
			h.forgetConfirmed(ctx, t)
			break
		}
		// A button of a question that expired, was answered, or was replaced: quietly nothing.
		t.log.Info("button of a closed question ignored", "choice", m.Choice)
	case "photo":
		h.handlePhoto(ctx, t)
	case "album":
		h.handleAlbum(ctx, t)
	case "command":
		h.handleCommand(ctx, t)
	default:
		if m.Chat.Kind != Group {
			if h.staffHandling(ctx, t) {
				t.log.Info("text for the support staff handling the chat: no stock answer")
				return nil
			}
			h.send(ctx, t, Reply{Text: h.loc.T(t.lang, "text.need_photo"), Kind: KindCommand})
		}
	}
	return nil
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

// written writes a pending turn now, before a write that needs the chat and the sender stored
// (a preference): a second fsync, for commands only. False if this delivery must not go on.
func (h *Handler) written(ctx context.Context, t *turn) bool {
	if !t.pending {
		return true
	}
	a, err := h.store.RecordInbound(ctx, t.rec, t.chat, t.user)
	if err != nil {
		t.log.Error("cannot record inbound message", "err", err)
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

// begin writes a pending turn with its first step: the attempt of reply k, or (k < 0) its end.
// It reports whether the turn is now written and is this delivery's to answer.
func (h *Handler) begin(ctx context.Context, t *turn, k int) bool {
	var a store.Arrival
	var err error
	if k >= 0 {
		a, err = h.store.BeginReply(ctx, t.rec, t.chat, t.user, k)
	} else {
		a, err = h.store.BeginDone(ctx, t.rec, t.chat, t.user)
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

// resolveLanguage: in a group the group's choice (everyone reads the reply), then the sender's
// stored choice, then the platform's hint, then the default.
func (h *Handler) resolveLanguage(m Message, chat store.Chat, user store.User) string {
	candidates := []string{user.Language}
	if m.Chat.Kind == Group {
		candidates = []string{chat.Language, user.Language}
	}
	for _, c := range candidates {
		if c != "" && h.loc.Has(c) {
			return c
		}
	}
	code, _ := h.loc.Match(m.Sender.LangHint)
	return code
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
		if done && h.begin(wctx, t, -1) {
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

// handlePhoto answers one photo.
func (h *Handler) handlePhoto(ctx context.Context, t *turn) {
	hash, a, err := h.photoAnalysis(ctx, t, t.msg.Photo)
	if err != nil {
		h.photoError(ctx, t, err)
		return
	}
	h.answer(ctx, t, hash, a)
}

// photoAnalysis: a known content id → the cached analysis without download; otherwise download,
// hash, and take the cached analysis or run the model once per distinct photo.
func (h *Handler) photoAnalysis(ctx context.Context, t *turn, p *Photo) (string, store.Analysis, error) {
	platform := string(t.msg.Chat.Platform)
	version := h.model.Info().Version
	if id := p.ContentID; id != "" {
		hash, err := h.store.LookupContentID(ctx, platform, id)
		if err == nil {
			if a, err := h.store.GetAnalysis(ctx, hash, version); err == nil {
				h.metrics.Cache.WithLabelValues(platform, "hit").Inc()
				t.cacheHits++
				return hash, a, nil
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			t.log.Warn("content id lookup failed", "err", err)
		}
	}
	if p.Size > h.cfg.MaxPhotoBytes {
		return "", store.Analysis{}, h.tooLarge(p.Size)
	}
	if tp, ok := t.out.(Typist); ok {
		if err := tp.Typing(ctx, t.msg.Chat); err != nil {
			t.log.Debug("typing indicator failed", "err", err)
		}
	}
	data, err := h.fetch(ctx, p)
	if err != nil {
		return "", store.Analysis{}, err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	if id := p.ContentID; id != "" {
		// Written after the reply went out: the index only saves a later download.
		var once sync.Once
		t.later = append(t.later, func() error {
			once.Do(func() {
				if err := h.store.PutContentID(context.WithoutCancel(ctx), platform, id, hash); err != nil {
					t.log.Warn("cannot index content id", "err", err)
				}
			})
			return nil
		})
	}
	if a, err := h.store.GetAnalysis(ctx, hash, version); err == nil {
		h.metrics.Cache.WithLabelValues(platform, "hit").Inc()
		t.cacheHits++
		return hash, a, nil
	}
	h.metrics.Cache.WithLabelValues(platform, "miss").Inc()
	t.cacheMisses++
	// One analysis per distinct photo, even when a group forwards it many times at once.
	// The analysis is detached from this turn: if this message is abandoned, the others waiting
	// for the same photo still get their answer (flights).
	// It is stored after the reply went out; the turn ends once it is stored (later).
	a, stored, err := h.flight.do(ctx, &h.wg, hash, func(ctx context.Context) (analysis, error) {
		if a, err := h.store.GetAnalysis(ctx, hash, version); err == nil {
			return analysis{a: a}, nil
		}
		return h.analyze(ctx, hash, data, version)
	})
	if err != nil {
		return "", store.Analysis{}, err
	}
	t.later = append(t.later, stored)
	return hash, a, nil
}

// fetch downloads a photo within the time and size limits.
func (h *Handler) fetch(ctx context.Context, p *Photo) ([]byte, error) {
	if p.Fetch == nil {
		return nil, fmt.Errorf("%w: photo has no source", errFetch)
	}
	fctx, cancel := context.WithTimeout(ctx, h.cfg.FetchTimeout)
	defer cancel()
	data, err := p.Fetch(fctx)
	if err != nil {
		if errors.Is(err, inference.ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	if int64(len(data)) > h.cfg.MaxPhotoBytes {
		return nil, h.tooLarge(int64(len(data)))
	}
	return data, nil
}

func (h *Handler) tooLarge(size int64) error {
	return &inference.PhotoError{Kind: inference.ErrTooLarge, Bytes: size, Limit: inference.Limits{MaxBytes: h.cfg.MaxPhotoBytes}}
}

// analyze runs the model on a worker slot; the analysis it returns stores the photo with it.
func (h *Handler) analyze(ctx context.Context, hash string, data []byte, version string) (analysis, error) {
	select {
	case h.workers <- struct{}{}:
	case <-ctx.Done():
		return analysis{}, ctx.Err()
	}
	start := time.Now()
	// The slot bounds the analyses using the cores: it is given back as soon as the model is done
	// (even if it panics), not after the analysis is written (an fsync).
	res, err := func() (inference.Result, error) {
		defer func() { <-h.workers }()
		return h.model.Analyze(ctx, data)
	}()
	if err != nil {
		return analysis{}, err
	}
	h.metrics.observe(res.Timings, time.Since(start))
	a := NewAnalysis(res, h.model.Info().Classes, hash, version, h.cfg.Now())
	// The photo with its analysis, in one transaction: staff need both.
	return analysis{a: a, store: func(ctx context.Context) error {
		if err := h.store.PutAnalysis(ctx, a, data, res.MIME); err != nil {
			return fmt.Errorf("store analysis: %w", err)
		}
		return nil
	}}, nil
}

// answer words the verdict on an analysis (Decide) and notes the photo hash on the inbound
// record: the diagnosis within the crop the farmer stated (caption, /crop), or, without a stated
// crop, the question which crop it is when the model is unsure between crops or judged the leaf
// an unknown crop ("another crop" its last choice; questionChoices).
func (h *Handler) answer(ctx context.Context, t *turn, hash string, a store.Analysis) {
	t.rec.PhotoHash, t.recChanged = hash, true
	crop := h.statedCrop(t)
	v := h.cfg.decide(a, crop)
	if v.Kind == KindCropQuestion {
		h.askCrop(ctx, t, hash, a, v.Crops)
		return
	}
	h.closeOlderQuestion(ctx, t, hash)
	t.rec.Crop = crop
	h.sendVerdict(ctx, t, v, crop)
}

// sendDiagnosis sends the diagnosis of an analysis, within crop if one is stated ("" for none),
// without asking which crop (Config.settle).
func (h *Handler) sendDiagnosis(ctx context.Context, t *turn, a store.Analysis, crop string) {
	h.sendVerdict(ctx, t, h.cfg.settle(a, crop), crop)
}

// sendVerdict words a verdict other than the crop question: the diagnosis, or, when the photo
// clearly shows another crop than the one stated, says so.
func (h *Handler) sendVerdict(ctx context.Context, t *turn, v Verdict, crop string) {
	if v.Kind == KindCropMismatch {
		h.send(ctx, t, Reply{Kind: v.Kind, ReplyTo: t.replyTo, Text: h.loc.T(t.lang, "crop.mismatch",
			"crop", h.loc.CropName(t.lang, crop), "other", h.loc.CropName(t.lang, v.Crops[0]),
			"percent", h.loc.Percent(t.lang, v.Share))})
		return
	}
	a := v.Analysis
	caption, details, kind := h.diagnosisText(t.lang, a)
	if crop != "" && !a.Rejected {
		stated := h.loc.T(t.lang, "crop.stated", "crop", h.loc.CropName(t.lang, crop))
		if caption != "" {
			caption = stated + "\n\n" + caption
		} else {
			details = stated + "\n\n" + details
		}
	}
	r := Reply{Caption: caption, Text: details, Image: a.Overlay, Kind: kind, ReplyTo: t.replyTo}
	if a.Rejected || a.OtherCrop || len(a.Overlay) == 0 {
		// A heat-map over a cat, or over a leaf the model knows nothing about, explains
		// nothing to a farmer.
		r = Reply{Text: r.FullText(), Kind: kind, ReplyTo: t.replyTo}
	}
	h.send(ctx, t, r)
}

// photoError maps an analysis failure to the user's message.
func (h *Handler) photoError(ctx context.Context, t *turn, err error) {
	mb := func(n int64) string { return fmt.Sprintf("%.0f MB", float64(n)/(1<<20)) }
	var pe *inference.PhotoError
	errors.As(err, &pe)
	var key, reason string
	var args []string
	switch {
	case errors.Is(err, inference.ErrTooLarge):
		key, reason = "error.too_large", "too large"
		size := h.cfg.MaxPhotoBytes + 1
		if pe != nil {
			size = pe.Bytes
		}
		args = []string{"size", mb(size), "limit", mb(h.cfg.MaxPhotoBytes)}
	case errors.Is(err, inference.ErrEmpty):
		key, reason = "error.empty", "empty"
	case errors.Is(err, inference.ErrNotImage):
		key, reason = "error.not_image", "not an image"
	case errors.Is(err, inference.ErrUnsupportedFormat) && pe != nil:
		key, reason = "error.unsupported_format", "unsupported format"
		args = []string{"format", strings.ToUpper(pe.Format)}
	case errors.Is(err, inference.ErrTooManyPixels) && pe != nil:
		key, reason = "error.too_many_pixels", "too many pixels"
		args = []string{"megapixels", fmt.Sprintf("%.0f", pe.Megapixels), "limit", fmt.Sprintf("%.0f", float64(pe.Limit.MaxPixels)/1e6)}
	case errors.Is(err, inference.ErrCorrupt):
		key, reason = "error.corrupt", "corrupt image"
	case errors.Is(err, errFetch):
		key, reason = "error.download", "download failed"
	default:
		key, reason = "error.internal", "internal error"
	}
	h.metrics.Errors.WithLabelValues(string(t.msg.Chat.Platform), strings.ReplaceAll(reason, " ", "_")).Inc()
	level := slog.LevelInfo
	if key == "error.internal" || key == "error.download" {
		level = slog.LevelError
	}
	t.log.Log(ctx, level, "photo not analysed", "reason", reason, "err", err)
	h.fail(ctx, t, key, reason, args...)
}

func isVolatile(out Responder) bool {
	_, ok := out.(VolatileOutbox)
	return ok
}
