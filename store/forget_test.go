package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestForgetUserLeavesNoTraceAndNoOrphan(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "")
	at := testTime
	// Farmer f was first seen by a privacy id (lid-f) on WhatsApp, then by the phone number f.
	farmerPhoto(t, s, "whatsapp", "lid-f", "private", "lid-f", "f0", at, hashOf(0), at)
	if _, err := s.MigrateUser(ctx, "whatsapp", "lid-f", "f", at); err != nil {
		t.Fatal(err)
	}
	farmerPhoto(t, s, "whatsapp", "f", "private", "f", "f1", at.Add(time.Minute), hashOf(1), at)   // only f
	farmerPhoto(t, s, "whatsapp", "f", "private", "f", "f2", at.Add(2*time.Minute), hashOf(2), at) // also sent by g
	farmerPhoto(t, s, "whatsapp", "f", "private", "f", "f3", at.Add(3*time.Minute), hashOf(3), at) // corrected by staff
	if err := s.PutCorrection(ctx, Correction{PhotoHash: hashOf(3), Class: "tomato__healthy", By: "ann", At: at}, "whatsapp", "f"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserLanguage(ctx, "whatsapp", "f", "sw"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUserCrop(ctx, "whatsapp", "f", "tomato"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCropQuestion(ctx, CropQuestion{Platform: "whatsapp", ChatID: "f", PhotoHash: hashOf(2), SenderID: "f", Crops: []string{"tomato"}, Asked: at}); err != nil {
		t.Fatal(err)
	}
	farmerPhoto(t, s, "whatsapp", "g", "private", "g", "g1", at.Add(4*time.Minute), hashOf(2), at)
	// In a group: f's photo (only theirs) with the bot's answer, then g's.
	farmerPhoto(t, s, "whatsapp", "grp", "group", "f", "gf", at.Add(5*time.Minute), hashOf(4), at)
	farmerPhoto(t, s, "whatsapp", "grp", "group", "g", "gg", at.Add(6*time.Minute), hashOf(5), at)
	if err := s.PutCropQuestion(ctx, CropQuestion{Platform: "whatsapp", ChatID: "grp", PhotoHash: hashOf(5), SenderID: "g", Crops: []string{"tomato"}, Asked: at}); err != nil {
		t.Fatal(err)
	}
	// The same farmer id on another platform is another person: untouched.
	farmerPhoto(t, s, "telegram", "f", "private", "f", "t1", at, hashOf(6), at)
	// f's "/forget yes", still being answered: it stays.
	keep := farmerPhoto(t, s, "whatsapp", "f", "private", "f", "fx", at.Add(10*time.Minute), "", at)
	checkNoOrphans(t, s)

	rep, err := s.ForgetUser(ctx, "whatsapp", "f", at.Add(11*time.Minute), ForgetOptions{KeepChat: "f", KeepSeq: keep.Seq, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	checkNoOrphans(t, s)
	for i, kept := range map[int]bool{0: false, 1: false, 2: true, 3: false, 4: false, 5: true, 6: true} {
		for _, b := range []string{bucketAnalyses, bucketPhotos, bucketOverlays} {
			if got := has(t, s, b, []byte(hashOf(i))); got != kept {
				t.Errorf("photo %d in %s: %v, want %v", i, b, got, kept)
			}
		}
	}
	if has(t, s, bucketCorrections, []byte(hashOf(3))) {
		t.Error("the correction of f's photo stays")
	}
	for _, r := range logged(t, s) {
		if r.Platform != "whatsapp" {
			continue
		}
		if r.ChatID == "f" && r.Seq != keep.Seq || r.ChatID == "lid-f" || r.SenderID == "f" && r.Seq != keep.Seq || r.ReplyTo == "gf" {
			t.Errorf("left after forget: %+v", r)
		}
	}
	if n := len(logged(t, s)); n != 1+2+2+2 { // keep; g's chat; g's group message and answer; telegram f
		t.Errorf("%d messages left", n)
	}
	for _, id := range []string{"f", "lid-f"} {
		if _, err := s.GetUser(ctx, "whatsapp", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("user %s: %v", id, err)
		}
		if _, err := s.GetChat(ctx, "whatsapp", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("chat %s: %v", id, err)
		}
	}
	if _, err := s.GetUser(ctx, "telegram", "f"); err != nil {
		t.Errorf("telegram's f: %v", err)
	}
	if _, err := s.GetCropQuestion(ctx, "whatsapp", "f", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("f's crop question: %v", err)
	}
	if _, err := s.GetCropQuestion(ctx, "whatsapp", "grp", time.Time{}); err != nil {
		t.Errorf("g's crop question in the group: %v", err)
	}
	sum := mustSummary(t, s, "whatsapp", "f")
	if !sum.Forgotten.Equal(at.Add(11*time.Minute)) || sum.Name != "" || sum.SenderID != "" || sum.LastText != "" || len(sum.Texts) != 0 || sum.PhotoHash != "" || len(sum.Diseases) != 0 {
		t.Errorf("forgotten summary: %+v", sum)
	}
	if acts, _ := s.StaffActions(ctx, "whatsapp", "f", 10); len(acts) != 0 {
		t.Errorf("staff actions of f: %+v", acts)
	}
	if sum := mustSummary(t, s, "whatsapp", "grp"); sum.Name == "Farmer f" || sum.SenderID == "f" || len(sum.Texts) != 0 {
		t.Errorf("group summary: %+v", sum)
	}
	if sum := mustSummary(t, s, "whatsapp", "lid-f"); !sum.Forgotten.Equal(at.Add(11 * time.Minute)) {
		t.Errorf("the alternate id's conversation: %+v", sum)
	}
	// Forgetting again finds nothing more.
	rep, err = s.ForgetUser(ctx, "whatsapp", "f", at.Add(12*time.Minute), ForgetOptions{KeepChat: "f", KeepSeq: keep.Seq})
	if err != nil || rep.Messages != 0 || rep.Photos != 0 {
		t.Errorf("again: %+v %v", rep, err)
	}
	checkNoOrphans(t, s)
}

// TestForgetKeepsTurnsAsTombstones: forgetting a farmer keeps each message's turn, done and
// marked forgotten (no content), so that a message delivered again (its inbox entry not yet
// marked done at a crash) is not answered again, and a handling still running writes nothing
// more of it: its reply's record and its end are dropped, not appended to the forgotten chat.
func TestForgetKeepsTurnsAsTombstones(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "")
	at := testTime
	chat := &Chat{Platform: "telegram", ID: "f", Kind: "private"}
	user := &User{Platform: "telegram", ID: "f"}
	in := func(id string) Record {
		return Record{Time: at, Platform: "telegram", ChatID: "f", Direction: Inbound, SenderID: "f", MessageID: id, Text: "photo", PhotoHash: hashOf(1)}
	}
	// m1 was answered before the farmer asked to be forgotten; m2 is being answered meanwhile.
	if _, err := s.BeginDone(ctx, in("m1"), chat, user); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginReply(ctx, in("m2"), chat, user, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ForgetUser(ctx, "telegram", "f", at.Add(time.Minute), ForgetOptions{By: "ann"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"m1", "m2"} {
		turn, err := s.GetTurn(ctx, "telegram", "f", id)
		if err != nil || !turn.Done || !turn.Forgotten {
			t.Errorf("turn of %s after forget: %+v %v, want done and forgotten", id, turn, err)
		}
		if a, err := s.BeginReply(ctx, in(id), chat, user, 0); err != nil || !a.Existed {
			t.Errorf("%s delivered again: %+v %v, want its turn found (not answered again)", id, a, err)
		}
	}
	out := Record{Time: at, Platform: "telegram", ChatID: "f", Direction: Outbound, ReplyTo: "m2", Text: "diagnosis", Kind: "diagnosis"}
	if err := s.ReplySent(ctx, "m2", 0, out, true); err != nil {
		t.Errorf("the running handling's reply record after forget: %v, want nil (nothing written)", err)
	}
	if recs, err := s.RecentMessages(ctx, "telegram", "f", 10); err != nil || len(recs) != 0 {
		t.Errorf("forgotten chat's log %+v %v, want empty", recs, err)
	}
}

// TestForgetKeepsAPhotoSentMeanwhile: while a farmer is forgotten, someone else sends the same
// photo (answered from the cache). Wherever that lands between forget's transactions, a photo
// still there then stays: it is no longer only the farmer's.
func TestForgetKeepsAPhotoSentMeanwhile(t *testing.T) {
	for at := 1; at < 40; at++ {
		s := newTestStore(t, "")
		t0 := testTime
		farmerPhoto(t, s, "telegram", "f", "private", "f", "f1", t0, hashOf(1), t0)
		n, thereBefore := 0, false
		hook := func() {
			thereBefore = has(t, s, bucketAnalyses, []byte(hashOf(1)))
			in := Record{Time: t0.Add(time.Hour), Platform: "telegram", ChatID: "g", Direction: Inbound, SenderID: "g", MessageID: "g1", PhotoHash: hashOf(1)}
			if _, err := s.BeginReply(context.Background(), in, nil, nil, 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.ForgetUser(hookCtx{context.Background(), &n, at, hook}, "telegram", "f", t0.Add(time.Hour), ForgetOptions{Batch: 1}); err != nil {
			t.Fatal(err)
		}
		if n < at {
			return // every point tried
		}
		if thereBefore && !has(t, s, bucketAnalyses, []byte(hashOf(1))) {
			t.Errorf("sent by another chat at check %d: the photo was removed though that chat's message names it", at)
		}
	}
}

// cancelAfter is a context whose Err reports cancellation after limit checks: a forget stopped
// at every point between its transactions in turn.
type cancelAfter struct {
	context.Context
	n, limit *int
}

func (c cancelAfter) Err() error {
	*c.n++
	if *c.n > *c.limit {
		return context.Canceled
	}
	return nil
}

// TestForgetCutShortIsFinishedNextTime: a forget stopped half-way (the dashboard's request
// cancelled, shutdown, an error), wherever it stops, is finished by the next forget: the photo
// only the farmer sent does not survive, and nothing is left pending or orphaned.
func TestForgetCutShortIsFinishedNextTime(t *testing.T) {
	for limit := 1; limit < 40; limit++ {
		s := newTestStore(t, "")
		at := testTime
		farmerPhoto(t, s, "telegram", "f", "private", "f", "f1", at, hashOf(1), at)
		n := 0
		_, first := s.ForgetUser(cancelAfter{context.Background(), &n, &limit}, "telegram", "f", at.Add(time.Minute), ForgetOptions{Batch: 1})
		if _, err := s.ForgetUser(context.Background(), "telegram", "f", at.Add(2*time.Minute), ForgetOptions{Batch: 1}); err != nil {
			t.Fatal(err)
		}
		if has(t, s, bucketAnalyses, []byte(hashOf(1))) {
			t.Errorf("first forget stopped after %d checks (%v): the farmer's photo survives the second", limit, first)
		}
		checkNoOrphans(t, s)
		if first == nil {
			return // the first run was not cut short any more: every point tried
		}
	}
}
