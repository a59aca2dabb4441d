package bot_test

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/testenv"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
	"github.com/prometheus/client_golang/prometheus"
)

// scored makes the shared model give every photo the class probabilities of probs (the rest of
// the probability spread evenly over the other classes) and the verdicts isLeaf and knownCrop.
type scored struct {
	*inference.Model
	probs             map[string]float64
	isLeaf, knownCrop bool
}

func (s scored) Analyze(ctx context.Context, photo []byte) (inference.Result, error) {
	res, err := s.Model.Analyze(ctx, photo)
	if err != nil {
		return res, err
	}
	classes := s.Info().Classes
	rest := 1.0
	for _, p := range s.probs {
		rest -= p
	}
	res.Probs = make([]float64, len(classes))
	for i, c := range classes {
		p, ok := s.probs[c]
		if !ok {
			p = rest / float64(len(classes)-len(s.probs))
		}
		res.Probs[i] = p
	}
	order := make([]int, len(classes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(res.Probs[b], res.Probs[a]) })
	res.Top = nil
	for _, i := range order[:3] {
		res.Top = append(res.Top, inference.Class{ID: classes[i], Prob: res.Probs[i]})
	}
	res.IsLeaf, res.KnownCrop = s.isLeaf, s.knownCrop
	return res, nil
}

// A maize photo the model is sure of, one where it hesitates between maize and tomato, and one
// that is clearly a tomato.
var (
	maizeSure  = map[string]float64{"corn__common_rust": 0.6, "corn__northern_leaf_blight": 0.2, "tomato__late_blight": 0.1}
	maizeOrTom = map[string]float64{"corn__common_rust": 0.35, "corn__northern_leaf_blight": 0.15, "tomato__late_blight": 0.30, "tomato__early_blight": 0.05}
	clearlyTom = map[string]float64{"tomato__late_blight": 0.9, "tomato__early_blight": 0.07, "corn__common_rust": 0.001}
)

func newCropFixture(t *testing.T, probs map[string]float64, isLeaf, knownCrop bool) *fixture {
	t.Helper()
	return newFixture(t, bot.Config{Threshold: 0.3, Burst: 100, ClearCropShare: 0.66},
		scored{testenv.ContractSession(t), probs, isLeaf, knownCrop})
}

// lastInbound is the chat's last inbound record.
func lastInbound(t *testing.T, f *fixture, chat bot.ChatRef) store.Record {
	t.Helper()
	recs, err := f.store.RecentMessages(t.Context(), string(chat.Platform), chat.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Direction == store.Inbound {
			return recs[i]
		}
	}
	t.Fatal("no inbound record")
	return store.Record{}
}

