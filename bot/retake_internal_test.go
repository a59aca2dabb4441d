package bot

import (
	"strings"
	"testing"

	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

// TestRetakeAdviceSaidOnce: in every language, the not-a-leaf and the not-sure replies say "take
// a new photo like this" once, followed by the photo tips once (the not-a-leaf reply said it twice:
// its header's last sentence and the retake advice's first line).
func TestRetakeAdviceSaidOnce(t *testing.T) {
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	classes := loc.Classes()
	h := &Handler{loc: loc, cfg: Config{Threshold: 0.5}.withDefaults(), model: classesOnly(classes)}
	cases := []struct {
		name string
		a    store.Analysis
	}{
		{"not a leaf", store.Analysis{Rejected: true, NotLeaf: 0.97}},
		{"not sure", store.Analysis{Top: []store.Candidate{{Class: classes[0], Prob: 0.3}, {Class: classes[1], Prob: 0.2}}}},
	}
	for _, l := range loc.Languages() {
		for _, c := range cases {
			t.Run(l.Code+"/"+c.name, func(t *testing.T) {
				caption, details, _ := h.diagnosisText(l.Code, c.a)
				text := caption + "\n\n" + details
				tips := loc.T(l.Code, "photo.tips")
				if strings.TrimSpace(tips) == "" || strings.Count(text, tips) != 1 {
					t.Errorf("the photo tips %q are not said exactly once:\n%s", tips, text)
				}
				// Two introductions in a row ("…like this:\nPlease take a new photo like this:").
				var prev string
				for line := range strings.Lines(text) {
					line = strings.TrimSpace(line)
					if introduces(prev) && introduces(line) {
						t.Errorf("two introductions in a row: %q then %q:\n%s", prev, line, text)
					}
					if line != "" && !strings.HasPrefix(line, "-") && !strings.HasPrefix(line, "•") &&
						strings.Count(text, line) > 1 && len([]rune(line)) > 12 {
						t.Errorf("line %q said more than once:\n%s", line, text)
					}
					prev = line
				}
			})
		}
	}
}

// introduces reports whether a line introduces what follows (ends with a colon, Amharic's ፦ too).
func introduces(line string) bool {
	return strings.HasSuffix(line, ":") || strings.HasSuffix(line, "፦")
}
