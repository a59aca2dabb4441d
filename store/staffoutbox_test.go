package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func queueReply(t *testing.T, s *Store, chat, text string, at time.Time) uint64 {
	t.Helper()
	id, err := s.EnqueueStaffReply(context.Background(), StaffReply{Platform: "whatsapp", ChatID: chat, ChatKind: "private",
		Text: text, Staff: "alice", Queued: at})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func staffRecord(chat, text, reason string, at time.Time) Record {
	return Record{Time: at, Platform: "whatsapp", ChatID: chat, Direction: Outbound, Text: text, Kind: "staff",
		Staff: "alice", Error: reason}
}

// TestStaffOutboxDelivery: a reply queued on one replica is listed, claimed and finished by the
// other; the outcome and the conversation's log record are written together; the queuing replica
// reads the outcome once.
func TestStaffOutboxDelivery(t *testing.T) {
	for _, tt := range []struct {
		name   string
		reason string
		want   StaffReplyState
	}{
		{"delivered", "", StaffReplyDelivered},
		{"not delivered", "not delivered", StaffReplyNotDelivered},
	} {
		t.Run(tt.name, func(t *testing.T) {
			queuer, runner := replicaStores(t)
			ctx := context.Background()
			at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
			id := queueReply(t, queuer, "27820000001", "Spray copper. — Support", at)

			pending, err := runner.PendingStaffReplies(ctx, "whatsapp")
			if err != nil {
				t.Fatal(err)
			}
			if len(pending) != 1 || pending[0].ID != id || pending[0].ChatID != "27820000001" || pending[0].ChatKind != "private" ||
				pending[0].Text != "Spray copper. — Support" || pending[0].Staff != "alice" || !pending[0].Queued.Equal(at) {
				t.Fatalf("pending %+v", pending)
			}
			if other, err := runner.PendingStaffReplies(ctx, "telegram"); err != nil || len(other) != 0 {
				t.Fatalf("telegram's outbox: %v, %v", other, err)
			}
			got, err := runner.ClaimStaffReply(ctx, "whatsapp", id, at.Add(time.Second))
			if err != nil || got.State != StaffReplySending || got.Text != pending[0].Text {
				t.Fatalf("claim: %+v, %v", got, err)
			}
			if o, err := queuer.StaffReplyOutcome(ctx, "whatsapp", id); err != nil || o.State != StaffReplySending {
				t.Fatalf("outcome while sending: %+v, %v", o, err)
			}
			seq, err := runner.FinishStaffReply(ctx, "whatsapp", id, staffRecord("27820000001", got.Text, tt.reason, at.Add(2*time.Second)))
			if err != nil || seq != 1 {
				t.Fatalf("finish: seq %d, %v", seq, err)
			}
			recs, err := queuer.RecentMessages(ctx, "whatsapp", "27820000001", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Kind != "staff" || recs[0].Staff != "alice" || recs[0].Error != tt.reason || recs[0].Direction != Outbound {
				t.Fatalf("logged %+v", recs)
			}
			o, err := queuer.StaffReplyOutcome(ctx, "whatsapp", id)
			if err != nil || o.State != tt.want || o.Reason != tt.reason {
				t.Fatalf("outcome %+v, %v", o, err)
			}
			// Read once: the entry is gone.
			if _, err := queuer.StaffReplyOutcome(ctx, "whatsapp", id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("outcome read again: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestStaffOutboxClaimedOnce: a claimed reply is never handed out again, whichever replica asks,
// even when both claim it at once (at most once).
func TestStaffOutboxClaimedOnce(t *testing.T) {
	a, b := replicaStores(t)
	ctx := context.Background()
	now := time.Now()
	id := queueReply(t, a, "c1", "hello", now)
	second := queueReply(t, a, "c2", "hello again", now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	claimed := 0
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			_, err := s.ClaimStaffReply(ctx, "whatsapp", id, now)
			switch {
			case err == nil:
				mu.Lock()
				claimed++
				mu.Unlock()
			case !errors.Is(err, ErrNotFound):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if claimed != 1 {
		t.Fatalf("claimed %d times, want once", claimed)
	}
	pending, err := b.PendingStaffReplies(ctx, "whatsapp")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != second {
		t.Fatalf("pending after the claim: %+v", pending)
	}
	// Finished, it is not pending again either.
	if _, err := a.FinishStaffReply(ctx, "whatsapp", id, staffRecord("c1", "hello", "", now)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ClaimStaffReply(ctx, "whatsapp", id, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim of a finished reply: %v, want ErrNotFound", err)
	}
	if _, err := b.ClaimStaffReply(ctx, "whatsapp", 999, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim of an unknown reply: %v, want ErrNotFound", err)
	}
}

// TestStaffOutboxPrune: entries claimed or finished before the cutoff that nobody read are
// removed; pending ones wait for their channel, and recent ones stay to be read.
func TestStaffOutboxPrune(t *testing.T) {
	s := newTestStore(t, newTarget(t))
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	pending := queueReply(t, s, "c1", "waits", t0)
	finishedOld := queueReply(t, s, "c1", "delivered long ago", t0)
	sendingOld := queueReply(t, s, "c1", "sender died", t0)
	finishedNew := queueReply(t, s, "c1", "just delivered", t0)
	for _, id := range []uint64{finishedOld, sendingOld} {
		if _, err := s.ClaimStaffReply(ctx, "whatsapp", id, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.FinishStaffReply(ctx, "whatsapp", finishedOld, staffRecord("c1", "x", "", t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimStaffReply(ctx, "whatsapp", finishedNew, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishStaffReply(ctx, "whatsapp", finishedNew, staffRecord("c1", "x", "", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneStaffReplies(ctx, t0.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2", n, err)
	}
	for id, want := range map[uint64]error{pending: nil, finishedNew: nil, finishedOld: ErrNotFound, sendingOld: ErrNotFound} {
		if _, err := s.StaffReplyOutcome(ctx, "whatsapp", id); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("reply %d: %v, want %v", id, err, want)
		}
	}
	if n, err := s.PruneStaffReplies(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
}

// TestStaffOutboxInvalid: what cannot be sent is refused before anything is stored.
func TestStaffOutboxInvalid(t *testing.T) {
	s := newTestStore(t, newTarget(t))
	ctx := context.Background()
	for _, r := range []StaffReply{
		{Platform: "", ChatID: "c1", Text: "x", Staff: "alice"},
		{Platform: "whatsapp", ChatID: "", Text: "x", Staff: "alice"},
		{Platform: "whatsapp", ChatID: "c1", Text: "", Staff: "alice"},
		{Platform: "whatsapp", ChatID: "c1", Text: "x", Staff: ""},
	} {
		if _, err := s.EnqueueStaffReply(ctx, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want ErrInvalid", r, err)
		}
	}
	other := staffRecord("c1", "x", "", time.Now())
	other.Platform = "telegram"
	if _, err := s.FinishStaffReply(ctx, "whatsapp", 1, other); !errors.Is(err, ErrInvalid) {
		t.Errorf("a record of another platform: %v, want ErrInvalid", err)
	}
}

// TestForgetDropsPendingStaffReplies: forgetting a farmer removes the staff replies still queued
// for their chat (sent later, they would log the forgotten conversation again); others stay.
func TestForgetDropsPendingStaffReplies(t *testing.T) {
	s := newTestStore(t, newTarget(t))
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, chat := range []string{"f", "g"} {
		if _, err := s.AppendMessage(ctx, Record{Time: at, Platform: "whatsapp", ChatID: chat, Direction: Inbound, SenderID: chat, Text: "hello"}); err != nil {
			t.Fatal(err)
		}
	}
	queueReply(t, s, "f", "for f", at)
	kept := queueReply(t, s, "g", "for g", at)
	if _, err := s.ForgetUser(ctx, "whatsapp", "f", at.Add(time.Minute), ForgetOptions{}); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingStaffReplies(ctx, "whatsapp")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != kept {
		t.Fatalf("pending after forgetting f: %+v", pending)
	}
}

// TestSweepStaffOutbox: the retention of messages holds for the staff outbox too: a reply queued
// before the cutoff (still waiting for WhatsApp, or with an outcome nobody read) is removed, with
// its text; a recent one stays queued.
func TestSweepStaffOutbox(t *testing.T) {
	s := newTestStore(t, "")
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	queueReply(t, s, "c1", "old, never sent", now.AddDate(0, 0, -40))
	claimed := queueReply(t, s, "c1", "old, claimed", now.AddDate(0, 0, -40))
	if _, err := s.ClaimStaffReply(ctx, "whatsapp", claimed, now.AddDate(0, 0, -40)); err != nil {
		t.Fatal(err)
	}
	recent := queueReply(t, s, "c2", "recent", now.Add(-time.Hour))
	rep, err := s.Sweep(ctx, RetentionPolicy{Messages: 30 * 24 * time.Hour, Batch: 1}, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.StaffReplies != 2 {
		t.Errorf("swept %d staff replies, want 2", rep.StaffReplies)
	}
	pending, err := s.PendingStaffReplies(ctx, "whatsapp")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != recent {
		t.Fatalf("pending after the sweep %+v, want only the recent reply", pending)
	}
	if _, err := s.StaffReplyOutcome(ctx, "whatsapp", claimed); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the old claimed reply: %v, want ErrNotFound", err)
	}
}

// TestQueuedStaffReplies: a chat's replies still in the outbox (pending or being sent) are listed
// for it, oldest first, not another chat's or another platform's; once finished they are not.
func TestQueuedStaffReplies(t *testing.T) {
	queuer, runner := replicaStores(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	first := queueReply(t, queuer, "c1", "first", at)
	queueReply(t, queuer, "c2", "other chat", at)
	second := queueReply(t, queuer, "c1", "second", at.Add(time.Minute))
	if _, err := runner.ClaimStaffReply(ctx, "whatsapp", first, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ids := func(chat string) []uint64 {
		t.Helper()
		got, err := queuer.QueuedStaffReplies(ctx, "whatsapp", chat)
		if err != nil {
			t.Fatal(err)
		}
		out := []uint64{}
		for _, r := range got {
			if r.ChatID != chat || r.Staff != "alice" {
				t.Fatalf("listed %+v for %s", r, chat)
			}
			out = append(out, r.ID)
		}
		return out
	}
	if got := ids("c1"); !slices.Equal(got, []uint64{first, second}) {
		t.Fatalf("queued for c1: %v, want [%d %d] (the one being sent too)", got, first, second)
	}
	if _, err := runner.FinishStaffReply(ctx, "whatsapp", first, staffRecord("c1", "first", "", at.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if got := ids("c1"); !slices.Equal(got, []uint64{second}) {
		t.Fatalf("queued for c1 after the first was sent: %v, want [%d]", got, second)
	}
	if got := ids("c3"); len(got) != 0 {
		t.Fatalf("queued for a chat with none: %v", got)
	}
	if got, err := queuer.QueuedStaffReplies(ctx, "telegram", "c1"); err != nil || len(got) != 0 {
		t.Fatalf("telegram's: %v, %v", got, err)
	}
	if _, err := queuer.QueuedStaffReplies(ctx, "whatsapp", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty chat id: %v, want ErrInvalid", err)
	}
}