// TestStatedCrop: a farmer who says "maize" by /crop or in the caption gets a maize top-3 (within
// maize, re-normalized), the stored conversation holds the stated crop, a caption applies to its
// photo only, and a photo that clearly shows another crop is not forced into the stated one.
func TestStatedCrop(t *testing.T) {
	loc := loc(t)
	tests := []struct {
		name              string
		probs             map[string]float64
		isLeaf, knownCrop bool
		command, caption  string
		wantKind          bot.ReplyKind
		wantCrop          string // the crop stored on the photo's record
		wantTop           string // the first class named, for a diagnosis
	}{
		{"/crop maize on a doubtful photo", maizeOrTom, true, true, "/crop maize", "", bot.KindDiagnosis, "corn", "corn__common_rust"},
		{"/crop mahindi (Swahili)", maizeOrTom, true, true, "/crop Mahindi", "", bot.KindDiagnosis, "corn", "corn__common_rust"},
		{"caption masara (Hausa)", maizeOrTom, true, true, "", "ganyen masara", bot.KindDiagnosis, "corn", "corn__common_rust"},
		{"caption मक्का", maizeOrTom, true, true, "", "मक्का की पत्ती", bot.KindDiagnosis, "corn", "corn__common_rust"},
		{"caption milho", maizeSure, true, true, "", "Folha de MILHO", bot.KindDiagnosis, "corn", "corn__common_rust"},
		{"caption tomato over /crop maize", maizeOrTom, true, true, "/crop maize", "tomato", bot.KindDiagnosis, "tomato", "tomato__late_blight"},
		{"stated maize, clearly a tomato", clearlyTom, true, true, "/crop maize", "", bot.KindCropMismatch, "corn", ""},
		{"stated maize overrides the unknown-crop refusal", maizeSure, true, false, "", "maize", bot.KindDiagnosis, "corn", "corn__common_rust"},
		{"stated maize does not override not-a-leaf", maizeSure, false, true, "", "maize", bot.KindNotLeaf, "corn", ""},
		{"no crop stated, sure of maize", maizeSure, true, true, "", "", bot.KindDiagnosis, "", "corn__common_rust"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCropFixture(t, tt.probs, tt.isLeaf, tt.knownCrop)
			chat, amina := private("c1"), bot.Sender{ID: "u-c1", Name: "Amina"}
			if tt.command != "" {
				r := f.send(chat, amina, tt.command, nil)
				if len(r) != 1 || r[0].Text != loc.T("en", "crop.set", "crop", loc.CropName("en", "corn")) {
					t.Fatalf("%s: %v", tt.command, r)
				}
			}
			r := f.send(chat, amina, tt.caption, bytesPhoto(testenv.LeafJPEG(t, 320, 240, 3)))
			if len(r) != 1 || r[0].Kind != tt.wantKind {
				t.Fatalf("reply %v, want kind %s", r, tt.wantKind)
			}
			if rec := lastInbound(t, f, chat); rec.Crop != tt.wantCrop || rec.PhotoHash == "" {
				t.Errorf("stored photo record: crop %q, hash %q; want crop %q", rec.Crop, rec.PhotoHash, tt.wantCrop)
			}
			switch tt.wantKind {
			case bot.KindCropMismatch:
				if !strings.Contains(r[0].Text, loc.CropName("en", "tomato")) || r[0].Image != nil {
					t.Errorf("mismatch reply does not name the tomato: %v", r[0])
				}
				return
			case bot.KindNotLeaf:
				return
			}
			checkTop(t, loc, r[0], tt.wantTop, tt.wantCrop)
		})
	}
}

// checkTop checks a diagnosis: its first class, and with a stated crop only classes of that crop,
// with percentages that add up to (nearly) 100.
func checkTop(t *testing.T, loc *locales.Bundle, r bot.Reply, wantTop, crop string) {
	t.Helper()
	d, _ := loc.Disease("en", wantTop)
	first := loc.T("en", "diagnosis.line", "rank", "1", "crop", d.Crop, "disease", d.Name, "percent", "")
	if !strings.Contains(r.Caption, first) {
		t.Errorf("caption lacks %q:\n%s", first, r.Caption)
	}
	if crop == "" {
		return
	}
	stated := loc.T("en", "crop.stated", "crop", loc.CropName("en", crop))
	if !strings.HasPrefix(r.Caption, stated) {
		t.Errorf("caption does not start with %q:\n%s", stated, r.Caption)
	}
	for _, c := range loc.Classes() {
		if locales.CropOf(c) == crop {
			continue
		}
		d, _ := loc.Disease("en", c)
		line := loc.T("en", "diagnosis.line", "rank", "", "crop", d.Crop, "disease", d.Name, "percent", "")
		if _, after, ok := strings.Cut(line, d.Crop); ok && strings.Contains(r.Caption, d.Crop+after) {
			t.Errorf("the top-3 within %s names %s:\n%s", crop, c, r.Caption)
		}
	}
}

