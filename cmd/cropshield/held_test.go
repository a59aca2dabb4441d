package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/pgtest"
	"github.com/cropshield/cropshield/store"
	"github.com/jackc/pgx/v5"
)

// heldReplica is one replica's runHeld for the test: whether its work runs, and its state.
type heldReplica struct {
	mu      sync.Mutex
	running bool
	state   string
	runs    int
	ends    int // runs whose context ended
}

func (r *heldReplica) get() (running bool, state string, runs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running, r.state, r.runs
}

func (r *heldReplica) ended() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ends
}

// start runs runHeld on st until the returned stop is called; the work runs until its context
// ends.
func (r *heldReplica) start(t *testing.T, st *store.Store) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runHeld(ctx, slog.New(slog.DiscardHandler), st, "whatsapp:254700000001",
			func(s string) { r.mu.Lock(); r.state = s; r.mu.Unlock() },
			func(ctx context.Context) error {
				r.mu.Lock()
				r.running, r.runs = true, r.runs+1
				r.mu.Unlock()
				<-ctx.Done()
				r.mu.Lock()
				r.running, r.ends = false, r.ends+1
				r.mu.Unlock()
				return nil
			})
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runHeld: %v", err)
		}
	}
}

// eventually waits for cond, failing the test after a minute (a liveness bound, not a timing
// check: the standby retries every 5 s).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within a minute: %s", what)
		}
	}
}

// TestWhatsAppRunsOnOneReplica: two replicas with WhatsApp on one PostgreSQL: one runs it, the
// other stands by (healthy) and takes over when the first stops; when the runner's database
// session dies (a killed process, a broken connection) it stops its work and the other takes over.
func TestWhatsAppRunsOnOneReplica(t *testing.T) {
	url := pgtest.URL(t)
	open := func() *store.Store {
		st, err := store.Open(t.Context(), url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	sa, sb := open(), open()
	a, b := &heldReplica{}, &heldReplica{}
	stopA := a.start(t, sa)
	eventually(t, "replica a runs WhatsApp", func() bool { r, _, _ := a.get(); return r })
	stopB := b.start(t, sb)
	defer stopB()
	eventually(t, "replica b stands by", func() bool { _, s, _ := b.get(); return s == "standby" })
	if r, _, _ := b.get(); r {
		t.Fatal("both replicas run WhatsApp")
	}
	stopA()
	eventually(t, "replica b takes over after a stopped", func() bool { r, _, _ := b.get(); return r })

	// a comes back and stands by; then b's session is ended by the server.
	stopA = a.start(t, sa)
	defer stopA()
	eventually(t, "replica a stands by", func() bool { _, s, _ := a.get(); return s == "standby" })
	terminateLockHolders(t, url)
	eventually(t, "replica b stops its work when its lock's session ends", func() bool { return b.ended() == 1 })
	// Then one of the two runs it again (b may take it straight back), never both.
	eventually(t, "a replica runs WhatsApp again", func() bool {
		ra, _, _ := a.get()
		rb, _, _ := b.get()
		if ra && rb {
			t.Fatal("both replicas run WhatsApp")
		}
		return ra || rb
	})
}

// terminateLockHolders ends the database sessions holding advisory locks on url's database, as
// the server does for a process that was killed: here, the replica running WhatsApp.
func terminateLockHolders(t *testing.T, url string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("terminated %d sessions holding advisory locks, want the one replica's", n)
	}
}

// TestReplicaNameHeldOnce: a second serve with a replica name already serving on the database is
// refused (it would take the first's chats: a restarted name takes its leases back at once); once
// the first stopped the name is free again.
func TestReplicaNameHeldOnce(t *testing.T) {
	url := pgtest.URL(t)
	name := func(c *serveConfig) { c.replica = "r1" }
	_, stop := startServeOps(t, url, io.Discard, name)
	c := testServeConfig(t, url)
	c.review.addr = ""
	name(&c)
	err := serve(t.Context(), c, slog.New(slog.DiscardHandler))
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `another process serves as replica "r1"`) {
		t.Fatalf("second serve as r1: %v, want refused as a usage error naming the replica", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, stop = startServeOps(t, url, io.Discard, name)
	if err := stop(); err != nil {
		t.Fatalf("serve as r1 after the first stopped: %v", err)
	}
}
