package store

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"
)

// TestCropFollowsMoves: a crop chosen before or after a move (MigrateChat, MigrateUser) is the
// crop of the chat and user read now.
func TestCropFollowsMoves(t *testing.T) {
	tests := []struct {
		name        string
		setBefore   string // crop chosen for "a" before the move, "" for none
		setAfterOld string // crop chosen for "a" after the move (a message still queued there)
		setNew      string // crop chosen for "b" before the move
		wantA       string
		wantB       string
	}{
		{"carried over", "corn", "", "", "corn", "corn"},
		{"chosen in the new place wins", "corn", "", "tomato", "corn", "tomato"},
		{"chosen in the old place after the move", "", "bean", "", "bean", "bean"},
		{"none", "", "", "", "", ""},
	}
	for _, kind := range []string{"chat", "user"} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				s := newTestStore(t, "")
				ctx := t.Context()
				set, get := s.SetChatCrop, func(id string) (string, error) {
					c, err := s.GetChat(ctx, "whatsapp", id)
					return c.Crop, err
				}
				migrate := func() error { _, err := s.MigrateChat(ctx, "whatsapp", "a", "b", testTime); return err }
				touch := func(id string) error {
					_, err := s.TouchChat(ctx, Chat{Platform: "whatsapp", ID: id, Kind: "private"}, testTime)
					return err
				}
				if kind == "user" {
					set, get = s.SetUserCrop, func(id string) (string, error) {
						u, err := s.GetUser(ctx, "whatsapp", id)
						return u.Crop, err
					}
					migrate = func() error { _, err := s.MigrateUser(ctx, "whatsapp", "a", "b", testTime); return err }
					touch = func(id string) error {
						_, err := s.TouchUser(ctx, User{Platform: "whatsapp", ID: id}, testTime)
						return err
					}
				}
				for _, id := range []string{"a", "b"} {
					if err := touch(id); err != nil {
						t.Fatal(err)
					}
				}
				for _, c := range []struct{ id, crop string }{{"a", tt.setBefore}, {"b", tt.setNew}} {
					if c.crop != "" {
						if err := set(ctx, "whatsapp", c.id, c.crop); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := migrate(); err != nil {
					t.Fatal(err)
				}
				if tt.setAfterOld != "" {
					if err := set(ctx, "whatsapp", "a", tt.setAfterOld); err != nil {
						t.Fatal(err)
					}
				}
				for id, want := range map[string]string{"a": tt.wantA, "b": tt.wantB} {
					if got, err := get(id); err != nil || got != want {
						t.Errorf("%s %s: crop %q, %v; want %q", kind, id, got, err, want)
					}
				}
				// A touch keeps the crop.
				if err := touch("b"); err != nil {
					t.Fatal(err)
				}
				if got, _ := get("b"); got != tt.wantB {
					t.Errorf("after a touch: crop %q, want %q", got, tt.wantB)
				}
			})
		}
	}
}

func TestSetCropOfUnknown(t *testing.T) {
	s := newTestStore(t, "")
	if err := s.SetChatCrop(t.Context(), "telegram", "nobody", "corn"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetChatCrop of an unknown chat: %v, want ErrNotFound", err)
	}
	if err := s.SetUserCrop(t.Context(), "telegram", "nobody", "corn"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetUserCrop of an unknown user: %v, want ErrNotFound", err)
	}
}