// TestCropCommand: /crop alone shows the choice and the crops, /crop NAME sets it, /crop any
// clears it, an unknown crop is refused with the list, and in a group only admins set it.
func TestCropCommand(t *testing.T) {
	loc := loc(t)
	f := newCropFixture(t, maizeSure, true, true)
	chat, amina := private("c1"), bot.Sender{ID: "u-c1", Name: "Amina"}
	group := bot.ChatRef{Platform: bot.Telegram, ID: "-5", Kind: bot.Group}
	member, admin := bot.Sender{ID: "m1", Name: "Juma"}, bot.Sender{ID: "a1", Name: "Neema", IsAdmin: true}
	maize := loc.CropName("en", "corn")
	steps := []struct {
		name   string
		chat   bot.ChatRef
		sender bot.Sender
		text   string
		want   string // the reply's text starts with this
	}{
		{"none yet", chat, amina, "/crop", strings.SplitN(loc.T("en", "crop.none"), "{", 2)[0]},
		{"unknown crop", chat, amina, "/crop cassava", `I do not know the crop "cassava"`},
		{"set", chat, amina, "/crop MAÏS", loc.T("en", "crop.set", "crop", maize)},
		{"shown", chat, amina, "/crop", loc.T("en", "crop.current", "crop", maize, "crops", "")},
		{"cleared", chat, amina, "/crop any", loc.T("en", "crop.cleared")},
		{"none again", chat, amina, "/crop", strings.SplitN(loc.T("en", "crop.none"), "{", 2)[0]},
		{"group member refused", group, member, "/crop maize", loc.T("en", "crop.group_admin_only")},
		{"group admin sets", group, admin, "/crop@CropShieldBot maize", loc.T("en", "crop.set", "crop", maize)},
		{"group's crop shown to a member", group, member, "/crop", loc.T("en", "crop.current", "crop", maize, "crops", "")},
		{"a member's private chat keeps its own", private("m1"), member, "/crop", strings.SplitN(loc.T("en", "crop.none"), "{", 2)[0]},
	}
	for _, st := range steps {
		r := f.send(st.chat, st.sender, st.text, nil)
		if len(r) != 1 || !strings.HasPrefix(r[0].Text, st.want) {
			t.Fatalf("%s: %q got %v, want a reply starting %q", st.name, st.text, r, st.want)
		}
	}
	if c, err := f.store.GetChat(t.Context(), "telegram", "-5"); err != nil || c.Crop != "corn" {
		t.Errorf("group crop %q, %v", c.Crop, err)
	}
	if u, err := f.store.GetUser(t.Context(), "webchat", "u-c1"); err != nil || u.Crop != "" {
		t.Errorf("cleared crop %q, %v", u.Crop, err)
	}
}

