package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// The crop rules. The farmer knows the crop; the model has to guess it, and on field photos that
// guess is where most wrong answers start.
const (
	// CropQuestionTTL: an unanswered "which crop?" question expires quietly after this long (a
	// number or a tapped button after it is answered as if no question had been asked: tapped
	// buttons get no reply, a number gets the usual "send a photo").
	CropQuestionTTL = 24 * time.Hour

	// defaultClearCropShare: without a stated crop, the model is unsure between crops when its
	// most likely crop (the sum of the probabilities of the crop's classes) has less than this
	// share (Config.ClearCropShare). The bot then asks which crop. A model with an unknown_crop
	// output decides this itself: a leaf it judges an unknown crop is asked about too (with
	// "another crop" as the last choice), whatever its shares.
	defaultClearCropShare = 0.66
	// questionCropShare and maxQuestionCrops: the question offers the crops with at least this
	// share, best first, at least two (where the model has two) and at most maxQuestionCrops.
	questionCropShare = 0.05
	maxQuestionCrops  = 4

	// A stated crop is contradicted by the photo when the stated crop's share is below
	// mismatchStatedShare while another crop has at least mismatchOtherShare: the bot says so
	// instead of forcing a diagnosis of the stated crop.
	mismatchStatedShare = 0.05
	mismatchOtherShare  = 0.80

	// renormalizeShare: the probabilities within a stated crop are re-normalized over its classes
	// only when the model gives that crop at least this share and the crop has two classes or more.
	// Below it the model hardly sees the crop in the photo, and for a crop of one class (orange,
	// blueberry, raspberry) re-normalizing always gives 100 %: the classes keep the probabilities
	// the model gives them, and the bot says it is not sure unless one reaches its threshold.
	renormalizeShare = 0.2

	// cropChoicePrefix starts the data of a crop question's buttons: "crop:CROP:HASH12", HASH12
	// the first 12 hex digits of the photo's hash, so that a button of an older question never
	// answers a newer one.
	cropChoicePrefix = "crop:"
)

// cropShare is a crop with the summed probability of its classes.
type cropShare struct {
	crop  string
	share float64
}

// cropShares sums the scores per crop, best first (ties by crop id).
func cropShares(scores map[string]float64) []cropShare {
	sum := map[string]float64{}
	for class, p := range scores {
		sum[locales.CropOf(class)] += p
	}
	out := make([]cropShare, 0, len(sum))
	for c, p := range sum {
		out = append(out, cropShare{c, p})
	}
	slices.SortFunc(out, func(a, b cropShare) int {
		if c := cmp.Compare(b.share, a.share); c != 0 {
			return c
		}
		return strings.Compare(a.crop, b.crop)
	})
	return out
}

// cropOutcome is what a stated crop makes of an analysis.
type cropOutcome struct {
	a        store.Analysis // the analysis within the crop (or as it was)
	mismatch bool           // the photo clearly shows another crop
	other    cropShare      // that crop, for a mismatch
}

