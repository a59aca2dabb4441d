package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// hashOf makes a distinct fake photo hash.
func hashOf(i int) string { return fmt.Sprintf("%064x", i+1) }

// photoTurn records one photo message and the bot's answer the way the handler does: touch the
// chat, begin the turn, store the analysis, attach the photo, send the reply.
func photoTurn(t testing.TB, s *Store, platform, chat string, at time.Time, hash string, top Candidate, kind string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.TouchChat(ctx, Chat{Platform: platform, ID: chat, Kind: "private"}, at); err != nil {
		t.Fatal(err)
	}
	in := Record{Time: at, Platform: platform, ChatID: chat, Direction: Inbound, SenderID: "u-" + chat,
		SenderName: "Farmer " + chat, MessageID: "m" + at.Format("150405.000"), Lang: "sw"}
	turn, _, err := s.BeginTurn(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Seq = turn.Seq
	if err := s.PutAnalysis(ctx, Analysis{PhotoHash: hash, ModelVersion: "v1", Top: []Candidate{top}, Rejected: kind == kindNotLeaf,
		OtherCrop: kind == kindUnknownCrop, CreatedAt: at}, nil, ""); err != nil {
		t.Fatal(err)
	}
	in.PhotoHash = hash
	if err := s.UpdateMessage(ctx, in); err != nil {
		t.Fatal(err)
	}
	out := Record{Time: at.Add(time.Second), Platform: platform, ChatID: chat, Direction: Outbound, Text: "answer",
		PhotoHash: hash, Kind: kind, Lang: "sw"}
	if err := s.ReplySent(ctx, in.MessageID, 0, out, false); err != nil {
		t.Fatal(err)
	}
}

func mustSummary(t *testing.T, s *Store, platform, chat string) Summary {
	t.Helper()
	sum, err := s.GetSummary(t.Context(), platform, chat)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestSummaryFollowsAnswers(t *testing.T) {
	tests := []struct {
		kind               string
		prob               float64
		low, attention     bool
		disease, photos    bool
		notLeaf, otherCrop bool
	}{
		{kind: kindDiagnosis, prob: 0.9, disease: true},
		{kind: kindUnsure, prob: 0.3, low: true, attention: true, disease: true},
		{kind: kindNotLeaf, prob: 0.2, attention: true, notLeaf: true},
		{kind: kindUnknownCrop, prob: 0.8, attention: true, otherCrop: true},
		{kind: kindError, prob: 0.9, attention: true, disease: true},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			s := newTestStore(t, "")
			photoTurn(t, s, "telegram", "42", testTime, hashOf(1), Candidate{"tomato__late_blight", tt.prob}, tt.kind)
			sum := mustSummary(t, s, "telegram", "42")
			if sum.Messages != 2 || sum.Photos != 1 || sum.PhotoHash != hashOf(1) || sum.Name != "Farmer 42" ||
				sum.SenderID != "u-42" || sum.Language != "sw" || sum.Kind != "private" || sum.LastDirection != Outbound {
				t.Errorf("summary %+v", sum)
			}
			if sum.LowConfidence != tt.low || sum.NeedsAttention != tt.attention {
				t.Errorf("low %v attention %v, want %v %v", sum.LowConfidence, sum.NeedsAttention, tt.low, tt.attention)
			}
			if sum.NotLeaf != tt.notLeaf || sum.OtherCrop != tt.otherCrop {
				t.Errorf("not a leaf %v other crop %v, want %v %v", sum.NotLeaf, sum.OtherCrop, tt.notLeaf, tt.otherCrop)
			}
			if got := slices.Contains(sum.Diseases, "tomato__late_blight"); got != tt.disease {
				t.Errorf("diseases %v", sum.Diseases)
			}
			if !sum.First.Equal(testTime) || !sum.Last.Equal(testTime.Add(time.Second)) {
				t.Errorf("first %v last %v", sum.First, sum.Last)
			}
		})
	}
}