// TestCropQuestion: a photo the model is unsure between crops of gets the question which crop
// (choices as buttons and numbered), the answer — a number, a name or a tapped button, also after a
// restart — re-answers the same photo from the cache within that crop, once; stale buttons and
// expired questions are quietly ignored.
func TestCropQuestion(t *testing.T) {
	loc := loc(t)
	photo := testenv.LeafJPEG(t, 320, 240, 5)
	hash := hashOf(photo)
	tests := []struct {
		name    string
		answer  bot.Message // Chat, Sender and ID are filled in
		restart bool
		after   time.Duration // the clock moves on before the answer
		want    string        // "corn", "tomato", or "" for no diagnosis
		wantErr bool          // a text reply "send a photo" instead of nothing
	}{
		{"number", bot.Message{Text: "1"}, false, 0, "corn", false},
		{"number with a dot", bot.Message{Text: "2."}, false, 0, "tomato", false},
		{"name in Swahili", bot.Message{Text: "Mahindi"}, false, 0, "corn", false},
		{"button", bot.Message{Choice: "crop:corn:" + hash[:12]}, false, 0, "corn", false},
		{"button after a restart", bot.Message{Choice: "crop:corn:" + hash[:12]}, true, 0, "corn", false},
		{"number after a restart", bot.Message{Text: "1"}, true, 0, "corn", false},
		{"button of another photo", bot.Message{Choice: "crop:corn:0123456789ab"}, false, 0, "", false},
		{"number out of range", bot.Message{Text: "7"}, false, 0, "", true},
		{"expired button", bot.Message{Choice: "crop:corn:" + hash[:12]}, false, bot.CropQuestionTTL + time.Minute, "", false},
		{"expired number", bot.Message{Text: "1"}, false, bot.CropQuestionTTL + time.Minute, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			model := scored{testenv.ContractSession(t), maizeOrTom, true, true}
			cfg := bot.Config{Threshold: 0.3, Burst: 100, ClearCropShare: 0.66, Now: clock}
			f := newFixture(t, cfg, model)
			chat, amina := private("c1"), bot.Sender{ID: "u-c1", Name: "Amina"}
			r := f.send(chat, amina, "", bytesPhoto(photo))
			if len(r) != 1 || r[0].Kind != bot.KindCropQuestion {
				t.Fatalf("reply %v, want the crop question", r)
			}
			q := r[0]
			wantChoices := []bot.Choice{{Label: loc.CropName("en", "corn"), Data: "crop:corn:" + hash[:12]}, {Label: loc.CropName("en", "tomato"), Data: "crop:tomato:" + hash[:12]},
				{Label: loc.T("en", "crop.another"), Data: "crop:other:" + hash[:12]}}
			if !slices.Equal(q.Choices, wantChoices) || !strings.Contains(q.Text, "1. "+wantChoices[0].Label) || !strings.Contains(q.Text, "2. "+wantChoices[1].Label) ||
				!strings.Contains(q.Text, "3. "+wantChoices[2].Label) || q.Image != nil {
				t.Fatalf("question %v choices %v, want %v numbered", q, q.Choices, wantChoices)
			}
			if tt.restart {
				if err := f.store.Close(); err != nil {
					t.Fatal(err)
				}
				f.store = openStore(t, f.path)
				f.build(cfg, model)
			}
			now = now.Add(tt.after)
			inferences := f.inferences()
			m := tt.answer
			m.ID, m.Chat, m.Sender = "answer", chat, amina
			if err := f.handler.Handle(t.Context(), m, f.out); err != nil {
				t.Fatal(err)
			}
			r = f.out.take()
			switch {
			case tt.want == "" && tt.wantErr:
				if len(r) != 1 || r[0].Text != loc.T("en", "text.need_photo") {
					t.Fatalf("answer to no question: %v, want the usual reply to a text", r)
				}
				return
			case tt.want == "":
				if len(r) != 0 {
					t.Fatalf("a stale button got %v, want no reply", r)
				}
				return
			}
			if len(r) != 1 || r[0].Kind != bot.KindDiagnosis || r[0].Image == nil || r[0].ReplyTo != "m1" {
				t.Fatalf("answer: %v, want a diagnosis with its overlay quoting the photo", r)
			}
			top := map[string]string{"corn": "corn__common_rust", "tomato": "tomato__late_blight"}[tt.want]
			checkTop(t, loc, r[0], top, tt.want)
			if got := f.inferences(); got != inferences {
				t.Errorf("the answer ran the model again (%v inferences, was %v)", got, inferences)
			}
			rec := lastInbound(t, f, chat)
			if rec.Crop != tt.want || rec.PhotoHash != "" {
				t.Errorf("answer record: crop %q, photo %q; want crop %q and the photo counted once", rec.Crop, rec.PhotoHash, tt.want)
			}
			out, err := f.store.RecentMessages(t.Context(), "webchat", "c1", 1)
			if err != nil || len(out) != 1 || out[0].Crop != tt.want || out[0].PhotoHash != hash {
				t.Errorf("reply record %+v, %v: want crop %q and the photo's hash", out, err, tt.want)
			}
			// Answered: a second tap or number gets nothing more about the photo.
			m.ID = "again"
			if err := f.handler.Handle(t.Context(), m, f.out); err != nil {
				t.Fatal(err)
			}
			for _, again := range f.out.take() {
				if again.Kind == bot.KindDiagnosis {
					t.Errorf("answered twice: %v", again)
				}
			}
		})
	}
}

// TestNoQuestionWhenSure: no question when the model is sure of the crop or when a crop is
// stated (a leaf judged an unknown crop is asked about: unknowncrop_question_test.go).
func TestNoQuestionWhenSure(t *testing.T) {
	for _, tt := range []struct {
		name      string
		probs     map[string]float64
		knownCrop bool
		caption   string
		want      bot.ReplyKind
	}{
		{"sure of maize", maizeSure, true, "", bot.KindDiagnosis},
		{"crop stated", maizeOrTom, true, "tomato leaf", bot.KindDiagnosis},
		{"crop stated, unknown crop", maizeOrTom, false, "tomato leaf", bot.KindDiagnosis},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newCropFixture(t, tt.probs, true, tt.knownCrop)
			r := f.send(private("c1"), bot.Sender{ID: "u1"}, tt.caption, bytesPhoto(testenv.LeafJPEG(t, 320, 240, 9)))
			if len(r) != 1 || r[0].Kind != tt.want || r[0].Choices != nil {
				t.Fatalf("reply %v, want %s without choices", r, tt.want)
			}
		})
	}
}

