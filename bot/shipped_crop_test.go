package bot_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
)

// TestShippedModelStatedCrop: with the shipped model, a farmer who says "maize" — by /crop, in
// the caption, or answering the bot's question — gets a maize top-3 on held-out maize field
// photos: never another crop's disease, never "looks like another crop", never the unknown-crop
// refusal. The same for tomato field photos said to be "nyanya" (Swahili).
func TestShippedModelStatedCrop(t *testing.T) {
	for _, tc := range []struct{ split, word, crop string }{
		{"corn-test", "maize", "corn"},
		{"tomato-test", "nyanya", "tomato"},
	} {
		t.Run(tc.split, func(t *testing.T) { statedCropOnShippedModel(t, tc.split, tc.word, tc.crop) })
	}
}

func statedCropOnShippedModel(t *testing.T, split, word, crop string) {
	datasets := testenv.Datasets(t)
	m := testenv.LoadShipped(t)
	loc := loc(t)
	f := newFixture(t, bot.Config{Burst: 1 << 20, ClearCropShare: 0.66}, m)
	rels := testenv.HeldOut(t, split, 3)
	name := loc.CropName("en", crop)
	asked, rightWithin := 0, 0
	for _, rel := range rels {
		data, err := os.ReadFile(filepath.Join(datasets, rel))
		if err != nil {
			t.Fatal(err)
		}
		class := filepath.Base(filepath.Dir(rel))
		for _, how := range []string{"caption", "/crop", "answer"} {
			chat := private(how + "-" + rel)
			sender := bot.Sender{ID: "u-" + chat.ID}
			caption := ""
			switch how {
			case "caption":
				caption = word
			case "/crop":
				if r := f.send(chat, sender, "/crop "+word, nil); len(r) != 1 {
					t.Fatalf("/crop %s: %v", word, r)
				}
			}
			r := f.send(chat, sender, caption, bytesPhoto(data))
			if len(r) != 1 {
				t.Fatalf("%s %s: %v", how, rel, r)
			}
			if how == "answer" {
				if r[0].Kind != bot.KindCropQuestion {
					continue // the model was sure of the crop: nothing to answer
				}
				asked++
				if r = f.send(chat, sender, word, nil); len(r) != 1 {
					t.Fatalf("answer %s to %s: %v", word, rel, r)
				}
			}
			got := r[0]
			if got.Kind != bot.KindDiagnosis && got.Kind != bot.KindUnsure {
				t.Errorf("%s by %s: a %s reply, want a diagnosis within %s:\n%s", rel, how, got.Kind, crop, got.FullText())
				continue
			}
			if !strings.HasPrefix(got.Caption, loc.T("en", "crop.stated", "crop", name)) {
				t.Errorf("%s by %s: caption does not say the stated crop:\n%s", rel, how, got.Caption)
			}
			for _, c := range loc.Classes() {
				d, _ := loc.Disease("en", c)
				if locales.CropOf(c) != crop && strings.Contains(got.Caption, d.Crop+": "+d.Name) {
					t.Errorf("%s by %s: the top-3 within %s names %s", rel, how, crop, c)
				}
			}
			d, _ := loc.Disease("en", class)
			if how == "caption" && strings.Contains(got.Caption, "1. "+d.Crop+": "+d.Name) {
				rightWithin++
			}
		}
	}
	t.Logf("%d held-out %s photos: right top-1 within the crop %d; the bot asked which crop for %d", len(rels), crop, rightWithin, asked)
}

// firstUnknownCrop is the first of (at most) the first 100 photos of a held-out split that the
// model refuses as a leaf of a crop it does not know.
func firstUnknownCrop(t *testing.T, m *inference.Model, datasets, split string) []byte {
	t.Helper()
	rels := testenv.HeldOut(t, split, 1<<30)
	for _, rel := range rels[:min(100, len(rels))] {
		data, err := os.ReadFile(filepath.Join(datasets, rel))
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Analyze(t.Context(), data)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if res.IsLeaf && !res.KnownCrop {
			t.Logf("%s: refused as an unknown crop (unknown_crop %.2f)", rel, res.UnknownCrop)
			return data
		}
	}
	t.Fatalf("none of the first %d photos of %s is refused by %s as an unknown crop: the test needs one (has the model changed?)", min(100, len(rels)), split, m.Info().Version)
	return nil
}

// TestShippedModelAsksTheCrop: the shipped model refuses some held-out tomato field photos as an
// unknown crop (no crop reaches 66 %); the bot asks which crop instead, and the farmer's
// "tomato" gets a tomato diagnosis. A chilli leaf (a crop it does not know) gets the question
// too, and "another crop" the unknown-crop reply.
func TestShippedModelAsksTheCrop(t *testing.T) {
	datasets := testenv.Datasets(t)
	m := testenv.LoadShipped(t)
	loc := loc(t)
	f := newFixture(t, bot.Config{Burst: 1 << 20, ClearCropShare: 0.66}, m)
	for _, tc := range []struct {
		split, answer, want string
	}{
		{"tomato-test", "tomato", "tomato"},
		{"chilli-test", loc.T("en", "crop.another"), ""},
	} {
		t.Run(tc.split, func(t *testing.T) {
			photo := firstUnknownCrop(t, m, datasets, tc.split)
			chat, farmer := private("ask-"+tc.split), bot.Sender{ID: "u-" + tc.split}
			r := f.send(chat, farmer, "", bytesPhoto(photo))
			if len(r) != 1 || r[0].Kind != bot.KindCropQuestion {
				t.Fatalf("reply %v, want the question which crop", r)
			}
			if n := len(r[0].Choices); n < 3 || n > 5 || r[0].Choices[n-1].Label != loc.T("en", "crop.another") {
				t.Fatalf("choices %v: want two to four crops and \"another crop\" last", r[0].Choices)
			}
			t.Logf("asked:\n%s", r[0].Text)
			if r = f.send(chat, farmer, tc.answer, nil); len(r) != 1 {
				t.Fatalf("answer %q: %v", tc.answer, r)
			}
			got := r[0]
			if tc.want == "" {
				checkUnknownCropReply(t, loc, "en", got, knownCrops(t, loc, "en", m.Info().Classes), m.Info().Classes)
				return
			}
			if got.Kind != bot.KindDiagnosis && got.Kind != bot.KindUnsure {
				t.Fatalf("answer %q: a %s reply, want a diagnosis within %s:\n%s", tc.answer, got.Kind, tc.want, got.FullText())
			}
			if !strings.HasPrefix(got.Caption, loc.T("en", "crop.stated", "crop", loc.CropName("en", tc.want))) {
				t.Errorf("caption does not say the stated crop:\n%s", got.Caption)
			}
			for _, c := range m.Info().Classes {
				d, _ := loc.Disease("en", c)
				if locales.CropOf(c) != tc.want && strings.Contains(got.Caption, d.Crop+": "+d.Name) {
					t.Errorf("the top-3 within %s names %s:\n%s", tc.want, c, got.Caption)
				}
			}
		})
	}
}