// withinCrop restricts an analysis to the classes of crop, re-normalized over them where the
// model sees enough of the crop (renormalizeShare): the top-3 and the advice are then about that
// crop. A leaf the model took for an unknown crop is diagnosed within the stated crop (the
// statement resolves the model's doubt about the crop); a photo that is not a leaf stays refused.
// An analysis stored before every class's score was kept (Scores nil) is restricted within its
// stored top-3 without re-normalizing (the crop's share is unknown), or left as it is when none
// of them is of the crop.
func withinCrop(a store.Analysis, crop string) cropOutcome {
	if a.Rejected || crop == "" {
		return cropOutcome{a: a}
	}
	if len(a.Scores) == 0 {
		var top []store.Candidate
		total := 0.0
		for _, c := range a.Top {
			if locales.CropOf(c.Class) == crop {
				top = append(top, c)
				total += c.Prob
			}
		}
		if len(top) == 0 || total <= 0 {
			return cropOutcome{a: a}
		}
		a.Top, a.OtherCrop = top, false
		return cropOutcome{a: a}
	}
	shares := cropShares(a.Scores)
	stated := 0.0
	for _, s := range shares {
		if s.crop == crop {
			stated = s.share
		}
	}
	if best := shares[0]; best.crop != crop && stated < mismatchStatedShare && best.share >= mismatchOtherShare {
		return cropOutcome{a: a, mismatch: true, other: best}
	}
	var top []store.Candidate
	for class, p := range a.Scores {
		if locales.CropOf(class) == crop {
			top = append(top, store.Candidate{Class: class, Prob: p})
		}
	}
	if len(top) == 0 || stated <= 0 {
		return cropOutcome{a: a, mismatch: len(shares) > 0, other: shares[0]}
	}
	slices.SortFunc(top, func(x, y store.Candidate) int {
		if c := cmp.Compare(y.Prob, x.Prob); c != 0 {
			return c
		}
		return strings.Compare(x.Class, y.Class)
	})
	if len(top) > 1 && stated >= renormalizeShare {
		for i := range top {
			top[i].Prob /= stated
		}
	}
	top = top[:min(3, len(top))]
	a.Top, a.OtherCrop = top, false
	return cropOutcome{a: a}
}

// cropDoubt returns the crops to ask about when the model is unsure between crops (its most
// likely crop has less than clear), nil when it is not or cannot tell (no scores, not a leaf, an
// unknown crop: see unknownCropChoices).
func cropDoubt(a store.Analysis, clear float64) []string {
	if a.Rejected || a.OtherCrop || len(a.Scores) == 0 {
		return nil
	}
	shares := cropShares(a.Scores)
	if len(shares) < 2 || shares[0].share >= clear {
		return nil
	}
	return questionCrops(shares)
}

// unknownCropChoices returns the crops to offer, before "another crop", about a leaf the model
// judged an unknown crop (OtherCrop): it often is a known crop the model is unsure of (a field
// photo), and the farmer knows which. Nil when it is no such leaf or its analysis has no scores
// (stored before every class's score was kept): that one keeps the unknown-crop reply.
func unknownCropChoices(a store.Analysis) []string {
	if a.Rejected || !a.OtherCrop || len(a.Scores) == 0 {
		return nil
	}
	return questionCrops(cropShares(a.Scores))
}

// questionCrops are the crops a question offers: those with at least questionCropShare, best
// first, at least two and at most maxQuestionCrops.
func questionCrops(shares []cropShare) []string {
	var crops []string
	for i, s := range shares {
		if len(crops) == maxQuestionCrops || (i >= 2 && s.share < questionCropShare) {
			break
		}
		crops = append(crops, s.crop)
	}
	return crops
}

// questionChoices are the crops to ask about for an analysis without a stated crop (nil: no
// question): when the model judged the leaf an unknown crop (unknownCropChoices) or is unsure
// between crops (cropDoubt). "Another crop" is always offered after them: the farmer's crop may
// be none of those offered. A negative ClearCropShare asks neither.
func (c Config) questionChoices(a store.Analysis) []string {
	if c.ClearCropShare < 0 {
		return nil
	}
	if crops := unknownCropChoices(a); len(crops) > 0 {
		return crops
	}
	if crops := cropDoubt(a, c.ClearCropShare); len(crops) >= 2 {
		return crops
	}
	return nil
}

// modelCrops are the crops of the model's classes, in class order.
func (h *Handler) modelCrops() []string {
	var crops []string
	for _, class := range h.model.Info().Classes {
		if c := locales.CropOf(class); !slices.Contains(crops, c) {
			crops = append(crops, c)
		}
	}
	return crops
}

// knownCropList names the model's crops in lang as one line: "Apple, Bean, ...".
func (h *Handler) knownCropList(lang string) string {
	return strings.Join(h.knownCrops(lang), ", ")
}