// TestRepliesNameTheCrops: /start, /help, the unsure and the not-a-leaf replies name the crops the
// bot knows, in the user's language.
func TestRepliesNameTheCrops(t *testing.T) {
	loc := loc(t)
	for _, lang := range []string{"en", "sw", "hi"} {
		t.Run(lang, func(t *testing.T) {
			classes := testenv.ContractSession(t).Info().Classes
			crops := knownCrops(t, loc, lang, classes)
			cases := []struct {
				name string
				f    *fixture
				text string
				p    *bot.Photo
			}{
				{"/start", newCropFixture(t, maizeSure, true, true), "/start", nil},
				{"/help", newCropFixture(t, maizeSure, true, true), "/help", nil},
				{"unsure", newFixture(t, bot.Config{Threshold: 0.99}, nil), "", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 11))},
				{"not a leaf", newCropFixture(t, maizeSure, false, true), "", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 12))},
			}
			for _, c := range cases {
				r := c.f.send(private("c-"+lang), bot.Sender{ID: "u-" + lang, LangHint: lang}, c.text, c.p)
				if len(r) != 1 {
					t.Fatalf("%s: %v", c.name, r)
				}
				for _, crop := range crops {
					if !strings.Contains(r[0].FullText(), crop) {
						t.Errorf("%s in %s does not name %q:\n%s", c.name, lang, crop, r[0].FullText())
					}
				}
			}
		})
	}
}

// TestStatedCropAlbum: a caption naming a crop applies to every photo of an album; a clearly
// different crop is refused with the mismatch reply.
func TestStatedCropAlbum(t *testing.T) {
	loc := loc(t)
	for _, tt := range []struct {
		name    string
		probs   map[string]float64
		caption string
		want    bot.ReplyKind
	}{
		{"maize album", maizeOrTom, "mahindi", bot.KindDiagnosis},
		{"tomato album said to be maize", clearlyTom, "maize", bot.KindCropMismatch},
		{"no crop stated", maizeSure, "", bot.KindDiagnosis},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newCropFixture(t, tt.probs, true, true)
			m := bot.Message{ID: "al1", Chat: private("c1"), Sender: bot.Sender{ID: "u1"}, Text: tt.caption,
				Album: []*bot.Photo{bytesPhoto(testenv.LeafJPEG(t, 320, 240, 31)), bytesPhoto(testenv.LeafJPEG(t, 320, 240, 32))}}
			if err := f.handler.Handle(t.Context(), m, f.out); err != nil {
				t.Fatal(err)
			}
			r := f.out.take()
			if len(r) != 1 || r[0].Kind != tt.want {
				t.Fatalf("replies %v, want one %s", r, tt.want)
			}
			if tt.want != bot.KindDiagnosis || tt.caption == "" {
				return
			}
			if len(r[0].Images) != 2 {
				t.Errorf("%d overlays, want 2", len(r[0].Images))
			}
			stated := loc.T("en", "crop.stated", "crop", loc.CropName("en", "corn"))
			if !strings.Contains(r[0].Caption, stated) || strings.Contains(r[0].Caption, "Tomato:") {
				t.Errorf("album caption not within maize:\n%s", r[0].Caption)
			}
			if rec := lastInbound(t, f, private("c1")); rec.Crop != "corn" || len(rec.Album) != 2 {
				t.Errorf("album record crop %q, %d photos", rec.Crop, len(rec.Album))
			}
		})
	}
}

// TestHistoryWithinAnsweredCrop: /history lists a photo within the crop the farmer chose when the
// bot asked, as the photo was answered.
func TestHistoryWithinAnsweredCrop(t *testing.T) {
	loc := loc(t)
	f := newCropFixture(t, maizeOrTom, true, true)
	chat, amina := private("c1"), bot.Sender{ID: "u-c1", Name: "Amina"}
	if r := f.send(chat, amina, "", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 41))); len(r) != 1 || r[0].Kind != bot.KindCropQuestion {
		t.Fatalf("reply %v, want the question", r)
	}
	if r := f.send(chat, amina, "tomato", nil); len(r) != 1 || r[0].Kind != bot.KindDiagnosis {
		t.Fatalf("answer: %v", r)
	}
	r := f.send(chat, amina, "/history", nil)
	tomato, _ := loc.Disease("en", "tomato__late_blight")
	maize, _ := loc.Disease("en", "corn__common_rust")
	if len(r) != 1 || !strings.Contains(r[0].Text, tomato.Name) || strings.Contains(r[0].Text, maize.Name) {
		t.Errorf("/history %v, want the photo as %s", r, tomato.Name)
	}
}

