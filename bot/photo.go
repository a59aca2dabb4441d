package bot

import (
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
	"github.com/cropshield/cropshield/store"
)

// The photo path: a photo's analysis from the cache or the model (photoAnalysis, fetch,
// analyze), its verdict worded and sent (answer, sendVerdict), a failure explained (photoError).

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
				// It may run on its own goroutine (turn.send): a panic must not end the process.
				defer func() {
					if p := recover(); p != nil {
						t.log.Error("panic while indexing the content id", "panic", p, "stack", string(debug.Stack()))
					}
				}()
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
