package bot_test

import (
	"context"
	"fmt"
	"image/color"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
)

// optionalModel loads one of the tiny models of models/contract/testdata/optional ("both":
// four classes of three crops, a red photo is a leaf of a crop it does not know).
func optionalModel(t *testing.T, name string) *inference.Model {
	t.Helper()
	m, err := inference.Load(context.Background(), testenv.OptionalModel(t, name), inference.Options{
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
	return m
}

// withoutScores drops every class's score from the model's results, as in an analysis stored
// before they were kept.
type withoutScores struct{ *inference.Model }

func (w withoutScores) Analyze(ctx context.Context, photo []byte) (inference.Result, error) {
	res, err := w.Model.Analyze(ctx, photo)
	res.Probs = nil
	return res, err
}

// TestUnknownCropQuestion: with a model that has an unknown_crop output, a leaf it judges an
// unknown crop, without a stated crop, gets "which crop is this?" offering the most likely crops
// and "another crop" last. A crop as the answer diagnoses the photo within it from the cache;
// "another crop" (tapped, by number, typed in the farmer's language) gets the unknown-crop reply.
// An expired question stays quiet; a stated crop, an old analysis without scores, an album and a
// bot that never asks keep the earlier answers.
func TestUnknownCropQuestion(t *testing.T) {
	loc := loc(t)
	model := optionalModel(t, "both")
	classes := model.Info().Classes
	const (
		byCrop   = "<crop>"   // the answer is the first crop offered, as written here
		byButton = "<button>" // Choice: that choice's button (see tap)
		byNumber = "<number>" // Text: the number of "another crop"
	)
	tests := []struct {
		name     string
		lang     string
		command  string // sent before the photo
		caption  string
		cfg      bot.Config
		model    bot.Analyzer
		album    bool
		first    bot.ReplyKind // the kind of the reply to the photo
		answer   bot.Message
		tap      string // byButton: the crop of the button to tap (locales.OtherCrop for "another crop")
		after    time.Duration
		want     bot.ReplyKind // the kind of the reply to the answer, "" for none, "need_photo" for the usual reply to a text
		wantCrop bool          // want a diagnosis within the first crop offered
	}{
		{name: "a crop by button", lang: "en", first: bot.KindCropQuestion, answer: bot.Message{Choice: byButton}, tap: byCrop, want: bot.KindDiagnosis, wantCrop: true},
		{name: "a crop by name", lang: "en", first: bot.KindCropQuestion, answer: bot.Message{Text: byCrop}, want: bot.KindDiagnosis, wantCrop: true},
		{name: "a crop by number, in Swahili", lang: "sw", first: bot.KindCropQuestion, answer: bot.Message{Text: "1"}, want: bot.KindDiagnosis, wantCrop: true},
		{name: "another crop by button", lang: "en", first: bot.KindCropQuestion, answer: bot.Message{Choice: byButton}, tap: locales.OtherCrop, want: bot.KindUnknownCrop},
		{name: "another crop by number", lang: "en", first: bot.KindCropQuestion, answer: bot.Message{Text: byNumber}, want: bot.KindUnknownCrop},
		{name: "another crop typed: other", lang: "en", first: bot.KindCropQuestion, answer: bot.Message{Text: "Other"}, want: bot.KindUnknownCrop},
		{name: "another crop typed in Swahili: zao jingine", lang: "sw", first: bot.KindCropQuestion, answer: bot.Message{Text: "zao jingine"}, want: bot.KindUnknownCrop},
		{name: "another crop typed in French: autre culture", lang: "fr", first: bot.KindCropQuestion, answer: bot.Message{Text: "Une autre culture"}, want: bot.KindUnknownCrop},
		{name: "expired question, button", lang: "en", first: bot.KindCropQuestion, answer: bot.Message{Choice: byButton}, tap: locales.OtherCrop, after: bot.CropQuestionTTL + time.Minute, want: ""},
		{name: "expired question, typed", lang: "en", first: bot.KindCropQuestion, answer: bot.Message{Text: "other"}, after: bot.CropQuestionTTL + time.Minute, want: "need_photo"},
		{name: "crop stated in the caption", lang: "en", caption: "my maize", first: bot.KindDiagnosis},
		{name: "crop stated by /crop", lang: "en", command: "/crop mahindi", first: bot.KindDiagnosis},
		{name: "no scores (an old analysis)", lang: "en", model: withoutScores{model}, first: bot.KindUnknownCrop},
		{name: "a bot that never asks", lang: "en", cfg: bot.Config{ClearCropShare: -1}, first: bot.KindUnknownCrop},
		{name: "album (no question about albums)", lang: "en", album: true, first: bot.KindUnknownCrop},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
			cfg := tt.cfg
			cfg.Threshold, cfg.Burst, cfg.Now = 0.01, 100, func() time.Time { return now }
			if cfg.ClearCropShare == 0 {
				cfg.ClearCropShare = 0.66
			}
			var analyzer bot.Analyzer = model
			if tt.model != nil {
				analyzer = tt.model
			}
			f := newFixture(t, cfg, analyzer)
			chat, farmer := private(fmt.Sprint("q", i)), bot.Sender{ID: fmt.Sprint("u", i), LangHint: tt.lang}
			if tt.command != "" {
				if r := f.send(chat, farmer, tt.command, nil); len(r) != 1 || r[0].Kind != bot.KindCommand {
					t.Fatalf("%s: %v", tt.command, r)
				}
			}
			photo := solidJPEG(t, color.RGBA{red.R, red.G + uint8(i), red.B, 255})
			m := bot.Message{ID: "photo", Chat: chat, Sender: farmer, Text: tt.caption, Photo: bytesPhoto(photo)}
			if tt.album {
				m.Photo, m.Album = nil, []*bot.Photo{bytesPhoto(photo), bytesPhoto(solidJPEG(t, color.RGBA{red.R - 1, red.G, red.B, 255}))}
			}
			r := f.handle(m)
			if len(r) != 1 || r[0].Kind != tt.first {
				t.Fatalf("reply %v, want %s", r, tt.first)
			}
			q := r[0]
			switch tt.first {
			case bot.KindUnknownCrop:
				if q.Choices != nil {
					t.Errorf("an unknown-crop reply with choices %v", q.Choices)
				}
				checkUnknownCropReply(t, loc, tt.lang, bot.Reply{Kind: q.Kind, Text: q.FullText()}, knownCrops(t, loc, tt.lang, classes), classes)
				return
			case bot.KindDiagnosis:
				if q.Choices != nil || !strings.HasPrefix(q.Caption, loc.T(tt.lang, "crop.stated", "crop", loc.CropName(tt.lang, "corn"))) {
					t.Errorf("a stated crop: %v, want a maize diagnosis without a question", q)
				}
				return
			}
			// The question: the most likely crops, then "another crop", as buttons and numbered.
			hash := hashOf(photo)
			if len(q.Choices) < 3 || q.Image != nil {
				t.Fatalf("question %v: want at least two crops and \"another crop\"", q)
			}
			another := bot.Choice{Label: loc.T(tt.lang, "crop.another"), Data: "crop:" + locales.OtherCrop + ":" + hash[:12]}
			if last := q.Choices[len(q.Choices)-1]; last != another {
				t.Errorf("last choice %+v, want %+v", last, another)
			}
			var crops []string
			for n, c := range q.Choices {
				if !strings.Contains(q.Text, loc.Number(tt.lang, n+1)+". "+c.Label) {
					t.Errorf("the question does not number %q as %d:\n%s", c.Label, n+1, q.Text)
				}
				if n < len(q.Choices)-1 {
					crop, ok := strings.CutPrefix(strings.TrimSuffix(c.Data, ":"+hash[:12]), "crop:")
					if !ok || c.Label != loc.CropName(tt.lang, crop) || !slices.Contains([]string{"tomato", "potato", "corn"}, crop) {
						t.Errorf("choice %+v is not a crop of the model", c)
					}
					crops = append(crops, crop)
				}
			}
			if len(crops) > 4 {
				t.Errorf("%d crops offered, want at most 4", len(crops))
			}
			now = now.Add(tt.after)
			answer := tt.answer
			switch {
			case answer.Text == byCrop:
				answer.Text = loc.CropName(tt.lang, crops[0])
			case answer.Text == byNumber:
				answer.Text = loc.Number(tt.lang, len(q.Choices))
			case answer.Choice == byButton:
				answer.Choice = another.Data
				if tt.tap == byCrop {
					answer.Choice = q.Choices[0].Data
				}
			}
			answer.ID, answer.Chat, answer.Sender = "answer", chat, farmer
			inferences := f.inferences()
			r = f.handle(answer)
			if f.inferences() != inferences {
				t.Errorf("the answer ran the model again")
			}
			switch tt.want {
			case "":
				if len(r) != 0 {
					t.Fatalf("answer to an expired question: %v, want nothing", r)
				}
				return
			case "need_photo":
				if len(r) != 1 || r[0].Text != loc.T(tt.lang, "text.need_photo") {
					t.Fatalf("answer to an expired question: %v, want the usual reply to a text", r)
				}
				return
			}
			if len(r) != 1 || r[0].Kind != tt.want || r[0].ReplyTo != "photo" {
				t.Fatalf("answer %+v: %v, want %s quoting the photo", answer, r, tt.want)
			}
			rec := lastInbound(t, f, chat)
			if tt.want == bot.KindUnknownCrop {
				checkUnknownCropReply(t, loc, tt.lang, r[0], knownCrops(t, loc, tt.lang, classes), classes)
				if !strings.Contains(r[0].Text, "/crop") {
					t.Errorf("the unknown-crop reply does not say how to name the crop:\n%s", r[0].Text)
				}
				if rec.Crop != "" {
					t.Errorf("answer record crop %q, want none", rec.Crop)
				}
				if answer.Choice != "" && rec.Text != another.Label {
					t.Errorf("the tapped button is logged as %q, want %q", rec.Text, another.Label)
				}
			} else {
				stated := loc.T(tt.lang, "crop.stated", "crop", loc.CropName(tt.lang, crops[0]))
				if !strings.HasPrefix(r[0].Caption, stated) || r[0].Image == nil {
					t.Errorf("answer: %v, want a diagnosis within %s with its overlay", r[0], crops[0])
				}
				if rec.Crop != crops[0] {
					t.Errorf("answer record crop %q, want %q", rec.Crop, crops[0])
				}
			}
			// Answered: the question is closed.
			answer.ID = "again"
			for _, again := range f.handle(answer) {
				if again.Kind == tt.want {
					t.Errorf("answered twice: %v", again)
				}
			}
		})
	}
}

// TestUnknownCropQuestionMismatch: a crop answered to the question about a leaf the model judged
// an unknown crop, that the photo clearly contradicts, gets the mismatch reply, as a stated crop
// does.
func TestUnknownCropQuestionMismatch(t *testing.T) {
	loc := loc(t)
	f := newCropFixture(t, clearlyTom, true, false)
	chat, amina := private("c1"), bot.Sender{ID: "u-c1"}
	r := f.send(chat, amina, "", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 51)))
	if len(r) != 1 || r[0].Kind != bot.KindCropQuestion || r[0].Choices[len(r[0].Choices)-1].Label != loc.T("en", "crop.another") {
		t.Fatalf("reply %v, want the question with \"another crop\"", r)
	}
	if r = f.send(chat, amina, "maize", nil); len(r) != 1 || r[0].Kind != bot.KindCropMismatch || !strings.Contains(r[0].Text, loc.CropName("en", "tomato")) {
		t.Fatalf("answer maize: %v, want the mismatch naming the tomato", r)
	}
	if r = f.send(chat, amina, "tomato", nil); len(r) != 1 || r[0].Text != loc.T("en", "text.need_photo") {
		t.Fatalf("a second answer after the question closed: %v, want the usual reply to a text", r)
	}
}
