package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/pgtest"
)

// TestHoldOneProcessAtATime: a named lock is granted to one store handle (one replica) at a
// time on PostgreSQL, to the next once released, and to another once the holder's session dies
// (the process was killed); on bbolt, whose file is one process's, it is always granted.
func TestHoldOneProcessAtATime(t *testing.T) {
	ctx := t.Context()
	if !onPG() {
		s := newTestStore(t, "")
		h, err := s.Hold(ctx, "whatsapp:254700000001")
		if err != nil {
			t.Fatalf("Hold on bbolt: %v", err)
		}
		if err := h.Release(); err != nil {
			t.Fatal(err)
		}
		return
	}
	// A database of its own: advisory locks are the database's, and Schema's is shared.
	url := pgtest.URL(t)
	a, b := newTestStore(t, url), newTestStore(t, url)
	ha, err := a.Hold(ctx, "whatsapp:254700000001")
	if err != nil {
		t.Fatalf("first Hold: %v", err)
	}
	if _, err := b.Hold(ctx, "whatsapp:254700000001"); !errors.Is(err, ErrHeld) {
		t.Fatalf("second replica's Hold = %v, want ErrHeld", err)
	}
	other, err := b.Hold(ctx, "whatsapp:254700000002")
	if err != nil {
		t.Fatalf("another name: %v", err)
	}
	if err := ha.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ha.Lost():
	default:
		t.Error("Lost not closed after Release")
	}
	hb, err := b.Hold(ctx, "whatsapp:254700000001")
	if err != nil {
		t.Fatalf("Hold after the holder released it: %v", err)
	}

	// The holder's session ends as a killed process's does: the lock is free at once for the
	// others, and the holder learns it lost it.
	if err := a.eng.(*pgEngine).pool.QueryRow(ctx,
		"SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1::bigint & x'ffffffff'::bigint AND granted) x",
		holdKey("whatsapp:254700000001")).Scan(new(int)); err != nil {
		t.Fatal(err)
	}
	ha2, err := waitHold(ctx, a, "whatsapp:254700000001")
	if err != nil {
		t.Fatalf("Hold after the holder's session ended: %v", err)
	}
	select {
	case <-hb.Lost():
	case <-time.After(time.Minute):
		t.Fatal("the holder whose session ended was not told (Lost)")
	}
	for _, h := range []*Holding{ha2, hb, other} {
		if err := h.Release(); err != nil {
			t.Errorf("Release: %v", err)
		}
	}
}

// waitHold retries Hold while the lock is held (the server ends a terminated session's locks
// once that backend has exited, which a loaded machine may take a while to do); the minute only
// turns a hang into a readable failure.
func waitHold(ctx context.Context, s *Store, name string) (*Holding, error) {
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		h, err := s.Hold(ctx, name)
		if !errors.Is(err, ErrHeld) || time.Now().After(deadline) {
			return h, err
		}
	}
}
