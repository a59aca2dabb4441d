package bot_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"slices"
	"strings"
	"testing"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
)

// judging makes the shared model give every photo the verdicts of a model with not_leaf and
// unknown_crop outputs.
type judging struct {
	*inference.Model
	isLeaf, knownCrop bool
}

func (j judging) Analyze(ctx context.Context, photo []byte) (inference.Result, error) {
	res, err := j.Model.Analyze(ctx, photo)
	res.IsLeaf, res.KnownCrop = j.isLeaf, j.knownCrop
	res.NotLeaf, res.UnknownCrop = 0.1, 0.2
	if !j.isLeaf {
		res.NotLeaf = 0.98
	}
	if !j.knownCrop {
		res.UnknownCrop = 0.91
	}
	return res, err
}

// knownCrops is what the reply must list: the crops of the classes in lang, each once, in class
// order.
func knownCrops(t *testing.T, loc *locales.Bundle, lang string, classes []string) []string {
	t.Helper()
	var crops []string
	for _, c := range classes {
		d, err := loc.Disease(lang, c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(crops, d.Crop) {
			crops = append(crops, d.Crop)
		}
	}
	return crops
}

// bullets are the lines of text that start with "• ", without it.
func bullets(text string) []string {
	var out []string
	for line := range strings.Lines(text) {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "• "); ok {
			out = append(out, c)
		}
	}
	return out
}

// checkUnknownCropReply checks an unknown-crop reply in lang: text only, the known crops as a
// list in order, the retake advice, and nothing of a diagnosis.
func checkUnknownCropReply(t *testing.T, loc *locales.Bundle, lang string, r bot.Reply, crops []string, top []string) {
	t.Helper()
	text := r.FullText()
	if r.Kind != bot.KindUnknownCrop || r.Image != nil || r.Images != nil || r.Caption != "" {
		t.Fatalf("%s: want a text-only unknown_crop reply, got %v", lang, r)
	}
	if got := bullets(text); !slices.Equal(got, crops) {
		t.Errorf("%s: crops listed %q, want %q", lang, got, crops)
	}
	header, _, _ := strings.Cut(loc.T(lang, "unknowncrop.header"), "{crops}")
	for _, want := range []string{header, loc.T(lang, "unknowncrop.retake")} {
		if !strings.Contains(text, want) {
			t.Errorf("%s: reply lacks %q:\n%s", lang, want, text)
		}
	}
	for _, banned := range []string{"%", loc.T(lang, "diagnosis.header"), loc.T(lang, "diagnosis.advice"), loc.T(lang, "diagnosis.symptoms"), loc.T(lang, "diagnosis.heatmap")} {
		if strings.Contains(text, banned) {
			t.Errorf("%s: an unknown crop must not be diagnosed, reply holds %q:\n%s", lang, banned, text)
		}
	}
	for _, class := range top {
		// A healthy class's name is no disease (and Bengali's "healthy" is inside "sick").
		if d, _ := loc.Disease(lang, class); !d.Healthy && d.Name != "" && strings.Contains(text, d.Name) {
			t.Errorf("%s: reply names the disease %q:\n%s", lang, d.Name, text)
		}
	}
	if strings.Contains(text, "{") {
		t.Errorf("%s: unfilled placeholder:\n%s", lang, text)
	}
}

// TestLeafVerdicts: not-a-leaf takes precedence over unknown-crop, and only a leaf of a known crop
// is diagnosed. What the model found is stored either way.
func TestLeafVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name                string
		isLeaf, knownCrop   bool
		kind                bot.ReplyKind
		rejected, otherCrop bool
	}{
		{"leaf of a known crop", true, true, bot.KindDiagnosis, false, false},
		{"leaf of another crop", true, false, bot.KindUnknownCrop, false, true},
		{"not a leaf", false, true, bot.KindNotLeaf, true, false},
		{"not a leaf, and no known crop", false, false, bot.KindNotLeaf, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, bot.Config{Threshold: 0.01}, judging{testenv.ContractSession(t), tc.isLeaf, tc.knownCrop})
			photo := testenv.LeafJPEG(t, 320, 240, 21)
			r := f.photo("c1", bytesPhoto(photo))
			if r.Kind != tc.kind || (r.Image != nil) != (tc.kind == bot.KindDiagnosis) {
				t.Fatalf("reply %v, want kind %s", r, tc.kind)
			}
			a, err := f.store.GetAnalysis(context.Background(), hashOf(photo), "contract-v1")
			if err != nil || a.Rejected != tc.rejected || a.OtherCrop != tc.otherCrop || len(a.Top) != 3 || len(a.Overlay) == 0 {
				t.Fatalf("stored analysis rejected %v other crop %v, %d candidates, %d overlay bytes, %v",
					a.Rejected, a.OtherCrop, len(a.Top), len(a.Overlay), err)
			}
			if wantUC := map[bool]float64{true: 0.2, false: 0.91}[tc.knownCrop]; a.UnknownCrop != wantUC {
				t.Errorf("stored unknown-crop score %v, want %v", a.UnknownCrop, wantUC)
			}
		})
	}
}