func TestSummaryAttentionClearedByStaffAndDiagnosis(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	photoTurn(t, s, "webchat", "w", testTime, hashOf(1), Candidate{"corn__common_rust", 0.2}, kindUnsure)
	// A command answer leaves the flag: the photo question is still open.
	if _, err := s.AppendMessage(ctx, Record{Time: testTime.Add(time.Minute), Platform: "webchat", ChatID: "w", Direction: Outbound, Kind: "command", Text: "help"}); err != nil {
		t.Fatal(err)
	}
	if sum := mustSummary(t, s, "webchat", "w"); !sum.NeedsAttention || sum.LastText != "help" {
		t.Fatalf("after a command answer: %+v", sum)
	}
	staff := Record{Time: testTime.Add(2 * time.Minute), Platform: "webchat", ChatID: "w", Direction: Outbound, Kind: "staff", Staff: "alice", Text: "Please send a closer photo"}
	if _, err := s.AppendMessage(ctx, staff); err != nil {
		t.Fatal(err)
	}
	sum := mustSummary(t, s, "webchat", "w")
	if sum.NeedsAttention || sum.LastStaff != "alice" || sum.LastFromStaff != "alice" || sum.LowConfidence != true {
		t.Fatalf("after a staff reply: %+v", sum)
	}
	// A staff reply that was not delivered needs attention again.
	staff.Error, staff.Time = "not delivered", staff.Time.Add(time.Minute)
	if _, err := s.AppendMessage(ctx, staff); err != nil {
		t.Fatal(err)
	}
	if sum := mustSummary(t, s, "webchat", "w"); !sum.NeedsAttention {
		t.Fatalf("after an undelivered staff reply: %+v", sum)
	}
	photoTurn(t, s, "webchat", "w", testTime.Add(time.Hour), hashOf(2), Candidate{"corn__common_rust", 0.95}, kindDiagnosis)
	if sum := mustSummary(t, s, "webchat", "w"); sum.NeedsAttention || sum.LowConfidence || sum.Photos != 2 || sum.Prob != 0.95 {
		t.Fatalf("after a confident diagnosis: %+v", sum)
	}
	// The last message is the bot's: the staff who acted last did not write it.
	if sum := mustSummary(t, s, "webchat", "w"); sum.LastFromStaff != "" || sum.LastStaff != "alice" || sum.LastDirection != Outbound {
		t.Fatalf("after the bot's answer to a later photo: LastFromStaff %q, LastStaff %q", sum.LastFromStaff, sum.LastStaff)
	}
}