// cropsKnown is the sentence naming the crops the bot knows, for /start, /help and the replies
// that ask for a new photo.
func (h *Handler) cropsKnown(lang string) string {
	return h.loc.T(lang, "crops.known", "crops", h.knownCropList(lang), "example", h.cropExample(lang))
}

// cropExample is the name of a crop to show in "/crop NAME" examples: maize where the model
// knows it.
func (h *Handler) cropExample(lang string) string {
	crops := h.modelCrops()
	c := crops[0]
	if slices.Contains(crops, "corn") {
		c = "corn"
	}
	words := strings.Fields(strings.ToLower(h.loc.CropName(lang, c)))
	if len(words) == 0 {
		return c
	}
	return words[0]
}

// parseModelCrop reads a crop name (or AnyCrop) in any language; ok is false for a word that
// names no crop, and supported is false for a crop the model does not know.
func (h *Handler) parseModelCrop(input string) (crop string, ok, supported bool) {
	crop, ok = h.loc.ParseCrop(input)
	if !ok {
		return "", false, false
	}
	return crop, true, crop == locales.AnyCrop || slices.Contains(h.modelCrops(), crop)
}

// statedCrop is the crop for a photo: named in its caption (for that photo only), else the
// chat's choice (/crop). Crops the model does not know are ignored.
func (h *Handler) statedCrop(t *turn) string {
	if c, ok := h.loc.FindCrop(t.msg.Text); ok && slices.Contains(h.modelCrops(), c) {
		return c
	}
	if slices.Contains(h.modelCrops(), t.savedCrop) {
		return t.savedCrop
	}
	return ""
}

// cropCommand is /crop: alone it shows the chat's crop and the choices; "/crop NAME" sets it (in
// a group, group admins only, as /language), "/crop any" clears it.
func (h *Handler) cropCommand(ctx context.Context, t *turn, arg string) {
	m := t.msg
	reply := func(text string) { h.send(ctx, t, Reply{Text: text, Kind: KindCommand}) }
	list := h.knownCropList(t.lang)
	if arg == "" {
		if slices.Contains(h.modelCrops(), t.savedCrop) {
			reply(h.loc.T(t.lang, "crop.current", "crop", h.loc.CropName(t.lang, t.savedCrop), "crops", list))
			return
		}
		reply(h.loc.T(t.lang, "crop.none", "crops", list, "example", h.cropExample(t.lang)))
		return
	}
	crop, ok, supported := h.parseModelCrop(arg)
	if !ok || !supported {
		h.markError(ctx, t, "unknown crop")
		reply(h.loc.T(t.lang, "crop.unknown", "input", arg, "crops", list))
		return
	}
	if crop == locales.AnyCrop {
		crop = ""
	}
	var err error
	if m.Chat.Kind == Group {
		if !m.Sender.IsAdmin {
			h.markError(ctx, t, "not a group admin")
			reply(h.loc.T(t.lang, "crop.group_admin_only"))
			return
		}
	}
	if !h.written(ctx, t) {
		return
	}
	if m.Chat.Kind == Group {
		err = h.store.SetChatCrop(ctx, string(m.Chat.Platform), m.Chat.ID, crop)
	} else {
		err = h.store.SetUserCrop(ctx, string(m.Chat.Platform), m.Sender.ID, crop)
	}
	if err != nil {
		t.log.Error("cannot store crop", "err", err)
		h.fail(ctx, t, "error.internal", "store crop")
		return
	}
	t.savedCrop = crop
	t.rec.Crop, t.recChanged = cmp.Or(crop, locales.AnyCrop), true
	if crop == "" {
		reply(h.loc.T(t.lang, "crop.cleared"))
		return
	}
	reply(h.loc.T(t.lang, "crop.set", "crop", h.loc.CropName(t.lang, crop)))
}