// TestUnknownCropReply: a leaf of a crop the model does not know gets, in every language, the
// list of crops the model knows and how to photograph one of them; never a disease. The photo and
// the analysis are kept, the cache answers alike, the log and /history say what happened.
func TestUnknownCropReply(t *testing.T) {
	model := testenv.ContractSession(t)
	f := newFixture(t, bot.Config{Threshold: 0.01}, judging{model, true, false})
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	classes := model.Info().Classes
	photo := testenv.LeafJPEG(t, 320, 240, 22)
	ctx := context.Background()
	for i, l := range loc.Languages() {
		chat := "lang-" + l.Code
		replies := f.send(private(chat), bot.Sender{ID: "u-" + chat, LangHint: l.Code}, "", bytesPhoto(photo))
		if len(replies) != 1 {
			t.Fatalf("%s: %d replies", l.Code, len(replies))
		}
		a, err := f.store.GetAnalysis(ctx, hashOf(photo), "contract-v1")
		if err != nil || !a.OtherCrop || a.Rejected {
			t.Fatalf("%s: stored analysis %+v, %v", l.Code, a, err)
		}
		var top []string
		for _, c := range a.Top {
			top = append(top, c.Class)
		}
		crops := knownCrops(t, loc, l.Code, classes)
		if i == 0 && len(crops) != 9 {
			t.Errorf("the contract model's 25 classes are of 9 crops, listed %d: %q", len(crops), crops)
		}
		checkUnknownCropReply(t, loc, l.Code, replies[0], crops, top)
		recs, err := f.store.RecentMessages(ctx, "webchat", chat, 10)
		if err != nil || len(recs) != 2 || recs[0].PhotoHash != hashOf(photo) || recs[1].Kind != string(bot.KindUnknownCrop) || recs[1].Text != replies[0].FullText() {
			t.Fatalf("%s: log %+v, %v", l.Code, recs, err)
		}
		h := f.send(private(chat), bot.Sender{ID: "u-" + chat, LangHint: l.Code}, "/history", nil)
		want := loc.T(l.Code, "history.item_unknowncrop", "date", recs[0].Time.Format("2006-01-02"))
		if len(h) != 1 || !strings.Contains(h[0].Text, want) {
			t.Errorf("%s: /history %v, want a line %q", l.Code, h, want)
		}
	}
	if f.inferences() != 1 {
		t.Errorf("inferences = %v, want 1: the other languages are answered from the cache", f.inferences())
	}
	if got, _, err := f.store.GetPhoto(ctx, hashOf(photo)); err != nil || !bytes.Equal(got, photo) {
		t.Errorf("stored photo: %d bytes, %v", len(got), err)
	}
}

// solidJPEG is a photo of one colour. The models of models/contract/testdata/optional take a red
// one for a leaf of a crop they do not know, a blue one for no leaf, a green one for a known leaf.
func solidJPEG(t *testing.T, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	green = color.RGBA{20, 160, 40, 255}
	red   = color.RGBA{230, 40, 30, 255}
	blue  = color.RGBA{30, 60, 240, 255}
)

// TestUnknownCropWithARealModel runs the handler on a real model with not_leaf and unknown_crop
// outputs (four classes of three crops): single photos and albums.
func TestUnknownCropWithARealModel(t *testing.T) {
	m, err := inference.Load(context.Background(), testenv.OptionalModel(t, "both"), inference.Options{
		LibraryPath: testenv.ORTLib(t), Device: inference.DeviceCPU, Threads: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	loc, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, bot.Config{Threshold: 0.01}, m)
	for i, tc := range []struct {
		name    string
		lang    string
		photos  []color.RGBA
		kind    bot.ReplyKind
		images  int
		leftOut int
	}{
		{"known leaf", "en", []color.RGBA{green}, bot.KindDiagnosis, 1, 0},
		{"leaf of another crop", "sw", []color.RGBA{red}, bot.KindUnknownCrop, 0, 0},
		{"not a leaf", "fr", []color.RGBA{blue}, bot.KindNotLeaf, 0, 0},
		{"album: the known leaf is diagnosed alone", "en", []color.RGBA{green, red, blue}, bot.KindDiagnosis, 1, 2},
		{"album: another crop and no leaf", "hi", []color.RGBA{red, blue}, bot.KindUnknownCrop, 0, 1},
		{"album: no leaf", "en", []color.RGBA{blue, blue}, bot.KindNotLeaf, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := bot.Message{ID: fmt.Sprint("r", i), Chat: private(fmt.Sprint("real", i)), Sender: bot.Sender{ID: "u", LangHint: tc.lang}}
			for j, c := range tc.photos {
				c.G += uint8(j) // distinct photos even of one colour
				p := bytesPhoto(solidJPEG(t, c))
				if len(tc.photos) == 1 {
					msg.Photo = p
				} else {
					msg.Album = append(msg.Album, p)
				}
			}
			replies := f.handle(msg)
			if len(replies) != 1 {
				t.Fatalf("%d replies: %v", len(replies), replies)
			}
			r := replies[0]
			images := len(r.Images)
			if r.Image != nil {
				images++
			}
			if r.Kind != tc.kind || images != tc.images {
				t.Fatalf("reply %v: want kind %s with %d images", r, tc.kind, tc.images)
			}
			if tc.kind == bot.KindUnknownCrop {
				crops := knownCrops(t, loc, tc.lang, m.Info().Classes)
				if len(crops) != 3 {
					t.Fatalf("4 classes of 3 crops, got %q", crops)
				}
				checkUnknownCropReply(t, loc, tc.lang, bot.Reply{Kind: r.Kind, Text: r.FullText()}, crops, m.Info().Classes)
			}
			if head := loc.TN(tc.lang, "album.header", len(tc.photos)); len(tc.photos) > 1 && strings.Count(r.FullText(), head) != 1 {
				t.Errorf("album header %q not once in %q", head, r.FullText())
			}
			left := loc.TN(tc.lang, "album.left_out", tc.leftOut)
			if strings.Contains(r.FullText(), left) != (tc.leftOut > 0) {
				t.Errorf("left out %d: reply %q", tc.leftOut, r.FullText())
			}
		})
	}
}
