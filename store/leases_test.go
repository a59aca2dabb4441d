package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

const testTTL = 10 * time.Second

func lessee(name, inc string, now time.Time, held ...int64) Lessee {
	return Lessee{Replica: name, Incarnation: inc, Now: now, TTL: testTTL,
		Held: func(id int64) bool { return slices.Contains(held, id) }}
}

func chatUpdate(chat, text string) InboxUpdate {
	return InboxUpdate{Chat: chat, Data: fmt.Appendf(nil, `{"text":%q}`, text)}
}

func accept(t *testing.T, s *Store, l Lessee, us ...InboxUpdate) (ids, take []int64) {
	t.Helper()
	ids, got, err := s.AcceptInbox(context.Background(), l, "telegram", us, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ids, inboxIDs(got)
}

func heartbeat(t *testing.T, s *Store, l Lessee) {
	t.Helper()
	if err := s.Heartbeat(context.Background(), l); err != nil {
		t.Fatal(err)
	}
}

// replicaStores returns two handles on one fresh database, as two replicas have: on PostgreSQL
// two Stores (two pools); on bbolt, one process per file, the same Store twice.
func replicaStores(t *testing.T) (*Store, *Store) {
	target := newTarget(t)
	s := newTestStore(t, target)
	if onPG() {
		return s, newTestStore(t, target)
	}
	return s, s
}

// TestInboxIDsUniqueAcrossReplicas: ids are allocated by the store in the saving transaction:
// replicas saving at once never get the same id (each entry is kept), ids grow in the order of
// commit, and they start above the ids already stored (entries numbered by an earlier version).
func TestInboxIDsUniqueAcrossReplicas(t *testing.T) {
	s, s2 := replicaStores(t)
	ctx := context.Background()
	if err := s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(900)}, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var all []int64
	var wg sync.WaitGroup
	for r := range 4 {
		l := lessee(fmt.Sprint("r", r), "1", testTime)
		h := []*Store{s, s2}[r%2]
		wg.Go(func() {
			for i := range 25 {
				ids, _, err := h.AcceptInbox(ctx, l, "telegram", []InboxUpdate{chatUpdate(fmt.Sprint("c", i%3), "a"), chatUpdate("d", "b")}, int64(i+1))
				if err != nil {
					t.Error(err)
					return
				}
				if len(ids) != 2 || ids[1] <= ids[0] {
					t.Errorf("ids %v of one batch, want 2 increasing", ids)
				}
				mu.Lock()
				all = append(all, ids...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(all)
	if n := len(slices.Compact(slices.Clone(all))); n != 200 || all[0] <= 900 {
		t.Fatalf("%d distinct ids of 200, lowest %d; want 200 above 900", n, all[0])
	}
	p, err := s.PendingInbox(ctx, "telegram")
	if err != nil {
		t.Fatal(err)
	}
	if got := inboxIDs(p); !slices.Equal(got, append([]int64{900}, all...)) {
		t.Errorf("pending %d entries, want the legacy one and all 200", len(got))
	}
	if p[0].Chat != "" || p[1].Chat == "" {
		t.Errorf("chats %q, %q: want none for the legacy entry, the chat for the others", p[0].Chat, p[1].Chat)
	}
}

// TestInboxLeaseTakeKeepRelease: the replica that stores a chat's first message takes its lease
// and is handed the messages; another live replica only stores the chat's messages; the holder
// finds them when it finishes one, keeps the lease while the chat has anything pending and
// releases it with the last, after which the other takes it.
func TestInboxLeaseTakeKeepRelease(t *testing.T) {
	s, sb := replicaStores(t) // a writes through s, b through sb
	ctx := context.Background()
	a, b := lessee("a", "1", testTime), lessee("b", "1", testTime)
	heartbeat(t, s, a)
	heartbeat(t, sb, b)
	ids1, take := accept(t, s, a, chatUpdate("x", "1"))
	if !slices.Equal(take, ids1) {
		t.Fatalf("a handed %v, want its new entry %v", take, ids1)
	}
	ids2, take := accept(t, sb, b, chatUpdate("x", "2"), chatUpdate("y", "3"))
	if !slices.Equal(take, ids2[1:]) {
		t.Fatalf("b handed %v, want only chat y's %v (x is a's)", take, ids2[1:])
	}
	// a holds ids1 (queued); accepting chat x again hands it b's entry and its new one.
	ids3, take := accept(t, s, lessee("a", "1", testTime, ids1...), chatUpdate("x", "4"))
	if want := []int64{ids2[0], ids3[0]}; !slices.Equal(take, want) {
		t.Fatalf("a handed %v, want %v: b's entry of x, then its own", take, want)
	}
	held := append(slices.Clone(ids1), ids2[0], ids3[0])
	got, err := s.FinishInbox(ctx, lessee("a", "1", testTime, held...), "telegram", map[string][]int64{"x": ids1})
	if err != nil || len(got) != 0 {
		t.Fatalf("finish with the rest held: %v, %v; want nothing new", inboxIDs(got), err)
	}
	ids5, take := accept(t, sb, b, chatUpdate("x", "5"))
	if len(take) != 0 {
		t.Fatalf("b handed %v of a's chat", take)
	}
	got, err = s.FinishInbox(ctx, lessee("a", "1", testTime, held...), "telegram", map[string][]int64{"x": {ids2[0], ids3[0]}})
	if err != nil || !slices.Equal(inboxIDs(got), ids5) {
		t.Fatalf("finish: %v, %v; want b's new entry %v", inboxIDs(got), err, ids5)
	}
	if got, err := s.FinishInbox(ctx, a, "telegram", map[string][]int64{"x": ids5}); err != nil || len(got) != 0 {
		t.Fatalf("last finish: %v, %v", inboxIDs(got), err)
	}
	// Released: b takes the chat with its next message.
	ids6, take := accept(t, sb, b, chatUpdate("x", "6"))
	if !slices.Equal(take, ids6) {
		t.Fatalf("b handed %v after a released chat x, want %v", take, ids6)
	}
}

// TestInboxLeaseAdoption: a chat whose holder's heartbeat is older than the TTL is adopted with
// its pending entries; one held by a live replica is not; a holder restarted under its name
// (another incarnation) takes its chats back at once; a retired replica's chats are free at
// once; the entries stored without a chat are leased together.
func TestInboxLeaseAdoption(t *testing.T) {
	s, sb := replicaStores(t)
	ctx := context.Background()
	adopt := func(l Lessee) []int64 {
		t.Helper()
		h := s
		if l.Replica == "b" {
			h = sb
		}
		got, err := h.AdoptInbox(ctx, l, "telegram")
		if err != nil {
			t.Fatal(err)
		}
		return inboxIDs(got)
	}
	a, b := lessee("a", "1", testTime), lessee("b", "1", testTime)
	heartbeat(t, s, a)
	heartbeat(t, s, b)
	x, _ := accept(t, s, a, chatUpdate("x", "1"), chatUpdate("x", "2"))
	y, _ := accept(t, sb, b, chatUpdate("y", "3"))
	if got := adopt(lessee("b", "1", testTime.Add(testTTL-time.Second), y...)); len(got) != 0 {
		t.Fatalf("b adopted %v while a's heartbeat is fresh", got)
	}
	if got := adopt(lessee("a", "1", testTime, x...)); len(got) != 0 {
		t.Fatalf("a was handed %v it holds", got)
	}
	late := lessee("b", "1", testTime.Add(testTTL), y...)
	if got := adopt(late); !slices.Equal(got, x) {
		t.Fatalf("b adopted %v after a's heartbeat expired, want %v", got, x)
	}
	// a comes back late: the chat is b's; a's finish removes what it did and hands nothing.
	if got, err := s.FinishInbox(ctx, a, "telegram", map[string][]int64{"x": x[:1]}); err != nil || len(got) != 0 {
		t.Fatalf("finish by the former holder: %v, %v", inboxIDs(got), err)
	}
	if got := adopt(lessee("b", "1", testTime.Add(testTTL))); !slices.Equal(got, append(x[1:], y...)) {
		t.Fatalf("b's own pending entries %v, want %v", got, append(x[1:], y...))
	}
	// b restarts: its new incarnation takes its chats at once, and to the others they are dead.
	b2 := lessee("b", "2", testTime)
	heartbeat(t, s, b2)
	if got := adopt(b2); !slices.Equal(got, append(x[1:], y...)) {
		t.Fatalf("b's new incarnation adopted %v, want %v at once", got, append(x[1:], y...))
	}
	// b2 retires: a (back, with a fresh heartbeat) takes them at once.
	a = lessee("a", "1", testTime.Add(testTTL))
	heartbeat(t, s, a)
	if err := s.Retire(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if got := adopt(a); !slices.Equal(got, append(x[1:], y...)) {
		t.Fatalf("a adopted %v from a retired replica, want %v", got, append(x[1:], y...))
	}
	// Entries stored without a chat: one lease for all of them, under chat "".
	if err := s.SaveInbox(ctx, "telegram", []InboxUpdate{inboxUpdate(1000)}, 0); err != nil {
		t.Fatal(err)
	}
	got, err := s.AdoptInbox(ctx, lessee("a", "1", testTime.Add(testTTL), append(x[1:], y...)...), "telegram")
	if err != nil || len(got) != 1 || got[0].ID != 1000 || got[0].Chat != "" {
		t.Fatalf("adopting an entry without a chat: %+v, %v", got, err)
	}
	if got := adopt(lessee("b", "3", testTime.Add(testTTL))); len(got) != 0 {
		t.Fatalf("b adopted %v from the live a", got)
	}
	if got, err := s.FinishInbox(ctx, a, "telegram", map[string][]int64{"": {1000}, "x": x[1:], "y": y}); err != nil || len(got) != 0 {
		t.Fatalf("finish: %v, %v", inboxIDs(got), err)
	}
	if p, err := s.PendingInbox(ctx, "telegram"); err != nil || len(p) != 0 {
		t.Fatalf("pending %v, %v; want none", inboxIDs(p), err)
	}
	if got := adopt(lessee("b", "3", testTime)); len(got) != 0 {
		t.Fatalf("adopted %v from an empty inbox", got)
	}
}

// TestInboxLeaseRelease: a live replica lets go its chats of a platform but those it keeps; the
// others adopt them at once, while its kept chats, other replicas' chats and other platforms'
// stay as they were.
func TestInboxLeaseRelease(t *testing.T) {
	s, sb := replicaStores(t)
	ctx := context.Background()
	a, b, c := lessee("a", "1", testTime), lessee("b", "1", testTime), lessee("c", "1", testTime)
	heartbeat(t, s, a)
	heartbeat(t, sb, b)
	heartbeat(t, sb, c)
	x, _ := accept(t, s, a, chatUpdate("x", "1"))
	busy, _ := accept(t, s, a, chatUpdate("busy", "2"))
	y, _ := accept(t, sb, b, chatUpdate("y", "3"))
	if _, _, err := s.AcceptInbox(ctx, a, "whatsapp", []InboxUpdate{chatUpdate("w", "4")}, 0); err != nil {
		t.Fatal(err)
	}
	var asked []string
	if err := s.ReleaseInbox(ctx, a, "telegram", func(chat string) bool {
		asked = append(asked, chat)
		return chat == "busy"
	}); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(asked); !slices.Equal(asked, []string{"busy", "x"}) {
		t.Errorf("keep asked about %v, want a's chats of telegram [busy x]", asked)
	}
	if got, err := sb.AdoptInbox(ctx, c, "telegram"); err != nil || !slices.Equal(inboxIDs(got), x) {
		t.Errorf("c adopted %v, %v after a let its chats go, want x's %v (busy is kept, y is b's)", inboxIDs(got), err, x)
	}
	if got, err := sb.AdoptInbox(ctx, c, "whatsapp"); err != nil || len(got) != 0 {
		t.Errorf("c adopted %v, %v of a's whatsapp chats, which a did not let go", inboxIDs(got), err)
	}
	// b's release lets go y only, and not for a new incarnation of b's name.
	a = lessee("a", "1", testTime, busy...)
	if err := sb.ReleaseInbox(ctx, lessee("b", "2", testTime), "telegram", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AdoptInbox(ctx, a, "telegram"); err != nil || len(got) != 0 {
		t.Errorf("a adopted %v, %v: a release by another incarnation let b's chat go", inboxIDs(got), err)
	}
	if err := sb.ReleaseInbox(ctx, b, "telegram", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AdoptInbox(ctx, a, "telegram"); err != nil || !slices.Equal(inboxIDs(got), y) {
		t.Errorf("a adopted %v, %v after b let go, want %v", inboxIDs(got), err, y)
	}
}

// TestInboxLeaseInvalid: a lessee without a name, an incarnation or a TTL, and a message without
// a chat, are refused.
func TestInboxLeaseInvalid(t *testing.T) {
	s := newTestStore(t, "")
	ctx := context.Background()
	ok := lessee("a", "1", testTime)
	for _, tc := range []struct {
		name string
		l    Lessee
		u    InboxUpdate
	}{
		{"no name", Lessee{Incarnation: "1", TTL: time.Second}, chatUpdate("x", "1")},
		{"no incarnation", Lessee{Replica: "a", TTL: time.Second}, chatUpdate("x", "1")},
		{"no ttl", Lessee{Replica: "a", Incarnation: "1"}, chatUpdate("x", "1")},
		{"no chat", ok, InboxUpdate{Data: []byte("{}")}},
		{"no data", ok, InboxUpdate{Chat: "x"}},
	} {
		if _, _, err := s.AcceptInbox(ctx, tc.l, "telegram", []InboxUpdate{tc.u}, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
}