// askCrop sends the "which crop?" question about a photo (analysis a) and stores it as the
// chat's open question (replacing an older one), "another crop" (locales.OtherCrop) its last
// choice.
func (h *Handler) askCrop(ctx context.Context, t *turn, hash string, a store.Analysis, crops []string) {
	crops = append(slices.Clip(crops), locales.OtherCrop)
	q := store.CropQuestion{Platform: string(t.msg.Chat.Platform), ChatID: t.msg.Chat.ID, PhotoHash: hash,
		MessageID: t.msg.ID, SenderID: t.msg.Sender.ID, Crops: crops, Lang: t.lang, Asked: h.cfg.Now()}
	if err := h.store.PutCropQuestion(ctx, q); err != nil {
		// Without the stored question the answer would find nothing: diagnose as before.
		t.log.Error("cannot store crop question; answering without it", "err", err)
		h.sendDiagnosis(ctx, t, a, "")
		return
	}
	var lines []string
	var choices []Choice
	for i, c := range crops {
		name := h.choiceName(t.lang, c)
		lines = append(lines, h.loc.Number(t.lang, i+1)+". "+name)
		choices = append(choices, Choice{Label: name, Data: cropChoicePrefix + c + ":" + hash[:min(12, len(hash))]})
	}
	text := h.loc.T(t.lang, "crop.question", "choices", strings.Join(lines, "\n"))
	h.send(ctx, t, Reply{Text: text, Kind: KindCropQuestion, Choices: choices})
}

// choiceName is a crop question's choice as shown: the crop's name, or "Another crop".
func (h *Handler) choiceName(lang, crop string) string {
	if crop == locales.OtherCrop {
		return h.loc.T(lang, "crop.another")
	}
	return h.loc.CropName(lang, crop)
}

// cropAnswer reads a message as the answer to the chat's open crop question: a tapped button,
// or (typed) the number of a choice or a crop's name, or, where the question offers it, "another
// crop" (locales.OtherCrop: "other", "nyingine", its label). ok is false when the message is no
// answer (no open question, expired, another photo's button, a text that names no crop). An
// error is a store failure other than "no question": the message must be handed in again.
func (h *Handler) cropAnswer(ctx context.Context, t *turn) (q store.CropQuestion, crop string, ok bool, err error) {
	m := t.msg
	if m.Photo != nil || len(m.Album) > 0 || (m.Choice == "" && (strings.TrimSpace(m.Text) == "" || isCommand(m.Text))) {
		return q, "", false, nil
	}
	q, err = h.store.GetCropQuestion(ctx, string(m.Chat.Platform), m.Chat.ID, h.cfg.Now().Add(-CropQuestionTTL))
	if errors.Is(err, store.ErrNotFound) {
		return q, "", false, nil
	}
	if err != nil {
		return q, "", false, fmt.Errorf("read the crop question: %w", err)
	}
	q, crop, ok = h.readCropAnswer(m, q)
	return q, crop, ok, nil
}

// readCropAnswer reads message m as an answer to the open question q. In a group only the member
// who sent the photo answers: another member's "1" or "maize" may be about their own photo.
func (h *Handler) readCropAnswer(m Message, q store.CropQuestion) (store.CropQuestion, string, bool) {
	if m.Chat.Kind == Group && q.SenderID != "" && m.Sender.ID != q.SenderID {
		return q, "", false
	}
	if m.Choice != "" {
		rest, found := strings.CutPrefix(m.Choice, cropChoicePrefix)
		crop, prefix, _ := strings.Cut(rest, ":")
		if !found || prefix == "" || !strings.HasPrefix(q.PhotoHash, prefix) || !h.offered(q, crop) {
			return q, "", false
		}
		return q, crop, true
	}
	text := strings.TrimSpace(m.Text)
	if n, err := strconv.Atoi(asciiDigits(strings.TrimRight(text, ".)"))); err == nil {
		if n >= 1 && n <= len(q.Crops) {
			return q, q.Crops[n-1], true
		}
		return q, "", false
	}
	crop, found, supported := h.parseModelCrop(text)
	if !found || crop == locales.AnyCrop || (!supported && !(crop == locales.OtherCrop && h.offered(q, crop))) {
		return q, "", false
	}
	return q, crop, true
}

