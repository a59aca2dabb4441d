package bot

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
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

// Handle logs the message, answers it through out and logs the answer. A failure inside gets the
// user a clear reply and the error is logged with the message's identity; the returned error is
// only for the adapter's bookkeeping (nil once the message was recorded and answered; one
// wrapping ErrPanic for a panic before the message was recorded: not to be handed in again).
//
// Deliveries of the same message one after the other are answered once (the turn log); two
// deliveries of the same message at the same time are not guarded against here: the intake hands
// each message to one worker at a time, and callers outside it must do the same.
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
				err = fmt.Errorf("%w, before the message was recorded: %v", ErrPanic, p)
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