// indexLen counts the activity index's entries.
func indexLen(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.eng.view(context.Background(), func(tx Tx) error { n = tx.Bucket([]byte(bucketSummaryIndex)).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func chatIDs(items []Summary) []string {
	var ids []string
	for _, s := range items {
		ids = append(ids, s.ChatID)
	}
	return ids
}

func TestListConversationsPages(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	var recs []Record
	for i := range 25 {
		recs = append(recs, Record{Time: testTime.Add(time.Duration(i) * time.Minute), Platform: "telegram",
			ChatID: fmt.Sprintf("c%02d", i), Direction: Inbound, Text: "hello"})
	}
	if _, err := s.AppendMessages(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// c03 speaks again: it moves to the top, and the index still has one entry per chat.
	if _, err := s.AppendMessage(ctx, Record{Time: testTime.Add(time.Hour), Platform: "telegram", ChatID: "c03", Direction: Inbound, Text: "again"}); err != nil {
		t.Fatal(err)
	}
	if n := indexLen(t, s); n != 25 {
		t.Errorf("index has %d entries, want 25", n)
	}
	var all []string
	o := ListOptions{Limit: 10}
	for pages := 0; ; pages++ {
		p, err := s.ListConversations(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > 10 || p.Scanned != len(p.Items) {
			t.Errorf("page %d: %d items, %d scanned", pages, len(p.Items), p.Scanned)
		}
		all = append(all, chatIDs(p.Items)...)
		if p.Next == "" {
			break
		}
		o.Cursor = p.Next
	}
	want := []string{"c03"}
	for i := 24; i >= 0; i-- {
		if i != 3 {
			want = append(want, fmt.Sprintf("c%02d", i))
		}
	}
	if !slices.Equal(all, want) {
		t.Errorf("order %v, want %v", all, want)
	}
	if _, err := s.ListConversations(ctx, ListOptions{Cursor: "!!"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestListConversationsFilters(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	photoTurn(t, s, "telegram", "t1", testTime, hashOf(1), Candidate{"tomato__late_blight", 0.9}, kindDiagnosis)
	photoTurn(t, s, "telegram", "t2", testTime.Add(time.Hour), hashOf(2), Candidate{"corn__common_rust", 0.3}, kindUnsure)
	photoTurn(t, s, "whatsapp", "254700000001@s.whatsapp.net", testTime.Add(2*time.Hour), hashOf(3), Candidate{"tomato__late_blight", 0.8}, kindDiagnosis)
	if _, err := s.TouchChat(ctx, Chat{Platform: "telegram", ID: "-100", Kind: "group", Title: "Nakuru growers"}, testTime); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, Record{Time: testTime.Add(3 * time.Hour), Platform: "telegram", ChatID: "-100", Direction: Inbound, SenderName: "Wanjiru", Text: "Brown spots on my potatoes"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetResolved(ctx, "telegram", "t1", true, "alice", testTime.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    ConversationFilter
		want []string
	}{
		{"all", ConversationFilter{}, []string{"-100", "254700000001@s.whatsapp.net", "t2", "t1"}},
		{"platform", ConversationFilter{Platform: "whatsapp"}, []string{"254700000001@s.whatsapp.net"}},
		{"group", ConversationFilter{Kind: "group"}, []string{"-100"}},
		{"language", ConversationFilter{Language: "sw"}, []string{"254700000001@s.whatsapp.net", "t2", "t1"}},
		{"disease", ConversationFilter{Disease: "tomato__late_blight"}, []string{"254700000001@s.whatsapp.net", "t1"}},
		{"low confidence", ConversationFilter{LowConfidence: true}, []string{"t2"}},
		{"needs attention", ConversationFilter{NeedsAttention: true}, []string{"t2"}},
		{"resolved", ConversationFilter{Status: "resolved"}, []string{"t1"}},
		{"open", ConversationFilter{Status: "open"}, []string{"-100", "254700000001@s.whatsapp.net", "t2"}},
		{"from", ConversationFilter{From: testTime.Add(90 * time.Minute)}, []string{"-100", "254700000001@s.whatsapp.net"}},
		{"to", ConversationFilter{To: testTime.Add(90 * time.Minute)}, []string{"t2", "t1"}},
		{"search name", ConversationFilter{Query: "wanjiru"}, []string{"-100"}},
		{"search title", ConversationFilter{Query: "NAKURU"}, []string{"-100"}},
		{"search number", ConversationFilter{Query: "2547000"}, []string{"254700000001@s.whatsapp.net"}},
		{"search text", ConversationFilter{Query: "potatoes"}, []string{"-100"}},
		{"nothing", ConversationFilter{Query: "zzz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.ListConversations(ctx, ListOptions{Filter: tt.f})
			if err != nil {
				t.Fatal(err)
			}
			if got := chatIDs(p.Items); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	// A scan budget ends a sparse page early with a cursor to go on.
	p, err := s.ListConversations(ctx, ListOptions{Filter: ConversationFilter{Query: "farmer t1"}, MaxScan: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Partial || p.Next == "" || p.Scanned != 2 || len(p.Items) != 0 {
		t.Fatalf("budgeted page %+v", p)
	}
	p, err = s.ListConversations(ctx, ListOptions{Filter: ConversationFilter{Query: "farmer t1"}, Cursor: p.Next})
	if err != nil || !slices.Equal(chatIDs(p.Items), []string{"t1"}) {
		t.Fatalf("continued page %+v %v", p, err)
	}
}

func TestCorrectionSurvivesNewModel(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	photoTurn(t, s, "telegram", "42", testTime, hashOf(1), Candidate{"tomato__early_blight", 0.4}, kindUnsure)
	c := Correction{PhotoHash: hashOf(1), Class: "tomato__late_blight", ModelClass: "tomato__early_blight", ModelVersion: "v1", By: "alice", At: testTime.Add(time.Hour)}
	if err := s.PutCorrection(ctx, c, "telegram", "42"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAnalysis(ctx, Analysis{PhotoHash: hashOf(1), ModelVersion: "v2", Top: []Candidate{{"tomato__leaf_mold", 0.7}}}, nil, ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCorrection(ctx, hashOf(1))
	if err != nil || got != c {
		t.Fatalf("correction after a new model: %+v %v, want %+v", got, err, c)
	}
	sum := mustSummary(t, s, "telegram", "42")
	if sum.Disease != "tomato__late_blight" || !sum.Corrected || sum.NeedsAttention || sum.LastStaff != "alice" {
		t.Errorf("summary %+v", sum)
	}
	acts, err := s.StaffActions(ctx, "telegram", "42", 10)
	if err != nil || len(acts) != 1 || acts[0].Action != ActionCorrect || acts[0].Class != c.Class || acts[0].Staff != "alice" {
		t.Errorf("actions %+v %v", acts, err)
	}
	all, err := s.Corrections(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("corrections %+v %v", all, err)
	}
	if _, err := s.GetCorrection(ctx, hashOf(9)); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing correction: %v", err)
	}
	if err := s.PutCorrection(ctx, c, "telegram", "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("correction in an unknown conversation: %v", err)
	}
	// A later photo of the same chat that was corrected earlier shows the correction.
	photoTurn(t, s, "telegram", "43", testTime.Add(2*time.Hour), hashOf(1), Candidate{"tomato__leaf_mold", 0.7}, kindDiagnosis)
	if sum := mustSummary(t, s, "telegram", "43"); sum.Disease != "tomato__late_blight" || !sum.Corrected {
		t.Errorf("summary of a corrected photo sent again: %+v", sum)
	}
}

// TestCorrectionClearsVerdicts: staff setting the class of a photo the model refused (not a leaf,
// or a crop it does not know) makes it a diagnosis of that class in the summary.
func TestCorrectionClearsVerdicts(t *testing.T) {
	for _, kind := range []string{kindNotLeaf, kindUnknownCrop} {
		t.Run(kind, func(t *testing.T) {
			s := newTestStore(t, "")
			photoTurn(t, s, "telegram", "42", testTime, hashOf(1), Candidate{"tomato__early_blight", 0.8}, kind)
			if sum := mustSummary(t, s, "telegram", "42"); sum.NotLeaf == sum.OtherCrop || slices.Contains(sum.Diseases, "tomato__early_blight") {
				t.Fatalf("before the correction: %+v", sum)
			}
			c := Correction{PhotoHash: hashOf(1), Class: "potato__late_blight", ModelClass: "tomato__early_blight", ModelVersion: "v1", By: "alice", At: testTime.Add(time.Hour)}
			if err := s.PutCorrection(t.Context(), c, "telegram", "42"); err != nil {
				t.Fatal(err)
			}
			sum := mustSummary(t, s, "telegram", "42")
			if sum.NotLeaf || sum.OtherCrop || !sum.Corrected || sum.Disease != c.Class || !slices.Equal(sum.Diseases, []string{c.Class}) {
				t.Errorf("after the correction: %+v", sum)
			}
			// The same photo sent again in another chat shows the staff's class too.
			photoTurn(t, s, "telegram", "43", testTime.Add(2*time.Hour), hashOf(1), Candidate{"tomato__early_blight", 0.8}, kind)
			if sum := mustSummary(t, s, "telegram", "43"); sum.NotLeaf || sum.OtherCrop || sum.Disease != c.Class {
				t.Errorf("the corrected photo again: %+v", sum)
			}
		})
	}
}

func TestResolvedReopensOnNewMessage(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	photoTurn(t, s, "telegram", "42", testTime, hashOf(1), Candidate{"tomato__early_blight", 0.4}, kindUnsure)
	if err := s.SetResolved(ctx, "telegram", "42", true, "bob", testTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if sum := mustSummary(t, s, "telegram", "42"); !sum.Resolved || sum.ResolvedBy != "bob" || sum.NeedsAttention {
		t.Fatalf("resolved: %+v", sum)
	}
	if _, err := s.AppendMessage(ctx, Record{Time: testTime.Add(2 * time.Hour), Platform: "telegram", ChatID: "42", Direction: Inbound, Text: "still sick"}); err != nil {
		t.Fatal(err)
	}
	if sum := mustSummary(t, s, "telegram", "42"); sum.Resolved || sum.ResolvedBy != "" {
		t.Fatalf("after a new message: %+v", sum)
	}
	if err := s.SetResolved(ctx, "telegram", "none", true, "bob", testTime); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown conversation: %v", err)
	}
	acts, err := s.StaffActions(ctx, "telegram", "42", 10)
	if err != nil || len(acts) != 1 || acts[0].Action != ActionResolve {
		t.Errorf("actions %+v %v", acts, err)
	}
}

func TestDailyStats(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	day2 := testTime.Add(24 * time.Hour)
	photoTurn(t, s, "telegram", "a", testTime, hashOf(1), Candidate{"tomato__late_blight", 0.9}, kindDiagnosis)
	photoTurn(t, s, "telegram", "b", testTime.Add(time.Minute), hashOf(2), Candidate{"corn__common_rust", 0.3}, kindUnsure)
	photoTurn(t, s, "telegram", "e", testTime.Add(2*time.Minute), hashOf(4), Candidate{"tomato__late_blight", 0.9}, kindNotLeaf)
	photoTurn(t, s, "telegram", "f", testTime.Add(3*time.Minute), hashOf(5), Candidate{"tomato__late_blight", 0.9}, kindUnknownCrop)
	photoTurn(t, s, "telegram", "c", day2, hashOf(3), Candidate{"tomato__late_blight", 0.9}, kindDiagnosis)
	hit := Record{Time: day2, Platform: "whatsapp", ChatID: "d", Direction: Outbound, Kind: kindDiagnosis, PhotoHash: hashOf(1), Lang: "en", CacheHit: true}
	if _, err := s.AppendMessage(ctx, hit); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendMessage(ctx, Record{Time: day2, Platform: "whatsapp", ChatID: "d", Direction: Outbound, Kind: kindError, Lang: "en"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Stats(ctx, testTime, day2)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		day, platform, lang                                                 string
		answers, diag, unsure, notLeaf, unknownCrop, errs, hits, lateBlight int
	}
	var rows []row
	for _, d := range got {
		rows = append(rows, row{d.Day.Format(time.DateOnly), d.Platform, d.Language, d.Answers, d.Diagnoses, d.Unsure,
			d.NotLeaf, d.UnknownCrop, d.Errors, d.CacheHits, d.Classes["tomato__late_blight"]})
	}
	want := []row{
		{"2025-06-01", "telegram", "sw", 4, 1, 1, 1, 1, 0, 0, 1}, // refused photos are not counted as their top class
		{"2025-06-02", "telegram", "sw", 1, 1, 0, 0, 0, 0, 0, 1},
		{"2025-06-02", "whatsapp", "en", 1, 1, 0, 0, 0, 1, 1, 1},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("stats\n got %+v\nwant %+v", rows, want)
	}
	if got, err := s.Stats(ctx, day2, day2); err != nil || len(got) != 2 {
		t.Errorf("one day: %d rows, %v", len(got), err)
	}
}

func TestSummariesBackfilledOnOpen(t *testing.T) {
	path := newTarget(t)
	s, err := Open(t.Context(), path, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	photoTurn(t, s, "telegram", "42", testTime, hashOf(1), Candidate{"tomato__late_blight", 0.9}, kindDiagnosis)
	want := mustSummary(t, s, "telegram", "42")
	// Make it look like a database from before the summaries.
	err = s.eng.update(context.Background(), func(tx Tx) error {
		for _, b := range []string{bucketSummaries, bucketSummaryIndex} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newTestStore(t, path)
	got := mustSummary(t, s2, "telegram", "42")
	if got.Messages != want.Messages || got.Photos != 1 || got.Disease != want.Disease || !got.Last.Equal(want.Last) {
		t.Errorf("backfilled %+v, want %+v", got, want)
	}
	if p, err := s2.ListConversations(t.Context(), ListOptions{}); err != nil || len(p.Items) != 1 {
		t.Errorf("list after backfill: %+v %v", p, err)
	}
}

func TestMessagesBefore(t *testing.T) {
	s := newTestStore(t, "")
	appendN(t, s, "telegram", "1", 10)
	got, err := s.MessagesBefore(t.Context(), "telegram", "1", 6, 3)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range got {
		seqs = append(seqs, r.Seq)
	}
	if !slices.Equal(seqs, []uint64{3, 4, 5}) {
		t.Errorf("seqs %v", seqs)
	}
	if got, err := s.MessagesBefore(t.Context(), "telegram", "1", 0, 2); err != nil || len(got) != 2 || got[1].Seq != 10 {
		t.Errorf("newest: %+v %v", got, err)
	}
	if got, err := s.MessagesBefore(t.Context(), "telegram", "nobody", 5, 2); err != nil || len(got) != 0 {
		t.Errorf("unknown chat: %+v %v", got, err)
	}
}

func TestStoredAnalysisAndOverlay(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	a := Analysis{PhotoHash: hashOf(1), ModelVersion: "old", Top: []Candidate{{"x", 0.5}}, Overlay: []byte{0xff, 0xd8}}
	if err := s.PutAnalysis(ctx, a, nil, ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.StoredAnalysis(ctx, hashOf(1))
	if err != nil || got.ModelVersion != "old" || got.Overlay != nil || len(got.Top) != 1 {
		t.Errorf("stored analysis %+v %v", got, err)
	}
	if ov, err := s.Overlay(ctx, hashOf(1)); err != nil || string(ov) != "\xff\xd8" {
		t.Errorf("overlay %x %v", ov, err)
	}
	if _, err := s.Overlay(ctx, hashOf(2)); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing overlay: %v", err)
	}
}

func TestReviewCallsCancelled(t *testing.T) {
	s := newTestStore(t, "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[string]func() error{
		"ListConversations": func() error { _, err := s.ListConversations(ctx, ListOptions{}); return err },
		"GetSummary":        func() error { _, err := s.GetSummary(ctx, "t", "1"); return err },
		"AppendMessages":    func() error { _, err := s.AppendMessages(ctx, nil); return err },
		"MessagesBefore":    func() error { _, err := s.MessagesBefore(ctx, "t", "1", 3, 1); return err },
		"PutCorrection": func() error {
			return s.PutCorrection(ctx, Correction{PhotoHash: "h", Class: "c", By: "a"}, "", "")
		},
		"SetResolved":  func() error { return s.SetResolved(ctx, "t", "1", true, "a", testTime) },
		"StaffActions": func() error { _, err := s.StaffActions(ctx, "t", "1", 1); return err },
		"Stats":        func() error { _, err := s.Stats(ctx, testTime, testTime); return err },
		"AddStaff": func() error {
			return s.AddStaff(ctx, StaffAccount{Name: "a", Role: "agent", PasswordHash: []byte("x")})
		},
		"GetStaffSession": func() error { _, err := s.GetStaffSession(ctx, "h"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
	}
}
