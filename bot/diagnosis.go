package bot

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cropshield/cropshield/store"
)

// diagnosisText renders an analysis for the farmer: a caption for the overlay with the top-3 and
// their honest percentages (or the polite "not sure: retake it like this"), and the details that
// follow it: the top disease's symptoms and advice. A photo that is not a leaf gets only the
// retake message; a leaf of a crop the model does not know gets the crops it knows and how to
// photograph one of them (no disease, no percentages, no advice).
func (h *Handler) diagnosisText(lang string, a store.Analysis) (caption, details string, kind ReplyKind) {
	kind = h.cfg.kindOf(a)
	if kind == KindNotLeaf {
		// The header ends "…if it is a leaf, take a new photo like this:"; the tips follow.
		return "", h.loc.T(lang, "notleaf.header") + "\n" + h.loc.T(lang, "photo.tips") + "\n\n" + h.cropsKnown(lang), KindNotLeaf
	}
	if kind == KindUnknownCrop {
		var crops strings.Builder
		for _, c := range h.knownCrops(lang) {
			crops.WriteString("\n• " + c)
		}
		text := h.loc.T(lang, "unknowncrop.header", "crops", strings.TrimPrefix(crops.String(), "\n"))
		return "", text + "\n\n" + h.loc.T(lang, "unknowncrop.retake") + "\n\n" + h.loc.T(lang, "unknowncrop.hint", "example", h.cropExample(lang)), KindUnknownCrop
	}
	top := a.Top[0]
	best, err := h.loc.Disease(lang, top.Class)
	if err != nil {
		// NewHandler checked every class; an analysis of another model cannot reach here.
		return "", h.loc.T(lang, "error.internal"), KindError
	}
	var c, d strings.Builder
	line := func(b *strings.Builder, s string) { b.WriteString(s); b.WriteByte('\n') }
	bullets := func(items []string) {
		for _, it := range items {
			line(&d, "• "+it)
		}
	}
	unsure := kind == KindUnsure
	switch {
	case unsure:
		line(&c, h.loc.T(lang, "unsure.header", "crop", best.Crop, "disease", best.Name, "percent", h.loc.Percent(lang, top.Prob)))
		line(&c, "")
		line(&c, h.loc.T(lang, "unsure.retake"))
		line(&c, h.loc.T(lang, "photo.tips"))
		line(&c, "")
	case best.Healthy:
		line(&c, h.loc.T(lang, "diagnosis.healthy", "crop", best.Crop, "percent", h.loc.Percent(lang, top.Prob)))
		line(&c, "")
	}
	line(&c, h.loc.T(lang, "diagnosis.header"))
	for i, cand := range a.Top {
		dis, err := h.loc.Disease(lang, cand.Class)
		if err != nil {
			continue
		}
		line(&c, h.loc.T(lang, "diagnosis.line", "rank", strconv.Itoa(i+1), "crop", dis.Crop, "disease", dis.Name, "percent", h.loc.Percent(lang, cand.Prob)))
	}
	line(&c, "")
	line(&c, h.loc.T(lang, "diagnosis.heatmap"))
	if unsure {
		// The crops it knows, so that a farmer of another crop does not retake photos forever.
		return strings.TrimSpace(c.String()), h.cropsKnown(lang), KindUnsure
	}
	if !best.Healthy {
		line(&d, h.loc.T(lang, "diagnosis.symptoms"))
		bullets(best.Symptoms)
		line(&d, "")
	}
	line(&d, h.loc.T(lang, "diagnosis.advice"))
	bullets(best.Advice)
	if !best.Healthy {
		line(&d, h.loc.T(lang, "diagnosis.urgency", "text", best.Urgency))
		line(&d, h.loc.T(lang, "diagnosis.call_expert", "text", best.CallExpert))
		line(&d, "")
		line(&d, h.loc.T(lang, "diagnosis.safety"))
	}
	return strings.TrimSpace(c.String()), strings.TrimSpace(d.String()), KindDiagnosis
}

// knownCrops lists the crops of the model's classes, named in lang, each once, in class order.
func (h *Handler) knownCrops(lang string) []string {
	var crops []string
	for _, class := range h.model.Info().Classes {
		d, err := h.loc.Disease(lang, class)
		if err == nil && !slices.Contains(crops, d.Crop) {
			crops = append(crops, d.Crop)
		}
	}
	return crops
}

// FullText is the caption and the text of a reply as one text, for channels without captions.
func (r Reply) FullText() string {
	switch {
	case r.Caption == "":
		return r.Text
	case r.Text == "":
		return r.Caption
	}
	return r.Caption + "\n\n" + r.Text
}

// String makes Reply readable in logs and test failures (the image as its size only).
func (r Reply) String() string {
	return fmt.Sprintf("Reply{%s %s/%s to %q, %d image bytes, %d album images: %q}", r.Kind, r.Chat.Platform, r.Chat.ID, r.ReplyTo, len(r.Image), len(r.Images), r.FullText())
}
