package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

const day = 24 * time.Hour

// farmerPhoto records a photo message the way the handler does (chat and sender touched, turn
// begun, photo and analysis with an overlay stored, content id indexed, photo attached, answer
// sent and turn finished) and returns the inbound record.
func farmerPhoto(t *testing.T, s *Store, platform, chat, kind, sender, msgID string, at time.Time, hash string, analysedAt time.Time) Record {
	t.Helper()
	ctx := context.Background()
	in := Record{Time: at, Platform: platform, ChatID: chat, Direction: Inbound, SenderID: sender,
		SenderName: "Farmer " + sender, MessageID: msgID, Text: "my leaf", Lang: "sw"}
	arr, err := s.RecordInbound(ctx, in, &Chat{Platform: platform, ID: chat, Kind: kind},
		&User{Platform: platform, ID: sender, Name: "Farmer " + sender})
	if err != nil {
		t.Fatal(err)
	}
	in.Seq = arr.Turn.Seq
	if hash != "" {
		if _, err := s.GetAnalysis(ctx, hash, "v1"); err != nil {
			a := Analysis{PhotoHash: hash, ModelVersion: "v1", Top: []Candidate{{Class: "tomato__late_blight", Prob: 0.9}},
				Overlay: bytes.Repeat([]byte{'o'}, 2000), CreatedAt: analysedAt}
			if err := s.PutAnalysis(ctx, a, bytes.Repeat([]byte{'p'}, 8000), "image/jpeg"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutContentID(ctx, platform, "cid-"+msgID, hash); err != nil {
			t.Fatal(err)
		}
		in.PhotoHash = hash
		if err := s.AttemptReply(ctx, platform, chat, msgID, 0, &in); err != nil {
			t.Fatal(err)
		}
	}
	out := Record{Time: at.Add(time.Second), Platform: platform, ChatID: chat, Direction: Outbound, Text: "answer",
		PhotoHash: hash, ReplyTo: msgID, Kind: "diagnosis", Lang: "sw"}
	if err := s.ReplySent(ctx, msgID, 0, out, true); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestSweepRemovesOldDataAndLeavesNoOrphan(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "")
	now := testTime
	old, mid, recent := now.Add(-400*day), now.Add(-100*day), now.Add(-10*day)
	// Chat a: everything older than a year; one photo corrected by staff (training data).
	farmerPhoto(t, s, "telegram", "a", "private", "a", "a1", old, hashOf(1), old)
	farmerPhoto(t, s, "telegram", "a", "private", "a", "a2", old.Add(time.Minute), hashOf(2), old)
	if err := s.PutCorrection(ctx, Correction{PhotoHash: hashOf(2), Class: "tomato__healthy", By: "ann", At: old}, "telegram", "a"); err != nil {
		t.Fatal(err)
	}
	// Chat b: a photo of 100 days (message kept, photo removed) with an open crop question about
	// it, and one of 10 days; a staff action of 400 days and one of 10.
	farmerPhoto(t, s, "telegram", "b", "private", "b", "b1", mid, hashOf(3), mid)
	if err := s.PutCropQuestion(ctx, CropQuestion{Platform: "telegram", ChatID: "b", PhotoHash: hashOf(3), Crops: []string{"tomato"}, Asked: mid}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetResolved(ctx, "telegram", "b", true, "ann", old); err != nil {
		t.Fatal(err)
	}
	if err := s.SetResolved(ctx, "telegram", "b", false, "ann", recent); err != nil {
		t.Fatal(err)
	}
	farmerPhoto(t, s, "webchat", "b", "private", "b", "b2", recent, hashOf(4), recent)
	// Chat c: a photo first analysed 200 days ago and sent again 5 days ago: kept.
	farmerPhoto(t, s, "telegram", "c", "private", "c", "c1", now.Add(-200*day), hashOf(5), now.Add(-200*day))
	farmerPhoto(t, s, "telegram", "c", "private", "c", "c2", now.Add(-5*day), hashOf(5), now.Add(-200*day))
	// The last photo of chat b's summary is the one to go.
	if sum := mustSummary(t, s, "telegram", "b"); sum.PhotoHash != hashOf(3) {
		t.Fatalf("summary photo %q", sum.PhotoHash)
	}
	checkNoOrphans(t, s)

	// Nothing is removed without a policy.
	rep, err := s.Sweep(ctx, RetentionPolicy{}, now)
	if err != nil || rep != (SweepReport{}) {
		t.Fatalf("no policy: %+v %v", rep, err)
	}

	p := RetentionPolicy{Photos: 90 * day, Messages: 365 * day, Batch: 3}
	rep, err = s.Sweep(ctx, p, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	want := SweepReport{Messages: 4, Turns: 2, StaffActions: 1, Conversations: 1, Photos: 2, ContentIDs: 2, CropQuestions: 1, Summaries: 1}
	rep.Transactions = 0
	if rep != want {
		t.Errorf("sweep removed %+v, want %+v", rep, want)
	}
	checkNoOrphans(t, s)
	for i, kept := range map[int]bool{1: false, 2: true, 3: false, 4: true, 5: true} {
		if got := has(t, s, bucketAnalyses, []byte(hashOf(i))); got != kept {
			t.Errorf("photo %d kept: %v, want %v", i, got, kept)
		}
		if got := has(t, s, bucketPhotos, []byte(hashOf(i))); got != kept {
			t.Errorf("photo %d bytes kept: %v, want %v", i, got, kept)
		}
	}
	if _, err := s.GetSummary(ctx, "telegram", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("summary of the emptied chat: %v", err)
	}
	if _, err := s.GetChat(ctx, "telegram", "a"); err != nil {
		t.Errorf("the chat's preferences go with its messages: %v", err)
	}
	if sum := mustSummary(t, s, "telegram", "b"); sum.PhotoHash != "" || sum.Disease == "" {
		t.Errorf("summary of b after its photo went: %+v", sum)
	}
	if msgs, _ := s.Messages(ctx, "telegram", "b", 0, 10); len(msgs) != 2 {
		t.Errorf("chat b's messages of 100 days: %d, want 2", len(msgs))
	}
	if acts, _ := s.StaffActions(ctx, "telegram", "b", 10); len(acts) != 1 || acts[0].Action != ActionReopen {
		t.Errorf("staff actions left: %+v", acts)
	}
	if _, err := s.LookupContentID(ctx, "telegram", "cid-b1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("content id of a removed photo: %v", err)
	}

	// A second sweep finds nothing more.
	rep, err = s.Sweep(ctx, p, now)
	if err != nil {
		t.Fatal(err)
	}
	rep.Transactions = 0
	if rep != (SweepReport{}) {
		t.Errorf("second sweep removed %+v", rep)
	}
}

func TestSweepBatchesBoundTransactions(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "")
	old := testTime.Add(-400 * day)
	for i := range 10 {
		farmerPhoto(t, s, "telegram", "a", "private", "a", fmt.Sprint("m", i), old.Add(time.Duration(i)*time.Minute), hashOf(i), old)
	}
	rep, err := s.Sweep(ctx, RetentionPolicy{Photos: 90 * day, Messages: 365 * day, Batch: 4}, testTime)
	if err != nil {
		t.Fatal(err)
	}
	// 20 messages in batches of 4: 5 transactions (the last empties the log); 10 photos checked 4
	// at a time: 3; content ids, crop questions, summaries: one each.
	if rep.Messages != 20 || rep.Photos != 10 || rep.Transactions < 5+3+3 {
		t.Errorf("%+v", rep)
	}
	checkNoOrphans(t, s)
}

func TestCompactShrinksAfterRetention(t *testing.T) {
	skipOnPG(t, "Compact rewrites the bbolt file")
	ctx := context.Background()
	path := tempPath(t)
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := testTime.Add(-400 * day)
	for i := range 200 {
		farmerPhoto(t, s, "telegram", fmt.Sprint("c", i%20), "private", fmt.Sprint("c", i%20), fmt.Sprint("m", i), old, hashOf(i), old)
	}
	farmerPhoto(t, s, "telegram", "keep", "private", "keep", "k", testTime, hashOf(999), testTime)
	if _, err := s.Sweep(ctx, RetentionPolicy{Photos: 90 * day, Messages: 365 * day}, testTime); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Compact(ctx, path, Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrInUse) {
		t.Fatalf("compact while the store is open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, after, err := Compact(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compact: %d -> %d bytes", before, after)
	if after >= before || fi.Size() != after {
		t.Errorf("compact: %d -> %d bytes (file %d)", before, after, fi.Size())
	}
	s = newTestStore(t, path)
	if _, err := s.GetAnalysis(ctx, hashOf(999), "v1"); err != nil {
		t.Errorf("kept photo after compact: %v", err)
	}
	// Sequences survive: the next message of a chat continues its numbering.
	seq, err := s.AppendMessage(ctx, Record{Time: testTime, Platform: "telegram", ChatID: "keep", Direction: Inbound, Text: "hi"})
	if err != nil || seq != 3 {
		t.Errorf("next seq after compact: %d %v", seq, err)
	}
	checkNoOrphans(t, s)
}

// TestSweepAndForgetWriteOnlyWhereThereIsSomethingToRemove: finding what to remove takes read
// transactions; a write transaction (the writer lock, an fsync) is opened only to remove, so a
// daily sweep over a store with nothing old, or a farmer's /forget among many other chats, does
// not make the bot's own writes wait.
func TestSweepAndForgetWriteOnlyWhereThereIsSomethingToRemove(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t, "")
	for i := range 60 {
		chat := fmt.Sprint("c", i)
		farmerPhoto(t, s, "telegram", chat, "private", chat, fmt.Sprint("m", i), testTime, hashOf(i), testTime)
	}
	rep, err := s.Sweep(ctx, RetentionPolicy{Photos: 90 * day, Messages: 365 * day, Batch: 2}, testTime)
	if err != nil || rep != (SweepReport{}) {
		t.Errorf("sweep with nothing old: %+v %v", rep, err)
	}
	frep, err := s.ForgetUser(ctx, "telegram", "c7", testTime, ForgetOptions{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Its 2 messages; its photo; its content id; the summary's photo link; the records: 5 write
	// transactions, whatever the number of other chats.
	if frep.Messages != 2 || frep.Photos != 1 || frep.Transactions > 5 {
		t.Errorf("forget among 60 chats: %+v", frep)
	}
	checkNoOrphans(t, s)
}

// hookCtx runs hook at its at-th Err check: a way to write "meanwhile", between the transactions
// of a sweep or a forget, at every point in turn.
type hookCtx struct {
	context.Context
	n    *int
	at   int
	hook func()
}

func (c hookCtx) Err() error {
	*c.n++
	if *c.n == c.at {
		c.hook()
	}
	return c.Context.Err()
}

// TestSweepKeepsAPhotoSentDuringTheSweep: another chat sends an old photo again while a sweep
// runs (answered from the cache: nothing about the photo changes but the new message). Wherever
// that message lands between the sweep's transactions, a photo still there then stays.
func TestSweepKeepsAPhotoSentDuringTheSweep(t *testing.T) {
	for at := 1; at < 30; at++ {
		s := newTestStore(t, "")
		t0 := testTime
		farmerPhoto(t, s, "telegram", "f", "private", "f", "f1", t0, hashOf(1), t0)
		p := RetentionPolicy{Photos: 24 * time.Hour, Batch: 1}
		now := t0.Add(48 * time.Hour)
		n, thereBefore := 0, false
		hook := func() {
			thereBefore = has(t, s, bucketAnalyses, []byte(hashOf(1)))
			in := Record{Time: now, Platform: "telegram", ChatID: "g", Direction: Inbound, SenderID: "g", MessageID: "g1", PhotoHash: hashOf(1)}
			if _, err := s.BeginReply(context.Background(), in, nil, nil, 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Sweep(hookCtx{context.Background(), &n, at, hook}, p, now); err != nil {
			t.Fatal(err)
		}
		if n < at {
			return // every point tried
		}
		if thereBefore && !has(t, s, bucketAnalyses, []byte(hashOf(1))) {
			t.Errorf("sent again at check %d: the photo was removed though a message now names it", at)
		}
	}
}

// TestSweepCutShortIsFinishedNextTime: a sweep stopped half-way (shutdown, an error), wherever it
// stops, is finished by the next: no content id, crop question or summary names a removed photo.
func TestSweepCutShortIsFinishedNextTime(t *testing.T) {
	for limit := 1; limit < 60; limit++ {
		s := newTestStore(t, "")
		at := testTime
		farmerPhoto(t, s, "telegram", "f", "private", "f", "f1", at, hashOf(1), at)
		p := RetentionPolicy{Photos: 24 * time.Hour, Batch: 1}
		now := at.Add(48 * time.Hour)
		n := 0
		_, first := s.Sweep(cancelAfter{context.Background(), &n, &limit}, p, now)
		if _, err := s.Sweep(context.Background(), p, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.LookupContentID(context.Background(), "telegram", "cid-f1"); err == nil {
			t.Errorf("first sweep stopped after %d checks (%v): a content id names the removed photo after the second", limit, first)
		}
		checkNoOrphans(t, s)
		if first == nil {
			return // the first sweep was not cut short any more: every point tried
		}
	}
}
