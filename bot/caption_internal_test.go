package bot

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// telegramCaptionLimit is Telegram's limit on a photo caption, in UTF-16 code units.
const telegramCaptionLimit = 1024

// TestLongestCaptionFitsTelegram builds, in every language, the longest caption the handler can
// write — the three classes with the longest names, the longest percentages, the unsure and the
// healthy wordings, an album of ten with nine left out — and checks it fits Telegram's limit.
func TestLongestCaptionFitsTelegram(t *testing.T) {
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	classes := loc.Classes()
	if err := loc.CheckClasses(classes); err != nil {
		t.Fatal(err)
	}
	h := &Handler{loc: loc, cfg: Config{Threshold: 0.5}.withDefaults(), model: classesOnly(classes)}
	for _, l := range loc.Languages() {
		t.Run(l.Code, func(t *testing.T) {
			// The three longest crop + disease names in this language.
			byLen := slices.Clone(classes)
			size := func(c string) int {
				d, _ := loc.Disease(l.Code, c)
				return len(utf16.Encode([]rune(d.Crop + d.Name)))
			}
			slices.SortFunc(byLen, func(a, b string) int { return cmp.Compare(size(b), size(a)) })
			longest := 0
			for _, top := range []float64{0.45, 0.985} { // unsure, then sure
				for _, first := range []string{byLen[0], "tomato__healthy", "apple__healthy"} {
					if _, err := loc.Disease(l.Code, first); err != nil {
						continue
					}
					a := store.Analysis{Top: []store.Candidate{{Class: first, Prob: top}, {Class: byLen[1], Prob: 0.0045}, {Class: byLen[2], Prob: 0.0044}}}
					caption, _, _ := h.diagnosisText(l.Code, a)
					// A stated crop adds a line (the longest crop name).
					caption = loc.T(l.Code, "crop.stated", "crop", longestCrop(loc, l.Code, classes)) + "\n\n" + caption
					album := loc.TN(l.Code, "album.header", 10) + " " + loc.TN(l.Code, "album.left_out", 9) + "\n\n" + caption
					longest = max(longest, len(utf16.Encode([]rune(album))))
					if strings.Contains(caption, "{") {
						t.Errorf("unfilled placeholder in %q", caption)
					}
				}
			}
			if longest > telegramCaptionLimit {
				t.Errorf("longest caption in %s is %d UTF-16 units, over Telegram's %d", l.Code, longest, telegramCaptionLimit)
			}
			t.Logf("%s: longest caption %d of %d", l.Code, longest, telegramCaptionLimit)
		})
	}
}

// classesOnly is a model that only has classes.
type classesOnly []string

func (c classesOnly) Analyze(context.Context, []byte) (inference.Result, error) {
	return inference.Result{}, errors.New("classesOnly analyses nothing")
}

func (c classesOnly) Info() inference.Info {
	return inference.Info{Classes: c, Version: "classes-only"}
}

func longestCrop(loc *locales.Bundle, lang string, classes []string) string {
	longest := ""
	for _, c := range classes {
		if n := loc.CropName(lang, locales.CropOf(c)); len([]rune(n)) > len([]rune(longest)) {
			longest = n
		}
	}
	return longest
}