// offered: crop answers question q: a crop of the model (also one not offered: the farmer knows
// the crop), or "another crop" where q offers it.
func (h *Handler) offered(q store.CropQuestion, crop string) bool {
	if crop == locales.OtherCrop {
		return slices.Contains(q.Crops, crop)
	}
	return slices.Contains(h.modelCrops(), crop)
}

// answerCropQuestion answers the photo of a crop question again, from the cache, within the crop
// the farmer chose, and closes the question. "Another crop" (locales.OtherCrop) gets the
// unknown-crop reply: the crops the bot knows, how to photograph one, how to name it.
func (h *Handler) answerCropQuestion(ctx context.Context, t *turn, q store.CropQuestion, crop string) {
	another := crop == locales.OtherCrop
	if another {
		crop = ""
	}
	t.rec.Crop, t.recChanged = crop, true
	t.replyPhoto, t.replyTo = q.PhotoHash, q.MessageID
	a, err := h.store.GetAnalysis(ctx, q.PhotoHash, h.model.Info().Version)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		// A store failure, not a missing analysis: no reply now, the message is handed in again.
		t.log.Error("crop answer: cannot read the photo's analysis", "err", err)
		t.unwritten = true
		return
	}
	if err != nil {
		// The model changed since the question: the photo must be sent again.
		t.log.Info("crop answer: the photo's analysis is gone", "err", err)
		h.markError(ctx, t, "crop question's photo not analysed by this model")
		h.send(ctx, t, Reply{Text: h.loc.T(t.lang, "text.need_photo"), Kind: KindCommand})
		return
	}
	t.cacheHits++
	if another && !a.Rejected {
		a.OtherCrop = true // the farmer says so
	}
	h.sendDiagnosis(ctx, t, a, crop)
	if ctx.Err() != nil || t.unwritten {
		// Interrupted before the answer went out: the message is handed in again and must still
		// find its question.
		return
	}
	if err := h.store.DeleteCropQuestion(context.WithoutCancel(ctx), q.Platform, q.ChatID, q.PhotoHash); err != nil {
		t.log.Warn("cannot close the crop question", "err", err)
	}
}

// closeOlderQuestion closes the chat's open crop question about another photo when a newer photo
// is answered without one: a "maize" typed afterwards is about the newer photo, and must not
// re-answer the older. Best effort: a question left open still expires.
func (h *Handler) closeOlderQuestion(ctx context.Context, t *turn, hash string) {
	chat := t.msg.Chat
	q, err := h.store.GetCropQuestion(ctx, string(chat.Platform), chat.ID, h.cfg.Now().Add(-CropQuestionTTL))
	if err != nil || q.PhotoHash == hash {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.log.Warn("cannot read the crop question", "err", err)
		}
		return
	}
	if err := h.store.DeleteCropQuestion(context.WithoutCancel(ctx), q.Platform, q.ChatID, q.PhotoHash); err != nil {
		t.log.Warn("cannot close the older crop question", "err", err)
	}
}

// asciiDigits turns the decimal digits of any script ("২" in Bengali, "३" in Devanagari, as the
// numbered question shows them in those languages) into ASCII ones, so that an answer by number
// parses whatever keyboard typed it.
func asciiDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsDigit(r) && (r < '0' || r > '9') {
			// Unicode decimal digits come in runs of ten starting at a zero.
			for zero := r; zero > r-10; zero-- {
				if !unicode.IsDigit(zero - 1) {
					return '0' + (r - zero)
				}
			}
		}
		return r
	}, s)
}
