package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// Command is a parsed slash command: "/language@CropShieldBot sw" is Name "language", Arg "sw",
// Bot "CropShieldBot".
type Command struct {
	Name string // lower case, without the slash
	Arg  string // the rest of the text, trimmed ("" for none)
	Bot  string // the @bot the command is addressed to (Telegram groups), "" for none
}

// ParseCommand parses a slash command: a "/" at the start of the text (leading white space
// ignored) followed by a letter, digit or underscore. The name ends at the first white space of
// any kind ("/language\nsw" is "language" with "sw") and is lower-cased; an "@bot" suffix is
// split off. ok is false for anything else ("/", "//", "/ x", a plain text). Every channel and
// the handler use this one parser.
func ParseCommand(text string) (c Command, ok bool) {
	t := strings.TrimSpace(text)
	if len(t) < 2 || t[0] != '/' || !isWordByte(t[1]) {
		return Command{}, false
	}
	head, rest := t[1:], ""
	if i := strings.IndexFunc(head, unicode.IsSpace); i >= 0 {
		head, rest = head[:i], head[i:]
	}
	name, at, _ := strings.Cut(head, "@")
	return Command{Name: strings.ToLower(name), Arg: strings.TrimSpace(rest), Bot: at}, true
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isCommand reports whether text is a slash command.
func isCommand(text string) bool {
	_, ok := ParseCommand(text)
	return ok
}

func (h *Handler) handleCommand(ctx context.Context, t *turn) {
	c, _ := ParseCommand(t.msg.Text)
	name, arg := c.Name, c.Arg
	reply := func(text string) { h.send(ctx, t, Reply{Text: text, Kind: KindCommand}) }
	switch name {
	case "start":
		who := t.msg.Sender.Name
		if who == "" {
			who = "👋"
		}
		reply(h.loc.T(t.lang, "start", "name", who) + "\n\n" + h.cropsKnown(t.lang))
	case "help":
		reply(h.loc.T(t.lang, "help") + "\n\n" + h.cropsKnown(t.lang))
	case "crop":
		h.cropCommand(ctx, t, arg)
	case "language", "lang":
		h.language(ctx, t, arg)
	case "diagnose":
		// "/diagnose" is the caption that addresses a photo to the bot in a group; alone it
		// needs the photo.
		reply(h.loc.T(t.lang, "text.need_photo"))
	case "history":
		h.history(ctx, t)
	case "forget":
		h.forget(ctx, t, arg)
	default:
		h.markError(ctx, t, "unknown command")
		reply(h.loc.T(t.lang, "command.unknown", "command", "/"+name))
	}
}

// languageList is one line per language: "sw - Kiswahili (Swahili)".
func (h *Handler) languageList() string {
	var b strings.Builder
	for _, l := range h.loc.Languages() {
		fmt.Fprintf(&b, "/language %s - %s", l.Code, l.Name)
		if l.EnglishName != "" && l.EnglishName != l.Name {
			fmt.Fprintf(&b, " (%s)", l.EnglishName)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

func (h *Handler) language(ctx context.Context, t *turn, arg string) {
	m := t.msg
	reply := func(text string) { h.send(ctx, t, Reply{Text: text, Kind: KindCommand}) }
	if arg == "" {
		name := t.lang
		for _, l := range h.loc.Languages() {
			if l.Code == t.lang {
				name = l.Name
			}
		}
		example := "sw"
		if t.lang == "sw" {
			example = locales.Default
		}
		reply(h.loc.T(t.lang, "language.current", "language", name, "example", example, "list", h.languageList()))
		return
	}
	code, ok := h.loc.Parse(arg)
	if !ok {
		h.markError(ctx, t, "unknown language")
		reply(h.loc.T(t.lang, "language.unknown", "input", arg, "list", h.languageList()))
		return
	}
	var err error
	if m.Chat.Kind == Group {
		if !m.Sender.IsAdmin {
			h.markError(ctx, t, "not a group admin")
			reply(h.loc.T(t.lang, "language.group_admin_only"))
			return
		}
	}
	if !h.written(ctx, t) {
		return
	}
	if m.Chat.Kind == Group {
		err = h.store.SetChatLanguage(ctx, string(m.Chat.Platform), m.Chat.ID, code)
	} else {
		err = h.store.SetUserLanguage(ctx, string(m.Chat.Platform), m.Sender.ID, code)
	}
	if err != nil {
		t.log.Error("cannot store language", "err", err)
		h.fail(ctx, t, "error.internal", "store language")
		return
	}
	t.lang = code
	reply(h.loc.T(code, "language.set"))
}

// history lists the chat's last photos with their diagnoses (from the current model).
func (h *Handler) history(ctx context.Context, t *turn) {
	m := t.msg
	recs, err := h.store.RecentMessages(ctx, string(m.Chat.Platform), m.Chat.ID, 200)
	if err != nil {
		t.log.Error("cannot read history", "err", err)
		h.fail(ctx, t, "error.internal", "read history")
		return
	}
	version := h.model.Info().Version
	// The crop each photo was answered within: stated with the photo, or later in the answer to
	// "which crop?" (the bot's diagnosis then carries the photo's hash and the crop).
	answeredCrop := map[string]string{}
	for _, r := range recs {
		if r.Direction == store.Outbound && r.PhotoHash != "" && r.Crop != "" {
			answeredCrop[r.PhotoHash] = r.Crop
		}
	}
	var lines []string
	for i := len(recs) - 1; i >= 0 && len(lines) < h.cfg.HistoryLen; i-- {
		r := recs[i]
		if r.Direction != store.Inbound || (r.PhotoHash == "" && r.Error == "") || r.Seq == t.rec.Seq {
			continue
		}
		if m.Chat.Kind == Group && r.SenderID != m.Sender.ID {
			continue
		}
		date := r.Time.Format("2006-01-02")
		if r.PhotoHash != "" {
			// Support staff's verdict wins over the model's, whatever model made the analysis.
			c, err := h.store.GetCorrection(ctx, r.PhotoHash)
			if err == nil {
				if d, err := h.loc.Disease(t.lang, c.Class); err == nil {
					lines = append(lines, h.loc.T(t.lang, "history.item_corrected", "date", date, "crop", d.Crop, "disease", d.Name))
					continue
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				t.log.Warn("history: cannot read correction", "hash", r.PhotoHash, "err", err)
			}
		}
		if r.PhotoHash == "" {
			if isCommand(r.Text) || r.Error == reasonRateLimited {
				continue
			}
			lines = append(lines, h.loc.T(t.lang, "history.item_failed", "date", date))
			continue
		}
		a, err := h.store.GetAnalysis(ctx, r.PhotoHash, version)
		if errors.Is(err, store.ErrNotFound) || len(a.Top) == 0 {
			continue
		}
		if err != nil {
			t.log.Warn("history: cannot read analysis", "hash", r.PhotoHash, "err", err)
			continue
		}
		if crop := cmp.Or(answeredCrop[r.PhotoHash], r.Crop); crop != "" {
			// Within the crop the farmer stated for the photo, as it was answered.
			if o := withinCrop(a, crop); !o.mismatch {
				a = o.a
			}
		}
		top := a.Top[0]
		if a.Rejected {
			lines = append(lines, h.loc.T(t.lang, "history.item_notleaf", "date", date))
			continue
		}
		if a.OtherCrop {
			lines = append(lines, h.loc.T(t.lang, "history.item_unknowncrop", "date", date))
			continue
		}
		if top.Prob < h.cfg.Threshold {
			lines = append(lines, h.loc.T(t.lang, "history.item_unsure", "date", date, "percent", h.loc.Percent(t.lang, top.Prob)))
			continue
		}
		d, err := h.loc.Disease(t.lang, top.Class)
		if err != nil {
			continue
		}
		lines = append(lines, h.loc.T(t.lang, "history.item", "date", date, "crop", d.Crop, "disease", d.Name, "percent", h.loc.Percent(t.lang, top.Prob)))
	}
	if len(lines) == 0 {
		h.send(ctx, t, Reply{Text: h.loc.T(t.lang, "history.empty"), Kind: KindCommand})
		return
	}
	h.send(ctx, t, Reply{Text: h.loc.T(t.lang, "history.header") + "\n" + strings.Join(lines, "\n"), Kind: KindCommand})
}