// TestNewerPhotoClosesTheQuestion: a photo answered without a question (its crop in the caption)
// closes the question about an older photo, so that "maize" typed afterwards re-answers nothing.
func TestNewerPhotoClosesTheQuestion(t *testing.T) {
	f := newCropFixture(t, maizeOrTom, true, true)
	chat, amina := private("c1"), bot.Sender{ID: "u-c1", Name: "Amina"}
	if r := f.send(chat, amina, "", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 41))); len(r) != 1 || r[0].Kind != bot.KindCropQuestion {
		t.Fatalf("first photo: %v, want the question", r)
	}
	if r := f.send(chat, amina, "tomato", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 42))); len(r) != 1 || r[0].Kind != bot.KindDiagnosis {
		t.Fatalf("second photo, captioned: %v, want a diagnosis", r)
	}
	if r := f.send(chat, amina, "maize", nil); len(r) != 1 || r[0].Kind != bot.KindCommand {
		t.Errorf("'maize' after the newer photo: %v, want the usual 'send a photo', not an answer about the first", r)
	}
}

// cancelOnAnalysis is a store that starts the shutdown (cancel) once a photo's analysis is read.
type cancelOnAnalysis struct {
	*store.Store
	cancel context.CancelFunc
}

func (c cancelOnAnalysis) GetAnalysis(ctx context.Context, hash, version string) (store.Analysis, error) {
	defer c.cancel()
	return c.Store.GetAnalysis(ctx, hash, version)
}

// TestCropAnswerInterruptedIsAnsweredOnce: shutdown begins while the farmer's answer is being
// handled, after the photo's analysis is read and before the reply goes out; handed in again,
// the answer still finds its question and gets its diagnosis, once.
func TestCropAnswerInterruptedIsAnsweredOnce(t *testing.T) {
	f := newCropFixture(t, maizeOrTom, true, true)
	chat, amina := private("c1"), bot.Sender{ID: "u-c1", Name: "Amina"}
	if r := f.send(chat, amina, "", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 41))); len(r) != 1 || r[0].Kind != bot.KindCropQuestion {
		t.Fatalf("photo: %v, want the question", r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted, err := bot.NewHandler(bot.Config{Threshold: 0.3, Burst: 100, ClearCropShare: 0.66},
		slog.New(slog.NewTextHandler(io.Discard, nil)), cancelOnAnalysis{f.store, cancel},
		scored{testenv.ContractSession(t), maizeOrTom, true, true}, loc(t), bot.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	answer := bot.Message{ID: "answer-1", Chat: chat, Sender: amina, Text: "maize"}
	_ = interrupted.Handle(ctx, answer, f.out)
	if r := f.out.take(); len(r) != 0 {
		t.Fatalf("replies while shutting down: %v", r)
	}
	for i, want := range []int{1, 0} {
		if err := f.handler.Handle(context.Background(), answer, f.out); err != nil {
			t.Fatal(err)
		}
		if r := f.out.take(); len(r) != want || (want == 1 && r[0].Kind != bot.KindDiagnosis) {
			t.Fatalf("handed in again (%d): %v, want %d diagnosis", i+1, r, want)
		}
	}
}

// TestGroupQuestionAnsweredByItsSender: in a group, the question about a photo is answered by
// the member who sent it; another member's "maize" is not taken for the answer.
func TestGroupQuestionAnsweredByItsSender(t *testing.T) {
	f := newCropFixture(t, maizeOrTom, true, true)
	group := bot.ChatRef{Platform: bot.Telegram, ID: "-7", Kind: bot.Group}
	amina, juma := bot.Sender{ID: "a7", Name: "Amina"}, bot.Sender{ID: "j7", Name: "Juma"}
	if r := f.send(group, amina, "", bytesPhoto(testenv.LeafJPEG(t, 320, 240, 43))); len(r) != 1 || r[0].Kind != bot.KindCropQuestion {
		t.Fatalf("photo: %v, want the question", r)
	}
	for _, text := range []string{"maize", "1"} {
		if r := f.send(group, juma, text, nil); len(r) != 0 {
			t.Errorf("another member's %q: %v, want no answer", text, r)
		}
	}
	if r := f.send(group, amina, "maize", nil); len(r) != 1 || r[0].Kind != bot.KindDiagnosis {
		t.Fatalf("the photo's sender: %v, want the maize diagnosis", r)
	}
}
