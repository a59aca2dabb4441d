package bot

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cropshield/cropshield/store"
)

// diagnosisText renders an analysis for the farmer: the top-3 with honest percentages, then
// either the top disease's symptoms and advice, or the polite "not sure: retake it like this".
func (h *Handler) diagnosisText(lang string, a store.Analysis) (text, kind string) {
	var b strings.Builder
	line := func(s string) { b.WriteString(s); b.WriteByte('\n') }
	bullets := func(items []string) {
		for _, it := range items {
			line("• " + it)
		}
	}
	if a.Rejected {
		return h.loc.T(lang, "notleaf.header") + "\n" + h.loc.T(lang, "unsure.retake"), "not_leaf"
	}
	top := a.Top[0]
	best, err := h.loc.Disease(lang, top.Class)
	if err != nil {
		// NewHandler checked every class; an analysis of another model cannot reach here.
		return h.loc.T(lang, "error.internal"), "error"
	}
	unsure := top.Prob < h.cfg.Threshold
	switch {
	case unsure:
		line(h.loc.T(lang, "unsure.header", "crop", best.Crop, "disease", best.Name, "percent", h.loc.Percent(lang, top.Prob)))
		line("")
		line(h.loc.T(lang, "unsure.retake"))
		line("")
	case best.Healthy:
		line(h.loc.T(lang, "diagnosis.healthy", "crop", best.Crop, "percent", h.loc.Percent(lang, top.Prob)))
		line("")
	}
	line(h.loc.T(lang, "diagnosis.header"))
	for i, c := range a.Top {
		d, err := h.loc.Disease(lang, c.Class)
		if err != nil {
			continue
		}
		line(h.loc.T(lang, "diagnosis.line", "rank", strconv.Itoa(i+1), "crop", d.Crop, "disease", d.Name, "percent", h.loc.Percent(lang, c.Prob)))
	}
	if unsure {
		return strings.TrimSpace(b.String()), "unsure"
	}
	line("")
	if !best.Healthy {
		line(h.loc.T(lang, "diagnosis.symptoms"))
		bullets(best.Symptoms)
		line("")
	}
	line(h.loc.T(lang, "diagnosis.advice"))
	bullets(best.Advice)
	if !best.Healthy {
		line(h.loc.T(lang, "diagnosis.urgency", "text", best.Urgency))
		line(h.loc.T(lang, "diagnosis.call_expert", "text", best.CallExpert))
		line("")
		line(h.loc.T(lang, "diagnosis.safety"))
	}
	line("")
	line(h.loc.T(lang, "diagnosis.heatmap"))
	return strings.TrimSpace(b.String()), "diagnosis"
}

// String makes Reply readable in logs and test failures (the image as its size only).
func (r Reply) String() string {
	return fmt.Sprintf("Reply{%s %s/%s to %q, %d image bytes: %q}", r.Kind, r.Chat.Platform, r.Chat.ID, r.ReplyTo, len(r.Image), r.Text)
}