func TestAnalysisScoresRoundTrip(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	scores := map[string]float64{"corn__common_rust": 0.5, "tomato__late_blight": 0.3, "corn__healthy": 0.2}
	a := Analysis{PhotoHash: "h", ModelVersion: "v2", Top: []Candidate{{"corn__common_rust", 0.5}}, Scores: scores}
	if err := s.PutAnalysis(ctx, a, nil, ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAnalysis(ctx, "h", "v2")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got.Scores, scores) {
		t.Errorf("scores = %v, want %v", got.Scores, scores)
	}
	// Without scores (an old record, see TestAnalysisOldRecordDecodes) they are nil.
	if err := s.PutAnalysis(ctx, Analysis{PhotoHash: "old", ModelVersion: "v2", Top: []Candidate{}}, nil, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetAnalysis(ctx, "old", "v2"); err != nil || got.Scores != nil {
		t.Errorf("analysis without scores: %v, %v", got.Scores, err)
	}
}

func TestCropQuestion(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	q := CropQuestion{Platform: "telegram", ChatID: "7", PhotoHash: "h1", MessageID: "42", SenderID: "u5", Crops: []string{"corn", "tomato"}, Lang: "sw", Asked: testTime}
	if _, err := s.GetCropQuestion(ctx, "telegram", "7", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no question yet: %v, want ErrNotFound", err)
	}
	if err := s.PutCropQuestion(ctx, q); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		notBefore time.Time
		deleteFor string // DeleteCropQuestion with this photo hash first, if set
		want      bool   // the question is found
	}{
		{"open", testTime.Add(-time.Hour), "", true},
		{"asked exactly at the limit", testTime, "", true},
		{"expired", testTime.Add(time.Second), "", false},
		{"another photo's answer leaves it", testTime, "h2", true},
		{"answered", testTime, "h1", false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.deleteFor != "" {
				if err := s.DeleteCropQuestion(ctx, "telegram", "7", st.deleteFor); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.GetCropQuestion(ctx, "telegram", "7", st.notBefore)
			if !st.want {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("got %+v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil || got.PhotoHash != "h1" || got.MessageID != "42" || got.SenderID != "u5" || !slices.Equal(got.Crops, q.Crops) || got.Lang != "sw" || !got.Asked.Equal(testTime) {
				t.Errorf("got %+v, %v; want %+v", got, err, q)
			}
		})
	}
	if err := s.PutCropQuestion(ctx, CropQuestion{Platform: "telegram", ChatID: "7", PhotoHash: "h3"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("question without crops: %v, want ErrInvalid", err)
	}
}

// TestCropQuestionMoves: a chat's open crop question moves with the chat (MigrateChat, and the
// private chat of MigrateUser), so that the answer in the new chat finds it.
func TestCropQuestionMoves(t *testing.T) {
	for _, kind := range []string{"chat", "user"} {
		t.Run(kind, func(t *testing.T) {
			s := newTestStore(t, "")
			ctx := t.Context()
			if _, err := s.TouchChat(ctx, Chat{Platform: "whatsapp", ID: "lid1", Kind: "private"}, testTime); err != nil {
				t.Fatal(err)
			}
			if _, err := s.TouchUser(ctx, User{Platform: "whatsapp", ID: "lid1"}, testTime); err != nil {
				t.Fatal(err)
			}
			q := CropQuestion{Platform: "whatsapp", ChatID: "lid1", PhotoHash: "h1", Crops: []string{"corn", "bean"}, Asked: testTime}
			if err := s.PutCropQuestion(ctx, q); err != nil {
				t.Fatal(err)
			}
			var err error
			if kind == "chat" {
				_, err = s.MigrateChat(ctx, "whatsapp", "lid1", "pn1", testTime)
			} else {
				_, err = s.MigrateUser(ctx, "whatsapp", "lid1", "pn1", testTime)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetCropQuestion(ctx, "whatsapp", "pn1", time.Time{}); err != nil || got.PhotoHash != "h1" {
				t.Errorf("question in the new chat: %+v, %v", got, err)
			}
			if _, err := s.GetCropQuestion(ctx, "whatsapp", "lid1", time.Time{}); !errors.Is(err, ErrNotFound) {
				t.Errorf("question left in the old chat: %v", err)
			}
		})
	}
}

// TestSummaryWithinStatedCrop: a conversation's summary shows the top-1 the farmer read: within
// the stated crop when there is one (the photo's own statement, or the answer to "which crop?"),
// the model's top-1 otherwise.
func TestSummaryWithinStatedCrop(t *testing.T) {
	scores := map[string]float64{"tomato__late_blight": 0.5, "corn__common_rust": 0.3, "corn__healthy": 0.2}
	top := []Candidate{{"tomato__late_blight", 0.5}, {"corn__common_rust", 0.3}, {"corn__healthy", 0.2}}
	for _, tc := range []struct {
		name            string
		photoCrop       string // the crop on the photo's inbound record
		answerCrop      string // the crop on the bot's diagnosis (the answer to the question)
		scores          map[string]float64
		wantDisease     string
		wantProbPercent int
	}{
		{"no crop", "", "", scores, "tomato__late_blight", 50},
		{"stated in the caption", "corn", "corn", scores, "corn__common_rust", 60},
		{"answered to the question", "", "corn", scores, "corn__common_rust", 60},
		{"an old analysis without scores", "corn", "corn", nil, "tomato__late_blight", 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, "")
			ctx := t.Context()
			if err := s.PutAnalysis(ctx, Analysis{PhotoHash: "h", ModelVersion: "v2", Top: top, Scores: tc.scores}, nil, ""); err != nil {
				t.Fatal(err)
			}
			recs := []Record{
				{Time: testTime, Platform: "telegram", ChatID: "9", Direction: Inbound, SenderID: "9", PhotoHash: "h", Crop: tc.photoCrop},
				{Time: testTime.Add(time.Second), Platform: "telegram", ChatID: "9", Direction: Outbound, PhotoHash: "h", Kind: "diagnosis", Crop: tc.answerCrop},
			}
			for _, r := range recs {
				if _, err := s.AppendMessage(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := s.GetSummary(ctx, "telegram", "9")
			if err != nil {
				t.Fatal(err)
			}
			if sum.Disease != tc.wantDisease || int(sum.Prob*100+0.5) != tc.wantProbPercent {
				t.Errorf("summary %s %.2f, want %s %d%%", sum.Disease, sum.Prob, tc.wantDisease, tc.wantProbPercent)
			}
		})
	}
}

// TestCropMismatchNeedsAttention: a photo that clearly shows another crop than the stated one got
// no diagnosis: the conversation needs attention, as after "not a leaf".
func TestCropMismatchNeedsAttention(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	for _, r := range []Record{
		{Time: testTime, Platform: "webchat", ChatID: "w", Direction: Inbound, SenderID: "w", Text: "maize"},
		{Time: testTime.Add(time.Second), Platform: "webchat", ChatID: "w", Direction: Outbound, Kind: "crop_mismatch", Crop: "corn"},
	} {
		if _, err := s.AppendMessage(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := s.GetSummary(ctx, "webchat", "w")
	if err != nil || !sum.NeedsAttention || sum.LowConfidence {
		t.Errorf("summary %+v, %v: want needs attention, not low confidence", sum, err)
	}
}
